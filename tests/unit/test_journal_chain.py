"""The SQLite journal: append-only, hash-chained, durable, one process per campaign."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.domain.events import GENESIS_HASH, Event, EventKind
from orchestrator.errors import CampaignLocked


def _fill(journal: SqliteJournal, n: int = 5, campaign: str = "c1") -> None:
    for i in range(n):
        journal.append(Event(campaign, EventKind.LOG, {"level": "info", "message": f"m{i}"}))


def test_each_record_links_to_the_one_before(tmp_path: Path) -> None:
    with SqliteJournal(tmp_path / "j.db") as journal:
        _fill(journal)
        records = list(journal.records())
    assert records[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]


def test_an_untouched_journal_verifies(tmp_path: Path) -> None:
    with SqliteJournal(tmp_path / "j.db") as journal:
        _fill(journal)
        report = journal.verify()
    assert report.ok and report.records == 5


def test_an_edited_record_breaks_the_chain_at_its_seq(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with SqliteJournal(path) as journal:
        _fill(journal)
    db = sqlite3.connect(path)
    db.execute("UPDATE events SET data = ? WHERE seq = 3", ('{"level":"info","message":"forged"}',))
    db.commit()
    db.close()
    with SqliteJournal(path) as journal:
        report = journal.verify()
    assert report.broken_at == 3


def test_a_deleted_record_breaks_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with SqliteJournal(path) as journal:
        _fill(journal)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM events WHERE seq = 2")
    db.commit()
    db.close()
    with SqliteJournal(path) as journal:
        assert journal.verify().broken_at == 3


def test_records_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with SqliteJournal(path) as journal:
        _fill(journal, 3)
        head = journal.head()
    with SqliteJournal(path) as journal:
        assert journal.head() == head
        assert len(list(journal.records("c1"))) == 3


def test_records_filter_by_campaign_and_seq(tmp_path: Path) -> None:
    with SqliteJournal(tmp_path / "j.db") as journal:
        _fill(journal, 2, "a")
        _fill(journal, 2, "b")
        assert [r.seq for r in journal.records("b")] == [3, 4]
        assert [r.seq for r in journal.records(since_seq=3)] == [4]
        assert journal.campaigns() == ["a", "b"]


def test_a_second_holder_of_a_campaign_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with SqliteJournal(path) as first, SqliteJournal(path) as second, first.lock("c1"):
        with pytest.raises(CampaignLocked), second.lock("c1"):
            pass
        with second.lock("other"):
            pass


def test_the_lock_is_released_when_its_holder_lets_go(tmp_path: Path) -> None:
    with SqliteJournal(tmp_path / "j.db") as journal:
        with journal.lock("c1"):
            pass
        with journal.lock("c1"):
            pass


def test_payload_tuples_read_back_as_they_were_hashed(tmp_path: Path) -> None:
    with SqliteJournal(tmp_path / "j.db") as journal:
        record = journal.append(Event("c", EventKind.WAVE_STARTED, {"wave": 0, "devices": ("a", "b")}))
        assert record.data == {"wave": 0, "devices": ["a", "b"]}
        assert journal.verify().ok
