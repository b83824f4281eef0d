"""Decompression bombs built in milliseconds: gzip members of zeros, repeated, are a valid gzip file.

``zeros_gz(1 GiB)`` is about 1 MB and takes one compression of 16 MiB to make; wrapped in a tar header
it is a "package" whose one member expands to the given size. Nothing large is ever written or held.
"""

from __future__ import annotations

import functools
import gzip
import io
import struct
import tarfile
import zipfile
import zlib

PIECE = 16 << 20


@functools.lru_cache(maxsize=4)
def _zero_member(piece: int) -> bytes:
    return gzip.compress(bytes(piece), compresslevel=9, mtime=0)


def zeros_gz(total: int) -> bytes:
    """A gzip file (concatenated members) that expands to ``total`` zero bytes (a multiple of 512)."""
    whole, rest = divmod(total, PIECE)
    return _zero_member(PIECE) * whole + (gzip.compress(bytes(rest), mtime=0) if rest else b"")


def tar_gz_of_zeros(size: int, name: str = "payload/firmware.img") -> bytes:
    """A tar.gz holding one member of ``size`` zero bytes (``size`` a multiple of 512)."""
    info = tarfile.TarInfo(name)
    info.size = size
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    return gzip.compress(header, mtime=0) + zeros_gz(size + 1024)  # data, then the two end blocks


def zip_lying_about_size(data: bytes, declared: int, name: str = "bin/monitor") -> bytes:
    """A deflated zip member whose directory and local header declare ``declared`` bytes (with the CRC
    of that many leading bytes), while its compressed data expands to all of ``data``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    raw = bytearray(buf.getvalue())
    crc = zlib.crc32(data[:declared])
    for signature, crc_at, size_at in ((b"PK\x03\x04", 14, 22), (b"PK\x01\x02", 16, 24)):
        at = raw.find(signature)
        struct.pack_into("<I", raw, at + crc_at, crc)
        struct.pack_into("<I", raw, at + size_at, declared)
    return bytes(raw)
