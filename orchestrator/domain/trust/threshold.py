"""Which signatures on an envelope count, why the others do not, and whether a threshold rule is met.

Like python-tuf's ``VerificationResult``, the answer is a value that says who signed, who counted and
what is missing, so the report, the TUI and the exports can show *why* a manifest is refused. A key
counts once however many times it signs; a revoked key never counts; an unknown key is ignored (and
named). When no rule is met, ``reason`` picks the most specific explanation: a revoked key the manifest
relied on, then an unknown key, then a signature that does not verify, then plain "not enough".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from orchestrator.domain.trust.ceremony import Ceremony, read_ceremony
from orchestrator.domain.trust.envelope import Envelope
from orchestrator.domain.trust.policy import Custody, ThresholdRule, TrustPolicy
from orchestrator.domain.trust.reasons import Reason


class SignatureStatus(StrEnum):
    COUNTED = "counted"
    DUPLICATE = "duplicate"
    UNKNOWN_KEY = "unknown-key"
    REVOKED = "revoked"
    INVALID = "invalid"


@dataclass(frozen=True)
class SignatureCheck:
    keyid: str
    status: SignatureStatus
    role: str | None = None
    owner: str = ""
    detail: str = ""
    ceremony: Ceremony | None = None  # the signer's record, read only when the signature verifies
    custody: Custody | None = None  # where the policy says the key is kept (None: not recorded)

    @property
    def counted(self) -> bool:
        return self.status is SignatureStatus.COUNTED

    def to_dict(self) -> dict[str, Any]:
        ceremony = self.ceremony
        return {"keyid": self.keyid, "role": self.role, "owner": self.owner, "status": self.status.value,
                "counted": self.counted, "detail": self.detail,
                "ceremony": ceremony.record if ceremony else None,
                "ceremony_note": ceremony.describe() if ceremony else "signature does not verify",
                "custody": self.custody.to_dict() if self.custody is not None else None,
                "custody_note": self.custody_note()}

    def custody_note(self) -> str:
        """Where the policy says the key is kept, and whether the signer's own record agrees."""
        if self.custody is None:
            return "custody not recorded in the policy"
        note = f"held in {self.custody.describe()} (policy)"
        disagreement = self.ceremony.custody_disagreement(self.custody) if self.ceremony else None
        return f"{note}; {disagreement}" if disagreement else note


@dataclass(frozen=True)
class ThresholdResult:
    checks: tuple[SignatureCheck, ...]
    satisfied_by: str | None  # name of the first rule met, None when none is
    missing: tuple[str, ...]  # per rule, what it still lacks (empty when satisfied)

    @property
    def satisfied(self) -> bool:
        return self.satisfied_by is not None

    @property
    def counted(self) -> tuple[SignatureCheck, ...]:
        return tuple(c for c in self.checks if c.counted)

    def reason(self) -> Reason | None:
        if self.satisfied:
            return None
        statuses = {c.status for c in self.checks}
        for status, reason in ((SignatureStatus.REVOKED, Reason.KEY_REVOKED),
                               (SignatureStatus.UNKNOWN_KEY, Reason.UNKNOWN_KEY),
                               (SignatureStatus.INVALID, Reason.SIGNATURE_INVALID)):
            if status in statuses:
                return reason
        return Reason.BELOW_THRESHOLD


def _check_one(envelope: Envelope, message: bytes, index: int, policy: TrustPolicy,
               seen: set[str]) -> SignatureCheck:
    signature = envelope.signatures[index]
    keyid = signature.keyid
    revocation = policy.revocation(keyid)
    trusted = policy.key(keyid)
    role = trusted.role if trusted else None
    owner = trusted.owner if trusted else ""
    custody = trusted.custody if trusted else None
    if revocation is not None:
        when = f" on {revocation.date}" if revocation.date else ""
        why = f": {revocation.reason}" if revocation.reason else ""
        return SignatureCheck(keyid, SignatureStatus.REVOKED, role, owner, f"key revoked{when}{why}",
                              custody=custody)
    if trusted is None:
        return SignatureCheck(keyid, SignatureStatus.UNKNOWN_KEY, None, "", "key not in the trust policy")
    if not trusted.key.verify(message, signature.sig):
        return SignatureCheck(keyid, SignatureStatus.INVALID, role, owner,
                              "signature does not verify over this manifest's bytes", custody=custody)
    ceremony = read_ceremony(signature, trusted.key, message)
    if keyid in seen:
        return SignatureCheck(keyid, SignatureStatus.DUPLICATE, role, owner,
                              "this key already signed; a key counts once", ceremony, custody)
    seen.add(keyid)
    return SignatureCheck(keyid, SignatureStatus.COUNTED, role, owner, f"valid {role} signature", ceremony,
                          custody)


def _shortfall(rule: ThresholdRule, have: Counter[str]) -> str | None:
    lacking = [f"{n - have[role]} more {role}" for role, n in rule.require if have[role] < n]
    if not lacking:
        return None
    return f"rule {rule.name!r} ({rule.describe()}) needs {' and '.join(lacking)} signature(s)"


def check_threshold(envelope: Envelope, policy: TrustPolicy) -> ThresholdResult:
    message = envelope.signed_bytes()
    seen: set[str] = set()
    checks = tuple(_check_one(envelope, message, i, policy, seen) for i in range(len(envelope.signatures)))
    have: Counter[str] = Counter(c.role for c in checks if c.counted and c.role is not None)
    missing: list[str] = []
    for rule in policy.rules:
        shortfall = _shortfall(rule, have)
        if shortfall is None:
            return ThresholdResult(checks=checks, satisfied_by=rule.name, missing=())
        missing.append(shortfall)
    return ThresholdResult(checks=checks, satisfied_by=None, missing=tuple(missing))
