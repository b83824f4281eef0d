"""Decompressing a package's streams with every byte counted: the adapter half of ``trust.limits``.

Every decompression the package walk does goes through ``Inflate``: gzip, bzip2 and xz streams (one after
another when concatenated, NUL padding between them skipped) and deflate / bzip2 zip members. It pulls
the compressed input itself, one chunk at a time, so it knows exactly how many compressed bytes each
output byte cost; each output byte is charged to the package's ``Budget`` and the stream's ratio is
judged as it grows. The first limit crossed raises ``LimitCrossed`` from inside ``read`` -- no byte
beyond it is decompressed, whatever layer of tarfile or zip code is reading. Nothing is written to disk.

Zip members are not read with ``ZipFile.open``: zipfile trusts the sizes the archive declares and stops at
the declared size, so a member declaring 100 bytes whose data expands to a gigabyte would show the scan
100 bytes and hide the rest from it. ``zip_member`` reads the member's compressed bytes (bounded by its
compressed size) and inflates them here; ``Inflate.finish`` then refuses a member whose data does not end
where it says, or expands to another size or CRC than declared. ``check_zip_directory`` reads the
end-of-directory record before ``zipfile`` parses the directory (it keeps one record per entry), so a zip
claiming a million entries is refused before that. Left out: zip compression methods other than stored,
deflate and bzip2 (the walk reports them as uninspectable), and encrypted members (likewise).
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from orchestrator.domain.trust.limits import ArchiveLimits, LimitBreach

CHUNK = 1 << 20
# Compressed input is taken 64 KiB at a time: zlib hands back the input it did not use as a new bytes
# object on every call, so a 1 MiB input chunk of a highly compressed stream would be copied again for
# each 256 KiB of output (gigabytes of copying per gigabyte of zeros).
INPUT_CHUNK = 64 << 10
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bz2"}
ZIP_ENTRY_ALLOWANCE = 1024  # central-directory bytes per entry (46 fixed + name + extra + comment)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class LimitCrossed(Exception):
    """Raised from inside a read: the walk stops and reports ``breach``."""

    def __init__(self, breach: LimitBreach) -> None:
        super().__init__(breach.detail)
        self.breach = breach


def check(breach: LimitBreach | None) -> None:
    if breach is not None:
        raise LimitCrossed(breach)


@dataclass
class Budget:
    """The expanded bytes one package may produce, and how many it has so far."""

    limits: ArchiveLimits
    allowed: int
    expanded: int = 0

    @classmethod
    def for_package(cls, limits: ArchiveLimits, package_size: int) -> Budget:
        return cls(limits, limits.budget(package_size))

    def charge(self, n: int, where: str) -> None:
        self.expanded += n
        check(self.limits.expanded_breach(self.expanded, self.allowed, where))


def _decompressor(kind: str) -> zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor | None:
    if kind == "gz":
        return zlib.decompressobj(31)  # gzip header and trailer (CRC-32, size) checked by zlib
    if kind == "deflate":
        return zlib.decompressobj(-15)
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor(lzma.FORMAT_XZ)
    return None  # stored: the bytes as they are


class Inflate:
    """One compressed stream's output, each byte charged to the budget and to the stream's ratio.

    ``restart``: a gzip / bzip2 / xz file may hold several streams one after the other (``cat a.gz b.gz``
    is valid); the next starts where the previous ended. Bytes after the last that are not NUL padding
    are a corrupt archive (zlib, bz2 or lzma says so), never silently skipped.
    """

    def __init__(self, source: Readable, kind: str, budget: Budget, where: str, *,
                 restart: bool = True) -> None:
        self._source = source
        self._kind = kind
        self._budget = budget
        self._where = where
        self._restart = restart
        self._d = _decompressor(kind)
        self._pending = b""
        self.consumed = 0
        self.produced = 0
        self.crc = 0
        self.ended = False

    @property
    def used(self) -> int:
        """Compressed bytes the decompressor has taken in (not those pulled and still waiting)."""
        tail = getattr(self._d, "unconsumed_tail", b"")
        return self.consumed - len(self._pending) - len(tail)

    def _input(self, size: int = INPUT_CHUNK) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        data = self._source.read(size)
        self.consumed += len(data)
        return data

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        while not self.ended and size > 0:
            out = self._step(size)
            if out:
                self.produced += len(out)
                if not self._restart:  # a zip member: its CRC-32 is compared in finish()
                    self.crc = zlib.crc32(out, self.crc)
                if self._d is not None:  # stored bytes are the package's own: nothing expanded
                    self._budget.charge(len(out), self._where)
                    check(self._budget.limits.ratio_breach(self.produced, self.used, self._where))
                return out
        return b""

    def _step(self, size: int) -> bytes:
        d = self._d
        if d is None:
            data = self._input(size)  # stored: read what is asked, nothing to decompress
            self.ended = not data
            return data if len(data) <= size else self._keep(data, size)
        if d.eof:
            self._next_stream(d.unused_data)
            return b""
        if isinstance(d, bz2.BZ2Decompressor | lzma.LZMADecompressor):  # these keep unused input inside
            data = self._input() if d.needs_input else b""
            if d.needs_input and not data:
                raise EOFError(f"{self._where}: the compressed data ends early")
            return d.decompress(data, size)
        data = d.unconsumed_tail or self._input()  # zlib hands back the input it did not use yet
        if not data:
            raise EOFError(f"{self._where}: the compressed data ends early")
        return d.decompress(data, size)

    def _keep(self, data: bytes, size: int) -> bytes:
        self._pending = data[size:]
        return data[:size]

    def _next_stream(self, rest: bytes) -> None:
        if not self._restart:
            self.ended = True
            return
        rest = rest.lstrip(b"\0")
        while not rest:  # NUL padding after a stream is allowed, as gzip(1) allows it
            more = self._input()
            if not more:
                self.ended = True
                return
            rest = more.lstrip(b"\0")
        self._pending = rest
        self._d = _decompressor(self._kind)

    def finish(self, declared_size: int, declared_crc: int) -> None:
        """Read to the end; refuse (``zipfile.BadZipFile``) output that differs from what was declared."""
        while self.read(CHUNK):
            pass
        if self._d is not None and not self._d.eof:
            raise zipfile.BadZipFile(f"{self._where}: the compressed data ends early")
        if self.produced != declared_size:
            raise zipfile.BadZipFile(f"{self._where}: declares {declared_size} bytes, its data holds "
                                     f"{self.produced}")
        if self.crc != declared_crc:
            raise zipfile.BadZipFile(f"{self._where}: CRC-32 {self.crc:08x}, declared {declared_crc:08x}")


class Window:
    """At most ``size`` bytes of ``handle`` from ``start``, read in order (the handle may be shared)."""

    def __init__(self, handle: BinaryIO, start: int, size: int) -> None:
        self._handle = handle
        self._at = start
        self._left = size

    def read(self, size: int = -1, /) -> bytes:
        size = self._left if size is None or size < 0 else min(size, self._left)
        if size <= 0:
            return b""
        self._handle.seek(self._at)
        data = self._handle.read(size)
        self._at += len(data)
        self._left -= len(data)
        if not data:
            self._left = 0
        return data


def zip_member(handle: BinaryIO, info: zipfile.ZipInfo, budget: Budget, where: str) -> Inflate:
    """The member's data, inflated here (see the module docstring); its method must be in ZIP_METHODS."""
    handle.seek(info.header_offset)
    header = handle.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"{where}: no local header where the directory says")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_length + extra_length
    return Inflate(Window(handle, start, info.compress_size), ZIP_METHODS[info.compress_type], budget, where,
                   restart=False)


def check_zip_directory(handle: BinaryIO, limits: ArchiveLimits, members_so_far: int, where: str) -> None:
    """Refuse a zip whose end record announces more entries, or a larger directory, than the limit
    allows, before ``zipfile`` reads that directory into memory. A missing record is zipfile's to report."""
    end = handle.seek(0, 2)
    start = max(0, end - (0xFFFF + 22))
    handle.seek(start)
    tail = handle.read(end - start)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return
    entries, directory = struct.unpack("<HI", tail[at + 10:at + 16])
    locator = at - 20
    if (entries == 0xFFFF or directory == 0xFFFFFFFF) and locator >= 0 and tail[locator:locator + 4] == \
            b"PK\x06\x07":
        (record,) = struct.unpack("<Q", tail[locator + 8:locator + 16])
        handle.seek(record)
        zip64 = handle.read(56)
        if len(zip64) == 56 and zip64[:4] == b"PK\x06\x06":
            entries, directory = struct.unpack("<QQ", zip64[32:48])
    check(limits.members_breach(members_so_far + entries, where))
    if directory > limits.max_members * ZIP_ENTRY_ALLOWANCE:
        check(limits.members_breach(members_so_far + directory // ZIP_ENTRY_ALLOWANCE + 1,
                                    f"{where} (a {directory}-byte zip directory)"))
