"""Read an inventory file from disk and hand its text to the pure parser.

The only I/O of the inventory: reading the file. Relative paths inside it (key files, known_hosts) are
resolved against the inventory's own directory, so the inventory works the same from any working
directory. An unreadable file is an ``InventoryError`` with a file-level problem, never a traceback.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from orchestrator.domain.inventory import Inventory, parse_inventory
from orchestrator.errors import InventoryError, Problem

MAX_BYTES = 16 * 1024 * 1024  # far beyond any hospital's fleet; protects against pointing at a disk image


def load_inventory(path: Path | str) -> Inventory:
    shown = str(path)
    absolute = os.path.abspath(os.fspath(path))
    try:
        with open(absolute, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except IsADirectoryError:
        raise InventoryError(
            [Problem(shown, 0, "cannot read the inventory: it is a directory", "unreadable")]
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InventoryError(
            [Problem(shown, 0, f"cannot read the inventory: {reason}", "unreadable")]
        ) from None
    if len(data) > MAX_BYTES:
        raise InventoryError(
            [Problem(shown, 0, f"the inventory is larger than {MAX_BYTES // 2**20} MiB", "too-large")]
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InventoryError([Problem(shown, line, "the inventory is not UTF-8 text", "not-utf8")]) from None
    inventory = parse_inventory(text, shown, base_dir=os.path.dirname(absolute))
    return dataclasses.replace(inventory, path=absolute)
