"""Recording a package as received and signing its manifest (``cmspatch package attest`` / ``sign``).

``attest`` hashes the package exactly as it arrived, scans it (a "fix" that still carries the backdoor
is not signed: nobody should be able to approve it by mistake), writes the manifest payload once and
signs it. ``sign`` adds one more signature to an existing envelope -- the second person of the
two-person rule -- without touching the payload bytes. It re-hashes the package first (``package=``, else
the file the manifest names beside the manifest) so the second signer checks the bytes (hash and content
scan) independently instead of trusting the first signer's word; signing without them
(``check_package=False``, the CLI's ``--without-package``) is possible but written into that
signature's ceremony record, so the verify report shows a rubber stamp for what it is.

Every signature carries a ceremony record (``domain/trust/ceremony.py``): when, the key's custody (file,
encrypted or not; token serial and label), whether the bytes were checked, and with ``signer=`` the name
and role the policy gives the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.adapters.package_reader import read_package
from orchestrator.adapters.trust_files import atomic_write, read_bounded
from orchestrator.domain.trust.ceremony import record_message, render_record
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
from orchestrator.domain.trust.signatures import Signer
from orchestrator.errors import TrustError, UsageError


def sign_envelope(envelope: Envelope, key: Signer, *, package_checked: bool = True,
                  signer: dict[str, str] | None = None, now: datetime | None = None) -> Envelope:
    """Add ``key``'s DSSE signature and its signed ceremony record."""
    message = envelope.signed_bytes()
    record = render_record(keyid=key.keyid, signed_bytes=message, when=now or datetime.now(UTC),
                           custody=key.custody(), package_checked=package_checked, signer=signer)
    return envelope.with_signature(Signature(keyid=key.keyid, sig=key.sign(message), ceremony=record,
                                             ceremony_sig=key.sign(record_message(record))))


def new_envelope(manifest: Manifest, keys: Sequence[Signer], *,
                 signer: dict[str, str] | None = None) -> Envelope:
    envelope = Envelope(PAYLOAD_TYPE, render_manifest(manifest))
    for key in keys:
        envelope = sign_envelope(envelope, key, signer=signer)
    return envelope


@dataclass(frozen=True)
class Attested:
    manifest: Manifest
    envelope: Envelope
    warnings: tuple[str, ...] = ()


def attest_package(package: Path, key: Signer, *, version: str, models: tuple[str, ...],
                   from_versions: tuple[str, ...], release: int, cves: tuple[str, ...], expires: datetime,
                   out: Path, note: str = "", scan: bool = True, now: datetime | None = None,
                   limits: ArchiveLimits | None = None, signer: dict[str, str] | None = None) -> Attested:
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
    envelope = new_envelope(manifest, [key], signer=signer)
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


def package_beside(path: Path, manifest: Manifest) -> Path:
    """The package a manifest describes, looked for in the manifest's own directory."""
    candidate = Path(path).parent / manifest.artifacts[0].name
    if not candidate.is_file():
        raise UsageError(f"{path}: the package {manifest.artifacts[0].name} is not beside the manifest; give "
                         "--package PKG so its bytes are checked before you sign, or --without-package to "
                         "sign without looking (recorded in your signature)", reason="package-needed")
    return candidate


def sign_manifest(path: Path, key: Signer, *, package: Path | None = None, check_package: bool = True,
                  limits: ArchiveLimits | None = None,
                  signer: dict[str, str] | None = None) -> tuple[Envelope, bool]:
    """Add ``key``'s signature to the manifest at ``path``; returns (envelope, whether it changed).

    The package bytes are re-checked first (``package``, else the one beside the manifest); only
    ``check_package=False`` skips that, and the signature's ceremony record says so."""
    if package is not None and not check_package:
        raise UsageError("--package and --without-package contradict each other")
    envelope = parse_envelope(read_bounded(path, MAX_ENVELOPE_BYTES, "manifest"))
    manifest = parse_manifest(envelope.payload)
    if check_package:
        _recheck(manifest, Path(package) if package is not None else package_beside(path, manifest), limits)
    if any(s.keyid == key.keyid for s in envelope.signatures):
        return envelope, False  # a key counts once: a second signature would add nothing
    signed = sign_envelope(envelope, key, package_checked=check_package, signer=signer)
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
