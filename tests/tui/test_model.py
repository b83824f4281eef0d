"""The TUI's view model and coalescing layer: pure rules, no terminal."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.errors import CampaignError
from tests.tui.synthetic import Recorder, demo_records, make_devices, patch_records
from tui.model import Changes, FleetModel, FleetQuery, Inbox, MonitorRow, Phase
from tui.session import ReadOnlyRefused, Session, SessionConfig


def test_many_records_for_one_monitor_coalesce_into_one_changed_row() -> None:
    devices = make_devices(3)
    r = Recorder()
    model = FleetModel()
    model.apply(r.created(devices, [[d.name for d in devices]]))
    changes = model.apply_many(list(patch_records(r, devices[0].name, 0)))
    assert changes.devices == {devices[0].name}
    assert changes.records > 10
    assert model.rows[devices[0].name].state == "patched"


def test_campaign_created_marks_every_row_changed() -> None:
    devices = make_devices(4)
    model = FleetModel()
    model.load_inventory(devices)
    changes = model.apply(Recorder().created(devices, [[d.name for d in devices]]))
    assert changes.devices == {d.name for d in devices}
    assert all(row.state == "pending" for row in model.rows.values())


def test_a_record_seen_twice_is_folded_once() -> None:
    _, records = demo_records(6)
    model = FleetModel()
    model.apply_many(records)
    applied = model.applied
    again = model.apply_many(records)  # the journal poll and the live subscription overlap
    assert model.applied == applied
    assert again.devices == frozenset()


def test_an_older_record_for_a_monitor_does_not_undo_a_newer_one() -> None:
    devices = make_devices(1)
    r = Recorder()
    model = FleetModel()
    model.apply(r.created(devices, [[devices[0].name]]))
    old = r.state(devices[0].name, "pending", "uploading", 0)
    new = r.state(devices[0].name, "uploading", "failed", 0, "disk-full")
    model.apply_many([new, old])  # delivered out of order by two engine threads
    assert model.rows[devices[0].name].state == "failed"


def test_records_of_another_campaign_in_the_journal_are_ignored() -> None:
    devices, records = demo_records(6)
    model = FleetModel()
    model.apply_many(records)
    stranger = Recorder("c-other").state(devices[0].name, "pending", "failed", 0)
    model.apply(stranger)
    assert model.rows[devices[0].name].state == "patched"


def test_gate_waiting_then_approval_moves_the_phase() -> None:
    _, records = demo_records(6)
    model = FleetModel()
    model.apply_many(records)
    assert model.phase is Phase.GATE and model.gate_wave == 2 and model.can_approve()
    approval = JournalRecord(10_000, "c-demo", EventKind.GATE_APPROVED, None, "2026-11-24T21:00:00Z",
                             {"wave": 2, "approver": "x"}, "", "")
    model.apply(approval)
    assert model.phase is Phase.RUNNING and not model.can_approve()


def test_failure_budget_says_how_many_failures_are_left() -> None:
    _, records = demo_records(12)
    model = FleetModel()
    model.apply_many(records)
    assert model.failure_budget() == "1 failed of max 3: 2 left before halt"


def test_deferred_monitors_carry_their_reason() -> None:
    _, records = demo_records(12)
    model = FleetModel()
    model.apply_many(records)
    assert [(r.name, r.reason) for r in model.deferred()] == [("mon-0001", "patient connected")]


def test_inbox_hands_over_everything_put_from_other_threads() -> None:
    inbox = Inbox()
    r = Recorder()
    threads = [threading.Thread(target=lambda: [inbox.put(r.rec(EventKind.LOG, {})) for _ in range(500)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(inbox.drain()) == 2000 and inbox.drain() == []


@pytest.mark.parametrize(("text", "expected"), [
    ("state:failed", {"mon-0002"}),
    ("state:deferred", {"mon-0001"}),
    ("site:south ward:b state:patched", {"mon-0003"}),
    ("0626:fixed", {"mon-0000", "mon-0003", "mon-0004"}),
    ("SN-000004", {"mon-0004"}),
])
def test_filter_terms_match_any_column(text: str, expected: set[str]) -> None:
    _, records = demo_records(12)
    model = FleetModel()
    model.apply_many(records)
    assert {r.name for r in FleetQuery(text).select(model.rows.values())} == expected


def test_empty_changes_are_empty() -> None:
    assert Changes().empty


def test_read_only_session_refuses_every_decision() -> None:
    session = Session(SessionConfig(operator="watcher", read_only=True))
    for decide in (lambda: session.approve(1), session.pause, session.resume_run,
                   lambda: session.abort("x"), lambda: session.confirm_manual("m", "t"), session.start):
        with pytest.raises(ReadOnlyRefused):
            decide()


def test_a_campaign_cannot_start_without_an_accepted_package() -> None:
    session = Session(SessionConfig(operator="op"))
    assert not session.can_start
    with pytest.raises(CampaignError):
        session.start()


def test_containment_and_vitals_facts_reach_the_monitor_row_without_changing_the_campaign() -> None:
    from orchestrator.domain.status import DEVICE_RECORDS

    devices = make_devices(2)
    r = Recorder()
    facts = Recorder(campaign=DEVICE_RECORDS)
    facts.seq = 1000  # numbered after the campaign's records, as the journal would
    model = FleetModel()
    model.load_inventory(devices)
    early = facts.rec(EventKind.CONTAINMENT, {"state": "isolated", "how": "VLAN 666", "by": "M. Bianchi"},
                      devices[0].name)
    model.apply(early)  # a fact before any campaign: the view does not start following "device-records"
    assert model.campaign_id is None
    model.apply(r.created(devices, [[d.name for d in devices]]))
    model.apply(facts.rec(EventKind.VITALS_CHECK, {"outcome": "tampering-suspected", "technician": "A. Rossi",
                                                   "mismatches": ["spo2"]}, devices[0].name))
    row = model.rows[devices[0].name]
    assert model.campaign_id == r.campaign
    assert row.containment is not None and row.containment["state"] == "isolated"
    assert [v["outcome"] for v in row.vitals] == ["tampering-suspected"]
    assert model.rows[devices[1].name].containment is None


def test_a_contact_that_fits_no_monitor_redraws_the_campaign_tab_and_is_listed() -> None:
    devices = make_devices(1)
    r = Recorder()
    model = FleetModel()
    model.apply(r.created(devices, [[devices[0].name]]))
    changes = model.apply(r.rec(EventKind.UNATTRIBUTED_CONTACT, {
        "watched": devices[0].name, "total": 1, "contacts": [
            {"at": "2026-11-24T20:00:05Z", "source": "127.88.0.5:4000", "target": "202.114.4.119:111",
             "kind": "connect", "sha256": "ab" * 32, "why": "no monitor at this address"}]}))
    assert changes.campaign
    assert [c["source"] for c in model.status.unattributed_contacts()] == ["127.88.0.5:4000"]


def test_a_row_is_a_view_over_the_projection_not_a_copy_of_it() -> None:
    devices, records = demo_records(12)
    model = FleetModel()
    model.load_inventory(devices)
    model.apply_many(records)
    assert {f.name for f in dataclasses.fields(MonitorRow)} == {"name", "fleet", "inventory", "last_seq",
                                                                 "timeline"}  # nothing copied to drift
    for name, st in model.status.devices.items():
        row = model.rows[name]
        assert row.status is st
        assert (row.state, row.reason, row.wave, row.attempts, row.retries, row.firmware_after) == \
            (st.state.value, st.reason, st.wave, st.highest_attempt, st.retries, st.firmware_after or "")
        assert row.verdicts == {cve: v.value for cve, v in st.verdicts.items()}
        assert row.verdict_levels == {cve: v.value for cve, v in st.verdict_levels.items()}
    st = model.status.devices["mon-0002"]
    st.reason = "changed in the projection"  # whatever the projection holds is what the row shows
    assert model.rows["mon-0002"].reason == "changed in the projection"


def test_a_monitor_no_campaign_covers_shows_its_inventory() -> None:
    devices = make_devices(2)
    model = FleetModel()
    model.load_inventory(devices)
    row = model.rows[devices[1].name]
    assert row.status is None and row.state == "inventory"
    assert (row.site, row.serial, row.delivery, row.firmware) == \
        (devices[1].site, devices[1].serial, devices[1].delivery.value, devices[1].firmware)
