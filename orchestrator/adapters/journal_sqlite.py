"""The campaign journal: an append-only, hash-chained event log in SQLite (WAL).

Why SQLite: one file an engineer can copy and audit, transactions that survive ``kill -9`` (WAL with
``synchronous=FULL``: an event is on disk before ``append`` returns, so an event recorded before the
action it describes means "begun" to a resumed run), and several processes may append to one journal
(``BEGIN IMMEDIATE`` serialises them and the chain stays linear across campaigns).

Each record's hash covers the previous record's hash (``domain.events.chain_hash``): editing, deleting
or reordering any record breaks the chain from that record on, and ``verify()`` says where.

Two processes must never drive the same campaign: ``lock(campaign)`` takes an ``fcntl`` lock on a
side file, released by the kernel when the holder dies (so a ``kill -9`` never leaves a stale lock).

Deliberately left out: no UPDATE or DELETE statement exists in this module; current state is derived
from the events (``domain.status.project``), never stored.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.domain.events import GENESIS_HASH, Event, EventKind, JournalRecord, chain_hash
from orchestrator.errors import CampaignLocked, JournalError

DEFAULT_JOURNAL = "cmspatch-journal.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    campaign TEXT NOT NULL,
    kind TEXT NOT NULL,
    device TEXT,
    at TEXT NOT NULL,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_campaign ON events(campaign, seq);
"""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ChainReport:
    """Result of checking the chain: ``broken_at`` is the first seq that does not verify."""

    records: int
    head: str
    broken_at: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


class SqliteJournal:
    """Implements ``ports.Journal``. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise JournalError(f"journal {self.path} does not exist", reason="journal-missing")
        self._lock = threading.Lock()
        self._lock_files: dict[str, int] = {}
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                       timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"journal {self.path} is unreadable: {exc}",
                               reason="journal-unreadable") from exc

    def append(self, event: Event) -> JournalRecord:
        at = event.at or utc_now()
        data = json.loads(json.dumps(event.data))  # exactly what will be read back (tuples -> lists)
        payload = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                row = self._db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS_HASH)
                digest = chain_hash(prev, seq, event.campaign, event.kind.value, event.device, at, data)
                self._db.execute(
                    "INSERT INTO events (seq, campaign, kind, device, at, data, prev_hash, hash) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, event.campaign, event.kind.value, event.device, at, payload, prev, digest))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise JournalError(f"cannot append to {self.path}: {exc}", reason="journal-write") from exc
        return JournalRecord(seq=seq, campaign=event.campaign, kind=event.kind, device=event.device, at=at,
                             data=data, prev_hash=prev, hash=digest)

    def records(self, campaign: str | None = None, since_seq: int = 0) -> Iterator[JournalRecord]:
        sql = "SELECT seq, campaign, kind, device, at, data, prev_hash, hash FROM events WHERE seq > ?"
        args: tuple[object, ...] = (since_seq,)
        if campaign is not None:
            sql += " AND campaign = ?"
            args = (since_seq, campaign)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        for seq, camp, kind, device, at, data, prev, digest in rows:
            try:
                kind_value = EventKind(kind)
                payload = json.loads(data)
            except (ValueError, TypeError) as exc:
                raise JournalError(f"journal record {seq} is unreadable: {exc}",
                                   reason="journal-corrupt") from exc
            yield JournalRecord(seq=seq, campaign=camp, kind=kind_value, device=device, at=at, data=payload,
                                prev_hash=prev, hash=digest)

    def head(self) -> str:
        with self._lock:
            row = self._db.execute("SELECT hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return str(row[0]) if row else GENESIS_HASH

    def campaigns(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT campaign, MIN(seq) FROM events GROUP BY campaign ORDER BY 2").fetchall()
        return [str(r[0]) for r in rows]

    def verify(self) -> ChainReport:
        """Recompute every hash from the raw rows; report the first record that does not verify."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, campaign, kind, device, at, data, prev_hash, hash FROM events ORDER BY seq"
            ).fetchall()
        prev, expected_seq = GENESIS_HASH, 1
        for seq, camp, kind, device, at, data, prev_hash, digest in rows:
            if seq != expected_seq:
                return ChainReport(len(rows), prev, seq, f"record {expected_seq} is missing")
            if prev_hash != prev:
                return ChainReport(len(rows), prev, seq, "does not link to the record before it")
            try:
                payload = json.loads(data)
            except ValueError:
                return ChainReport(len(rows), prev, seq, "payload is not JSON")
            if chain_hash(prev, seq, camp, kind, device, at, payload) != digest:
                return ChainReport(len(rows), prev, seq, "content does not match its hash")
            prev, expected_seq = digest, seq + 1
        return ChainReport(len(rows), prev)

    @contextmanager
    def lock(self, campaign: str) -> Iterator[None]:
        """Exclusive hold on one campaign for this process; ``CampaignLocked`` if another holds it."""
        name = hashlib.sha256(campaign.encode()).hexdigest()[:16]
        lock_path = self.path.with_name(f"{self.path.name}.{name}.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise CampaignLocked(f"campaign {campaign} is being run by another cmspatch process",
                                 reason="campaign-locked") from exc
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SqliteJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
