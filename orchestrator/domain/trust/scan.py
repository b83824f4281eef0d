"""Looking for the backdoor inside a package: the YARA rule's mount string and the indicator addresses.

``StreamScanner`` is fed a file's bytes chunk by chunk (it never holds more than one chunk plus a small
overlap) and reports every match of ``MOUNT_PATTERN`` and ``INDICATOR_ADDRESS_PATTERN`` from
``orchestrator.domain.indicators`` -- the same regexes the device checks use, so a package and a monitor
are judged by one rule. Running ``re`` over a gigabyte is slow; both patterns begin with a fixed literal
(``mount -o nolock -t nfs `` and ``202.114.4.``), so we ``bytes.find`` the literal and run the regex only
at the hits. A match may straddle two chunks: the scanner keeps the last ``OVERLAP`` bytes and decides a
hit only once enough bytes follow it (or the file has ended), so nothing is missed and nothing is reported
twice. The archive walking (tar, gzip, zip) is the adapter's; member path rules are here, as values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator.domain.indicators import INDICATOR_ADDRESS_PATTERN, MOUNT_PATTERN
from orchestrator.domain.trust.limits import LimitBreach
from orchestrator.domain.trust.reasons import Reason

MOUNT_LITERAL = b"mount -o nolock -t nfs "
ADDRESS_LITERAL = b"202.114.4."
# Bytes a hit needs after its start to be decided: the longest mount string is 23 + 15 + 9 = 47 bytes,
# an address 10 + 3 plus one byte of look-ahead. One byte of look-behind is kept before every hit.
NEED_AFTER = 64
LOOKBEHIND = 1
MAX_FINDINGS = 20

_RULES: tuple[tuple[bytes, str, re.Pattern[bytes]], ...] = (
    (MOUNT_LITERAL, "mount-string", MOUNT_PATTERN),
    (ADDRESS_LITERAL, "indicator-address", INDICATOR_ADDRESS_PATTERN),
)


@dataclass(frozen=True)
class Finding:
    kind: str  # "mount-string" | "indicator-address"
    member: str  # path inside the package ("" for the package itself), nested as "outer.tar!inner/file"
    offset: int  # byte offset inside that member
    text: str  # what matched, as ASCII

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "member": self.member, "offset": self.offset, "text": self.text}


class StreamScanner:
    """Finds the backdoor patterns in one stream of bytes fed in chunks of any size."""

    def __init__(self, member: str = "", *, max_findings: int = MAX_FINDINGS) -> None:
        self.member = member
        self.findings: list[Finding] = []
        self.scanned = 0
        self._max = max_findings
        self._tail = b""
        self._decided = 0  # absolute offset: every hit starting before it has been decided

    def feed(self, chunk: bytes) -> None:
        n = len(chunk)
        if n == 0:
            return
        at = self.scanned  # absolute offset of chunk[0]
        self.scanned += n
        if n < 2 * NEED_AFTER:  # small pieces: join them to the tail, it costs nothing
            buf, base = self._tail + chunk, at - len(self._tail)
            decided_to = max(self._decided, base + len(buf) - NEED_AFTER + 1)
            self._search(buf, base, self._decided - base, decided_to - base)
        else:
            # Large chunks are never copied: first the junction (the old tail plus the chunk's first bytes)
            # for hits starting in the tail or at chunk[0], whose look-behind byte is the tail's last...
            junction, base = self._tail + chunk[:NEED_AFTER], at - len(self._tail)
            self._search(junction, base, self._decided - base, len(self._tail) + 1)
            # ...then the chunk itself for hits from chunk[1] on that have NEED_AFTER bytes after them.
            decided_to = at + n - NEED_AFTER + 1
            self._search(chunk, at, 1, n - NEED_AFTER + 1)
            buf, base = chunk, at
        self._decided = decided_to
        self._tail = buf[max(0, decided_to - base - LOOKBEHIND):]

    def close(self) -> list[Finding]:
        base = self.scanned - len(self._tail)
        self._search(self._tail, base, self._decided - base, len(self._tail))
        self._tail = b""
        return self.findings

    def _search(self, buf: bytes, base: int, lo: int, hi: int) -> None:
        """Decide every hit starting in buf[lo:hi]; buf holds NEED_AFTER bytes after each, or the end."""
        n = len(buf)
        for literal, kind, pattern in _RULES:
            end = min(n, hi + len(literal) - 1)
            i = buf.find(literal, lo, end) if hi > lo else -1
            while i != -1 and len(self.findings) < self._max:
                # match() sees buf[i - 1] for the look-behind; endpos never cuts a match short.
                m = pattern.match(buf, i, min(n, i + NEED_AFTER))
                if m is not None:
                    text = m.group(0).decode("ascii", "replace")
                    self.findings.append(Finding(kind, self.member, base + i, text))
                i = buf.find(literal, i + 1, end)


def scan_bytes(data: bytes, member: str = "") -> list[Finding]:
    """Scan a whole buffer at once (tests and small files)."""
    scanner = StreamScanner(member)
    scanner.feed(data)
    return scanner.close()


class MemberKind(StrEnum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    DEVICE = "device"
    FIFO = "fifo"
    OTHER = "other"


_DRIVE = re.compile(r"[A-Za-z]:")


def member_problem(name: str, kind: MemberKind) -> Reason | None:
    """Why an archive member must not reach a monitor's installer, or None when it may."""
    path = name.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        return Reason.MEMBER_ABSOLUTE_PATH
    if ".." in path.split("/"):
        return Reason.MEMBER_PATH_TRAVERSAL
    if kind in (MemberKind.SYMLINK, MemberKind.HARDLINK):
        return Reason.MEMBER_LINK
    if kind in (MemberKind.DEVICE, MemberKind.FIFO):
        return Reason.MEMBER_DEVICE
    return None


@dataclass(frozen=True)
class UnsafeMember:
    name: str
    kind: MemberKind
    reason: Reason

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind.value, "reason": self.reason.value}


@dataclass(frozen=True)
class ScanResult:
    """What the content scan saw. ``complete`` is False when some part could not be looked into, or when
    reading stopped at a limit (``breach``: what follows it was not looked at)."""

    format: str  # "tar.gz", "tar", "zip", "gzip", "elf", "unknown", ...
    members: int = 0
    bytes_scanned: int = 0
    findings: tuple[Finding, ...] = ()
    unsafe: tuple[UnsafeMember, ...] = ()
    uninspectable: tuple[str, ...] = ()  # what could not be looked into, and why
    corrupt: str | None = None
    nested: tuple[str, ...] = field(default=())  # nested archives that were opened
    expanded: int = 0  # bytes out of every decompressor, at every level
    budget: int | None = None  # the expanded bytes this package was allowed (ArchiveLimits.budget)
    breach: LimitBreach | None = None  # the limit that stopped reading

    @property
    def complete(self) -> bool:
        return not self.uninspectable and self.corrupt is None and self.breach is None

    @property
    def clean(self) -> bool:
        return not self.findings and not self.unsafe

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "members": self.members,
            "bytes_scanned": self.bytes_scanned,
            "complete": self.complete,
            "clean": self.clean,
            "findings": [f.to_dict() for f in self.findings],
            "unsafe_members": [u.to_dict() for u in self.unsafe],
            "uninspectable": list(self.uninspectable),
            "corrupt": self.corrupt,
            "nested": list(self.nested),
            "expanded_bytes": self.expanded,
            "expanded_budget_bytes": self.budget,
            "limit_exceeded": self.breach.to_dict() if self.breach is not None else None,
        }
