"""Decompression bombs through the real ``cmspatch package`` commands: exit 3 with the limit's reason code,
the limits in the report, nothing written, and the limit flags honoured by attest, sign and verify alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bomb_helpers import tar_gz_of_zeros, zeros_gz
from tests.trust_helpers import FIXED_VERSION, TrustKit, package_members, tar_bytes, write_package

CMSPATCH = Path(sys.executable).with_name("cmspatch")
GIB = 1 << 30


def run(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "CMSPATCH_STATE_DIR": str(cwd / "default-state")}
    return subprocess.run([str(CMSPATCH), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def kit(tmp_path: Path) -> TrustKit:
    return TrustKit.create(tmp_path)


def verify_args(kit: TrustKit, package: Path) -> tuple[object, ...]:
    return ("package", "verify", package, "--manifest", kit.manifest_for(package), "--policy", kit.policy(),
            "--state", "state.json")


def test_verify_refuses_a_nested_gzip_bomb_and_states_the_limits(kit: TrustKit, tmp_path: Path) -> None:
    bomb = tar_bytes({**package_members(), "payload/rootfs.img.gz": zeros_gz(GIB)})  # KB -> 1 GiB
    package = write_package(tmp_path, data=bomb)
    result = run(*verify_args(kit, package), cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "[expanded-too-large]" in result.stderr and "payload/rootfs.img.gz" in result.stderr
    assert "limits     expands to at most 64 MiB for this package (64x" in result.stdout
    assert "! [expanded-too-large]" in result.stdout
    assert not (tmp_path / "state.json").exists()
    as_json = json.loads(run(*verify_args(kit, package), "--json", cwd=tmp_path).stdout)
    assert as_json["reason"] == "expanded-too-large"
    assert as_json["limits"]["max_expanded_bytes"] == 2 * GIB
    assert as_json["scan"]["expanded_bytes"] <= as_json["scan"]["expanded_budget_bytes"] + (1 << 20)


def test_attest_refuses_a_bomb_and_writes_no_manifest(kit: TrustKit, tmp_path: Path) -> None:
    write_package(tmp_path, "nested.tar.gz", data=tar_bytes({**package_members(), "payload/rootfs.img.gz":
                                                             zeros_gz(GIB)}))
    write_package(tmp_path, "bomb.tar.gz", data=tar_gz_of_zeros(8 << 20))
    keys = run("keys", "new", "--role", "hospital-biomed", "--out", "biomed.key", "--policy", "p.yaml",
               "--unencrypted", cwd=tmp_path)
    assert keys.returncode == 0, keys.stderr
    attest = ("package", "attest", "bomb.tar.gz", "--key", "biomed.key", "--version", FIXED_VERSION,
              "--models", "CMS8000", "--from-versions", "CMS7.820.*", "--release", "1", "--expires", "+30d",
              "--out", "m.json")
    nested = run(*attest[:2], "nested.tar.gz", *attest[3:], cwd=tmp_path)  # the default limits
    assert nested.returncode == 3 and "[expanded-too-large]" in nested.stderr
    refused = run(*attest, "--max-expanded-mib", "2", cwd=tmp_path)
    assert refused.returncode == 3 and "[expanded-too-large]" in refused.stderr
    assert not (tmp_path / "m.json").exists()
    accepted = run(*attest, "--max-ratio", "100000", cwd=tmp_path)  # 8 MiB of zeros: under the floor
    assert accepted.returncode == 0, accepted.stderr


def test_sign_checking_the_package_honours_the_limit_flags(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path, data=tar_bytes({**package_members(), "payload/rootfs.tar.gz":
                                                      tar_bytes(package_members())}))
    manifest = kit.manifest_for(package, signers=[kit.keys["hospital-biomed"]])
    key = tmp_path / "security.key"
    from orchestrator.adapters.trust_files import write_private_key

    write_private_key(key, kit.keys["hospital-security"])
    before = manifest.read_bytes()
    refused = run("package", "sign", manifest, "--key", key, "--package", package, "--max-depth", "0",
                  cwd=tmp_path)
    assert refused.returncode == 3 and "[nesting-too-deep]" in refused.stderr
    assert manifest.read_bytes() == before
    signed = run("package", "sign", manifest, "--key", key, "--package", package, cwd=tmp_path)
    assert signed.returncode == 0, signed.stderr


def test_member_limit_flag_refuses_with_its_own_reason(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    assert run(*verify_args(kit, package), cwd=tmp_path).returncode == 0
    refused = run(*verify_args(kit, package), "--max-members", "3", "--no-record", cwd=tmp_path)
    assert refused.returncode == 3 and "[too-many-members]" in refused.stderr
    assert "3 members" in refused.stdout


@pytest.mark.parametrize("flag", ["--max-members", "--max-expanded-mib", "--max-ratio", "--expansion-factor"])
def test_limit_flag_out_of_range_is_a_usage_error(kit: TrustKit, tmp_path: Path, flag: str) -> None:
    package = write_package(tmp_path)
    result = run(*verify_args(kit, package), flag, "0", cwd=tmp_path)
    assert result.returncode == 2 and f"{flag} 0: must be at least 1" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "state.json").exists()


def test_campaign_plan_verifies_the_package_under_the_same_limit_flags(
        kit: TrustKit, capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.cli.main import main
    from tests.integration.test_bad_inputs import plan_args

    args = plan_args(kit)
    assert main([*args, "--json"]) == 0
    capsys.readouterr()
    assert main([*args, "--json", "--max-members", "3"]) == 3
    assert "[too-many-members]" in capsys.readouterr().err
