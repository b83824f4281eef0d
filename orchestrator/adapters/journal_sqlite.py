"""The campaign journal: an append-only, hash-chained event log in SQLite (WAL).

Why SQLite: one file an engineer can copy and audit, transactions that survive ``kill -9`` (WAL with
``synchronous=FULL``: an event is on disk before ``append`` returns, so an event recorded before the
action it describes means "begun" to a resumed run), and several processes may append to one journal
(``BEGIN IMMEDIATE`` serialises them and the chain stays linear across campaigns).

Each record's hash covers the previous record's hash (``domain.events.chain_hash``): editing, deleting
or reordering any record breaks the chain from that record on, and ``verify()`` says where.

Two processes must never drive the same campaign: ``lock(campaign)`` takes an ``fcntl`` lock on a
side file, released by the kernel when the holder dies (so a ``kill -9`` never leaves a stale lock).

A cut tail (the last records deleted, the file truncated, a copy without its ``-wal``) leaves a valid,
shorter chain; the anchors beside the journal (``journal_anchors``) are what show it, and ``verify()``
checks them too. ``verify_or_raise()`` is the one check before trusting the journal's end: ``append``
calls it before a journal object's first append, so no path (a resume, the TUI, ``confirm``, a survey)
ever appends to a journal that does not verify or has lost its anchors; ``status`` and ``export`` call it
before they read.

Read-only opening (``read_only=True``: ``audit verify``, ``status``, ``export``) never creates, writes or
removes anything: an SQLite ``mode=ro`` connection, and ``immutable=1`` when there is no ``-wal`` (a
read-only connection would otherwise leave an empty ``-wal`` and ``-shm`` behind). One exception: a
``-wal`` without its ``-shm`` (a copy) cannot be read without SQLite rebuilding the ``-shm`` index, which
holds no record. A missing, empty or
schema-less file is not a journal (``NotAJournal``, exit 2), unless its anchors show it held records
(``JournalUnverified``, exit 7). Every SQLite error becomes one of ours in ``journal_file.sqlite_error``.

Deliberately left out: no UPDATE or DELETE statement exists in this module; current state is derived
from the events (``domain.status.project``), never stored.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.adapters.journal_anchors import (
    Anchor,
    AnchorFile,
    anchor_path,
    contradiction,
    create_anchor_file,
    is_anchored,
    read_anchors,
    write_anchor,
)
from orchestrator.adapters.journal_claims import campaign_lock_path
from orchestrator.adapters.journal_file import NOT_A_JOURNAL, file_state, sqlite_error
from orchestrator.domain.events import GENESIS_HASH, Event, EventKind, JournalRecord, chain_hash
from orchestrator.errors import (
    CampaignLocked,
    JournalCorrupt,
    JournalError,
    JournalLocked,
    JournalUnverified,
    JournalWriteFailed,
    NotAJournal,
    UsageError,
)

DEFAULT_JOURNAL = "cmspatch-journal.db"
LOCKED_WAIT = 10.0  # seconds a new journal's setup waits for another process that is creating it too

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
_ROWS = "SELECT seq, campaign, kind, device, at, data, prev_hash, hash FROM events"
_T = TypeVar("_T")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ChainReport:
    """Result of checking the chain and the anchors: ``broken_at`` is the first seq that does not verify;
    ``anchors`` is None when there is no anchor file (a cut tail cannot be detected)."""

    records: int
    head: str
    broken_at: int | None = None
    problem: str = ""
    anchor_file: str = ""
    anchors: int | None = None
    anchored_seq: int = 0  # the newest anchored record
    anchor_reason: str = ""
    anchor_problem: str = ""  # what the anchors (or an export given) say the journal lost
    anchors_unreadable: str = ""  # lines of the anchor file that are not anchors: ignored
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None and not self.anchor_problem

    @property
    def unanchored(self) -> int:
        """Records after the newest anchor: covered by the chain only, a cut among them goes unseen."""
        return max(self.records - self.anchored_seq, 0)

    @property
    def anchors_missing(self) -> bool:
        return self.anchors is None and self.records > 0

    @property
    def warning(self) -> str | None:
        """Why the anchors cannot vouch for the journal's end (``audit verify`` exits 1), if they cannot."""
        if self.anchors_missing:
            return f"no anchors ({self.anchor_file} is missing or unreadable): a cut tail cannot be detected"
        return self.anchors_unreadable or None

    @property
    def anchor_summary(self) -> str:
        if self.anchors is None:
            return ""
        tail = f"; {self.unanchored} record(s) after it are covered by the chain only" * bool(self.unanchored)
        return f"anchors: {self.anchors} in {self.anchor_file}, newest at record {self.anchored_seq}{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "head": self.head, "broken_at": self.broken_at,
                "problem": self.problem, "anchor_file": self.anchor_file, "anchors": self.anchors,
                "anchored_seq": self.anchored_seq, "unanchored": self.unanchored,
                "anchor_reason": self.anchor_reason, "anchor_problem": self.anchor_problem,
                "anchors_unreadable": self.anchors_unreadable,
                "warning": self.warning, "note": self.note}


class SqliteJournal:
    """Implements ``ports.Journal``. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._memory = str(path) == ":memory:"
        self.anchor_file: Path | None = None if self._memory else anchor_path(self.path)
        self._lock = threading.Lock()
        self._immutable = False
        self._verified = False  # by ``verify_or_raise`` before this object's first append
        if self._memory:
            self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            self._db.executescript(_SCHEMA)
        elif read_only:
            self._db = self._open_read_only()
        else:
            self._db = self._open_writable(create)

    # --- opening ----------------------------------------------------------------------------------

    def _refuse_if_anchored(self, what: str) -> None:
        """A file that is no journal, beside anchors naming records, is a journal that lost them."""
        assert self.anchor_file is not None
        newest = read_anchors(self.anchor_file).newest
        if newest is not None:
            raise JournalUnverified(
                f"journal {self.path} {what}, but its anchor file {self.anchor_file} names record "
                f"{newest.seq} ({newest.describe()}): the journal was truncated, zeroed, replaced or "
                "copied without its -wal; restore it (with its -wal) from a copy",
                reason="journal-cut")

    def _not_a_journal(self, state: str) -> NotAJournal:
        what, reason = NOT_A_JOURNAL[state]
        self._refuse_if_anchored(what)
        return NotAJournal(f"journal {self.path} {what}", reason=reason)

    def _open_read_only(self) -> sqlite3.Connection:
        state = file_state(self.path)
        if state != "sqlite":
            raise self._not_a_journal(state)
        # Without a -wal every committed record is in the main file, and immutable=1 keeps SQLite from
        # creating a -wal and -shm it could not remove again; with one, a plain read-only connection
        # reads it (a live campaign, or a crash the next writer recovers). A -wal that appears later (a
        # writer started) makes ``_query`` reconnect the plain way.
        self._immutable = not self._wal.exists()
        uri = f"{self.path.resolve().as_uri()}?mode=ro{'&immutable=1' if self._immutable else ''}"
        db = self._guard(lambda: sqlite3.connect(uri, uri=True, isolation_level=None,
                                                 check_same_thread=False, timeout=30.0), writing=False)
        try:
            tables = self._tables(db)
            if "events" not in tables:
                raise self._not_a_journal("other-tables" if tables else "no-tables")
            self._guard(lambda: db.execute("PRAGMA query_only=1"), writing=False)
        except BaseException:
            db.close()
            raise
        return db

    def _open_writable(self, create: bool) -> sqlite3.Connection:
        state = file_state(self.path)
        if state == "not-sqlite" or (state == "missing" and not create):
            raise self._not_a_journal(state)
        if state in ("missing", "empty"):
            self._refuse_if_anchored(NOT_A_JOURNAL[state][0])
        db = self._guard(lambda: sqlite3.connect(str(self.path), isolation_level=None,
                                                 check_same_thread=False, timeout=30.0), writing=True)
        try:
            tables = self._tables(db)
            if "events" not in tables:
                if tables:
                    raise self._not_a_journal("other-tables")
                self._refuse_if_anchored(NOT_A_JOURNAL["no-tables"][0])
                assert self.anchor_file is not None
                create_anchor_file(self.anchor_file)  # before the first record can exist
            self._setup(db)
        except BaseException:
            db.close()
            raise
        return db

    def _setup(self, db: sqlite3.Connection) -> None:
        """WAL, durable commits, the schema. Two processes creating one journal at the same moment: the
        second gets "database is locked" from the journal-mode switch, which the busy timeout does not
        cover; it waits (bounded) for the first, then says who is in the way."""
        deadline = time.monotonic() + LOCKED_WAIT
        pause = 0.01
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(_SCHEMA)
                return
            except sqlite3.Error as exc:
                error = sqlite_error(self.path, exc, "cannot set up the journal", writing=True)
                if not isinstance(error, JournalLocked) or time.monotonic() >= deadline:
                    raise error from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.25)

    def _tables(self, db: sqlite3.Connection) -> set[str]:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        rows = self._guard(lambda: db.execute(sql).fetchall(), writing=False)
        return {str(r[0]) for r in rows}

    def _guard(self, call: Callable[[], _T], *, writing: bool, doing: str = "") -> _T:
        try:
            return call()
        except sqlite3.Error as exc:
            verb = doing or ("cannot write to the journal" if writing else "cannot read the journal")
            raise sqlite_error(self.path, exc, verb, writing=writing) from exc

    @property
    def _wal(self) -> Path:
        return Path(f"{self.path}-wal")

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[Any]:
        with self._lock:
            if self._immutable and self._wal.exists():
                self._db.close()
                self._db = self._open_read_only()
            return self._guard(lambda: self._db.execute(sql, tuple(args)).fetchall(), writing=False)

    # --- the port ---------------------------------------------------------------------------------

    def append(self, event: Event) -> JournalRecord:
        if self.read_only:
            raise JournalWriteFailed(f"journal {self.path} was opened read-only", reason="journal-read-only")
        if not self._verified and not self._memory:
            self.verify_or_raise()  # never chain onto a journal that was altered or lost its tail
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
                try:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the connection is gone with the transaction: nothing was committed
                raise sqlite_error(self.path, exc, f"cannot append to {self.path}", writing=True) from exc
            record = JournalRecord(seq=seq, campaign=event.campaign, kind=event.kind, device=event.device,
                                   at=at, data=data, prev_hash=prev, hash=digest)
            if self.anchor_file is not None and is_anchored(event.kind, seq):
                write_anchor(self.anchor_file, record)  # after the commit: never names a record not kept
        return record

    def records(self, campaign: str | None = None, since_seq: int = 0) -> Iterator[JournalRecord]:
        sql = _ROWS + " WHERE seq > ?"
        args: tuple[object, ...] = (since_seq,)
        if campaign is not None:
            sql += " AND campaign = ?"
            args = (since_seq, campaign)
        for seq, camp, kind, device, at, data, prev, digest in self._query(sql + " ORDER BY seq", args):
            try:
                kind_value = EventKind(kind)
                payload = json.loads(data)
            except (ValueError, TypeError) as exc:
                raise JournalError(f"journal record {seq} is unreadable: {exc}",
                                   reason="journal-corrupt") from exc
            yield JournalRecord(seq=seq, campaign=camp, kind=kind_value, device=device, at=at, data=payload,
                                prev_hash=prev, hash=digest)

    def head(self) -> str:
        rows = self._query("SELECT hash FROM events ORDER BY seq DESC LIMIT 1")
        return str(rows[0][0]) if rows else GENESIS_HASH

    def campaigns(self) -> list[str]:
        rows = self._query("SELECT campaign, MIN(seq) FROM events GROUP BY campaign ORDER BY 2")
        return [str(r[0]) for r in rows]

    # --- integrity --------------------------------------------------------------------------------

    def verify(self, against: Sequence[Anchor] = ()) -> ChainReport:
        """Recompute every hash from the raw rows, report the first record that does not verify, and
        check the anchors (and any ``against`` claim, e.g. an export's chain head) against the records."""
        # The anchors first: one is written after its record commits, so every anchor read now names a
        # record the rows read next include, even while a campaign appends.
        anchors = read_anchors(self.anchor_file) if self.anchor_file is not None else None
        check = self._query("PRAGMA quick_check")
        if [tuple(r) for r in check] != [("ok",)]:
            detail = " ".join(" ".join(str(r[0]) for r in check[:3]).split())
            raise JournalCorrupt(f"journal {self.path} is damaged (SQLite's check: {detail[:240]}): restore "
                                 "it, with its -wal and anchors, from a copy", reason="journal-corrupt")
        rows = self._query(_ROWS + " ORDER BY seq")
        by_seq = {int(r[0]): str(r[7]) for r in rows}
        chain = _walk(rows)
        claims = [*(anchors.anchors if anchors else ()), *against]
        found = contradiction(claims, by_seq)
        return ChainReport(
            records=len(rows), head=chain.head, broken_at=chain.broken_at, problem=chain.problem,
            anchor_file=str(self.anchor_file or ""),
            anchors=len(anchors.anchors) if anchors is not None and anchors.exists and not (
                anchors.unreadable and not anchors.anchors) else None,
            anchors_unreadable=anchors.unreadable if anchors is not None else "",
            anchored_seq=_newest_seq(anchors),
            anchor_reason=found[0] if found else "", anchor_problem=found[1] if found else "",
            note=anchors.note if anchors is not None else "")

    def verify_or_raise(self, *, anchors_required: bool = True,
                        against: Sequence[Anchor] = ()) -> ChainReport:
        """The check before trusting the journal's end: ``JournalUnverified`` (exit 7) when the chain is
        broken or the anchors (or ``against``) name records the journal lost. With ``anchors_required``
        (before appending), a journal with records and no anchor file is refused too: without it a tail
        lost in a copy or a crash cannot be seen, and a resume would redo what the lost records said was
        done. Readers pass False and show ``report.warning`` instead."""
        report = self.verify(against)
        if report.broken_at is not None:
            raise JournalUnverified(f"journal {self.path}: hash chain broken at record {report.broken_at}: "
                                    f"{report.problem}", reason="chain-broken")
        if report.anchor_problem:
            raise JournalUnverified(f"journal {self.path} has lost records: {report.anchor_problem}",
                                    reason=report.anchor_reason)
        if anchors_required and report.anchors_missing:
            raise JournalUnverified(
                f"journal {self.path}: {report.warning}, so cmspatch will not append to it; copy the "
                f"anchor file with the journal, start a new journal (--journal NEW), or, for a journal "
                f"written before anchors existed, vouch for it: cmspatch audit adopt --by NAME",
                reason="anchors-missing")
        if anchors_required:
            self._verified = True
        return report

    def adopt(self, against: Sequence[Anchor] = ()) -> JournalRecord:
        """Start anchoring a journal written before anchors existed: its chain (and ``against``, an export's
        head) must verify; the newest record becomes the first anchor. What happened to the journal before
        that cannot be shown by anchors, only by an export made then: the caller journals who adopted it."""
        assert self.anchor_file is not None
        report = self.verify_or_raise(anchors_required=False, against=against)
        if report.anchors is not None:
            raise UsageError(f"journal {self.path} is already anchored ({report.anchor_summary})",
                             reason="already-anchored")
        newest = next(iter(self.records(since_seq=max(report.records - 1, 0))), None)
        if newest is None:
            raise UsageError(f"journal {self.path} holds no record to anchor", reason="empty-journal")
        create_anchor_file(self.anchor_file)
        write_anchor(self.anchor_file, newest)
        return newest

    @contextmanager
    def lock(self, campaign: str) -> Iterator[None]:
        """Exclusive hold on one campaign for this process; ``CampaignLocked`` if another holds it."""
        lock_path = campaign_lock_path(self.path, campaign)  # the one the claims take, so both exclude
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


@dataclass(frozen=True)
class _Chain:
    head: str
    broken_at: int | None = None
    problem: str = ""


def _walk(rows: Sequence[Any]) -> _Chain:
    prev, expected_seq = GENESIS_HASH, 1
    for seq, camp, kind, device, at, data, prev_hash, digest in rows:
        if seq != expected_seq:
            return _Chain(prev, seq, f"record {expected_seq} is missing")
        if prev_hash != prev:
            return _Chain(prev, seq, "does not link to the record before it")
        try:
            payload = json.loads(data)
        except ValueError:
            return _Chain(prev, seq, "payload is not JSON")
        if chain_hash(prev, seq, camp, kind, device, at, payload) != digest:
            return _Chain(prev, seq, "content does not match its hash")
        prev, expected_seq = digest, seq + 1
    return _Chain(prev)


def _newest_seq(anchors: AnchorFile | None) -> int:
    newest = anchors.newest if anchors is not None else None
    return newest.seq or 0 if newest is not None else 0
