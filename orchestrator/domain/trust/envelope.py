"""The signed manifest's envelope: DSSE (in-toto's Dead Simple Signing Envelope), v1.

Why DSSE and not python-tuf: TUF solves a different problem -- a repository that publishes many targets
under a root of trust with online timestamp/snapshot roles and a client that refreshes them. Here one
hospital approves one package offline, two people sign one document, and a verifier on an isolated
network checks it; TUF's timestamp and snapshot roles would have nobody to run them, and its metadata
would have to be invented around a vendor who publishes nothing. DSSE is the signing layer in-toto and
Sigstore use: a tiny, specified format (payloadType + base64 payload + signatures over the PAE bytes)
that any language can verify, that can carry several independent signatures added one by one, and that
we implement in ~100 lines with ``cryptography``. The threshold and role rules that TUF would have
given us live in ``policy.py``, where they are explicit and small.

Signatures cover ``PAE(payloadType, payload)`` over the payload bytes exactly as stored: the payload is
never re-serialised, so JSON canonicalisation can never make two readers disagree about what was signed.

Each signature may carry a ceremony record (``ceremony``: who signed, when, with what kind of key,
whether the package bytes were checked; see ``ceremony.py``) and ``ceremony_sig``, the same key's
signature over that record. DSSE readers ignore the two extra fields, so the envelope stays DSSE and a
manifest signed before records were kept verifies as before (its signatures just have no record).

Deliberately left out: URL-safe base64 (DSSE allows it; we write and accept standard base64 only) and
envelopes larger than ``MAX_ENVELOPE_BYTES`` (a manifest is a few kilobytes).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from orchestrator.domain.strict_load import MANIFEST, StrictLoadError, load_json
from orchestrator.domain.trust.reasons import Reason
from orchestrator.errors import TrustError

PAYLOAD_TYPE = "application/vnd.cmspatch.manifest+json"
MAX_ENVELOPE_BYTES = 1 << 20
MAX_SIGNATURES = 64  # each known key's signature costs a verification; a manifest has two or three


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding: what every signature signs."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes
    ceremony: bytes | None = None  # the record's JSON bytes, exactly as signed
    ceremony_sig: bytes | None = None


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...] = ()

    def signed_bytes(self) -> bytes:
        return pae(self.payload_type, self.payload)

    def with_signature(self, signature: Signature) -> Envelope:
        return Envelope(self.payload_type, self.payload, (*self.signatures, signature))

    def to_json_bytes(self) -> bytes:
        doc = {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signatures": [_signature_doc(s) for s in self.signatures],
        }
        return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def _signature_doc(signature: Signature) -> dict[str, str]:
    doc = {"keyid": signature.keyid, "sig": base64.b64encode(signature.sig).decode("ascii")}
    if signature.ceremony is not None and signature.ceremony_sig is not None:
        doc["ceremony"] = base64.b64encode(signature.ceremony).decode("ascii")
        doc["ceremony_sig"] = base64.b64encode(signature.ceremony_sig).decode("ascii")
    return doc


def _refuse(message: str) -> TrustError:
    return TrustError(f"manifest: {message}", reason=Reason.MANIFEST_INVALID)


def load_json_object(data: bytes, what: str) -> dict[str, Any]:
    """Strict JSON object reader shared by the envelope and the payload (typed errors only): the one
    strict loader's rules (UTF-8, duplicate keys, depth, no NaN), refusals as manifest-invalid."""
    try:
        doc = load_json(data, what, MANIFEST)
    except StrictLoadError as exc:
        raise _refuse(f"{what} is not valid JSON: {exc.message} ({exc.reason})") from exc
    if not isinstance(doc, dict):
        raise _refuse(f"{what} must be a JSON object")
    return doc


def _b64(value: object, field: str) -> bytes:
    if not isinstance(value, str):
        raise _refuse(f"{field} must be a base64 string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise _refuse(f"{field} is not valid base64") from exc


def parse_envelope(data: bytes) -> Envelope:
    """Read a DSSE envelope; raises ``TrustError(reason="manifest-invalid")`` on anything else."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise _refuse(f"larger than {MAX_ENVELOPE_BYTES} bytes; not a manifest")
    doc = load_json_object(data, "the envelope")
    payload_type = doc.get("payloadType")
    if payload_type != PAYLOAD_TYPE:
        raise _refuse(f"payloadType must be {PAYLOAD_TYPE!r}, not {payload_type!r}")
    payload = _b64(doc.get("payload"), "payload")
    raw_sigs = doc.get("signatures", [])
    if not isinstance(raw_sigs, list) or len(raw_sigs) > MAX_SIGNATURES:
        raise _refuse(f"signatures must be a list of at most {MAX_SIGNATURES}")
    signatures: list[Signature] = []
    for index, raw in enumerate(raw_sigs):
        if not isinstance(raw, dict):
            raise _refuse(f"signatures[{index}] must be an object")
        keyid = raw.get("keyid")
        if not isinstance(keyid, str) or not keyid:
            raise _refuse(f"signatures[{index}].keyid must be a non-empty string")
        ceremony = ceremony_sig = None
        if "ceremony" in raw or "ceremony_sig" in raw:
            ceremony = _b64(raw.get("ceremony"), f"signatures[{index}].ceremony")
            ceremony_sig = _b64(raw.get("ceremony_sig"), f"signatures[{index}].ceremony_sig")
        signatures.append(Signature(keyid=keyid, sig=_b64(raw.get("sig"), f"signatures[{index}].sig"),
                                    ceremony=ceremony, ceremony_sig=ceremony_sig))
    return Envelope(payload_type=PAYLOAD_TYPE, payload=payload, signatures=tuple(signatures))
