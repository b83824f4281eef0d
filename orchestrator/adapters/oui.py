"""MAC prefix -> vendor, from Wireshark's ``manuf`` table where it is installed (Debian: libwireshark-data,
which tshark brings). Read once, bounded; without the file every vendor is simply unknown.

The table's lines are ``PREFIX<TAB>short<TAB>long name``; a prefix is three bytes, or longer with a
``/28`` or ``/36`` mask (IEEE MA-M and MA-S blocks). Keys returned are the prefix's hex digits in
``aa:bb:cc`` form cut to the mask (``domain.discovery.vendor_of`` looks up the longest first).
"""

from __future__ import annotations

import functools
from pathlib import Path

MANUF_PATHS = (Path("/usr/share/wireshark/manuf"), Path("/etc/manuf"))
MAX_BYTES = 16 * 1024 * 1024


def _key(prefix: str, bits: int) -> str:
    digits = prefix.replace(":", "").replace("-", "").upper()[: bits // 4]
    return ":".join(digits[i:i + 2] for i in range(0, len(digits), 2))


@functools.cache
def vendor_table(path: Path | None = None) -> dict[str, str]:
    for candidate in (path,) if path else MANUF_PATHS:
        try:
            with candidate.open("rb") as fh:
                data = fh.read(MAX_BYTES)
        except OSError:
            continue
        table: dict[str, str] = {}
        for raw in data.decode("utf-8", "replace").splitlines():
            if not raw or raw.startswith("#"):
                continue
            parts = raw.split("\t")
            if len(parts) < 2:
                continue
            prefix, _, mask = parts[0].partition("/")
            bits = int(mask) if mask.isdigit() else 24
            name = (parts[2] if len(parts) > 2 and parts[2] else parts[1]).strip()
            table[_key(prefix, bits)] = name
        return table
    return {}
