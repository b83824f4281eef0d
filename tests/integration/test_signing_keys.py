"""Keys a hospital can defend, through the real ``cmspatch``: encrypted key files, a second signer who
must look at the package bytes, and the ceremony on record in every signature."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.domain.trust.envelope import Envelope, Signature, parse_envelope
from tests.trust_helpers import FIXED_VERSION, PASSPHRASE, TrustKit, key_flags, passphrase_file, write_package

CMSPATCH = Path(sys.executable).with_name("cmspatch")


def run(*args: object, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "NO_COLOR": "1", "CMSPATCH_STATE_DIR": str(cwd / "default-state"), **(env or {})}
    return subprocess.run([str(CMSPATCH), *map(str, args)], cwd=cwd, env=full, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, check=False)


def attest_args(package: Path, key: object, out: str = "m.json") -> tuple[object, ...]:
    return ("package", "attest", package, "--key", key, "--version", FIXED_VERSION, "--models", "CMS8000",
            "--from-versions", "CMS7.820.*", "--release", "1", "--expires", "+30d", "--out", out)


def verify_json(package: Path, manifest: Path | str, policy: Path | str, cwd: Path) -> dict[str, Any]:
    result = run("package", "verify", package, "--manifest", manifest, "--policy", policy, "--state",
                 "s.json", "--no-record", "--json", cwd=cwd)
    return dict(json.loads(result.stdout), returncode=result.returncode)


@pytest.fixture
def kit(tmp_path: Path) -> TrustKit:
    return TrustKit.create(tmp_path)


def test_keys_new_encrypts_the_key_file_by_default(tmp_path: Path) -> None:
    made = run("keys", "new", "--role", "hospital-biomed", "--out", "b.key", *key_flags(tmp_path),
               cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    pem = (tmp_path / "b.key").read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert "encrypted with a passphrase" in made.stderr and PASSPHRASE not in made.stdout + made.stderr


def test_keys_new_without_a_passphrase_source_or_terminal_refuses_and_writes_nothing(tmp_path: Path) -> None:
    result = run("keys", "new", "--role", "hospital-biomed", "--out", "b.key", "--policy", "p.yaml",
                 cwd=tmp_path)
    assert result.returncode == 2 and "[secret-needed]" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_unencrypted_key_needs_the_flag_and_says_so(tmp_path: Path) -> None:
    result = run("keys", "new", "--role", "vendor", "--out", "v.key", "--unencrypted", cwd=tmp_path)
    assert result.returncode == 0 and "not encrypted" in result.stderr
    assert (tmp_path / "v.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_a_passphrase_file_others_can_read_is_refused(tmp_path: Path) -> None:
    exposed = passphrase_file(tmp_path)
    exposed.chmod(0o644)
    result = run("keys", "new", "--role", "vendor", "--out", "v.key", "--passphrase-file", exposed,
                 cwd=tmp_path)
    assert result.returncode == 2 and "[secret-file-exposed]" in result.stderr
    assert "chmod 600" in result.stderr
    assert not (tmp_path / "v.key").exists()


def test_wrong_passphrase_is_a_clear_refusal_and_writes_no_manifest(kit: TrustKit, tmp_path: Path) -> None:
    package, key = write_package(tmp_path), kit.key_file("hospital-biomed")
    wrong = passphrase_file(tmp_path, "not the passphrase", name="wrong")
    result = run(*attest_args(package, key), "--passphrase-file", wrong, cwd=tmp_path)
    assert result.returncode == 3 and "[wrong-passphrase]" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "m.json").exists()
    missing = run(*attest_args(package, key), cwd=tmp_path)  # encrypted, no source, no terminal
    assert missing.returncode == 2 and "[secret-needed]" in missing.stderr


def test_passphrase_from_the_environment_unlocks_the_key(kit: TrustKit, tmp_path: Path) -> None:
    package, key = write_package(tmp_path), kit.key_file("hospital-biomed")
    result = run(*attest_args(package, key), "--passphrase-env", "BIOMED_PASS", cwd=tmp_path,
                 env={"BIOMED_PASS": PASSPHRASE})
    assert result.returncode == 0, result.stderr
    assert PASSPHRASE not in result.stdout + result.stderr + (tmp_path / "m.json").read_text()


def test_sign_checks_the_package_beside_the_manifest_by_default(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package, signers=[kit.keys["hospital-biomed"]])
    key, before = kit.key_file("hospital-security"), manifest.read_bytes()
    data = bytearray(package.read_bytes())
    data[len(data) // 2] ^= 0x01
    package.write_bytes(bytes(data))
    tampered = run("package", "sign", manifest, "--key", key, *key_flags(tmp_path), cwd=tmp_path)
    assert tampered.returncode == 3 and "[artifact-tampered]" in tampered.stderr  # no --package: still looked
    assert manifest.read_bytes() == before


def test_sign_without_the_package_needs_the_flag_and_the_report_shows_it(kit: TrustKit,
                                                                         tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    package = write_package(tmp_path / "elsewhere")
    manifest = kit.manifest_for(package, signers=[kit.keys["hospital-biomed"]])  # not beside the package
    key, before = kit.key_file("hospital-security"), manifest.read_bytes()
    refused = run("package", "sign", manifest, "--key", key, *key_flags(tmp_path), cwd=tmp_path)
    assert refused.returncode == 2 and "[package-needed]" in refused.stderr
    assert "--without-package" in refused.stderr
    assert manifest.read_bytes() == before
    stamped = run("package", "sign", manifest, "--key", key, "--no-package-check", *key_flags(tmp_path),
                  cwd=tmp_path)
    assert stamped.returncode == 0 and "WITHOUT checking" in stamped.stderr, stamped.stderr
    policy = kit.policy()
    report = verify_json(package, manifest, policy, tmp_path)
    checked = {s["role"]: s["ceremony"]["package_checked"] for s in report["signatures"]}
    assert report["returncode"] == 0 and checked == {"hospital-biomed": True, "hospital-security": False}
    human = run("package", "verify", package, "--manifest", manifest, "--policy", policy, "--no-record",
                "--state", "s.json", cwd=tmp_path)
    assert "SIGNED WITHOUT CHECKING THE PACKAGE BYTES" in human.stdout


def test_each_signature_records_who_when_and_what_key(kit: TrustKit, tmp_path: Path) -> None:
    package, policy, secret = write_package(tmp_path), kit.policy(), key_flags(tmp_path)
    biomed, security = kit.key_file("hospital-biomed"), kit.key_file("hospital-security", passphrase=None)
    attest = run(*attest_args(package, biomed), "--policy", policy, *secret, cwd=tmp_path)
    assert attest.returncode == 0, attest.stderr
    sign = run("package", "sign", "m.json", "--key", security, "--policy", policy, cwd=tmp_path)
    assert sign.returncode == 0, sign.stderr
    report = verify_json(package, "m.json", policy, tmp_path)
    records = {s["role"]: s["ceremony"] for s in report["signatures"]}
    assert records["hospital-biomed"]["signer"] == {"role": "hospital-biomed",
                                                    "owner": "test hospital-biomed"}
    assert records["hospital-biomed"]["custody"] == {"kind": "file", "encrypted": True}
    assert records["hospital-security"]["custody"] == {"kind": "file", "encrypted": False}
    assert all(r["signed"].endswith("Z") and r["package_checked"] for r in records.values())
    human = run("package", "verify", package, "--manifest", "m.json", "--policy", policy, "--no-record",
                "--state", "s.json", cwd=tmp_path)
    assert "test hospital-biomed as hospital-biomed" in human.stdout
    assert "UNENCRYPTED key file" in human.stdout


def test_sign_with_a_policy_that_does_not_know_the_key_refuses(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package, signers=[kit.keys["hospital-biomed"]])
    result = run("package", "sign", manifest, "--key", kit.key_file("vendor", passphrase=None), "--policy",
                 kit.policy(roles=("hospital-biomed",)), cwd=tmp_path)
    assert result.returncode == 2 and "[signer-not-in-policy]" in result.stderr


def _strip_ceremonies(envelope: Envelope) -> Envelope:
    return Envelope(envelope.payload_type, envelope.payload,
                    tuple(Signature(s.keyid, s.sig) for s in envelope.signatures))


def test_manifests_without_ceremony_records_still_verify(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package)
    old = _strip_ceremonies(parse_envelope(manifest.read_bytes()))
    assert b"ceremony" not in old.to_json_bytes()
    manifest.write_bytes(old.to_json_bytes())
    report = verify_json(package, manifest, kit.policy(), tmp_path)
    assert report["returncode"] == 0
    assert {s["ceremony"] for s in report["signatures"]} == {None}
    assert all("not recorded" in s["ceremony_note"] for s in report["signatures"])


def test_an_edited_ceremony_record_is_ignored_not_believed(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package)
    doc = json.loads(manifest.read_text())
    record = json.loads(base64.b64decode(doc["signatures"][1]["ceremony"]))
    assert record["package_checked"] is True
    record["custody"] = {"kind": "pkcs11", "token": "forged", "serial": "1", "object": "x"}
    doc["signatures"][1]["ceremony"] = base64.b64encode(json.dumps(record).encode()).decode()
    manifest.write_text(json.dumps(doc))
    report = verify_json(package, manifest, kit.policy(), tmp_path)
    forged = report["signatures"][1]
    assert report["returncode"] == 0 and forged["counted"] and forged["ceremony"] is None
    assert "does not verify" in forged["ceremony_note"]


def _on_terminal(tmp_path: Path, *args: object, answers: tuple[str, ...]) -> tuple[int, str]:
    """Run cmspatch on a pseudo-terminal, answering its prompts in turn; (exit status, what it showed)."""
    import pexpect

    child = pexpect.spawn(str(CMSPATCH), [str(a) for a in args], cwd=str(tmp_path), timeout=30,
                          env={**os.environ, "NO_COLOR": "1"}, encoding="utf-8")
    for answer in answers:
        child.expect("passphrase")
        child.sendline(answer)
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus if child.exitstatus is not None else -1), str(child.before)


def test_the_terminal_asks_twice_on_creation_and_never_echoes(kit: TrustKit, tmp_path: Path) -> None:
    code, shown = _on_terminal(tmp_path, "keys", "new", "--role", "vendor", "--out", "k.key",
                               answers=(PASSPHRASE, PASSPHRASE))
    assert code == 0 and PASSPHRASE not in shown
    assert (tmp_path / "k.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    code, _ = _on_terminal(tmp_path, "keys", "new", "--role", "vendor", "--out", "j.key",
                           answers=(PASSPHRASE, "something else"))
    assert code == 2 and not (tmp_path / "j.key").exists()
    package = write_package(tmp_path)
    code, shown = _on_terminal(tmp_path, *attest_args(package, "k.key"), answers=("wrong",))
    assert code == 3 and "[wrong-passphrase]" in shown and not (tmp_path / "m.json").exists()
    code, _ = _on_terminal(tmp_path, *attest_args(package, "k.key"), answers=(PASSPHRASE,))
    assert code == 0 and (tmp_path / "m.json").exists()
