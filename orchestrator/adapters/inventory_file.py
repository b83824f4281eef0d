"""Read an inventory file from disk and hand its text to the pure parser.

The only I/O of the inventory: reading the file, through the strict loader's adapter (its size is looked
at before a byte is read: a 15 MB inventory is refused in milliseconds, not parsed for half a minute).
Relative paths inside it (key files, known_hosts) are resolved against the inventory's own directory, so
the inventory works the same from any working directory. An unreadable, oversized or non-UTF-8 file is
an ``InventoryError`` with a located problem, never a traceback.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from orchestrator.adapters.strict_files import read_capped
from orchestrator.domain.inventory import Inventory, parse_inventory
from orchestrator.domain.strict_load import INVENTORY, StrictLoadError, decode_text
from orchestrator.errors import InventoryError, Problem

MAX_BYTES = INVENTORY.max_bytes


def load_inventory(path: Path | str) -> Inventory:
    shown = str(path)
    absolute = os.path.abspath(os.fspath(path))
    try:
        text = decode_text(read_capped(absolute, INVENTORY), shown, INVENTORY)
    except StrictLoadError as exc:
        if exc.reason in ("missing", "unreadable"):  # one code for "could not read it", as before
            raise InventoryError([Problem(shown, 0, f"cannot read the inventory: {exc.detail}",
                                          "unreadable")]) from None
        raise InventoryError([Problem(shown, exc.line, exc.detail, exc.reason)]) from None
    inventory = parse_inventory(text, shown, base_dir=os.path.dirname(absolute))
    return dataclasses.replace(inventory, path=absolute)
