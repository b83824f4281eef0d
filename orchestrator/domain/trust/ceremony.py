"""The signing ceremony on record: who signed, when, with what kind of key, and whether they looked.

Each signature's record is a small JSON object signed by the same key (over ``CONTEXT + record``, so it
can never be mistaken for a DSSE signature, whose message starts ``DSSEv1``) and bound to the manifest by
the SHA-256 of the bytes the DSSE signature covers. A record that does not verify is shown as such and
ignored; a signature without one (older manifests) is "not recorded". Either way the record never
decides whether a signature counts: verification is unchanged, the record only tells the story.

    {"v": 1, "keyid": ..., "signed": "2026-12-01T20:00:00Z", "payload_sha256": ...,
     "custody": {"kind": "file", "encrypted": true} | {"kind": "pkcs11", "token": ..., "serial": ...,
                                                       "object": ...},
     "package_checked": true, "signer": {"role": ..., "owner": ...} | null}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.domain.trust.envelope import Signature
from orchestrator.domain.trust.policy import Custody
from orchestrator.domain.trust.signatures import PublicKey

CONTEXT = b"cmspatch-ceremony-v1\n"
MAX_RECORD_BYTES = 4096


def render_record(*, keyid: str, signed_bytes: bytes, when: datetime, custody: dict[str, Any],
                  package_checked: bool, signer: dict[str, str] | None) -> bytes:
    doc = {"v": 1, "keyid": keyid, "signed": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
           "payload_sha256": hashlib.sha256(signed_bytes).hexdigest(), "custody": custody,
           "package_checked": package_checked, "signer": signer}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def record_message(record: bytes) -> bytes:
    return CONTEXT + record


@dataclass(frozen=True)
class Ceremony:
    """What a verified record says (``note`` says why there is none when ``record`` is None)."""

    record: dict[str, Any] | None
    note: str

    def describe(self) -> str:
        if self.record is None:
            return self.note
        custody = self.record.get("custody") or {}
        if custody.get("kind") == "pkcs11":
            key = (f"token {custody.get('token')!s} serial {custody.get('serial')!s} "
                   f"object {custody.get('object')!s}")
        else:
            key = "encrypted key file" if custody.get("encrypted") else "UNENCRYPTED key file"
        signer = self.record.get("signer") or {}
        who = f"{signer.get('owner') or '?'} as {signer.get('role') or '?'}, " if signer else ""
        looked = ("package bytes checked" if self.record.get("package_checked")
                  else "SIGNED WITHOUT CHECKING THE PACKAGE BYTES")
        return f"{who}{self.record.get('signed')}, {key}, {looked}"

    def custody_disagreement(self, recorded: Custody) -> str | None:
        """How this signature's record of its key differs from the custody the policy records, if it
        does (a key the policy says is on a token that signed from a file is worth a question)."""
        if self.record is None or not isinstance(self.record.get("custody"), dict):
            return None
        said = Custody.from_record(self.record["custody"])
        if said.kind != recorded.kind:
            return f"BUT THE SIGNATURE SAYS IT WAS MADE WITH A {said.describe().upper()}"
        if said.kind == "pkcs11" and said.serial != recorded.serial:
            return f"BUT THE SIGNATURE SAYS TOKEN SERIAL {said.serial}"
        return None


def read_ceremony(signature: Signature, key: PublicKey, signed_bytes: bytes) -> Ceremony:
    """The record of ``signature``, if it verifies with ``key`` and belongs to these bytes."""
    if signature.ceremony is None or signature.ceremony_sig is None:
        return Ceremony(None, "ceremony not recorded (signed before records were kept)")
    if len(signature.ceremony) > MAX_RECORD_BYTES or not key.verify(record_message(signature.ceremony),
                                                                    signature.ceremony_sig):
        return Ceremony(None, "ceremony record does not verify with this key: ignored")
    try:
        record = json.loads(signature.ceremony.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Ceremony(None, "ceremony record is not JSON: ignored")
    if not isinstance(record, dict) or record.get("keyid") != key.keyid:
        return Ceremony(None, "ceremony record names another key: ignored")
    if record.get("payload_sha256") != hashlib.sha256(signed_bytes).hexdigest():
        return Ceremony(None, "ceremony record belongs to another manifest: ignored")
    return Ceremony(record, "")
