"""``verify_package``: the one question asked before a byte moves to a monitor -- is this the package the
hospital approved, for this model, newer than what was accepted before, and free of the backdoor?

The order of the checks is deliberate. Cheap checks on small files come first (policy, envelope,
signatures and threshold, expiry, model, anti-rollback), so a refused manifest never costs a read of a
gigabyte. Then the package is read once, bounded by its declared size, for its hash and its content scan
(see ``package_reader``). A refusal is a value (``VerificationReport`` with a stable ``reason``) rather
than an exception, so the TUI and the exports can show everything that was checked; ``require()`` turns
it into ``TrustError`` for callers that just want to stop. Nothing is written unless the package is
accepted and ``record`` is true: then the release is recorded in the anti-rollback state, under a lock,
after re-checking against the state as it is at that moment.

What the report does not contain: private keys (there are none here), and file contents beyond the
matched indicator strings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.adapters.package_reader import PackageRead, read_package
from orchestrator.adapters.trust_files import default_state_path, read_bounded, read_state, update_state
from orchestrator.domain.trust.envelope import MAX_ENVELOPE_BYTES, parse_envelope
from orchestrator.domain.trust.limits import ArchiveLimits
from orchestrator.domain.trust.manifest import Artifact, Manifest, format_time, parse_manifest
from orchestrator.domain.trust.policy import MAX_POLICY_BYTES, parse_policy
from orchestrator.domain.trust.reasons import Reason, explain
from orchestrator.domain.trust.rollback import RollbackState
from orchestrator.domain.trust.scan import ScanResult
from orchestrator.domain.trust.threshold import SignatureCheck, ThresholdResult, check_threshold
from orchestrator.domain.trust.verified import VerifiedPackage
from orchestrator.errors import TrustError, UsageError


@dataclass(frozen=True)
class Problem:
    reason: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "explanation": explain(self.reason), "detail": self.detail}


@dataclass(frozen=True)
class VerificationReport:
    accepted: bool
    reason: str | None  # the first problem's reason code; None when accepted
    message: str  # one plain sentence
    package: Path
    manifest_path: Path
    policy_path: Path
    signers: tuple[SignatureCheck, ...] = ()  # every signature on the envelope, with its status
    counted: tuple[SignatureCheck, ...] = ()  # those that counted towards the threshold
    missing: tuple[str, ...] = ()  # what each threshold rule still lacks
    rule: str | None = None  # the threshold rule that was met
    scan: ScanResult | None = None
    problems: tuple[Problem, ...] = ()
    manifest: Manifest | None = None
    manifest_sha256: str | None = None
    artifact: Artifact | None = None
    actual_sha256: str | None = None
    actual_size: int | None = None
    model: str | None = None
    state: Path | None = None
    recorded: bool = False
    verified: VerifiedPackage | None = field(default=None, repr=False)
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)  # how far reading may expand the package

    def require(self) -> VerifiedPackage:
        """The verified package, or ``TrustError`` carrying this report's reason."""
        if not self.accepted or self.verified is None:
            raise TrustError(self.message, reason=self.reason or Reason.BELOW_THRESHOLD.value)
        return self.verified

    def to_dict(self) -> dict[str, Any]:
        manifest = self.manifest
        return {
            "accepted": self.accepted,
            "reason": self.reason,
            "message": self.message,
            "package": str(self.package),
            "manifest": str(self.manifest_path),
            "policy": str(self.policy_path),
            "model": self.model,
            "signatures": [c.to_dict() for c in self.signers],
            "counted": [c.keyid for c in self.counted],
            "threshold": {"met_by": self.rule, "missing": list(self.missing)},
            "problems": [p.to_dict() for p in self.problems],
            "manifest_sha256": self.manifest_sha256,
            "declared": manifest.to_dict() if manifest is not None else None,
            "artifact": self.artifact.to_dict() if self.artifact is not None else None,
            "actual": {"sha256": self.actual_sha256, "size": self.actual_size},
            "expires": format_time(manifest.expires) if manifest is not None else None,
            "scan": self.scan.to_dict() if self.scan is not None else None,
            "state": str(self.state) if self.state is not None else None,
            "recorded": self.recorded,
            "limits": self.limits.to_dict(),
        }


@dataclass
class _Run:
    """What has been learnt so far; turned into a report at whatever point the checks stop."""

    package: Path
    manifest_path: Path
    policy_path: Path
    model: str | None
    state: Path
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    problems: list[Problem] = field(default_factory=list)
    threshold: ThresholdResult | None = None
    manifest: Manifest | None = None
    manifest_sha256: str | None = None
    artifact: Artifact | None = None
    read: PackageRead | None = None

    def refuse(self, reason: str, detail: str) -> None:
        self.problems.append(Problem(reason, detail))

    def report(self, verified: VerifiedPackage | None = None, recorded: bool = False) -> VerificationReport:
        threshold = self.threshold
        if self.problems:
            first = self.problems[0]
            message = f"refused: {explain(first.reason)} ({first.detail})"
        else:
            message = f"accepted: {self.package.name} is the approved package"
            if self.manifest is not None:
                message += f" for {', '.join(self.manifest.models)}, release {self.manifest.release}"
        return VerificationReport(
            accepted=not self.problems and verified is not None,
            reason=self.problems[0].reason if self.problems else None,
            message=message,
            package=self.package, manifest_path=self.manifest_path, policy_path=self.policy_path,
            signers=threshold.checks if threshold else (),
            counted=threshold.counted if threshold else (),
            missing=threshold.missing if threshold else (),
            rule=threshold.satisfied_by if threshold else None,
            scan=self.read.scan if self.read else None,
            problems=tuple(self.problems), manifest=self.manifest, manifest_sha256=self.manifest_sha256,
            artifact=self.artifact,
            actual_sha256=self.read.sha256 if self.read else None,
            actual_size=self.read.size if self.read else None,
            model=self.model, state=self.state, recorded=recorded, verified=verified, limits=self.limits,
        )


def verify_package(package: Path, manifest: Path, policy: Path, *, model: str | None = None,
                   state: Path | None = None, accept_uninspectable: bool = False,
                   now: datetime | None = None, record: bool = True,
                   limits: ArchiveLimits | None = None) -> VerificationReport:
    """Check ``package`` against its signed ``manifest`` under the trust ``policy``.

    Missing or unreadable input files raise ``UsageError``; every trust refusal is returned as a report
    with ``accepted=False`` and a stable ``reason`` (call ``.require()`` to raise it as ``TrustError``).
    ``limits`` bound how far the package may expand while it is scanned (``ArchiveLimits()`` if None).
    """
    package, manifest, policy = Path(package), Path(manifest), Path(policy)
    run = _Run(package, manifest, policy, model, Path(state) if state is not None else default_state_path(),
               limits=limits if limits is not None else ArchiveLimits())
    moment = now if now is not None else datetime.now(UTC)
    if moment.tzinfo is None:  # a naive time is taken as UTC rather than failing on the comparison
        moment = moment.replace(tzinfo=UTC)
    if not package.exists():
        raise UsageError(f"{package}: no such package file")
    try:
        _check_signed(run, moment)
        if not run.problems:
            _check_package(run, accept_uninspectable)
    except TrustError as exc:
        run.refuse(exc.reason, exc.message)
    if run.problems:
        return run.report()
    verified = _verified(run)
    if record:
        try:
            update_state(run.state, lambda current: _record(current, verified, run, moment))
        except TrustError as exc:
            run.refuse(exc.reason, exc.message)
            return run.report()
    return run.report(verified, recorded=record)


def _check_signed(run: _Run, moment: datetime) -> None:
    policy_text = read_bounded(run.policy_path, MAX_POLICY_BYTES, "policy")
    trust_policy = parse_policy(policy_text, str(run.policy_path))
    envelope = parse_envelope(read_bounded(run.manifest_path, MAX_ENVELOPE_BYTES, "manifest"))
    run.manifest_sha256 = hashlib.sha256(envelope.payload).hexdigest()
    run.threshold = check_threshold(envelope, trust_policy)
    try:  # parsed even when unsigned, only so the report can say what it claims
        run.manifest = parse_manifest(envelope.payload)
    except TrustError:
        if run.threshold.satisfied:
            raise
    reason = run.threshold.reason()
    if reason is not None:
        not_counted = [f"{c.keyid[:16]}: {c.detail}" for c in run.threshold.checks if not c.counted]
        counted = f"{len(run.threshold.counted)} signature(s) counted"
        run.refuse(reason, "; ".join([*not_counted, counted, *run.threshold.missing]))
        return
    manifest = run.manifest
    assert manifest is not None  # parse_manifest raised otherwise
    if moment >= manifest.expires:
        run.refuse(Reason.MANIFEST_EXPIRED, f"expired {format_time(manifest.expires)}")
    if run.model is not None and run.model not in manifest.models:
        run.refuse(Reason.WRONG_MODEL, f"{run.model} is not among {', '.join(manifest.models)}")
    run.artifact = manifest.artifact(run.package.name)
    if run.artifact is not None:
        _check_rollback(run, read_state(run.state), run.artifact.sha256)


def _check_rollback(run: _Run, current: RollbackState, sha256: str) -> None:
    assert run.manifest is not None
    found = current.check(run.manifest, sha256)
    if found is not None:
        run.refuse(found[0], found[1])


def _check_package(run: _Run, accept_uninspectable: bool) -> None:
    manifest = run.manifest
    assert manifest is not None
    try:
        if run.artifact is None:
            # Not named in the manifest: accept a renamed file only if its bytes are an artifact's bytes.
            run.read = read_package(run.package, declared_size=max(a.size for a in manifest.artifacts),
                                    limits=run.limits)
            run.artifact = next((a for a in manifest.artifacts
                                 if a.sha256 == run.read.sha256 and a.size == run.read.size), None)
            if run.artifact is None:
                names = ", ".join(a.name for a in manifest.artifacts)
                detail = f"the manifest describes {names}, not {run.package.name}; no artifact has its bytes"
                run.refuse(Reason.PACKAGE_MISMATCH, detail)
                return
            _check_rollback(run, read_state(run.state), run.artifact.sha256)
            if run.problems:
                return
        else:
            run.read = read_package(run.package, declared_size=run.artifact.size, limits=run.limits)
    except OSError as exc:
        raise UsageError(f"{run.package}: cannot read the package: {exc.strerror or exc}") from exc
    read, artifact = run.read, run.artifact
    if read.oversized:
        run.refuse(Reason.ARTIFACT_OVERSIZED,
                   f"more than the declared {artifact.size} bytes; not read further")
    elif read.size < artifact.size:
        run.refuse(Reason.ARTIFACT_TRUNCATED, f"{read.size} bytes, {artifact.size} declared")
    elif read.sha256 != artifact.sha256:
        run.refuse(Reason.ARTIFACT_TAMPERED, f"SHA-256 {read.sha256}, recorded {artifact.sha256}")
    if run.problems or read.scan is None:
        return
    _judge_scan(run, read.scan, accept_uninspectable)


def _judge_scan(run: _Run, scan: ScanResult, accept_uninspectable: bool) -> None:
    if scan.breach is not None:  # first: whatever else is listed was seen before reading stopped
        run.refuse(scan.breach.reason, scan.breach.detail)
    for unsafe in scan.unsafe:
        run.refuse(unsafe.reason, f"member {unsafe.name!r} ({unsafe.kind.value})")
    for finding in scan.findings:
        where = finding.member or "the package"
        run.refuse(Reason.BACKDOOR_PRESENT,
                   f"{finding.kind} {finding.text!r} in {where} at byte {finding.offset}")
    if scan.corrupt is not None:
        run.refuse(Reason.ARCHIVE_CORRUPT, scan.corrupt)
    if scan.uninspectable and not accept_uninspectable:
        run.refuse(Reason.UNINSPECTABLE, "; ".join(scan.uninspectable)
                   + " (pass --accept-uninspectable to accept it knowingly)")


def _verified(run: _Run) -> VerifiedPackage:
    manifest, artifact, read, threshold = run.manifest, run.artifact, run.read, run.threshold
    assert manifest is not None and artifact is not None and read is not None and threshold is not None
    assert run.manifest_sha256 is not None and read.sha256 is not None
    return VerifiedPackage(
        package=run.package.resolve(), package_name=artifact.name, sha256=read.sha256, size=read.size,
        manifest_sha256=run.manifest_sha256, target_version=manifest.target_version, models=manifest.models,
        from_versions=manifest.from_versions, release=manifest.release, cves=manifest.cves,
        expires=manifest.expires, signer_keyids=tuple(c.keyid for c in threshold.counted),
        signer_roles=tuple(c.role or "" for c in threshold.counted), rule=threshold.satisfied_by or "",
        signer_owners=tuple(c.owner for c in threshold.counted),
        uninspected=read.scan.uninspectable if read.scan is not None else (),
    )


def _record(current: RollbackState, verified: VerifiedPackage, run: _Run, moment: datetime) -> RollbackState:
    assert run.manifest is not None
    found = current.check(run.manifest, verified.sha256)
    if found is not None:  # another process recorded a newer release since we looked
        raise TrustError(found[1], reason=found[0])
    return current.record(run.manifest, verified.sha256, format_time(moment))
