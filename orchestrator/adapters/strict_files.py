"""Read an input file for ``domain.strict_load``: its size is known before a byte is read.

``os.stat`` first, so a regular file over the limit is refused unread (a "policy" that is a 4 GiB disk
image costs one system call); then at most ``limit + 1`` bytes are read, which also bounds whatever a
pipe or a device file would produce. A missing, unreadable or too-long path is a located
``StrictLoadError`` like every other refusal of the loader; nothing here parses.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

from orchestrator.domain.strict_load import (
    Limits,
    Loaded,
    StrictLoadError,
    check_size,
    load_json,
    load_yaml,
    load_yaml_document,
)


def read_capped(path: Path | str, limits: Limits) -> bytes:
    shown = str(path)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise StrictLoadError(shown, 0, 0, f"is a directory, not a {limits.what} file", "unreadable")
        if stat.S_ISREG(info.st_mode):
            check_size(info.st_size, shown, limits)
        with open(path, "rb") as handle:
            data = handle.read(limits.max_bytes + 1)
    except FileNotFoundError:
        raise StrictLoadError(shown, 0, 0, f"no such {limits.what} file", "missing") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise StrictLoadError(shown[:80] + "...", 0, 0, "the path is longer than the system allows",
                                  "path-too-long") from None
        raise StrictLoadError(shown, 0, 0, f"cannot read the {limits.what}: {exc.strerror or exc}",
                              "unreadable") from None
    check_size(len(data), shown, limits)
    return data


def load_yaml_file(path: Path | str, limits: Limits) -> Any:
    return load_yaml(read_capped(path, limits), str(path), limits)


def load_yaml_file_document(path: Path | str, limits: Limits) -> Loaded:
    return load_yaml_document(read_capped(path, limits), str(path), limits)


def load_json_file(path: Path | str, limits: Limits) -> Any:
    return load_json(read_capped(path, limits), str(path), limits)
