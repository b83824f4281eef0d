"""Anchors and the journal's error translation, on real SQLite files: what is anchored, when, and which
error (hence exit code) each kind of damage gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.adapters.journal_anchors import Anchor, contradiction, read_anchors
from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.domain.events import Event, EventKind
from orchestrator.errors import ExitCode, JournalWriteFailed, exit_code_for


def _kinds(path: Path) -> list[str]:
    return [json.loads(line)["kind"] for line in Path(f"{path}.anchors").read_text().splitlines()]


def test_the_anchor_file_exists_before_the_first_record(tmp_path: Path) -> None:
    with SqliteJournal(tmp_path / "j.db"):
        assert Path(tmp_path / "j.db.anchors").read_bytes() == b""


def test_the_first_record_and_each_event_that_matters_are_anchored(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    kinds = [EventKind.LOG, EventKind.CAMPAIGN_CREATED, EventKind.STATE_CHANGED, EventKind.WAVE_FINISHED,
             EventKind.GATE_WAITING, EventKind.GATE_APPROVED, EventKind.VERDICT, EventKind.CAMPAIGN_HALTED,
             EventKind.CAMPAIGN_ABORTED, EventKind.CAMPAIGN_FINISHED, EventKind.LOG]
    with SqliteJournal(path) as journal:
        records = [journal.append(Event("c", kind, {"wave": 0})) for kind in kinds]
    anchored = [json.loads(line) for line in Path(f"{path}.anchors").read_text().splitlines()]
    assert [a["seq"] for a in anchored] == [1, 2, 4, 5, 6, 8, 9, 10]
    assert all(a["hash"] == records[a["seq"] - 1].hash and a["campaign"] == "c" for a in anchored)


def test_a_read_only_journal_never_anchors_nor_appends(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with SqliteJournal(path) as journal:
        journal.append(Event("c", EventKind.LOG, {}))
    before = Path(f"{path}.anchors").read_bytes()
    with SqliteJournal(path, read_only=True) as journal, pytest.raises(JournalWriteFailed):
        journal.append(Event("c", EventKind.CAMPAIGN_FINISHED, {}))
    assert Path(f"{path}.anchors").read_bytes() == before


def test_an_anchor_beyond_the_end_names_how_much_was_cut() -> None:
    found = contradiction([Anchor(3, "a" * 64, "x"), Anchor(9, "b" * 64, "x", "wave-finished", "c1")],
                          {1: "0" * 64, 2: "1" * 64})
    assert found is not None and found[0] == "journal-cut"
    assert "record 9 (wave-finished of campaign c1)" in found[1] and "at least 7 record(s)" in found[1]


def test_an_export_that_named_only_a_hash_must_find_it() -> None:
    assert contradiction([Anchor(None, "a" * 64, "export r.sig")], {1: "a" * 64}) is None
    found = contradiction([Anchor(None, "b" * 64, "export r.sig")], {1: "a" * 64})
    assert found is not None and found[0] == "anchor-mismatch"


def test_a_missing_anchor_file_is_not_a_problem_but_is_said(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with SqliteJournal(path) as journal:
        journal.append(Event("c", EventKind.LOG, {}))
    Path(f"{path}.anchors").unlink()
    with SqliteJournal(path, read_only=True) as journal:
        report = journal.verify()
    assert report.ok and report.anchors is None
    assert report.warning is not None and "cut tail cannot be detected" in report.warning
    assert not read_anchors(Path(f"{path}.anchors")).exists


def test_a_full_disk_is_a_write_failure_with_its_own_exit_code(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with SqliteJournal(path) as journal:
        journal.append(Event("c", EventKind.CAMPAIGN_CREATED, {}))
        pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
        journal._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own SQLITE_FULL, as on a full disk
        with pytest.raises(JournalWriteFailed) as caught:
            journal.append(Event("c", EventKind.CAMPAIGN_FINISHED, {"pad": "x" * 20000}))
        assert caught.value.reason == "disk-full"
        assert exit_code_for(caught.value) is ExitCode.JOURNAL_WRITE
    with SqliteJournal(path, read_only=True) as journal:
        report = journal.verify_or_raise()  # nothing half-written, nothing anchored that is not there
    assert report.records == 1 and _kinds(path) == ["campaign-created"]
