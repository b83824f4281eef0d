"""The journal's end cannot be cut off unseen, and the commands that only look never write (issue 17
observations 5-7, issue 10 item 9). The real CLI (in-process, or a subprocess for campaigns) on journals
written through the real adapter, and real campaigns on the emulated fleet."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.cli.main import main
from orchestrator.domain.events import Event, EventKind, chain_hash
from orchestrator.domain.trust.signatures import generate_key
from orchestrator.errors import ExitCode, JournalUnverified
from tests.integration.engine_rig import rig
from tests.integration.test_cli_campaign import FAST, cmspatch
from tests.unit.test_export_journal import build_campaign

RECORDS = len(build_campaign(other_campaign_after=True))  # the last two: campaign-finished, another's log


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out.out, out.err)


def write_journal(path: Path) -> SqliteJournal:
    """A realistic finished campaign, appended through the real adapter; the caller closes it."""
    journal = SqliteJournal(path)
    for r in build_campaign(other_campaign_after=True):
        journal.append(Event(campaign=r.campaign, kind=r.kind, data=r.data, device=r.device, at=r.at))
    return journal


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    path = tmp_path / "j" / "journal.db"
    path.parent.mkdir()
    write_journal(path).close()
    return path


def tamper(path: Path, sql: str, *args: object) -> None:
    """What someone with sqlite3 does to the journal (closed after: a checkpoint empties the -wal)."""
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(sql, args)


def cut_tail(path: Path, keep: int) -> None:
    """Hide how a campaign ended."""
    tamper(path, "DELETE FROM events WHERE seq > ?", keep)


def snapshot(directory: Path, *, shm_bytes: bool = True) -> dict[str, tuple[str, int]]:
    """Every file beside the journal: its content hash and mtime. SQLite's shared-memory index (-shm)
    is rewritten by any reader of a live WAL journal by design; with ``shm_bytes=False`` only its
    presence counts."""
    out: dict[str, tuple[str, int]] = {}
    for f in sorted(directory.iterdir()):
        if f.name.endswith("-shm") and not shm_bytes:
            out[f.name] = ("present", 0)
        else:
            out[f.name] = (hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_mtime_ns)
    return out


READ_ONLY_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("audit", "verify"),
    ("audit", "verify", "--json"),
    ("status",),
    ("status", "--json"),
    ("status", "--campaign", build_campaign()[0].campaign),
)
CONFIRM = ("confirm", "bed01", "--technician", "x")


def export_to(directory: Path) -> tuple[str, ...]:
    return ("export", "--format", "json", "--out", str(directory / "r.json"))


def _read_only_runs(capsys: pytest.CaptureFixture[str], path: Path,
                    out_dir: Path) -> Iterator[tuple[str, int]]:
    for command in READ_ONLY_COMMANDS:
        yield " ".join(command), run(capsys, *command, "--journal", path).returncode
    yield "export", run(capsys, *export_to(out_dir), "--journal", path).returncode


# --- a cut tail ---------------------------------------------------------------------------------


def test_deleting_the_last_records_is_detected_by_audit_verify(
        journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "audit", "verify", "--journal", journal).returncode == ExitCode.OK
    cut_tail(journal, RECORDS - 5)
    result = run(capsys, "audit", "verify", "--journal", journal)
    assert result.returncode == ExitCode.JOURNAL, result
    assert "LOST RECORDS" in result.stderr and "[journal-cut]" in result.stderr
    assert f"the journal ends at record {RECORDS - 5}" in result.stderr


def test_status_and_export_refuse_a_journal_whose_tail_was_cut(
        journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut_tail(journal, RECORDS - 5)
    status = run(capsys, "status", "--journal", journal)
    assert status.returncode == ExitCode.JOURNAL and "[journal-cut]" in status.stderr
    export = run(capsys, "export", "--format", "csv", "--out", tmp_path / "r.csv", "--journal", journal)
    assert export.returncode == ExitCode.JOURNAL and "[journal-cut]" in export.stderr
    assert not (tmp_path / "r.csv").exists()


def forge(path: Path, kind: EventKind, data: dict[str, object]) -> None:
    """Append a record with a correct chain hash, by hand (cmspatch itself refuses to append to a cut
    journal): the chain verifies, only the anchors can tell."""
    with closing(sqlite3.connect(path)) as db, db:
        seq, prev = db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        at = "2026-11-24T23:59:00.000000Z"
        digest = chain_hash(prev, seq + 1, "c-forged", kind.value, None, at, data)
        db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (seq + 1, "c-forged", kind.value, None, at, json.dumps(data), prev, digest))


def test_a_tail_cut_and_written_again_is_detected(journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut_tail(journal, RECORDS - 5)
    for _ in range(5):
        forge(journal, EventKind.LOG, {"level": "info", "message": "all patched"})
    with SqliteJournal(journal, read_only=True) as j:
        assert j.verify().broken_at is None
    result = run(capsys, "audit", "verify", "--journal", journal)
    assert result.returncode == ExitCode.JOURNAL and "[anchor-mismatch]" in result.stderr


def test_no_writer_appends_to_a_journal_whose_tail_was_cut(
        journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut_tail(journal, RECORDS - 5)
    with SqliteJournal(journal) as j, pytest.raises(JournalUnverified) as caught:
        j.append(Event("c-new", EventKind.CAMPAIGN_CREATED, {}))
    assert caught.value.reason == "journal-cut"
    confirm = run(capsys, *CONFIRM, "--journal", journal)
    assert confirm.returncode == ExitCode.JOURNAL and "[journal-cut]" in confirm.stderr
    assert _record_count(journal) == RECORDS - 5


def test_no_writer_appends_to_a_journal_without_anchors(journal: Path) -> None:
    Path(f"{journal}.anchors").unlink()
    with SqliteJournal(journal) as j, pytest.raises(JournalUnverified) as caught:
        j.append(Event("c-new", EventKind.CAMPAIGN_CREATED, {}))
    assert caught.value.reason == "anchors-missing" and "--journal NEW" in caught.value.message
    assert _record_count(journal) == RECORDS


def test_a_journal_from_before_anchors_is_adopted_on_record_and_then_appended_to(
        journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path(f"{journal}.anchors").unlink()  # as a journal written before anchors existed
    refused = run(capsys, "audit", "adopt", "--journal", journal, "--by", "   ")
    assert refused.returncode == ExitCode.USAGE and not Path(f"{journal}.anchors").exists()
    adopted = run(capsys, "audit", "adopt", "--journal", journal, "--by",
                  "M. Bianchi (biomedical engineering)")
    assert adopted.returncode == 0 and f"anchored at record {RECORDS}" in adopted.stdout
    assert run(capsys, "audit", "verify", "--journal", journal).returncode == 0
    with SqliteJournal(journal) as j:
        j.append(Event("c-new", EventKind.CAMPAIGN_CREATED, {}))
        logged = [r.data for r in j.records() if r.data.get("adopted_by")]
    assert logged and logged[0]["adopted_by"] == "M. Bianchi (biomedical engineering)"
    again = run(capsys, "audit", "adopt", "--journal", journal, "--by", "someone")
    assert again.returncode == ExitCode.USAGE and "already anchored" in again.stderr


def test_a_journal_whose_chain_does_not_verify_is_not_adopted(
        journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path(f"{journal}.anchors").unlink()
    tamper(journal, "UPDATE events SET data = ? WHERE seq = 3", '{"level":"info","message":"forged"}')
    result = run(capsys, "audit", "adopt", "--journal", journal, "--by", "M. Bianchi")
    assert result.returncode == ExitCode.JOURNAL and "[chain-broken]" in result.stderr
    assert not Path(f"{journal}.anchors").exists()


def test_a_truncated_journal_file_is_detected(journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.truncate(journal, journal.stat().st_size // 2)
    result = run(capsys, "audit", "verify", "--journal", journal)
    assert result.returncode == ExitCode.JOURNAL_CORRUPT, result
    assert "[journal-truncated]" in result.stderr and "truncated" in result.stderr


@pytest.mark.parametrize("zeroed", ["to-zero-length", "with-zero-bytes"])
def test_a_zeroed_journal_is_detected_by_its_anchors(
        journal: Path, zeroed: str, capsys: pytest.CaptureFixture[str]) -> None:
    size = journal.stat().st_size
    journal.write_bytes(b"" if zeroed == "to-zero-length" else bytes(size))
    result = run(capsys, "audit", "verify", "--journal", journal)
    assert result.returncode == ExitCode.JOURNAL and "[journal-cut]" in result.stderr, result
    assert journal.stat().st_size == (0 if zeroed == "to-zero-length" else size)


def test_a_copy_without_its_wal_after_a_crash_is_detected(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live = tmp_path / "live" / "journal.db"
    live.parent.mkdir()
    writer = write_journal(live)  # still open, as a crashed run leaves it: every record is in the -wal
    try:
        assert Path(f"{live}-wal").stat().st_size > 0
        copy = tmp_path / "copy" / "journal.db"
        copy.parent.mkdir()
        shutil.copy(live, copy)
        shutil.copy(f"{live}.anchors", f"{copy}.anchors")
        result = run(capsys, "audit", "verify", "--journal", copy)
        assert result.returncode == ExitCode.JOURNAL and "[journal-cut]" in result.stderr, result
        assert "-wal" in result.stderr
        assert run(capsys, "audit", "verify", "--journal", live).returncode == ExitCode.OK
    finally:
        writer.close()


def test_a_journal_without_anchors_is_not_called_intact(
        journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path(f"{journal}.anchors").unlink()
    result = run(capsys, "audit", "verify", "--journal", journal)
    assert result.returncode == ExitCode.INCOMPLETE
    assert "no anchors" in result.stderr and "a cut tail cannot be detected" in result.stderr


def test_an_anchor_file_with_a_line_that_is_no_anchor_cannot_vouch(
        journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    anchors = Path(f"{journal}.anchors")
    lines = anchors.read_text().splitlines()
    anchors.write_text("\n".join([lines[0], "not an anchor", *lines[1:]]) + "\n")
    result = run(capsys, "audit", "verify", "--journal", journal)
    assert result.returncode == ExitCode.INCOMPLETE and "line(s) 2 are not anchors" in result.stderr


def test_a_torn_anchor_line_is_ignored_reported_and_the_next_one_starts_afresh(
        journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Path(f"{journal}.anchors").open("a") as f:
        f.write('{"anchored_at":"2026-11-24T20:00:00+00:00","at":"2026')  # power lost inside the write
    result = run(capsys, "audit", "verify", "--journal", journal)
    assert result.returncode == ExitCode.OK and "cut short by a crash" in result.stderr
    with SqliteJournal(journal) as j:
        head = j.append(Event("c-next", EventKind.CAMPAIGN_CREATED, {}))
    assert json.loads(Path(f"{journal}.anchors").read_text().splitlines()[-1])["hash"] == head.hash
    result = run(capsys, "audit", "verify", "--journal", journal)
    assert result.returncode == ExitCode.OK and f"newest at record {RECORDS + 1}" in result.stdout


# --- against an export ----------------------------------------------------------------------------


def test_audit_verify_against_a_signed_export_detects_a_cut_tail(
        journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "signer.pem"
    key.write_bytes(generate_key("ed25519").private_pem())
    out = tmp_path / "r.csv"
    assert run(capsys, "export", "--format", "csv", "--out", out, "--journal", journal,
               "--sign", key).returncode == ExitCode.OK
    statement = json.loads(base64.b64decode(json.loads(Path(f"{out}.sig").read_text())["payload"]))
    assert statement["chain_seq"] == RECORDS and len(statement["chain_head"]) == 64
    assert run(capsys, "audit", "verify", "--journal", journal, "--against", out).returncode == ExitCode.OK
    cut_tail(journal, RECORDS - 1)  # only the newest record, which no anchor names: the export does
    assert run(capsys, "audit", "verify", "--journal", journal).returncode == ExitCode.OK
    for claim in (out, Path(f"{out}.sig")):
        result = run(capsys, "audit", "verify", "--journal", journal, "--against", claim)
        assert result.returncode == ExitCode.JOURNAL and "[journal-cut]" in result.stderr, result
        assert f"export {out}.sig names record {RECORDS}" in result.stderr


def test_audit_verify_against_a_json_export_detects_a_rewritten_tail(
        journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    assert run(capsys, "export", "--format", "json", "--out", out, "--journal", journal).returncode == 0
    cut_tail(journal, RECORDS - 1)
    with SqliteJournal(journal) as j:
        j.append(Event("someone", EventKind.LOG, {"level": "info", "message": "forged"}))
    result = run(capsys, "audit", "verify", "--journal", journal, "--against", out)
    assert result.returncode == ExitCode.JOURNAL and "[anchor-mismatch]" in result.stderr


def test_audit_verify_against_a_file_without_a_chain_head_is_a_usage_error(
        journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    result = run(capsys, "audit", "verify", "--journal", journal, "--against", tmp_path / "notes.txt")
    assert result.returncode == ExitCode.USAGE and "[no-chain-head]" in result.stderr


# --- files that are no journal, and damaged ones ---------------------------------------------------


def test_a_zero_length_journal_is_an_error_and_stays_zero_length(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    for command in (*READ_ONLY_COMMANDS[::2], export_to(tmp_path)):
        result = run(capsys, *command, "--journal", path)
        assert result.returncode == ExitCode.USAGE and "[journal-empty]" in result.stderr, (command, result)
    assert path.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


def test_a_database_without_the_journal_table_is_not_a_journal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "other.db"
    tamper(path, "CREATE TABLE patients (name TEXT)")
    before = snapshot(tmp_path)
    for command in (*READ_ONLY_COMMANDS[::2], CONFIRM):
        result = run(capsys, *command, "--journal", path)
        assert result.returncode == ExitCode.USAGE and "[not-a-journal]" in result.stderr, (command, result)
    assert snapshot(tmp_path) == before


def test_a_file_that_is_not_a_database_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "inventory.yml"
    path.write_text("all:\n  hosts: {}\n")
    for command in (*READ_ONLY_COMMANDS[::2], export_to(tmp_path), CONFIRM):
        result = run(capsys, *command, "--journal", path)
        assert result.returncode == ExitCode.USAGE and "[not-a-journal]" in result.stderr, (command, result)
        assert "not an SQLite database" in result.stderr
    assert path.read_text() == "all:\n  hosts: {}\n"


def test_one_corrupt_page_in_the_middle_gives_the_journal_corrupt_code(
        journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = int.from_bytes(journal.read_bytes()[16:18], "big")
    pages = journal.stat().st_size // page
    with journal.open("r+b") as f:  # a leaf page of the events table, neither the first nor the last
        f.seek(page * (pages // 2) + 64)
        f.write(b"\xff" * (page // 2))
    for command in (*READ_ONLY_COMMANDS[::2], export_to(tmp_path)):
        result = run(capsys, *command, "--journal", journal)
        assert result.returncode == ExitCode.JOURNAL_CORRUPT, (command, result)
        assert "[journal-corrupt]" in result.stderr and "internal error" not in result.stderr


# --- read-only commands write nothing --------------------------------------------------------------


def test_read_only_commands_write_nothing_to_a_closed_journal(
        journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(journal.parent)
    assert sorted(before) == ["journal.db", "journal.db.anchors"]  # no -wal, no -shm: a clean close
    for command, code in _read_only_runs(capsys, journal, tmp_path):
        assert code == ExitCode.OK, command
        assert snapshot(journal.parent) == before, command


def test_read_only_commands_write_nothing_to_a_live_journal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live = tmp_path / "live" / "journal.db"
    live.parent.mkdir()
    writer = write_journal(live)  # a campaign still running: its records are in the -wal
    try:
        before = snapshot(live.parent, shm_bytes=False)
        assert f"{live.name}-wal" in before and f"{live.name}-shm" in before
        for command, code in _read_only_runs(capsys, live, tmp_path):
            assert code == ExitCode.OK, command
            assert snapshot(live.parent, shm_bytes=False) == before, command
    finally:
        writer.close()


def test_the_tui_watching_a_campaign_writes_nothing(
        journal: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def watch_once(session: Any) -> int:  # the app's poll, without a terminal
        seen.extend(r.seq for r in session.poll_journal(0))
        return 0

    monkeypatch.setattr("orchestrator.cli.tui._run_app", watch_once)
    before = snapshot(journal.parent)
    campaign = build_campaign()[0].campaign
    assert run(capsys, "tui", "--journal", journal, "--campaign", campaign).returncode == ExitCode.OK
    assert seen and snapshot(journal.parent) == before
    empty = journal.parent / "empty.db"
    empty.touch()
    result = run(capsys, "tui", "--journal", empty, "--campaign", campaign)
    assert result.returncode == ExitCode.USAGE and "[journal-empty]" in result.stderr
    after = snapshot(journal.parent)
    assert empty.stat().st_size == 0 and sorted(after) == sorted([*before, "empty.db"])
    assert {name: after[name] for name in before} == before


def test_read_only_commands_write_nothing_to_a_damaged_journal(
        journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut_tail(journal, RECORDS - 5)
    before = snapshot(journal.parent)
    for command, code in _read_only_runs(capsys, journal, tmp_path):
        assert code == ExitCode.JOURNAL, command
        assert snapshot(journal.parent) == before, command


# --- a resumed run verifies first -----------------------------------------------------------------


def _campaign_stopped_at_the_gate(r: object) -> None:
    first = cmspatch("run", *r.cli_args(), *FAST)  # type: ignore[attr-defined]
    assert first.returncode == ExitCode.AWAITING_APPROVAL, first.stderr


def _record_count(path: Path) -> int:
    with SqliteJournal(path, read_only=True) as j:
        return len(list(j.records()))


@pytest.mark.parametrize("how", ["cut-tail", "edited-record", "anchors-removed"])
def test_resume_refuses_a_journal_that_does_not_verify(tmp_path: Path, how: str) -> None:
    with rig(tmp_path, monitors=2, sinkhole=False) as r:
        _campaign_stopped_at_the_gate(r)
        anchors = Path(f"{r.journal_path}.anchors").read_text().splitlines()
        kinds = [json.loads(line)["kind"] for line in anchors]
        assert {"campaign-created", "wave-finished", "gate-waiting"} <= set(kinds)
        count = _record_count(r.journal_path)
        if how == "cut-tail":
            cut_tail(r.journal_path, count - 2)
        elif how == "edited-record":
            tamper(r.journal_path, "UPDATE events SET device = 'someone-else' WHERE seq = 3")
        else:
            Path(f"{r.journal_path}.anchors").unlink()
        count = _record_count(r.journal_path)
        installs = {m.name: r.installs(m.name) for m in r.fleet.monitors}
        resumed = cmspatch("run", *r.cli_args(), "--resume", "--yes")
        assert resumed.returncode == ExitCode.JOURNAL, resumed.stderr
        reason = {"cut-tail": "[journal-cut]", "edited-record": "[chain-broken]",
                  "anchors-removed": "[anchors-missing]"}[how]
        assert reason in resumed.stderr
        assert _record_count(r.journal_path) == count  # nothing appended
        assert {m.name: r.installs(m.name) for m in r.fleet.monitors} == installs  # nothing touched


def test_resume_of_an_untampered_journal_finishes(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=2, sinkhole=False) as r:
        _campaign_stopped_at_the_gate(r)
        resumed = cmspatch("run", *r.cli_args(), "--resume", "--yes")
        assert resumed.returncode == ExitCode.OK, resumed.stderr
        anchors = Path(f"{r.journal_path}.anchors").read_text().splitlines()
        with SqliteJournal(r.journal_path, read_only=True) as j:
            last = list(j.records())[-1]
        assert json.loads(anchors[-1])["hash"] == last.hash and last.kind.value == "campaign-finished"
