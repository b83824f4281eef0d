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
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine_rig import rig
from tests.trust_helpers import FIXED_VERSION, PASSPHRASE, TrustKit, key_flags, passphrase_file, write_package

CMSPATCH = Path(sys.executable).with_name("cmspatch")
MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN, SO_PIN = "pin-4815162342", "23420815"  # distinctive: the tests look for it in every output

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


def test_the_policy_records_each_keys_custody_and_verify_shows_it(token: Token) -> None:
    package = write_package(token.directory)
    made = token.run("keys", "new", "--role", "hospital-biomed", "--pkcs11", token.uri("biomed"), "--policy",
                     "policy.yaml", "--owner", "A. Biomed", "--pin-file", token.pin_file, "--json")
    filed = token.run("keys", "new", "--role", "hospital-security", "--out", "security.key", "--policy",
                      "policy.yaml", *key_flags(token.directory))
    assert made.returncode == 0 and filed.returncode == 0, made.stderr + filed.stderr
    serial = json.loads(made.stdout)["custody"]["serial"]
    listed = json.loads(token.run("keys", "list", "--policy", "policy.yaml", "--json").stdout)["keys"]
    assert {k["role"]: k["custody"] for k in listed} == {
        "hospital-biomed": {"kind": "pkcs11", "token": "ceremony", "serial": serial, "object": "biomed"},
        "hospital-security": {"kind": "file", "encrypted": True}}
    assert attest(token, package, token.uri("biomed"), "--pin-file", token.pin_file).returncode == 0
    assert token.run("package", "sign", "m.json", "--key", "security.key",
                     *key_flags(token.directory)).returncode == 0
    code, report = verify(token, package)
    assert code == 0
    notes = {s["role"]: s["custody_note"] for s in report["signatures"]}
    assert notes == {"hospital-biomed": f"held in token ceremony serial {serial}, object biomed (policy)",
                     "hospital-security": "held in encrypted key file (policy)"}
    human = token.run("package", "verify", package, "--manifest", "m.json", "--policy", "policy.yaml",
                      "--state", "s.json", "--no-record")
    assert f"key held in token ceremony serial {serial}, object biomed (policy)" in human.stdout


def test_a_token_key_is_rotated_by_a_new_key_for_its_role_and_revoking_the_old(token: Token) -> None:
    package = write_package(token.directory)
    new = ("keys", "new", "--role", "hospital-biomed", "--policy", "policy.yaml", "--pin-file",
           token.pin_file, "--pkcs11")
    old = token.run(*new, token.uri("biomed-2025"))
    assert old.returncode == 0, old.stderr
    assert token.run("keys", "new", "--role", "hospital-security", "--pkcs11", token.uri("security"),
                     "--policy", "policy.yaml", "--pin-file", token.pin_file).returncode == 0
    assert attest(token, package, token.uri("biomed-2025"), "--pin-file", token.pin_file).returncode == 0
    assert token.run("package", "sign", "m.json", "--key", token.uri("security"), "--pin-file",
                     token.pin_file).returncode == 0
    old_manifest = (token.directory / "m.json").read_bytes()
    rotated = token.run(*new, token.uri("biomed-2026"))
    revoked = token.run("keys", "revoke", old.stdout.strip(), "--policy", "policy.yaml", "--reason",
                        "rotated")
    assert rotated.returncode == 0 and revoked.returncode == 0, rotated.stderr + revoked.stderr
    code, report = verify(token, package)
    assert code == 3 and report["reason"] == "key-revoked"  # the old signature no longer counts
    (token.directory / "m.json").unlink()
    assert attest(token, package, token.uri("biomed-2026"), "--pin-file", token.pin_file).returncode == 0
    assert token.run("package", "sign", "m.json", "--key", token.uri("security"), "--pin-file",
                     token.pin_file).returncode == 0
    code, report = verify(token, package)
    assert code == 0 and report["accepted"], report
    counted = {s["ceremony"]["custody"]["object"] for s in report["signatures"] if s["counted"]}
    assert counted == {"biomed-2026", "security"}
    assert old_manifest != (token.directory / "m.json").read_bytes()


def test_export_sign_takes_a_token_key_or_a_passphrase_key_the_same_way(token: Token) -> None:
    journal = _journal(token.directory)
    assert token.run("keys", "new", "--role", "hospital-security", "--pkcs11", token.uri("security"),
                     "--policy", "policy.yaml", "--pin-file", token.pin_file).returncode == 0
    assert token.run("keys", "new", "--role", "hospital-biomed", "--out", "biomed.key", "--policy",
                     "policy.yaml", *key_flags(token.directory)).returncode == 0
    signed = [token.run("export", "--format", "csv", "--out", "t.csv", "--journal", journal, "--sign",
                        token.uri("security"), "--pin-env", "P", env={"P": PIN}),
              token.run("export", "--format", "csv", "--out", "f.csv", "--journal", journal, "--sign",
                        "biomed.key", "--passphrase-env", "PP", env={"PP": PASSPHRASE})]
    assert all(r.returncode == 0 for r in signed), [r.stderr for r in signed]
    shown = [token.run("export", "verify", name, "--policy", "policy.yaml") for name in ("t.csv", "f.csv")]
    assert all(r.returncode == 0 for r in shown), [r.stdout + r.stderr for r in shown]
    assert "(key: token ceremony serial " in shown[0].stdout and ", object security)" in shown[0].stdout
    assert "(key: encrypted key file)" in shown[1].stdout
    no_pin = token.run("export", "--format", "csv", "--out", "x.csv", "--journal", journal, "--sign",
                       token.uri("security"))  # no PIN source and no terminal: refused before any work
    assert no_pin.returncode == 2 and not (token.directory / "x.csv").exists(), no_pin.stderr


def _journal(directory: Path) -> Path:
    from orchestrator.adapters.journal_sqlite import SqliteJournal
    from orchestrator.domain.events import Event
    from tests.unit.test_export_journal import build_campaign

    path = directory / "journal.db"
    with SqliteJournal(path) as journal:
        for r in build_campaign():
            journal.append(Event(campaign=r.campaign, kind=r.kind, data=r.data, device=r.device, at=r.at))
    return path


class _ProcessWatch:
    """Reads every process's command line (``/proc/*/cmdline``, what ``ps`` shows anyone) until stopped,
    keeping those that hold a secret and counting the ``package sign`` runs it saw."""

    def __init__(self, secrets: tuple[bytes, ...]) -> None:
        self._secrets = secrets
        self._stop = threading.Event()
        self.leaks: list[bytes] = []
        self.signs_seen = 0
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> _ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for pid in (p for p in os.listdir("/proc") if p.isdigit()):
                try:
                    line = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:  # the process ended between the listing and the read
                    continue
                self.signs_seen += b"package\0sign\0" in line
                self.leaks.extend(line for secret in self._secrets if secret in line)


def test_no_pin_or_passphrase_reaches_any_output_journal_export_or_process_list(token: Token) -> None:
    secrets = (PIN.encode(), PASSPHRASE.encode())
    with rig(token.directory / "rig", monitors=1, sinkhole=False) as r, _ProcessWatch(secrets) as watch:
        runs = [token.run("keys", "new", "--role", "hospital-biomed", "--pkcs11", token.uri("biomed"),
                          "--policy", "policy.yaml", "--pin-env", "P", env={"P": PIN}),
                token.run("keys", "new", "--role", "hospital-security", "--out", "security.key", "--policy",
                          "policy.yaml", *key_flags(token.directory)),
                token.run("package", "attest", r.package_path, "--key", token.uri("biomed"), "--version",
                          r.package.target_version, "--models", *r.package.models, "--from-versions",
                          *r.package.from_versions, "--release", "1", "--expires", "+30d", "--out", "m.json",
                          "--pin-file", token.pin_file, "--policy", "policy.yaml")]
        runs.append(token.run("package", "sign", "m.json", "--key", "security.key", "--package",
                              r.package_path, "--passphrase-env", "PP", "--policy", "policy.yaml",
                              env={"PP": PASSPHRASE}))
        args = r.cli_args()
        args[args.index("--manifest") + 1] = str(token.directory / "m.json")
        args[args.index("--policy") + 1] = str(token.directory / "policy.yaml")
        runs.append(token.run("run", *args, "--waves", "1,100%", "--reboot-timeout", "8", "--yes",
                              "--observation-window", "0.4", "--operator", "T. Tester"))
        runs.append(token.run("export", "--format", "json", "--out", "report.json", "--journal",
                              r.journal_path, "--sign", token.uri("biomed"), "--pin-file", token.pin_file))
        runs.append(token.run("export", "verify", "report.json", "--policy", "policy.yaml"))
        runs.append(token.run("package", "verify", r.package_path, "--manifest", "m.json", "--policy",
                              "policy.yaml", "--state", "v.json", "--json"))
    failed = [(run.args[1:3], run.returncode, run.stderr[-3000:]) for run in runs if run.returncode != 0]
    assert not failed, "\n".join(map(str, failed))
    assert watch.signs_seen > 0 and watch.leaks == []
    printed = "".join(run.stdout + run.stderr for run in runs).encode()
    written = {path: path.read_bytes() for path in token.directory.rglob("*")
               if path.is_file() and path.parent.name != "tokens" and path not in
               (token.pin_file, token.directory / "passphrase")}
    assert r.journal_path in written and token.directory / "report.json.sig" in written
    assert not [s for s in secrets if s in printed]
    assert not [(p, s) for p, data in written.items() for s in secrets if s in data]
