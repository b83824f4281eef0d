"""Operator decisions while a campaign runs: abort, pause/resume, two engines on one campaign."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from orchestrator.domain.campaign import Ending
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.errors import CampaignLocked
from tests.integration.engine_rig import fast_policy, rig


def test_abort_lets_the_in_flight_monitor_finish_and_starts_no_other(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=3) as r, r.journal() as journal:
        engine = r.engine(journal, policy=fast_policy(waves=("100%",), max_workers=1))
        first: list[str] = []

        def on_record(record: JournalRecord) -> None:
            if record.kind is EventKind.STATE_CHANGED and record.data["to"] == "uploading" and not first:
                first.append(str(record.device))
                engine.abort("dr-bme", "vendor recall notice")

        engine.subscribe(on_record)
        outcome = engine.run(auto_approve=True)
        assert outcome.ending is Ending.ABORTED
        in_flight = engine.status.devices[first[0]]
        assert in_flight.state is DeviceState.PATCHED, (in_flight.reason, in_flight.verdicts)
        others = [n for n in engine.devices if n != first[0]]
        assert all(engine.status.devices[n].state is DeviceState.SKIPPED for n in others)
        assert all(r.installs(n) == 0 for n in others)
        aborted = [rec.data for rec in journal.records() if rec.kind is EventKind.CAMPAIGN_ABORTED]
        assert aborted == [{"by": "dr-bme", "reason": "vendor recall notice"}]


def test_a_paused_campaign_touches_no_monitor_until_resumed(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=2) as r, r.journal() as journal:
        engine = r.engine(journal)
        started = threading.Event()
        engine.subscribe(lambda rec: started.set() if rec.kind is EventKind.WAVE_STARTED else None)
        engine.pause("ops")
        result: list[Ending] = []
        worker = threading.Thread(target=lambda: result.append(engine.run(auto_approve=True).ending))
        worker.start()
        assert started.wait(timeout=30)
        engine.resume_run("ops")
        worker.join(timeout=120)
        assert result == [Ending.COMPLETE]
        kinds = [rec.kind for rec in journal.records()]
        resumed_at = kinds.index(EventKind.CAMPAIGN_RESUMED)
        assert EventKind.STATE_CHANGED not in kinds[:resumed_at]


def test_a_second_engine_on_a_running_campaign_is_refused(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r, r.journal() as journal, r.journal() as other_journal:
        engine = r.engine(journal, policy=fast_policy(waves=("1",)))
        refused: list[BaseException] = []

        def on_record(record: JournalRecord) -> None:
            if record.kind is EventKind.WAVE_STARTED:
                second = r.engine(other_journal, campaign_id=engine.campaign_id)
                try:
                    second.run(auto_approve=True)
                except CampaignLocked as exc:
                    refused.append(exc)

        engine.subscribe(on_record)
        assert engine.run(auto_approve=True).ending is Ending.COMPLETE
        assert len(refused) == 1 and refused[0].reason == "campaign-locked"


def test_resuming_with_a_different_package_is_refused(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        engine = r.engine(journal, policy=fast_policy(waves=("1",)))
        engine.run(auto_approve=True)
        from dataclasses import replace

        from orchestrator import wiring
        from orchestrator.errors import UsageError

        with pytest.raises(UsageError) as info:
            wiring.resume_engine(journal=journal, campaign_id=engine.campaign_id, inventory=r.inventory,
                          package=replace(r.package, sha256="0" * 64), transports={}, operator="x")
        assert info.value.reason == "package-differs"
