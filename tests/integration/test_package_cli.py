"""The real ``cmspatch`` console script: the signing ceremony, refusals with exit 3, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trust_helpers import (
    FIXED_VERSION,
    TrustKit,
    backdoored_members,
    key_flags,
    tar_bytes,
    write_package,
)

CMSPATCH = Path(sys.executable).with_name("cmspatch")


def run(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "CMSPATCH_STATE_DIR": str(cwd / "default-state")}
    return subprocess.run([str(CMSPATCH), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def snapshot(directory: Path) -> dict[str, bytes]:
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    return {str(p.relative_to(directory)): p.read_bytes() for p in files}


@pytest.fixture
def kit(tmp_path: Path) -> TrustKit:
    return TrustKit.create(tmp_path)


def test_two_person_ceremony_from_new_keys_to_accepted_package(tmp_path: Path) -> None:
    package, secret = write_package(tmp_path), key_flags(tmp_path)
    biomed = run("keys", "new", "--role", "hospital-biomed", "--out", "biomed.key", "--policy", "policy.yaml",
                 *secret, cwd=tmp_path)
    security = run("keys", "new", "--role", "hospital-security", "--out", "security.key", "--algorithm",
                   "ecdsa-p256", "--policy", "policy.yaml", *secret, cwd=tmp_path)
    assert biomed.returncode == 0 and security.returncode == 0, biomed.stderr + security.stderr
    assert (tmp_path / "biomed.key").stat().st_mode & 0o777 == 0o600
    attest = run("package", "attest", package.name, "--key", "biomed.key", "--version", FIXED_VERSION,
                 "--models", "CMS8000", "CMS6000", "--from-versions", "CMS7.820.*", "--release", "4",
                 "--cves", "CVE-2025-0626", "CVE-2025-1204", "--expires", "+30d", "--out", "m.json",
                 *secret, cwd=tmp_path)
    assert attest.returncode == 0, attest.stderr
    verify = ("package", "verify", package.name, "--manifest", "m.json", "--policy", "policy.yaml",
              "--state", "state.json", "--model", "CMS8000")
    one_signature = run(*verify, cwd=tmp_path)
    assert one_signature.returncode == 3 and "[below-threshold]" in one_signature.stderr
    assert "hospital-security" in one_signature.stdout and not (tmp_path / "state.json").exists()
    sign = run("package", "sign", "m.json", "--key", "security.key", "--package", package.name, *secret,
               cwd=tmp_path)
    assert sign.returncode == 0, sign.stderr
    accepted = run(*verify, cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "ACCEPTED" in accepted.stdout and biomed.stdout.strip()[:16] in accepted.stdout
    assert json.loads((tmp_path / "state.json").read_text())["models"]["CMS8000"]["release"] == 4


def test_tampered_package_exits_3_and_writes_nothing(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest, policy = kit.manifest_for(package), kit.policy()
    data = bytearray(package.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte
    package.write_bytes(bytes(data))
    before = snapshot(tmp_path)
    result = run("package", "verify", package, "--manifest", manifest, "--policy", policy, "--json",
                 cwd=tmp_path)
    assert result.returncode == 3
    assert json.loads(result.stdout)["reason"] == "artifact-tampered"
    assert "[artifact-tampered]" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before  # not even the default state directory


def test_revoking_a_signer_key_makes_verify_refuse(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest, policy = kit.manifest_for(package), kit.policy()
    revoke = run("keys", "revoke", kit.keys["hospital-security"].keyid, "--policy", policy, "--reason",
                 "token lost", cwd=tmp_path)
    assert revoke.returncode == 0, revoke.stderr
    result = run("package", "verify", package, "--manifest", manifest, "--policy", policy,
                 "--state", "s.json", cwd=tmp_path)
    assert result.returncode == 3 and "[key-revoked]" in result.stderr and "token lost" in result.stdout
    assert not (tmp_path / "s.json").exists()


def test_attest_refuses_a_backdoored_package_and_writes_no_manifest(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path, data=tar_bytes(backdoored_members()))
    (tmp_path / "k.key").write_bytes(kit.keys["hospital-biomed"].private_pem())
    result = run("package", "attest", package, "--key", "k.key", "--version", "1", "--models", "CMS8000",
                 "--from-versions", "*", "--release", "1", "--expires", "+1d", "--out", "m.json",
                 cwd=tmp_path)
    assert result.returncode == 3 and "[backdoor-present]" in result.stderr
    assert not (tmp_path / "m.json").exists()


def test_keys_new_never_overwrites_an_existing_key(tmp_path: Path) -> None:
    (tmp_path / "biomed.key").write_text("precious")
    result = run("keys", "new", "--role", "hospital-biomed", "--out", "biomed.key", "--policy", "p.yaml",
                 cwd=tmp_path)
    assert result.returncode == 2
    assert (tmp_path / "biomed.key").read_text() == "precious" and not (tmp_path / "p.yaml").exists()


def test_uninspectable_package_needs_explicit_acknowledgement(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path, "fix.img", data=b"SQSH" + bytes(range(256)) * 4)
    manifest, policy = kit.manifest_for(package), kit.policy()
    args = ("package", "verify", package, "--manifest", manifest, "--policy", policy, "--state", "s.json")
    refused = run(*args, cwd=tmp_path)
    assert refused.returncode == 3 and "[uninspectable]" in refused.stderr
    accepted = run(*args, "--accept-uninspectable", cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr


def test_vendor_public_key_added_to_the_policy_is_enough_alone(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    vendor = kit.keys["vendor"]
    (tmp_path / "vendor.pub").write_text(vendor.public.pem)
    add = run("keys", "add", "vendor.pub", "--role", "vendor", "--policy", "policy.yaml", "--owner", "Contec",
              cwd=tmp_path)
    assert add.returncode == 0 and add.stdout.strip() == vendor.keyid, add.stderr
    manifest = kit.manifest_for(package, signers=[vendor])
    result = run("package", "verify", package, "--manifest", manifest, "--policy", "policy.yaml",
                 "--state", "s.json", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["threshold"]["met_by"] == "vendor"
