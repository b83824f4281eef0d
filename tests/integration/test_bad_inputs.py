"""Hostile and mistaken input files through the real ``cmspatch`` entry point: a located refusal with a
stable reason and the documented exit code, nothing written, never an internal error (exit 70)."""

from __future__ import annotations

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
