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
The hash runs on a thread of its own (``_Sha256Thread``: hashlib releases the GIL), so the scan and the
hash use two cores instead of taking turns on one; the scan's literal pre-filter (``trust.scan``) is then
what bounds a plain package's throughput.

The walk opens gzip / bzip2 / xz streams, tar and zip archives, and archives nested inside them up to
``ArchiveLimits.max_depth`` (a nested zip is spooled to memory, or a temporary file past 8 MiB, since zip
needs to seek; its bytes are already counted against the budget). Every regular member is scanned with
``StreamScanner``; every member's path and type is checked with ``member_problem``. What cannot be looked
into -- an unknown top-level format, encrypted zip members, unsupported zip methods -- is listed under
``uninspectable``; its raw bytes are still scanned. Nothing is extracted to disk.

Decompression bombs: every decompressed byte is counted (``archive_streams.Inflate``) against the limits
of ``trust.limits.ArchiveLimits`` -- expanded size (a multiple of the declared package size, capped),
expansion ratio, nesting depth, member count -- and the walk stops at the first one crossed; the scan
result carries that ``breach`` and the caller refuses with its reason code. ``bounded_tar`` gives the
same bounded reading to code that wants the members of an (already verified) package. Left out: RAR, 7z.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import queue
import stat
import tarfile
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from orchestrator.adapters.archive_streams import (
    ZIP_METHODS,
    Budget,
    Inflate,
    LimitCrossed,
    Readable,
    check,
    check_zip_directory,
    zip_member,
)
from orchestrator.domain.trust.limits import ArchiveLimits, LimitBreach, layers_breach
from orchestrator.domain.trust.scan import (
    Finding,
    MemberKind,
    ScanResult,
    StreamScanner,
    UnsafeMember,
    member_problem,
)
from orchestrator.errors import TrustError, UsageError

CHUNK = 1 << 20
HASH_BATCH = 1 << 20  # bytes handed to the hashing thread at once (smaller reads are joined)
QUEUED_CHUNKS = 4  # batches waiting for the hash at most: memory stays flat
SPOOL_IN_MEMORY = 8 << 20
MAX_TAR_METADATA = 1 << 20  # a PAX or GNU long-name header: tarfile reads it whole into memory
COMPRESSIONS = ("gz", "bz2", "xz")
_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError, ValueError,
            NotImplementedError)  # zipfile: "zip file version 24.3", a directory it cannot read


class _Sha256Thread:
    """SHA-256 computed on a thread of its own. hashlib releases the GIL while it hashes a buffer of more
    than 2 KiB, so the digest runs on one core while the walk and the scan (which hold the GIL) run on
    another: reading a package costs the slower of the two instead of their sum. Pieces smaller than
    ``HASH_BATCH`` are joined first (tarfile reads headers 512 bytes at a time); the queue is bounded, so
    memory stays at a few chunks whatever the package's size, and the reader waits when the hash lags."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED_CHUNKS)
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._result: str | None = None
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="package-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        update = self._digest.update
        while (data := self._queue.get()) is not None:
            if self._failed is None:
                try:
                    update(data)
                except BaseException as exc:  # keep taking from the queue: the reader must never block
                    self._failed = exc

    def update(self, data: bytes) -> None:
        if not self._pending and len(data) >= HASH_BATCH:
            self._queue.put(data)
            return
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= HASH_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._queue.put(b"".join(self._pending))
            self._pending, self._pending_size = [], 0

    def hexdigest(self) -> str:
        """The digest of everything given; the thread ends (nothing may be added afterwards)."""
        if self._result is None:
            self._flush()
            self.close()
            if self._failed is not None:
                raise RuntimeError("hashing the package failed") from self._failed
            self._result = self._digest.hexdigest()
        return self._result

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class HashingReader:
    """Hands out the file's bytes, hashing each (on ``_Sha256Thread``), and never more than ``limit``
    bytes in total. Use it as a context manager: leaving it ends the hashing thread."""

    def __init__(self, handle: BinaryIO, limit: int | None) -> None:
        self._handle = handle
        self.limit = limit
        self.count = 0
        self.digest = _Sha256Thread()
        self.finished = False

    def __enter__(self) -> HashingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.digest.close()

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
        if data:
            self.digest.update(data)
        return data

    def drain(self) -> None:
        """Hash the rest (up to the limit); afterwards the reader hands out nothing more."""
        while self.read(CHUNK):
            pass
        self.finished = True


class _Peekable:
    """A reader whose first bytes can be looked at before deciding how to open it."""

    def __init__(self, source: Readable) -> None:
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
    if info.filename.endswith("/"):  # ZipInfo.is_dir() raises IndexError on an empty name
        return MemberKind.DIRECTORY
    if stat.S_ISLNK(mode):
        return MemberKind.SYMLINK
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return MemberKind.DEVICE
    if stat.S_ISFIFO(mode):
        return MemberKind.FIFO
    return MemberKind.FILE


class _BoundedTarInfo(tarfile.TarInfo):
    """Refuses a metadata header (PAX, GNU long name) larger than ``MAX_TAR_METADATA`` before tarfile
    reads it into memory: zeros compressed a thousand times would otherwise be held whole."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        metadata = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                    tarfile.SOLARIS_XHDTYPE)
        if self.type in metadata and self.size > MAX_TAR_METADATA:
            raise tarfile.ReadError(f"a {self.size}-byte tar metadata header (at most {MAX_TAR_METADATA})")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


def _tar_stream(source: Readable) -> tarfile.TarFile:
    """A tar read in one pass from ``source`` (nothing seeks back), metadata headers bounded."""
    return tarfile.open(fileobj=source, mode="r|", bufsize=262144, tarinfo=_BoundedTarInfo)  # type: ignore[call-overload]


@dataclass
class _Walk:
    budget: Budget
    members: int = 0
    scanned: int = 0
    findings: list[Finding] = field(default_factory=list)
    unsafe: list[UnsafeMember] = field(default_factory=list)
    uninspectable: list[str] = field(default_factory=list)
    nested: list[str] = field(default_factory=list)
    corrupt: str | None = None
    breach: LimitBreach | None = None

    @property
    def limits(self) -> ArchiveLimits:
        return self.budget.limits

    def raw(self, source: Readable, label: str) -> None:
        scanner = StreamScanner(label)
        for chunk in iter(lambda: source.read(CHUNK), b""):
            scanner.feed(chunk)
        self.findings.extend(scanner.close())
        self.scanned += scanner.scanned

    def stream(self, source: Readable, label: str, depth: int, layers: int = 0) -> str:
        """Scan one stream of bytes, opening it if it is an archive; returns the format seen.

        ``depth`` counts the archives around ``source`` inside the package's own (0 for the package's own
        archive); ``layers`` the compression already taken off this stream."""
        peekable = _Peekable(source)
        kind = sniff(peekable.peek(512))
        where = label or "the package"
        if kind in COMPRESSIONS:
            check(layers_breach(layers + 1, where))
            inner = self.stream(Inflate(peekable, kind, self.budget, where), label, depth, layers + 1)
            return f"{inner}.{kind}" if inner in ("tar", "unknown") else kind
        if kind in ("tar", "zip"):
            check(self.limits.depth_breach(depth, where))
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
        with _tar_stream(source) as archive:
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
        try:
            with tarfile.open(fileobj=handle, mode="r:", tarinfo=_BoundedTarInfo) as archive:
                for member in archive:
                    self.member(member.name, _tar_kind(member), "")
                    if not member.isreg():
                        continue
                    spans.append((member.offset_data, member.offset_data + member.size, member.name))
                    content = archive.extractfile(member)
                    if content is not None and sniff(content.read(512)) in (*COMPRESSIONS, "zip", "tar"):
                        content.seek(0)
                        self.stream(content, member.name, 1)
        finally:
            for finding in raw_findings:  # name each finding after the member that holds it
                start, name = next(((s, n) for s, e, n in spans if s <= finding.offset < e),
                                   (0, "(tar header)"))
                self.findings.append(replace(finding, member=name, offset=finding.offset - start))

    def zip(self, handle: BinaryIO, label: str, depth: int) -> None:
        where = label or "the package"
        check_zip_directory(handle, self.limits, self.members, where)
        handle.seek(0)
        with zipfile.ZipFile(handle) as archive:
            infos = archive.infolist()
            check(self.limits.members_breach(self.members + len(infos), where))
            declared = sum(i.file_size for i in infos if i.compress_type != zipfile.ZIP_STORED)
            check(self.limits.expanded_breach(self.budget.expanded + declared, self.budget.allowed,
                                              f"{where} (its zip directory declares {declared} bytes)"))
            for info in infos:
                kind = _zip_kind(info)
                self.member(info.filename, kind, label)
                name = _join(label, info.filename)
                if kind is not MemberKind.FILE:
                    continue
                if info.flag_bits & 0x1:
                    self.uninspectable.append(f"{name}: encrypted zip member")
                    continue
                if info.compress_type not in ZIP_METHODS:
                    self.uninspectable.append(f"{name}: zip compression method {info.compress_type} "
                                              "is not supported")
                    continue
                content = zip_member(handle, info, self.budget, name)
                self.stream(content, name, depth + 1)
                content.finish(info.file_size, info.CRC)

    def member(self, name: str, kind: MemberKind, label: str) -> None:
        self.members += 1
        check(self.limits.members_breach(self.members, label or "the package"))
        problem = member_problem(name, kind)
        if problem is not None:
            self.unsafe.append(UnsafeMember(_join(label, name), kind, problem))

    def result(self, fmt: str) -> ScanResult:
        return ScanResult(format=fmt, members=self.members, bytes_scanned=self.scanned,
                          findings=tuple(self.findings), unsafe=tuple(self.unsafe),
                          uninspectable=tuple(self.uninspectable), corrupt=self.corrupt,
                          nested=tuple(self.nested), expanded=self.budget.expanded,
                          budget=self.budget.allowed, breach=self.breach)


def _join(label: str, name: str) -> str:
    return f"{label}!{name}" if label else name


@dataclass(frozen=True)
class PackageRead:
    size: int  # bytes read (at most the declared size + 1)
    sha256: str | None  # None when reading stopped at the limit: the file is larger than declared
    oversized: bool
    scan: ScanResult | None  # None when the content was not scanned
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)  # what bounded the scan


def read_package(path: Path, *, declared_size: int | None, scan: bool = True,
                 limits: ArchiveLimits | None = None) -> PackageRead:
    """Hash (and scan) ``path``, reading at most ``declared_size + 1`` bytes, expanding it at most as far
    as ``limits`` allow for its declared size (its size on disk when none is declared)."""
    limits = limits if limits is not None else ArchiveLimits()
    limit = None if declared_size is None else declared_size + 1
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        if declared_size is not None and stat.S_ISREG(info.st_mode) and info.st_size > declared_size:
            return PackageRead(size=info.st_size, sha256=None, oversized=True, scan=None, limits=limits)
        with HashingReader(handle, limit) as reader:
            result: ScanResult | None = None
            if scan:
                size = declared_size if declared_size is not None else info.st_size
                result = _scan(reader, handle, Budget.for_package(limits, size))
            reader.drain()
            if limit is not None and reader.count >= limit:
                return PackageRead(size=reader.count, sha256=None, oversized=True, scan=None, limits=limits)
            return PackageRead(size=reader.count, sha256=reader.digest.hexdigest(), oversized=False,
                               scan=result, limits=limits)


def _scan(reader: HashingReader, handle: BinaryIO, budget: Budget) -> ScanResult:
    walk = _Walk(budget)
    peekable = _Peekable(reader)
    kind = sniff(peekable.peek(512))
    fmt = kind
    try:
        if kind == "zip":
            # zip keeps its directory at the end: hash the whole file first, then walk the same handle.
            reader.drain()
            if reader.limit is not None and reader.count >= reader.limit:
                return walk.result(kind)  # oversized: the caller refuses it unscanned
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
    except LimitCrossed as crossed:
        walk.breach = crossed.breach
    except _CORRUPT as exc:
        walk.corrupt = f"{type(exc).__name__}: {exc}"
    if fmt.startswith("unknown"):
        walk.uninspectable.insert(0, "the package's format is not recognised (not tar, gzip, bzip2, xz, "
                                     "zip or ELF): its raw bytes were scanned; it may hide compressed data")
    return walk.result(fmt)


class PackageFilesError(UsageError):
    """The package's installed binaries could not be read back (not a trust decision: that was made)."""


@contextmanager
def bounded_tar(path: Path, limits: ArchiveLimits | None = None) -> Iterator[_CountedTar]:
    """The package at ``path`` as a tar read in one pass, decompressed under ``limits`` (for its size on
    disk): a limit crossed while the caller iterates raises ``TrustError`` with the limit's reason, an
    unreadable archive ``PackageFilesError``."""
    limits = limits if limits is not None else ArchiveLimits()
    try:
        with open(path, "rb") as handle:
            budget = Budget.for_package(limits, os.fstat(handle.fileno()).st_size)
            source = _Peekable(handle)
            layers = 0
            while (kind := sniff(source.peek(512))) in COMPRESSIONS:
                layers += 1
                check(layers_breach(layers, str(path)))
                source = _Peekable(Inflate(source, kind, budget, str(path)))
            with _tar_stream(source) as archive:
                yield _CountedTar(archive, limits, str(path))
    except LimitCrossed as crossed:
        raise TrustError(f"{path}: {crossed.breach.detail}", reason=crossed.breach.reason) from crossed
    except _CORRUPT as exc:
        raise PackageFilesError(f"{path}: cannot read the package ({exc})",
                                reason="package-unreadable") from exc


class _CountedTar:
    """Iterating counts the members against the limit; everything else is the TarFile's."""

    def __init__(self, archive: tarfile.TarFile, limits: ArchiveLimits, where: str) -> None:
        self._archive = archive
        self._limits = limits
        self._where = where

    def __iter__(self) -> Iterator[tarfile.TarInfo]:
        for count, member in enumerate(self._archive, start=1):
            check(self._limits.members_breach(count, self._where))
            yield member

    def extractfile(self, member: tarfile.TarInfo) -> BinaryIO | None:
        return self._archive.extractfile(member)  # type: ignore[return-value]


def package_expectations(path: Path, limits: ArchiveLimits | None = None
                         ) -> tuple[str | None, dict[str, str]]:
    """(VERSION, {installed path: SHA-256}) of a vendor package's ``bin/monitor`` and ``bin/update``."""
    wanted = {"bin/monitor": "/opt/cms/bin/monitor", "bin/update": "/opt/cms/bin/update"}
    version: str | None = None
    hashes: dict[str, str] = {}
    with bounded_tar(path, limits) as tar:
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
    if not hashes:
        raise PackageFilesError(f"{path}: no bin/monitor or bin/update in the package",
                                reason="package-unreadable")
    return version, hashes
