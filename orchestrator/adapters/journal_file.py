"""What a file given as a journal is, read before SQLite touches it, and SQLite's errors in our words.

SQLite opens almost anything: an empty file becomes an empty database (and a writable connection then
writes a schema into it), and a file shorter than its header says is only "malformed". These are told
apart here, from the header alone, so a read-only command can refuse them without writing a byte:
missing, empty, not SQLite (``not-a-journal``, exit 2) and truncated (``journal-truncated``, exit 8).
``sqlite_error`` is the one table from SQLite's error names to ours (locked 6, full 9, corrupt 8).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from orchestrator.errors import JournalCorrupt, JournalError, JournalLocked, JournalWriteFailed

SQLITE_MAGIC = b"SQLite format 3\x00"

NOT_A_JOURNAL: dict[str, tuple[str, str]] = {  # state -> (what the file is, reason code)
    "missing": ("does not exist", "journal-missing"),
    "empty": ("is empty (0 bytes)", "journal-empty"),
    "not-sqlite": ("is not an SQLite database", "not-a-journal"),
    "no-tables": ("is an SQLite database with no journal in it", "journal-no-schema"),
    "other-tables": ("is an SQLite database but not a cmspatch journal (no events table)",
                     "not-a-journal"),
}


def file_state(path: Path) -> str:
    """"missing", "empty", "not-sqlite" or "sqlite", from the file's header (nothing written). A file
    shorter than its header says was truncated: SQLite would only call it malformed."""
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
            size = os.fstat(handle.fileno()).st_size
    except FileNotFoundError:
        return "missing"
    except IsADirectoryError:
        return "not-sqlite"
    except OSError as exc:
        raise JournalCorrupt(f"journal {path} cannot be read: {exc.strerror or exc}",
                             reason="journal-unreadable") from exc
    if not header:
        return "empty"
    if not header.startswith(SQLITE_MAGIC):
        return "not-sqlite"
    expected = max(header_size(header), len(header), 100)  # no SQLite file is shorter than its header
    if size < expected:
        raise JournalCorrupt(f"journal {path} is {size} bytes but its header says {expected}: the "
                             "file was truncated; restore it, with its -wal and anchors, from a copy",
                             reason="journal-truncated")
    return "sqlite"


def header_size(header: bytes) -> int:
    """The database size the SQLite header states (page size x page count), 0 when it states none: the
    count is valid only when the change counter matches "version-valid-for" (sqlite.org/fileformat)."""
    if len(header) < 100:
        return 0
    page = int.from_bytes(header[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(header[28:32], "big")
    return page * pages if pages and header[24:28] == header[92:96] else 0


def sqlite_error(path: Path, exc: sqlite3.Error, doing: str, *, writing: bool) -> JournalError:
    """The one translation of SQLite's errors into ours, by SQLite's own error name."""
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    text = str(exc)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        return JournalLocked(f"{doing}: another process kept the journal's database locked ({text})",
                             reason="journal-locked")
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return JournalWriteFailed(f"{doing}: the disk is full; nothing was half-written: free space, then "
                                  "`cmspatch run --resume`", reason="disk-full")
    if name.startswith("SQLITE_READONLY"):
        return JournalWriteFailed(f"{doing}: the journal cannot be written ({text})",
                                  reason="journal-read-only")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text:
        return JournalCorrupt(f"{doing}: journal {path} is damaged ({text}): restore it, with its -wal and "
                              "anchors, from a copy", reason="journal-corrupt")
    if writing:
        return JournalWriteFailed(f"{doing}: {text}", reason="journal-write")
    return JournalCorrupt(f"{doing}: journal {path} cannot be read ({text})", reason="journal-unreadable")
