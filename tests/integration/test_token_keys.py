"""Keys that never leave a token: the real ``cmspatch`` against a SoftHSM2 token made for each test.

The token lives in ``tmp_path`` (``SOFTHSM2_CONF`` points at a softhsm2.conf there), initialised with
``softhsm2-util --init-token``; ``make deps`` installs SoftHSM2 (Debian ``softhsm2``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.trust_helpers import FIXED_VERSION, TrustKit, key_flags, passphrase_file, write_package

CMSPATCH = Path(sys.executable).with_name("cmspatch")
MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN, SO_PIN = "481516", "23420815"

pytestmark = pytest.mark.skipif(shutil.which("softhsm2-util") is None or not Path(MODULE).exists(),
                                reason="SoftHSM2 is not installed (make deps installs softhsm2)")


@dataclass
class Token:
    directory: Path
    env: dict[str, str]
    pin_file: Path

    def uri(self, label: str) -> str:
        return f"pkcs11:token=ceremony;object={label}"

    def run(self, *args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(CMSPATCH), *map(str, args)], cwd=self.directory,
                              env={**self.env, **(env or {})}, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=60, check=False)


@pytest.fixture
def token(tmp_path: Path) -> Token:
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf), "NO_COLOR": "1",
           "CMSPATCH_STATE_DIR": str(tmp_path / "default-state"), "CMSPATCH_PKCS11_MODULE": MODULE}
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "ceremony", "--pin", PIN,
                    "--so-pin", SO_PIN], env=env, check=True, capture_output=True, timeout=60)
    return Token(tmp_path, env, passphrase_file(tmp_path, PIN, name="pin"))


def attest(token: Token, package: Path, key: str, *extra: object) -> subprocess.CompletedProcess[str]:
    return token.run("package", "attest", package, "--key", key, "--version", FIXED_VERSION, "--models",
                     "CMS8000", "--from-versions", "CMS7.820.*", "--release", "1", "--expires", "+30d",
                     "--out", "m.json", *extra)


def verify(token: Token, package: Path) -> tuple[int, dict[str, Any]]:
    result = token.run("package", "verify", package, "--manifest", "m.json", "--policy", "policy.yaml",
                       "--state", "s.json", "--json")
    return result.returncode, json.loads(result.stdout)


def test_two_token_keys_sign_a_manifest_that_verifies(token: Token) -> None:
    package = write_package(token.directory)
    biomed = token.run("keys", "new", "--role", "hospital-biomed", "--pkcs11", token.uri("biomed"), "--owner",
                       "A. Biomed", "--policy", "policy.yaml", "--pin-file", token.pin_file, "--json")
    security = token.run("keys", "new", "--role", "hospital-security", "--pkcs11", token.uri("security"),
                         "--algorithm", "ecdsa-p256", "--owner", "S. Officer", "--policy", "policy.yaml",
                         "--pin-env", "SECURITY_PIN", env={"SECURITY_PIN": PIN})
    assert biomed.returncode == 0 and security.returncode == 0, biomed.stderr + security.stderr
    made = json.loads(biomed.stdout)
    assert made["algorithm"] == "ed25519" and made["created"] and made["custody"]["kind"] == "pkcs11"
    outputs = [biomed, security]
    outputs.append(attest(token, package, token.uri("biomed"), "--pin-file", token.pin_file, "--policy",
                          "policy.yaml"))
    outputs.append(token.run("package", "sign", "m.json", "--key", token.uri("security"), "--pin-env", "P",
                             "--policy", "policy.yaml", env={"P": PIN}))
    assert all(r.returncode == 0 for r in outputs), [r.stderr for r in outputs]
    code, report = verify(token, package)
    assert code == 0 and report["accepted"], report
    custody = {s["role"]: s["ceremony"]["custody"] for s in report["signatures"]}
    biomed_custody = custody["hospital-biomed"]
    assert (biomed_custody["token"], biomed_custody["object"]) == ("ceremony", "biomed")
    assert custody["hospital-security"]["serial"] == made["custody"]["serial"] != ""
    assert {s["ceremony"]["signer"]["owner"] for s in report["signatures"]} == {"A. Biomed", "S. Officer"}
    written = "".join(p.read_text() for p in (token.directory / "m.json", token.directory / "policy.yaml"))
    assert PIN not in written + "".join(r.stdout + r.stderr for r in outputs)


def test_keys_new_on_a_token_finds_the_key_it_made_before(token: Token) -> None:
    args = ("keys", "new", "--role", "hospital-biomed", "--pkcs11", token.uri("biomed"), "--pin-file",
            token.pin_file, "--json")
    first, second = (json.loads(token.run(*args).stdout) for _ in range(2))
    assert first["created"] and not second["created"] and first["keyid"] == second["keyid"]


def test_a_wrong_pin_is_a_clear_refusal_and_writes_nothing(token: Token) -> None:
    package = write_package(token.directory)
    assert token.run("keys", "new", "--role", "hospital-biomed", "--pkcs11", token.uri("biomed"),
                     "--pin-file", token.pin_file).returncode == 0
    wrong = passphrase_file(token.directory, "000000", name="wrong-pin")
    result = attest(token, package, token.uri("biomed"), "--pin-file", wrong)
    assert result.returncode == 3 and "[wrong-pin]" in result.stderr and "Traceback" not in result.stderr
    assert "000000" not in result.stdout + result.stderr and not (token.directory / "m.json").exists()


def test_a_pin_in_the_uri_or_on_the_command_line_is_refused(token: Token) -> None:
    in_uri = token.run("keys", "new", "--role", "hospital-biomed", "--pkcs11",
                       f"pkcs11:token=ceremony;object=k?pin-value={PIN}")
    assert in_uri.returncode == 2 and "[pkcs11-pin-in-uri]" in in_uri.stderr and PIN not in in_uri.stderr
    on_line = token.run("keys", "new", "--role", "hospital-biomed", "--pkcs11", token.uri("k"), "--pin", PIN)
    assert on_line.returncode == 2 and "Traceback" not in on_line.stderr  # no such flag (ambiguous prefix)


def test_the_module_comes_from_the_flag_the_environment_or_the_uri(token: Token) -> None:
    without = {**token.env}
    del without["CMSPATCH_PKCS11_MODULE"]
    args = ("keys", "new", "--role", "hospital-biomed", "--pin-file", token.pin_file, "--pkcs11")
    token.env = without
    missing = token.run(*args, token.uri("k"))
    assert missing.returncode == 2 and "[pkcs11-module-needed]" in missing.stderr
    assert token.run(*args, token.uri("k"), "--pkcs11-module", MODULE).returncode == 0
    assert token.run(*args, f"{token.uri('k')}?module-path={MODULE}").returncode == 0
    bad = token.run(*args, token.uri("k"), "--pkcs11-module", token.directory / "no-such.so")
    assert bad.returncode == 2 and "[pkcs11-module-unusable]" in bad.stderr


def test_revoking_a_token_key_makes_verify_refuse(token: Token) -> None:
    package = write_package(token.directory)
    kit = TrustKit.create(token.directory)
    made = token.run("keys", "new", "--role", "hospital-biomed", "--pkcs11", token.uri("biomed"), "--policy",
                     "policy.yaml", "--pin-file", token.pin_file)
    assert made.returncode == 0, made.stderr
    keyid = made.stdout.strip()
    security = kit.key_file("hospital-security")
    assert token.run("keys", "add", _pub(kit, token.directory), "--role", "hospital-security", "--policy",
                     "policy.yaml").returncode == 0
    assert attest(token, package, token.uri("biomed"), "--pin-file", token.pin_file).returncode == 0
    sign = token.run("package", "sign", "m.json", "--key", security, *key_flags(token.directory))
    assert sign.returncode == 0 and verify(token, package)[0] == 0
    revoke = token.run("keys", "revoke", keyid, "--policy", "policy.yaml", "--reason", "token lost")
    assert revoke.returncode == 0
    code, report = verify(token, package)
    assert code == 3 and report["reason"] == "key-revoked"


def _pub(kit: TrustKit, directory: Path) -> Path:
    path = directory / "security.pub"
    path.write_text(kit.keys["hospital-security"].public.pem)
    return path
