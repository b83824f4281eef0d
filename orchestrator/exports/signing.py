"""Detached signatures for exports: a DSSE envelope over a small statement about the exported file.

An auditor receives ``report.csv`` and ``report.csv.sig`` and must be able to tell, offline, that the file
is the one the hospital produced from journal chain head X for campaign Y, unaltered. The signature file
is a DSSE envelope (the format ``domain.trust`` already uses for manifests; same PAE, same key types)
whose payload is a JSON statement: the file's SHA-256 and size, the export format, the campaign id and
the chain head (``chain_head``, and since anchors ``chain_seq``, the head's record number). The head is
what lets ``cmspatch audit verify --against FILE.sig`` show that the journal still holds every record the
export was made from: a journal cut after the export no longer holds record ``chain_seq``. Signing the
statement instead of the whole file keeps the file untouched (a CMMS imports it as is) and lets the
verifier say *which* journal the export claims to come from.

Key loading, signing and verification primitives are the trust engineer's (``domain.trust.signatures``);
this module only defines the statement and the rules: a signature counts when its key is given
(``--key``) or listed, unrevoked, in the trust policy (``--policy``); one counting signature suffices
(an export is the hospital's own statement, not a package that needs two people).

Verification result reasons (stable): ``valid``, ``signature-malformed``, ``no-signature``, ``unknown-key``,
``key-revoked``, ``signature-invalid`` (the envelope was altered), ``export-tampered`` (the file was).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.domain.trust.envelope import Envelope, Signature, pae
from orchestrator.domain.trust.policy import Custody, TrustPolicy
from orchestrator.domain.trust.signatures import PublicKey, Signer

PAYLOAD_TYPE = "application/vnd.cmspatch.export-statement+json"
STATEMENT_TYPE = "cmspatch-export-statement/v1"
MAX_SIGNATURE_BYTES = 1 << 20


@dataclass(frozen=True)
class ExportVerification:
    valid: bool
    reason: str
    message: str
    statement: dict[str, Any] | None = None
    signers: tuple[str, ...] = ()  # key ids whose signature counted
    signer_roles: tuple[str, ...] = ()  # "role (owner)" of each counted key, from the trust policy

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "reason": self.reason,
            "message": self.message,
            "statement": self.statement,
            "signers": list(self.signers),
            "signer_roles": list(self.signer_roles),
        }


def statement(data: bytes, *, fmt: str, campaign: str, chain_head: str, name: str = "",
              chain_seq: int | None = None, signed_at: str | None = None,
              signed_by: str | None = None, custody: dict[str, Any] | None = None) -> dict[str, Any]:
    """The signed claim. ``signed_at``/``signed_by`` (when and who signed, a person's name) are inside it,
    so they are covered by the signature: an auditor reads who vouched for the export, not only a key id;
    ``custody`` is the signing key's own record of where it is kept (a file, encrypted or not, or a token
    with its label and serial), never a secret."""
    stmt: dict[str, Any] = {
        "_type": STATEMENT_TYPE,
        "subject": {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
        "format": fmt,
        "campaign": campaign,
        "chain_head": chain_head,
    }
    if chain_seq is not None:
        stmt["chain_seq"] = chain_seq
    if signed_at is not None:
        stmt["signed_at"] = signed_at
    if signed_by is not None:
        stmt["signed_by"] = signed_by
    if custody is not None:
        stmt["custody"] = custody
    return stmt


def sign_export(
    data: bytes, key: Signer, *, fmt: str, campaign: str, chain_head: str, name: str = "",
    chain_seq: int | None = None, signed_at: str | None = None, signed_by: str | None = None,
) -> bytes:
    """The detached signature file's bytes (a DSSE envelope, JSON)."""
    payload = json.dumps(
        statement(data, fmt=fmt, campaign=campaign, chain_head=chain_head, name=name, chain_seq=chain_seq,
                  signed_at=signed_at, signed_by=signed_by, custody=key.custody()),
        sort_keys=True,
        separators=(",", ":"),
    ).encode("utf-8")
    envelope = Envelope(PAYLOAD_TYPE, payload)
    return envelope.with_signature(Signature(key.keyid, key.sign(envelope.signed_bytes()))).to_json_bytes()


def _invalid(reason: str, message: str, stmt: dict[str, Any] | None = None) -> ExportVerification:
    return ExportVerification(False, reason, message, stmt)


def _parse(sig: bytes) -> Envelope | str:
    if len(sig) > MAX_SIGNATURE_BYTES:
        return "the signature file is too large to be an export signature"
    try:
        doc = json.loads(sig.decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("payloadType") != PAYLOAD_TYPE:
            return f"not a cmspatch export signature (payloadType must be {PAYLOAD_TYPE})"
        payload = base64.b64decode(str(doc["payload"]).encode("ascii"), validate=True)
        raw = doc.get("signatures")
        if not isinstance(raw, list):
            return "signatures must be a list"
        sigs = tuple(
            Signature(str(s["keyid"]), base64.b64decode(str(s["sig"]).encode("ascii"), validate=True))
            for s in raw
        )
    except (UnicodeError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        return f"the signature file is not a valid DSSE envelope ({type(exc).__name__})"
    return Envelope(PAYLOAD_TYPE, payload, sigs)


def signed_statement(sig: bytes) -> dict[str, Any] | None:
    """The statement inside an export signature file, *without* checking any signature (None if ``sig``
    is not one): what the export claims about the journal, for ``audit verify --against``. Whether the
    claim is the hospital's is ``verify_export``'s question."""
    envelope = _parse(sig)
    if isinstance(envelope, str):
        return None
    try:
        stmt = json.loads(envelope.payload.decode("utf-8"))
    except (UnicodeError, ValueError):
        return None
    return stmt if isinstance(stmt, dict) and stmt.get("_type") == STATEMENT_TYPE else None


def verify_export(
    data: bytes, sig: bytes, *, keys: Sequence[PublicKey] = (), policy: TrustPolicy | None = None
) -> ExportVerification:
    """Check a detached export signature against the given keys and/or trust policy."""
    envelope = _parse(sig)
    if isinstance(envelope, str):
        return _invalid("signature-malformed", envelope)
    if not envelope.signatures:
        return _invalid("no-signature", "the envelope carries no signature")
    trusted: dict[str, PublicKey] = {k.keyid: k for k in keys}
    revoked: set[str] = set()
    if policy is not None:
        trusted.update({k.keyid: k.key for k in policy.keys})
        revoked = {r.keyid for r in policy.revoked}
    message = pae(envelope.payload_type, envelope.payload)
    counted: list[str] = []
    problems: list[str] = []
    for signature in envelope.signatures:
        key = trusted.get(signature.keyid)
        if signature.keyid in revoked:
            problems.append("key-revoked")
        elif key is None:
            problems.append("unknown-key")
        elif not key.verify(message, signature.sig):
            problems.append("signature-invalid")
        elif signature.keyid not in counted:
            counted.append(signature.keyid)
    if not counted:
        reason = next(r for r in ("key-revoked", "signature-invalid", "unknown-key") if r in problems)
        text = {
            "key-revoked": "the export was signed by a revoked key",
            "signature-invalid": "the signature does not verify: the signature file was altered",
            "unknown-key": "the export is signed by a key that is neither given nor in the trust policy",
        }
        return _invalid(reason, text[reason])
    try:
        stmt = json.loads(envelope.payload.decode("utf-8"))
        subject = stmt["subject"]
        expected, size = str(subject["sha256"]), int(subject["size"])
    except (UnicodeError, ValueError, KeyError, TypeError) as exc:
        return _invalid("signature-malformed", f"the signed statement is unreadable ({type(exc).__name__})")
    if stmt.get("_type") != STATEMENT_TYPE:
        return _invalid("signature-malformed", f"the signed statement is not a {STATEMENT_TYPE}")
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected or len(data) != size:
        return _invalid(
            "export-tampered",
            f"the file's SHA-256 is {actual}, the signature is over {expected}: "
            "the export was altered after signing",
            stmt,
        )
    by_id = {k.keyid: k for k in policy.keys} if policy is not None else {}
    roles = tuple(f"{by_id[k].role}" + (f" ({by_id[k].owner})" if by_id[k].owner else "")
                  for k in counted if k in by_id)
    who = f", signed by {stmt['signed_by']}" if isinstance(stmt.get("signed_by"), str) else ""
    when = f" at {stmt['signed_at']}" if isinstance(stmt.get("signed_at"), str) else ""
    custody = stmt.get("custody")
    held = f" (key: {Custody.from_record(custody).describe()})" if isinstance(custody, dict) else ""
    return ExportVerification(
        True,
        "valid",
        f"valid signature by {', '.join(counted)}" + (f" [{'; '.join(roles)}]" if roles else "")
        + f"{who}{when} over campaign {stmt.get('campaign')} at chain head {stmt.get('chain_head')}{held}",
        stmt,
        tuple(counted),
        roles,
    )
