"""Hostile and mistaken input files through the real ``cmspatch`` entry point: a located refusal with a
stable reason and the documented exit code, nothing written, never an internal error (exit 70)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from tests.trust_helpers import TrustKit, write_package


@pytest.fixture
def kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TrustKit:
    monkeypatch.setenv("CMSPATCH_STATE_DIR", str(tmp_path / "default-state"))
    monkeypatch.setenv("NO_COLOR", "1")
    return TrustKit.create(tmp_path)


def verify(kit: TrustKit, package: Path, manifest: Path, policy: Path) -> int:
    return main(["package", "verify", str(package), "--manifest", str(manifest), "--policy", str(policy),
                 "--state", str(kit.directory / "state.json")])


def test_a_second_revoked_list_cannot_unrevoke_a_stolen_key(kit: TrustKit, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package)
    policy = kit.policy(revoked=[kit.keys["hospital-security"].keyid])
    assert verify(kit, package, manifest, policy) == 3  # revoked: refused, as it should be
    capsys.readouterr()
    lines = policy.read_text().count("\n")
    policy.write_text(policy.read_text() + "revoked: []\n")
    assert verify(kit, package, manifest, policy) == 3
    err = capsys.readouterr().err
    assert "[policy-invalid]" in err and "duplicate-key" in err and f"policy.yaml:{lines + 1}:1" in err
    assert not (tmp_path / "state.json").exists()


def test_a_second_thresholds_list_cannot_make_the_two_person_rule_one_person(
        kit: TrustKit, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package, signers=[kit.keys["hospital-biomed"]])
    policy = kit.policy()
    assert verify(kit, package, manifest, policy) == 3  # one person: below the threshold
    capsys.readouterr()
    policy.write_text(policy.read_text() + "thresholds:\n  - name: one-person\n"
                      "    require: {hospital-biomed: 1}\n")
    assert verify(kit, package, manifest, policy) == 3
    err = capsys.readouterr().err
    assert "'thresholds' is given twice" in err and "[policy-invalid]" in err
    assert not (tmp_path / "state.json").exists()


# --- campaign values: flags and config files go through one check (domain.campaign.BOUNDS) -----------

INVENTORY = """all:
  children:
    site_a:
      vars: {site: "A", ward: "ICU"}
      hosts:
        bed01:
          model: CMS8000
          serial_number: "CMS8K-2301-00017"
          bed: "01"
          delivery: manual
"""


def plan_args(kit: TrustKit, *, release: int = 1, package: Path | None = None) -> list[str]:
    directory = kit.directory
    inventory = directory / "inventory.yml"
    inventory.write_text(INVENTORY)
    package = package or write_package(directory)
    manifest = kit.manifest_for(package, release=release, name=f"m{release}.json")
    return ["plan", "-i", str(inventory), "--package", str(package), "--manifest", str(manifest),
            "--policy", str(kit.policy()), "--state", str(directory / "state.json")]


@pytest.mark.parametrize(("flag", "value", "unit"), [
    ("--observation-window", "nan", "seconds"), ("--observation-window", "-1", "seconds"),
    ("--observation-window", "inf", "seconds"), ("--observation-window", "0", "seconds"),
    ("--observation-window", "86400", "seconds"), ("--reboot-timeout", "-5", "seconds"),
    ("--trigger-timeout", "-1", "seconds"), ("--max-failures", "-3", "failures"),
    ("--min-executed", "-1", "monitors"), ("--max-failure-pct", "nan", "percent"),
    ("--concurrency", "0", "monitors"),
])
def test_a_campaign_value_out_of_range_is_refused_naming_flag_and_unit(
        kit: TrustKit, capsys: pytest.CaptureFixture[str], flag: str, value: str, unit: str) -> None:
    assert main([*plan_args(kit), "--json", flag, value]) == 2
    captured = capture(capsys)
    assert f"cmspatch: {flag}: " in captured.err and unit in captured.err and value in captured.err
    assert "[bad-campaign-value]" in captured.err and captured.out == ""


def capture(capsys: pytest.CaptureFixture[str]) -> pytest.CaptureResult[str]:
    return capsys.readouterr()


@pytest.mark.parametrize("prefix", ["8.8.8", "202.114.4", "127.114", "127.114.4.0", "10.0.0"])
def test_an_indicator_prefix_that_is_not_three_loopback_octets_is_refused(
        kit: TrustKit, capsys: pytest.CaptureFixture[str], prefix: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*plan_args(kit), "--indicator-prefix", prefix])
    assert exited.value.code == 2
    assert "--indicator-prefix" in capsys.readouterr().err


def test_survey_window_and_sinkhole_prefix_use_the_same_rules(kit: TrustKit,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    for extra in (["--window", "nan"], ["--window", "-1"], ["--sinkhole-prefix", "8.8.8"]):
        with pytest.raises(SystemExit) as exited:
            main(["verify", "-i", str(kit.directory / "inventory.yml"), *extra])
        assert exited.value.code == 2
        assert extra[0] in capsys.readouterr().err


def config(kit: TrustKit, data: bytes) -> Path:
    path = kit.directory / "campaign.yml"
    path.write_bytes(data)
    return path


def test_a_campaign_config_value_of_the_wrong_kind_is_refused_with_its_line(
        kit: TrustKit, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(kit, b"retry_attempts: 2\nreboot_timeout: soon\n")
    assert main([*plan_args(kit), "--campaign-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2: reboot_timeout must be a number of seconds" in err and "'soon'" in err
    path = config(kit, b"observation_window: .nan\n")
    assert main([*plan_args(kit), "--campaign-config", str(path)]) == 2
    assert f"{path}:1: observation_window" in capsys.readouterr().err
    path = config(kit, b"exercise_triggers: 'no'\n")
    assert main([*plan_args(kit), "--campaign-config", str(path)]) == 2
    assert "true or false" in capsys.readouterr().err


@pytest.mark.parametrize(("data", "reason"), [
    ("reboot_timeout: 30\n".encode("utf-16"), "not-utf8"),
    ("reboot_timeout: 30\nobservation_window: 3\n".encode("utf-16-le"), "not-utf8"),
    (b"upload_dir: /data/\xe9t\xe9\n", "not-utf8"),
    (b"maintenance_windows: " + b"[" * 10_000 + b"]" * 10_000 + b"\n", "too-deep"),
    (b"maintenance_windows:\n" + b"".join(b" " * i + b"- \n" for i in range(1, 1_000)), "too-deep"),
    (b"reboot_timeout: 30\nreboot_timeout: 60\n", "duplicate-key"),
], ids=["utf16-bom", "utf16-no-bom", "latin1", "deep-flow", "deep-block", "duplicate"])
def test_a_campaign_config_that_is_not_a_sane_utf8_mapping_is_a_usage_error(
        kit: TrustKit, capsys: pytest.CaptureFixture[str], data: bytes, reason: str) -> None:
    path = config(kit, data)
    assert main([*plan_args(kit), "--campaign-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"[{reason}]" in err and str(path) in err and "internal error" not in err


# --- paths the file system refuses: exit 2, never 70 -------------------------------------------------

LONG = "x" * 300


def test_paths_longer_than_the_file_system_allows_are_usage_errors(
        kit: TrustKit, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = write_package(tmp_path)
    manifest, policy = kit.manifest_for(package), kit.policy()
    key = tmp_path / "biomed.key"
    key.write_bytes(kit.keys["hospital-biomed"].private_pem())
    long_path = str(tmp_path / LONG)
    commands = [
        ["package", "verify", long_path, "--manifest", str(manifest), "--policy", str(policy)],
        ["package", "verify", str(package), "--manifest", long_path, "--policy", str(policy)],
        [*plan_args(kit)[:3], "--package", long_path, *plan_args(kit)[5:]],
        ["package", "attest", str(package), "--key", str(key), "--version", "V", "--models", "CMS8000",
         "--from-versions", "V0", "--release", "1", "--expires", "+1d", "--out", long_path],
        ["keys", "new", "--role", "vendor", "--out", long_path],
        ["keys", "new", "--role", "vendor", "--out", str(tmp_path / ("k" * 253))],  # .pub is too long
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "[path-too-long]" in err and "internal error" not in err, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing half-written


# --- plan writes nothing; the shared default state is named; an expiry must be in the future --------

def test_plan_does_not_record_the_release_it_plans(kit: TrustKit, capsys: pytest.CaptureFixture[str]) -> None:
    package = write_package(kit.directory)
    assert main([*plan_args(kit, release=2, package=package), "--json"]) == 0
    out = capsys.readouterr().out
    json.loads(out, parse_constant=lambda name: pytest.fail(f"plan --json printed {name}"))
    assert not (kit.directory / "state.json").exists()
    verify_one = plan_args(kit, release=1, package=package)
    verify_one[0:3] = ["package", "verify", str(package)]
    del verify_one[3:5]
    assert main(verify_one) == 0  # release 1 is still accepted: planning 2 recorded nothing


def test_verify_without_state_warns_that_the_default_state_is_shared(
        kit: TrustKit, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = write_package(tmp_path)
    argv = ["package", "verify", str(package), "--manifest", str(kit.manifest_for(package)),
            "--policy", str(kit.policy())]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "warning" in err and str(tmp_path / "default-state" / "trust-state.json") in err
    assert main([*argv, "--state", str(tmp_path / "own.json")]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("expires", ["+0d", "2020-01-01", "+00d"])
def test_attest_refuses_an_expiry_that_is_not_in_the_future(
        kit: TrustKit, tmp_path: Path, capsys: pytest.CaptureFixture[str], expires: str) -> None:
    package = write_package(tmp_path)
    key = tmp_path / "biomed.key"
    key.write_bytes(kit.keys["hospital-biomed"].private_pem())
    out = tmp_path / "m.json"
    assert main(["package", "attest", str(package), "--key", str(key), "--version", "V", "--models",
                 "CMS8000", "--from-versions", "V0", "--release", "1", "--expires", expires,
                 "--out", str(out)]) == 2
    assert "[bad-expiry]" in capsys.readouterr().err and not out.exists()


# --- inventories: the size cap is read before parsing, and the refusal says what is wrong ------------

def fleet_inventory(monitors: int) -> str:
    lines = ["all:", "  children:", "    site_a:", "      vars: {site: A, ward: ICU}", "      hosts:"]
    for i in range(monitors):
        address = f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
        lines += [f"        bed{i:05d}:", f"          ansible_host: {address}",
                  "          ansible_port: 2222", "          model: CMS8000",
                  f"          serial_number: \"CMS8K-2301-{i:05d}\"", f"          bed: \"{i % 100:02d}\"",
                  "          host_key: \"SHA256:" + "A" * 43 + "\""]
    return "\n".join(lines) + "\n"


def test_a_15_mb_inventory_is_refused_by_its_size_without_blaming_aliases(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fleet.yml"
    path.write_text(fleet_inventory(58_000))
    assert path.stat().st_size > 14_000_000
    assert main(["inventory", "check", "-i", str(path)]) == 2
    err = capsys.readouterr().err
    assert "MiB" in err and "split the fleet" in err and "alias" not in err.lower()


def test_too_many_monitors_without_aliases_are_not_blamed_on_aliases(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "many.yml"
    path.write_text("all:\n  hosts:\n" + "".join(f"    b{i}:\n" for i in range(60_000)))
    assert main(["inventory", "check", "-i", str(path)]) == 2
    err = capsys.readouterr().err
    assert "more than 50000 groups and monitors" in err and "alias" not in err.lower()
