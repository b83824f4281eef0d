"""Reading a package: SHA-256 of every byte, bounded by the declared size, and the content scan.

Reading stops at the declared size + 1 byte: an oversized or endless file is refused without being hashed
to the end, and a regular file whose size already exceeds the declaration is refused without being read
at all. Memory stays at a few chunks whatever the package's size.

Where the format allows, one pass feeds both the hash and the scan, so the bytes scanned are the bytes
hashed: compressed tars are streamed through ``tarfile`` (``r|`` mode) from the hashing reader; a plain
(uncompressed) tar has its raw bytes scanned in the hash pass -- members are stored verbatim, so that
scans every member, and the headers too (an indicator address in a member *name* is reported) -- and
its headers are read afterwards from the same handle for the member rules and nested archives, because
tarfile's stream mode copies every byte three or four times and cost more than the hash. A zip keeps its
directory at the end, so it is hashed first and walked second on the same open handle. (Whatever is
pushed is hashed again on the monitor by the engine, which closes the gap between reading and pushing.)

The walk opens gzip / bzip2 / xz streams, tar and zip archives, and one level of archives nested inside
them (a nested zip is spooled to memory, or a temporary file past 8 MiB, since zip needs to seek). Every
regular member is scanned with ``StreamScanner``; every member's path and type is checked with
``member_problem``. What cannot be looked into -- an unknown top-level format, encrypted zip members,
archives nested deeper than one level -- is listed under ``uninspectable``; its raw bytes are still
scanned. Nothing is extracted to disk. Left out: decompression-bomb limits (the monitor's own installer
unpacks the same bytes; a limit belongs with the engine's free-space check), RAR and 7z.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import stat
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Protocol

from orchestrator.domain.trust.scan import (
    Finding,
    MemberKind,
    ScanResult,
    StreamScanner,
    UnsafeMember,
    member_problem,
)
from orchestrator.errors import UsageError

CHUNK = 1 << 20
MAX_ARCHIVE_DEPTH = 1  # the package's own archive is depth 0; archives inside it are opened once more
SPOOL_IN_MEMORY = 8 << 20
_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, EOFError, zlib.error, lzma.LZMAError,
            OSError, ValueError)


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class HashingReader:
    """Hands out the file's bytes, hashing each, and never more than ``limit`` bytes in total."""

    def __init__(self, handle: BinaryIO, limit: int | None) -> None:
        self._handle = handle
        self.limit = limit
        self.count = 0
        self.digest = hashlib.sha256()
        self.finished = False

    def read(self, size: int = -1, /) -> bytes:
        if self.finished:
            return b""
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        if self.limit is not None:
            size = min(size, self.limit - self.count)
            if size <= 0:
                return b""
        data = self._handle.read(size)
        self.count += len(data)
        self.digest.update(data)
        return data

    def drain(self) -> None:
        """Hash the rest (up to the limit); afterwards the reader hands out nothing more."""
        while self.read(CHUNK):
            pass
        self.finished = True


class _Peekable:
    """A reader whose first bytes can be looked at before deciding how to open it."""

    def __init__(self, source: _Readable) -> None:
        self._source = source
        self._head = b""

    def peek(self, size: int) -> bytes:
        while len(self._head) < size:
            more = self._source.read(size - len(self._head))
            if not more:
                break
            self._head += more
        return self._head[:size]

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            if size is not None and 0 <= size < len(head):
                self._head = head[size:]
                return head[:size]
            return head
        return self._source.read(size)


def sniff(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head[257:262] == b"ustar":
        return "tar"
    if head.startswith(b"\x7fELF"):
        return "elf"
    return "unknown"


def _decompress(kind: str, source: _Peekable) -> _Readable:
    if kind == "gz":
        return gzip.GzipFile(fileobj=source, mode="rb")  # type: ignore[call-overload]
    if kind == "bz2":
        return bz2.BZ2File(source, mode="rb")  # type: ignore[call-overload]
    return lzma.LZMAFile(source, mode="rb")  # type: ignore[arg-type]


def _tar_kind(member: tarfile.TarInfo) -> MemberKind:
    if member.isreg():
        return MemberKind.FILE
    if member.isdir():
        return MemberKind.DIRECTORY
    if member.issym():
        return MemberKind.SYMLINK
    if member.islnk():
        return MemberKind.HARDLINK
    if member.ischr() or member.isblk():
        return MemberKind.DEVICE
    if member.isfifo():
        return MemberKind.FIFO
    return MemberKind.OTHER


def _zip_kind(info: zipfile.ZipInfo) -> MemberKind:
    mode = info.external_attr >> 16
    if info.is_dir():
        return MemberKind.DIRECTORY
    if stat.S_ISLNK(mode):
        return MemberKind.SYMLINK
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return MemberKind.DEVICE
    if stat.S_ISFIFO(mode):
        return MemberKind.FIFO
    return MemberKind.FILE


@dataclass
class _Walk:
    members: int = 0
    scanned: int = 0
    findings: list[Finding] = field(default_factory=list)
    unsafe: list[UnsafeMember] = field(default_factory=list)
    uninspectable: list[str] = field(default_factory=list)
    nested: list[str] = field(default_factory=list)
    corrupt: str | None = None

    def raw(self, source: _Readable, label: str) -> None:
        scanner = StreamScanner(label)
        for chunk in iter(lambda: source.read(CHUNK), b""):
            scanner.feed(chunk)
        self.findings.extend(scanner.close())
        self.scanned += scanner.scanned

    def stream(self, source: _Readable, label: str, depth: int, layers: int = 0) -> str:
        """Scan one stream of bytes, opening it if it is an archive; returns the format seen."""
        peekable = _Peekable(source)
        kind = sniff(peekable.peek(512))
        if kind in ("gz", "bz2", "xz") and layers < 2:
            inner = self.stream(_decompress(kind, peekable), label, depth, layers + 1)
            return f"{inner}.{kind}" if inner in ("tar", "unknown") else kind
        if kind in ("tar", "zip") and depth > MAX_ARCHIVE_DEPTH:
            self.uninspectable.append(f"{label}: a {kind} archive nested more than one level deep")
            self.raw(peekable, label)
            return kind
        if kind == "tar":
            self.tar(peekable, label, depth)
            return kind
        if kind == "zip":
            self.nested.append(label)
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
                for chunk in iter(lambda: peekable.read(CHUNK), b""):
                    spool.write(chunk)
                spool.seek(0)
                self.zip(spool, label, depth)  # type: ignore[arg-type]
            return kind
        self.raw(peekable, label)
        return kind

    def tar(self, source: _Peekable, label: str, depth: int) -> None:
        if depth > 0:
            self.nested.append(label)
        with tarfile.open(fileobj=source, mode="r|", bufsize=262144) as archive:  # type: ignore[call-overload]
            for member in archive:
                self.member(member.name, _tar_kind(member), label)
                if member.isreg():
                    content = archive.extractfile(member)
                    if content is not None:
                        self.stream(content, _join(label, member.name), depth + 1)
        self.raw(source, _join(label, "(after the end of the archive)"))

    def tar_index(self, handle: BinaryIO, raw_findings: list[Finding]) -> None:
        """Member rules and nested archives of a plain tar whose raw bytes were already scanned."""
        spans: list[tuple[int, int, str]] = []
        with tarfile.open(fileobj=handle, mode="r:") as archive:
            for member in archive:
                self.member(member.name, _tar_kind(member), "")
                if not member.isreg():
                    continue
                spans.append((member.offset_data, member.offset_data + member.size, member.name))
                content = archive.extractfile(member)
                if content is not None and sniff(content.read(512)) in ("gz", "bz2", "xz", "zip", "tar"):
                    content.seek(0)
                    self.stream(content, member.name, 1)
        for finding in raw_findings:  # name each finding after the member that holds it
            start, name = next(((s, n) for s, e, n in spans if s <= finding.offset < e), (0, "(tar header)"))
            self.findings.append(replace(finding, member=name, offset=finding.offset - start))

    def zip(self, handle: BinaryIO, label: str, depth: int) -> None:
        with zipfile.ZipFile(handle) as archive:
            for info in archive.infolist():
                kind = _zip_kind(info)
                self.member(info.filename, kind, label)
                name = _join(label, info.filename)
                if kind is not MemberKind.FILE:
                    continue
                if info.flag_bits & 0x1:
                    self.uninspectable.append(f"{name}: encrypted zip member")
                    continue
                try:
                    content = archive.open(info)
                except NotImplementedError as exc:
                    self.uninspectable.append(f"{name}: {exc}")
                    continue
                with content:
                    self.stream(content, name, depth + 1)

    def member(self, name: str, kind: MemberKind, label: str) -> None:
        self.members += 1
        problem = member_problem(name, kind)
        if problem is not None:
            self.unsafe.append(UnsafeMember(_join(label, name), kind, problem))

    def result(self, fmt: str) -> ScanResult:
        return ScanResult(format=fmt, members=self.members, bytes_scanned=self.scanned,
                          findings=tuple(self.findings), unsafe=tuple(self.unsafe),
                          uninspectable=tuple(self.uninspectable), corrupt=self.corrupt,
                          nested=tuple(self.nested))


def _join(label: str, name: str) -> str:
    return f"{label}!{name}" if label else name


@dataclass(frozen=True)
class PackageRead:
    size: int  # bytes read (at most the declared size + 1)
    sha256: str | None  # None when reading stopped at the limit: the file is larger than declared
    oversized: bool
    scan: ScanResult | None  # None when the content was not scanned


def read_package(path: Path, *, declared_size: int | None, scan: bool = True) -> PackageRead:
    """Hash (and scan) ``path``, reading at most ``declared_size + 1`` bytes."""
    limit = None if declared_size is None else declared_size + 1
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        if declared_size is not None and stat.S_ISREG(info.st_mode) and info.st_size > declared_size:
            return PackageRead(size=info.st_size, sha256=None, oversized=True, scan=None)
        reader = HashingReader(handle, limit)
        result: ScanResult | None = None
        if scan:
            result = _scan(reader, handle)
        reader.drain()
        if limit is not None and reader.count >= limit:
            return PackageRead(size=reader.count, sha256=None, oversized=True, scan=None)
        return PackageRead(size=reader.count, sha256=reader.digest.hexdigest(), oversized=False, scan=result)


def _scan(reader: HashingReader, handle: BinaryIO) -> ScanResult:
    walk = _Walk()
    peekable = _Peekable(reader)
    kind = sniff(peekable.peek(512))
    fmt = kind
    try:
        if kind == "zip":
            # zip keeps its directory at the end: hash the whole file first, then walk the same handle.
            reader.drain()
            if reader.limit is not None and reader.count >= reader.limit:
                return walk.result(kind)  # oversized: the caller refuses it unscanned
            handle.seek(0)
            walk.zip(handle, "", 0)
        elif kind == "tar":
            # A plain tar holds each member's bytes verbatim and contiguously, so scanning the raw bytes in
            # the hash pass scans every member -- without tarfile's stream-mode copies, which cost more than
            # the hash. The headers are then read (seeking, same handle) for member rules and nested archives.
            raw = StreamScanner("")
            for chunk in iter(lambda: peekable.read(CHUNK), b""):
                raw.feed(chunk)
            found = raw.close()
            walk.scanned += raw.scanned
            reader.drain()
            if reader.limit is not None and reader.count >= reader.limit:
                return walk.result(kind)
            handle.seek(0)
            walk.tar_index(handle, found)
        else:
            fmt = walk.stream(peekable, "", 0)
    except _CORRUPT as exc:
        walk.corrupt = f"{type(exc).__name__}: {exc}"
    if fmt.startswith("unknown"):
        walk.uninspectable.insert(0, "the package's format is not recognised (not tar, gzip, bzip2, xz, "
                                     "zip or ELF): its raw bytes were scanned; it may hide compressed data")
    return walk.result(fmt)


class PackageFilesError(UsageError):
    """The package's installed binaries could not be read back (not a trust decision: that was made)."""


def package_expectations(path: Path) -> tuple[str | None, dict[str, str]]:
    """(VERSION, {installed path: SHA-256}) of a vendor package's ``bin/monitor`` and ``bin/update``."""
    wanted = {"bin/monitor": "/opt/cms/bin/monitor", "bin/update": "/opt/cms/bin/update"}
    version: str | None = None
    hashes: dict[str, str] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if not member.isfile() or (name not in wanted and name != "VERSION"):
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                if name == "VERSION":
                    version = handle.read(256).decode("utf-8", "replace").strip() or None
                else:
                    digest = hashlib.sha256()
                    while chunk := handle.read(1 << 20):
                        digest.update(chunk)
                    hashes[wanted[name]] = digest.hexdigest()
    except (OSError, tarfile.TarError) as exc:
        raise PackageFilesError(f"{path}: cannot read the package ({exc})",
                                reason="package-unreadable") from exc
    if not hashes:
        raise PackageFilesError(f"{path}: no bin/monitor or bin/update in the package",
                                reason="package-unreadable")
    return version, hashes
