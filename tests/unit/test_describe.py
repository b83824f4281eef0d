"""The one event describer: every kind worded, free text for the operator only, one line for every view."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.cli.campaign import describe as cli_line
from orchestrator.domain.describe import Audience, describe, headline, notable
from orchestrator.domain.events import GENESIS_HASH, EventKind, JournalRecord, chain_hash
from orchestrator.exports.model import build_model
from tests.tui.synthetic import Recorder, demo_records
from tui.model import FleetModel

SECRET = "hunter2-patient-Rossi"
# Every free-text field the engine records, with the secret in it.
FREE_TEXT: list[tuple[EventKind, dict[str, Any], str | None]] = [
    (EventKind.ATTEMPT, {"step": "upload", "attempt": 2, "outcome": "retry", "error_reason": "ssh-timeout",
                         "error": SECRET}, "mon-1"),
    (EventKind.TECHNICIAN_CONFIRMED, {"technician": "Bo Chen", "note": SECRET}, "mon-1"),
    (EventKind.TRIGGER_REQUESTED, {"trigger": "menu-update", "instructions": SECRET, "timeout": 30.0},
     "mon-1"),
    (EventKind.TRIGGER_ANSWERED, {"trigger": "menu-update", "by": "Bo Chen", "done": False, "note": SECRET},
     "mon-1"),
    (EventKind.SURVEY, {"status": "vulnerable", "affected": True, "reasons": [SECRET]}, "mon-1"),
    (EventKind.BENCH_STEP, {"step": "on-bench", "by": "Bo Chen", "done": True, "note": SECRET}, "mon-1"),
    (EventKind.CAMPAIGN_ABORTED, {"by": "a.rossi", "reason": SECRET}, None),
    (EventKind.LOG, {"level": "warning", "message": SECRET}, None),
]


_RECORDER = Recorder()


def _record(kind: EventKind, data: dict[str, Any], device: str | None = None) -> JournalRecord:
    return _RECORDER.rec(kind, data, device)


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_event_kind_has_words_of_its_own(kind: EventKind) -> None:
    assert describe(_record(kind, {}, "mon-1")) != kind.value


@pytest.mark.parametrize(("kind", "data", "device"), FREE_TEXT, ids=[k.value for k, _, _ in FREE_TEXT])
def test_free_text_reaches_the_operator_and_never_an_export(kind: EventKind, data: dict[str, Any],
                                                           device: str | None) -> None:
    record = _record(kind, data, device)
    assert SECRET in describe(record, Audience.OPERATOR)
    exported = describe(record, Audience.EXPORT)
    assert SECRET not in exported and exported.strip()


def test_a_failure_reads_the_same_on_the_cli_and_in_the_tui_log_pane() -> None:
    failed = _record(EventKind.STATE_CHANGED, {"from": "installing", "to": "failed",
                                               "reason": "installer-failed", "wave": 0}, "mon-1")
    line = headline(failed)
    assert line == "mon-1 ✖ failed: installer-failed"
    assert cli_line(failed) == line
    model = FleetModel()
    model.apply(_record(EventKind.CAMPAIGN_CREATED, {"devices": {"mon-1": {}}, "waves": [["mon-1"]]}))
    assert model.apply(failed).log == (f"{failed.at[11:19]} {line}",)


def test_the_cli_adds_the_command_that_answers_a_technician_request() -> None:
    asked = _record(EventKind.TRIGGER_REQUESTED, {"trigger": "boot-key", "instructions": "press C",
                                                  "timeout": 60}, "mon-1")
    line = cli_line(asked)
    assert line is not None and line.startswith(str(headline(asked)))
    assert "cmspatch confirm mon-1 --trigger boot-key" in line


def test_steps_between_outcomes_stay_off_the_progress_log() -> None:
    step = _record(EventKind.STATE_CHANGED, {"from": "uploaded", "to": "installing", "wave": 0}, "mon-1")
    fixed = _record(EventKind.VERDICT, {"cve": "CVE-2025-0626", "verdict": "fixed"}, "mon-1")
    assert not notable(step) and not notable(fixed) and headline(step) is None
    assert describe(step) == "uploaded -> » installing"  # still on the monitor's own timeline


def test_an_export_timeline_is_the_describer_export_words() -> None:
    _, synthetic = demo_records(6)
    records: list[JournalRecord] = []
    prev = GENESIS_HASH
    for r in synthetic:  # chained as the journal chains them, or the export refuses them
        h = chain_hash(prev, r.seq, r.campaign, r.kind.value, r.device, r.at, r.data)
        records.append(JournalRecord(r.seq, r.campaign, r.kind, r.device, r.at, r.data, prev, h))
        prev = h
    model = build_model(records)
    by_seq = {r.seq: r for r in records}
    entries = [t for d in model.devices for t in d.timeline]
    assert entries
    for entry in entries:
        assert entry.summary == describe(by_seq[entry.seq], Audience.EXPORT)
        assert "✖" not in entry.summary and "✔" not in entry.summary  # symbols are for terminals
