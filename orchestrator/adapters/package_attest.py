"""Recording a package as received and signing its manifest (``cmspatch package attest`` / ``sign``).

``attest`` hashes the package exactly as it arrived, scans it (a "fix" that still carries the backdoor
is not signed: nobody should be able to approve it by mistake), writes the manifest payload once and
signs it. ``sign`` adds one more signature to an existing envelope -- the second person of the
two-person rule -- without touching the payload bytes; given the package, it re-hashes it first so the
second signer checks the bytes (hash and content scan) independently instead of trusting the first
signer's word.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.adapters.package_reader import read_package
from orchestrator.adapters.trust_files import atomic_write, read_bounded
from orchestrator.domain.trust.envelope import (
    MAX_ENVELOPE_BYTES,
    PAYLOAD_TYPE,
    Envelope,
    Signature,
    parse_envelope,
)
from orchestrator.domain.trust.limits import ArchiveLimits
from orchestrator.domain.trust.manifest import Artifact, Manifest, parse_manifest, render_manifest
from orchestrator.domain.trust.reasons import Reason
from orchestrator.domain.trust.scan import ScanResult
from orchestrator.domain.trust.signatures import SigningKey
from orchestrator.errors import TrustError, UsageError


def sign_envelope(envelope: Envelope, key: SigningKey) -> Envelope:
    return envelope.with_signature(Signature(keyid=key.keyid, sig=key.sign(envelope.signed_bytes())))


def new_envelope(manifest: Manifest, keys: tuple[SigningKey, ...] | list[SigningKey]) -> Envelope:
    envelope = Envelope(PAYLOAD_TYPE, render_manifest(manifest))
    for key in keys:
        envelope = sign_envelope(envelope, key)
    return envelope


@dataclass(frozen=True)
class Attested:
    manifest: Manifest
    envelope: Envelope
    warnings: tuple[str, ...] = ()


def attest_package(package: Path, key: SigningKey, *, version: str, models: tuple[str, ...],
                   from_versions: tuple[str, ...], release: int, cves: tuple[str, ...], expires: datetime,
                   out: Path, note: str = "", scan: bool = True, now: datetime | None = None,
                   limits: ArchiveLimits | None = None) -> Attested:
    """Hash (and scan) ``package`` as received, write a manifest signed by ``key`` to ``out``.

    Refuses (``TrustError``) a package whose contents carry the backdoor or unsafe members, or that
    expands beyond ``limits`` (for its size on disk); ``scan=False`` exists for tests and demos that need
    a manifest of a known-bad package.
    """
    package = Path(package)
    if not package.is_file():
        raise UsageError(f"{package}: no such package file")
    try:
        read = read_package(package, declared_size=None, scan=scan, limits=limits)
    except OSError as exc:
        raise UsageError(f"{package}: cannot read the package: {exc.strerror or exc}") from exc
    warnings = list(_refuse_unsafe_content(package, read.scan))
    assert read.sha256 is not None
    manifest = Manifest(
        package=package.name, artifacts=(Artifact(package.name, read.size, read.sha256),), models=models,
        from_versions=from_versions, target_version=version, release=release, cves=cves, expires=expires,
        created=now if now is not None else datetime.now(UTC), note=note,
    )
    envelope = new_envelope(manifest, [key])
    atomic_write(out, envelope.to_json_bytes(), exclusive=True)
    return Attested(manifest=manifest, envelope=envelope, warnings=tuple(warnings))


def _refuse_unsafe_content(package: Path, scan: ScanResult | None) -> tuple[str, ...]:
    """Refuse to sign a package that carries the backdoor or unsafe members; return what was uninspectable."""
    if scan is None:
        return ()
    if scan.breach is not None:
        raise TrustError(f"refusing to sign {package.name}: {scan.breach.detail}", reason=scan.breach.reason)
    for unsafe in scan.unsafe:
        raise TrustError(f"refusing to sign {package.name}: member {unsafe.name!r} is a {unsafe.kind.value}",
                         reason=unsafe.reason)
    for finding in scan.findings:
        where = finding.member or "the package"
        raise TrustError(f"refusing to sign {package.name}: it still carries the backdoor ({finding.kind} "
                         f"{finding.text!r} in {where})", reason=Reason.BACKDOOR_PRESENT)
    if scan.corrupt is not None:
        raise TrustError(f"refusing to sign {package.name}: {scan.corrupt}", reason=Reason.ARCHIVE_CORRUPT)
    return scan.uninspectable


def sign_manifest(path: Path, key: SigningKey, *, package: Path | None = None,
                  limits: ArchiveLimits | None = None) -> tuple[Envelope, bool]:
    """Add ``key``'s signature to the manifest at ``path``; returns (envelope, whether it changed)."""
    envelope = parse_envelope(read_bounded(path, MAX_ENVELOPE_BYTES, "manifest"))
    manifest = parse_manifest(envelope.payload)
    if package is not None:
        _recheck(manifest, Path(package), limits)
    if any(s.keyid == key.keyid for s in envelope.signatures):
        return envelope, False  # a key counts once: a second signature would add nothing
    signed = sign_envelope(envelope, key)
    atomic_write(path, signed.to_json_bytes())
    return signed, True


def _recheck(manifest: Manifest, package: Path, limits: ArchiveLimits | None) -> None:
    artifact = manifest.artifact(package.name)
    if artifact is None:
        raise TrustError(f"{package.name} is not described by this manifest", reason=Reason.PACKAGE_MISMATCH)
    try:
        read = read_package(package, declared_size=artifact.size, limits=limits)
    except OSError as exc:
        raise UsageError(f"{package}: cannot read the package: {exc.strerror or exc}") from exc
    if read.oversized:
        raise TrustError(f"{package.name} is larger than recorded", reason=Reason.ARTIFACT_OVERSIZED)
    if read.size < artifact.size:
        raise TrustError(f"{package.name} is shorter than recorded", reason=Reason.ARTIFACT_TRUNCATED)
    if read.sha256 != artifact.sha256:
        raise TrustError(f"{package.name} has SHA-256 {read.sha256}, the manifest records {artifact.sha256}",
                         reason=Reason.ARTIFACT_TAMPERED)
    _refuse_unsafe_content(package, read.scan)
