"""Builders for the package-trust tests: tiny vendor packages, keys, policies and signed manifests.

Packages follow the team layout (VERSION, MODELS, bin/monitor, bin/update); an "ELF" is bytes starting
with b"\\x7fELF". Everything is built in memory or in ``tmp_path``: no fixture files to drift.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from orchestrator.adapters.package_attest import new_envelope
from orchestrator.adapters.package_reader import read_package
from orchestrator.domain.indicators import MOUNT_STRING
from orchestrator.domain.trust.envelope import Envelope
from orchestrator.domain.trust.manifest import Artifact, Manifest
from orchestrator.domain.trust.policy import TrustPolicy, render_policy
from orchestrator.domain.trust.signatures import SigningKey, generate_key

FIXED_VERSION = "CMS7.820.080.00/1.00(1.00)"
VULNERABLE_VERSION = "CMS7.820.075.08/0.74(0.75)"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
FIXED_ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + b"fixed monitor: no network functions\n" * 8
PASSPHRASE = "correct horse battery staple"


def passphrase_file(directory: Path, secret: str = PASSPHRASE, name: str = "passphrase") -> Path:
    """A passphrase (or PIN) file as automation keeps one: first line, mode 0600."""
    path = directory / name
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return path


def key_flags(directory: Path) -> tuple[str, ...]:
    """What a test adds to ``keys new``/``package attest``/``package sign`` to use encrypted key files."""
    return ("--passphrase-file", str(passphrase_file(directory)))


def elf(body: bytes = b"") -> bytes:
    return FIXED_ELF + body


def package_members(*, version: str = FIXED_VERSION, models: Iterable[str] = ("CMS8000",),
                    monitor: bytes = FIXED_ELF, update: bytes = FIXED_ELF) -> dict[str, bytes]:
    return {"VERSION": version.encode() + b"\n", "MODELS": "\n".join(models).encode() + b"\n",
            "bin/monitor": monitor, "bin/update": update}


def tar_bytes(members: dict[str, bytes], *, compression: str = "gz",
              extra: Iterable[tarfile.TarInfo] = ()) -> bytes:
    buf = io.BytesIO()
    # gzip's header carries the time of writing: written by tarfile, the same members gave other bytes
    # (another hash, so "release-reused") when two calls fell either side of a second on a loaded machine.
    mode = "w" if compression in ("", "gz") else f"w:{compression}"
    with tarfile.open(fileobj=buf, mode=mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            archive.addfile(info, io.BytesIO(data))
        for info in extra:
            archive.addfile(info)
    return gzip.compress(buf.getvalue(), mtime=0) if compression == "gz" else buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def write_package(directory: Path, name: str = "cms8000-fix.tar.gz", data: bytes | None = None,
                  **kwargs: object) -> Path:
    path = directory / name
    path.write_bytes(data if data is not None else tar_bytes(package_members(**kwargs)))  # type: ignore[arg-type]
    return path


def backdoored_members() -> dict[str, bytes]:
    return package_members(monitor=elf(b"\x00" + MOUNT_STRING + b"\x00"))


@dataclass
class TrustKit:
    """Keys by role, and helpers to write policies and manifests with them."""

    directory: Path
    keys: dict[str, SigningKey]

    @classmethod
    def create(cls, directory: Path, algorithm: str = "ed25519") -> TrustKit:
        return cls(directory, {role: generate_key(algorithm)
                               for role in ("vendor", "hospital-biomed", "hospital-security")})

    def policy(self, roles: Iterable[str] = ("vendor", "hospital-biomed", "hospital-security"),
               *, extra: Iterable[tuple[SigningKey, str]] = (), revoked: Iterable[str] = (),
               name: str = "policy.yaml") -> Path:
        policy = TrustPolicy()
        for role in roles:
            policy = policy.with_key(self.keys[role].public, role, owner=f"test {role}")
        for key, role in extra:
            policy = policy.with_key(key.public, role)
        for keyid in revoked:
            policy = policy.with_revocation(keyid, "test revocation", "2026-11-01")
        path = self.directory / name
        path.write_text(render_policy(policy))
        return path

    def manifest_for(self, package: Path, *, signers: Iterable[SigningKey] | None = None,
                     models: tuple[str, ...] = ("CMS8000",), release: int = 1,
                     expires: datetime = NOW + timedelta(days=30), version: str = FIXED_VERSION,
                     from_versions: tuple[str, ...] = (VULNERABLE_VERSION,), name: str | None = None,
                     artifact: Artifact | None = None) -> Path:
        read = read_package(package, declared_size=None, scan=False)
        assert read.sha256 is not None
        manifest = Manifest(
            package=package.name, artifacts=(artifact or Artifact(package.name, read.size, read.sha256),),
            models=models, from_versions=from_versions, target_version=version, release=release,
            cves=("CVE-2025-0626", "CVE-2025-1204"), expires=expires, created=NOW - timedelta(days=1),
        )
        keys = list(signers) if signers is not None else [self.keys["hospital-biomed"],
                                                          self.keys["hospital-security"]]
        path = self.directory / (name or f"{package.name}.manifest.json")
        path.write_bytes(new_envelope(manifest, keys).to_json_bytes())
        return path

    def key_file(self, role: str, name: str | None = None, *, passphrase: str | None = PASSPHRASE) -> Path:
        """``role``'s private key as a file, encrypted with ``passphrase`` (None: unencrypted)."""
        path = self.directory / (name or f"{role}.key")
        secret = passphrase.encode() if passphrase else None
        path.write_bytes(self.keys[role].private_pem(secret, log2_n=12))  # cheap scrypt: tests only
        path.chmod(0o600)
        return path

    def envelope(self, path: Path) -> Envelope:
        from orchestrator.domain.trust.envelope import parse_envelope

        return parse_envelope(path.read_bytes())
