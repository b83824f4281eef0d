"""The engine against the emulated fleet: waves, halting, gates, clinical deferral, hands-on path."""

from __future__ import annotations

import threading
from pathlib import Path

from orchestrator.domain.campaign import Ending
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.lifecycle import DeviceState
from tests.integration.engine_rig import fast_policy, rig


def test_a_healthy_fleet_ends_patched_with_one_install_each(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=3) as r, r.journal() as journal:
        outcome = r.engine(journal).run(auto_approve=True)
        assert outcome.ending is Ending.COMPLETE, outcome
        assert outcome.counts["patched"] == 3
        assert all(r.installs(m.name) == 1 for m in r.fleet.monitors)
        assert journal.verify().ok


def test_every_transition_is_journalled_in_lifecycle_order(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        engine = r.engine(journal, policy=fast_policy(waves=("1",)))
        engine.run(auto_approve=True)
        name = r.fleet.monitors[0].name
        path = [rec.data["to"] for rec in journal.records(engine.campaign_id)
                if rec.kind is EventKind.STATE_CHANGED and rec.device == name]
        assert path == ["uploading", "uploaded", "installing", "rebooting", "verifying", "patched"]


def test_a_canary_failure_halts_the_campaign(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=3) as r, r.journal() as journal:
        canary, *rest = r.fleet.monitors
        canary.inject("install-fail")
        outcome = r.engine(journal).run(auto_approve=True)
        assert outcome.ending is Ending.HALTED
        assert outcome.halted is not None and outcome.halted.rule == "canary-failed"
        halted = [rec for rec in journal.records() if rec.kind is EventKind.CAMPAIGN_HALTED]
        assert halted and halted[0].data["failed"] == 1
        assert all(r.installs(m.name) == 0 for m in rest)
        assert outcome.counts["skipped"] == len(rest)


def test_a_failure_threshold_halts_mid_campaign(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=4) as r, r.journal() as journal:
        engine = r.engine(journal, policy=fast_policy(max_failures=2, max_workers=1))
        for name in engine.waves[1]:  # every monitor after the canary would fail: only two may
            r.fleet.monitor(name).inject("install-fail")
        outcome = engine.run(auto_approve=True)
        assert outcome.ending is Ending.HALTED
        assert outcome.halted is not None and outcome.halted.rule == "max-failures"
        assert (outcome.counts["patched"], outcome.counts["failed"], outcome.counts["skipped"]) == (1, 2, 1)
        untouched = [n for n in engine.waves[1] if engine.status.devices[n].state is DeviceState.SKIPPED]
        assert all(r.installs(n) == 0 for n in untouched)


def test_a_headless_run_stops_at_the_gate_and_resumes_after_approval(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=2) as r, r.journal() as journal:
        engine = r.engine(journal, policy=fast_policy(require_approval=True))
        engine.stop_at_gate()
        first = engine.run()
        assert first.ending is Ending.AT_GATE and first.stopped_at_gate == 1
        assert first.counts["patched"] == 1 and first.counts["pending"] == 1
        again = r.engine(journal, policy=fast_policy(require_approval=True), campaign_id=engine.campaign_id)
        assert again.run(auto_approve=True).ending is Ending.COMPLETE


def test_approve_releases_a_waiting_gate(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=2) as r, r.journal() as journal:
        engine = r.engine(journal, policy=fast_policy(require_approval=True))

        def on_record(record: JournalRecord) -> None:
            if record.kind is EventKind.GATE_WAITING:
                threading.Thread(target=engine.approve, args=(record.data["wave"], "dr-bme")).start()

        engine.subscribe(on_record)
        assert engine.run().ending is Ending.COMPLETE
        approvals = [rec.data for rec in journal.records() if rec.kind is EventKind.GATE_APPROVED]
        assert approvals == [{"wave": 1, "approver": "dr-bme"}]


def test_a_patient_connected_monitor_is_deferred_then_patched_once_disconnected(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        monitor = r.fleet.monitors[0]
        monitor.connect_patient()
        engine = r.engine(journal, policy=fast_policy(waves=("1",)))

        def on_record(record: JournalRecord) -> None:
            if record.kind is EventKind.STATE_CHANGED and record.data["to"] == "deferred":
                monitor.disconnect_patient()

        engine.subscribe(on_record)
        outcome = engine.run(auto_approve=True)
        reasons = [rec.data["reason"] for rec in journal.records()
                   if rec.kind is EventKind.STATE_CHANGED and rec.data["to"] == "deferred"]
        assert reasons == ["patient-connected"]
        assert outcome.ending is Ending.COMPLETE and r.installs(monitor.name) == 1


def test_a_monitor_in_alarm_stays_deferred_never_failed(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        monitor = r.fleet.monitors[0]
        monitor.set_alarm(True)
        outcome = r.engine(journal, policy=fast_policy(waves=("1",), max_rechecks=2)).run(auto_approve=True)
        assert outcome.ending is Ending.INCOMPLETE
        assert outcome.counts["deferred"] == 1 and outcome.counts["failed"] == 0
        assert r.installs(monitor.name) == 0


def test_outside_the_maintenance_window_nothing_is_touched(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        site = r.inventory.devices[0].site
        policy = fast_policy(waves=("1",), max_rechecks=1, maintenance_windows={site: "03:00-03:01"})
        engine = r.engine(journal, policy=policy, clock=lambda: __import__("datetime").time(12, 0))
        outcome = engine.run(auto_approve=True)
        assert outcome.counts["deferred"] == 1
        device = engine.status.devices[r.fleet.monitors[0].name]
        assert device.reason == "outside-maintenance-window"
        assert not any(a.get("kind") == "login" for a in r.fleet.monitors[0].activity())


def test_an_already_patched_monitor_is_skipped_without_installing(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        r.engine(journal, policy=fast_policy(waves=("1",))).run(auto_approve=True)
        second = r.engine(journal, policy=fast_policy(waves=("1",)))
        outcome = second.run(auto_approve=True)
        name = r.fleet.monitors[0].name
        assert second.status.devices[name].state is DeviceState.SKIPPED
        assert second.status.devices[name].reason == "already-patched"
        assert outcome.ending is Ending.COMPLETE and r.installs(name) == 1


def test_a_patient_connected_during_the_upload_defers_the_install(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        monitor = r.fleet.monitors[0]
        engine = r.engine(journal, policy=fast_policy(waves=("1",)))
        seen: list[int] = []

        def on_record(record: JournalRecord) -> None:
            if record.kind is EventKind.STATE_CHANGED and record.data["to"] == "uploaded" and not seen:
                seen.append(record.seq)
                monitor.connect_patient()
            if record.kind is EventKind.STATE_CHANGED and record.data["to"] == "deferred":
                assert r.installs(monitor.name) == 0
                monitor.disconnect_patient()

        engine.subscribe(on_record)
        outcome = engine.run(auto_approve=True)
        path = [rec.data["to"] for rec in journal.records() if rec.kind is EventKind.STATE_CHANGED]
        assert path[:3] == ["uploading", "uploaded", "deferred"]
        assert outcome.ending is Ending.COMPLETE and r.installs(monitor.name) == 1
