"""Decoders for what a backdoored monitor sends to the indicator addresses (pure: bytes in, values out).

Three protocols (BRIEF.md section 2):

- CMS telemetry to 202.114.4.119:515-520: blocks of ``uint16 LE length, 0x05, type, payload``. Type
  0x3E is the patient record (the leaked PHI), 0x46 vitals, 0x47 end of frame. Public notes do not
  settle whether the length counts the whole block, the bytes after the length field, or the payload
  only, so the decoder tries the three framings and keeps the one that explains the most bytes.
- HL7 v2 over MLLP to 202.114.4.120:511: ``0x0B message 0x1C 0x0D``; a PID segment is patient data.
- ONC RPC (see ``oncrpc``): the hidden NFS mount of ``/pm``.

Patient data never leaves these functions: a ``Decoded`` holds only *that* something was seen, the
names of the fields present, and the SHA-256 of the raw bytes. Names, numbers and dates are not kept,
not even truncated. Arbitrary bytes never raise: what cannot be read comes back as kind "undecodable".
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from orchestrator.domain import oncrpc
from orchestrator.domain.indicators import BLOCK_FRAME_END, BLOCK_PATIENT_RECORD, BLOCK_VITALS

CMS_MARKER = 0x05
# The patient record's fields, in the order the protocol notes list them.
PATIENT_RECORD_FIELDS: tuple[str, ...] = (
    "department", "bed", "name", "patient_number", "admission_date", "height", "weight",
    "birth_date", "blood_type", "doctor",
)
BLOCK_NAMES = {BLOCK_PATIENT_RECORD: "patient-record", BLOCK_VITALS: "vitals", BLOCK_FRAME_END: "frame-end"}
# HL7 v2 PID field positions (PID-n) that identify a person; only the *names* are reported.
_PID_FIELDS = {3: "patient_identifier", 5: "patient_name", 6: "mothers_maiden_name", 7: "birth_date",
               8: "sex", 11: "address", 13: "phone", 19: "ssn"}
MLLP_START = b"\x0b"
MLLP_END = b"\x1c\x0d"


@dataclass(frozen=True)
class Decoded:
    """One recognised unit of traffic, without its content."""

    kind: str  # "cms-telemetry" | "hl7" | "rpc-mount" | "rpc" | "undecodable"
    summary: str
    sha256: str
    patient_record: bool = False
    field_names: tuple[str, ...] = ()
    details: dict[str, object] = field(default_factory=dict)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _undecodable(data: bytes, why: str) -> Decoded:
    return Decoded("undecodable", f"{len(data)} bytes not recognised ({why})", sha256(data))


# --- CMS telemetry blocks ------------------------------------------------------------------------

_FRAMINGS = {"whole-block": 0, "after-length": 2, "payload-only": 4}


def _walk_blocks(data: bytes, extra: int) -> tuple[list[tuple[int, bytes]], int]:
    blocks: list[tuple[int, bytes]] = []
    off = 0
    while off + 4 <= len(data):
        length = struct.unpack_from("<H", data, off)[0]
        total = length + extra
        if data[off + 2] != CMS_MARKER or total < 4 or off + total > len(data):
            break
        blocks.append((data[off + 3], data[off:off + total]))
        off += total
    return blocks, off


def split_cms_blocks(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """Return ((type, raw block) ..., bytes consumed) under the framing that explains the most bytes."""
    best: tuple[list[tuple[int, bytes]], int] = ([], 0)
    for extra in _FRAMINGS.values():
        blocks, used = _walk_blocks(data, extra)
        if used > best[1]:
            best = (blocks, used)
    return best


def decode_cms_block(block_type: int, raw: bytes) -> Decoded:
    name = BLOCK_NAMES.get(block_type, f"type-0x{block_type:02X}")
    if block_type == BLOCK_PATIENT_RECORD:
        return Decoded("cms-telemetry", "CMS patient record (0x3E) in clear text", sha256(raw),
                       patient_record=True, field_names=PATIENT_RECORD_FIELDS,
                       details={"block": name, "bytes": len(raw)})
    return Decoded("cms-telemetry", f"CMS telemetry block {name} (0x{block_type:02X})", sha256(raw),
                   details={"block": name, "bytes": len(raw)})


def decode_cms_stream(data: bytes) -> tuple[list[Decoded], int]:
    """Decode every complete block at the start of ``data``; return (decoded, bytes consumed)."""
    blocks, used = split_cms_blocks(data)
    return [decode_cms_block(t, raw) for t, raw in blocks], used


# --- HL7 v2 over MLLP ------------------------------------------------------------------------------

def split_mllp(data: bytes) -> tuple[list[bytes], int]:
    """Return (framed messages without the MLLP bytes, bytes consumed)."""
    messages: list[bytes] = []
    off = 0
    while True:
        start = data.find(MLLP_START, off)
        if start < 0:
            return messages, off
        end = data.find(MLLP_END, start + 1)
        if end < 0:
            return messages, off
        messages.append(data[start + 1:end])
        off = end + 2


def decode_hl7(message: bytes) -> Decoded:
    """Segment names and, for PID, which identifying fields are filled: never their values."""
    text = message.decode("latin-1")
    segments = [s for s in text.replace("\n", "\r").split("\r") if s]
    if not segments or not segments[0].startswith("MSH") or len(segments[0]) < 4:
        return _undecodable(message, "no MSH segment")
    sep = segments[0][3]
    names = tuple(dict.fromkeys(s[:3] for s in segments))
    fields: list[str] = []
    message_type = ""
    msh = segments[0].split(sep)
    if len(msh) > 8:
        message_type = msh[8].split("^")[0][:3] if msh[8][:3].isalpha() else ""
    for seg in segments:
        if not seg.startswith("PID"):
            continue
        parts = seg.split(sep)
        for pos, fname in _PID_FIELDS.items():
            if pos < len(parts) and parts[pos].strip("^~ ") and fname not in fields:
                fields.append(fname)
    has_pid = "PID" in names
    summary = "HL7 v2 message" + (f" {message_type}" if message_type else "") + f" segments {','.join(names)}"
    if has_pid:
        summary += " with a PID segment (patient data in clear)"
    return Decoded("hl7", summary, sha256(message), patient_record=has_pid, field_names=tuple(fields),
                   details={"segments": list(names), "message_type": message_type})


def decode_hl7_stream(data: bytes) -> tuple[list[Decoded], int]:
    messages, used = split_mllp(data)
    return [decode_hl7(m) for m in messages], used


# --- ONC RPC -----------------------------------------------------------------------------------------

def decode_rpc(message: bytes) -> tuple[Decoded, oncrpc.RpcCall | None]:
    try:
        call = oncrpc.decode_call(message)
    except oncrpc.RpcDecodeError as exc:
        return _undecodable(message, str(exc)), None
    kind = "rpc-mount" if call.is_mount_request else "rpc"
    details: dict[str, object] = {"program": call.program_name, "procedure": call.procedure}
    if call.mount_path is not None:
        details["mount_path"] = call.mount_path
    return Decoded(kind, call.describe(), sha256(message), details=details), call


# --- by port -----------------------------------------------------------------------------------------

def decode_payload(port_class: str, data: bytes) -> list[Decoded]:
    """Decode a whole captured payload (a reassembled TCP stream or one datagram) by port class.

    ``port_class``: "cms" (515-520), "hl7" (511), "nfs-tcp" (111/2049 over TCP, record-marked),
    "nfs-udp" (one datagram). Anything else, or leftovers, is reported "undecodable" with its hash.
    """
    out: list[Decoded] = []
    if not data:
        return out
    if port_class == "cms":
        out, used = decode_cms_stream(data)
    elif port_class == "hl7":
        out, used = decode_hl7_stream(data)
    elif port_class == "nfs-tcp":
        messages, rest = oncrpc.split_records(data)
        out = [decode_rpc(m)[0] for m in messages]
        used = len(data) - len(rest)
    elif port_class == "nfs-udp":
        out, used = [decode_rpc(data)[0]], len(data)
    else:
        used = 0
    if used < len(data):
        out.append(_undecodable(data[used:], f"{port_class} leftovers"))
    return out
