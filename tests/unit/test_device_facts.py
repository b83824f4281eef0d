"""Facts about a monitor (containment, vitals checks) in the projection, whatever campaign is followed."""

from __future__ import annotations

from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.status import DEVICE_RECORDS, project


def _rec(seq: int, campaign: str, kind: EventKind, data: dict[str, object],
         device: str | None = None) -> JournalRecord:
    return JournalRecord(seq, campaign, kind, device, f"2026-12-01T10:00:{seq:02d}Z", data, "0" * 64,
                         f"{seq:064x}")


def _created(seq: int, campaign: str) -> JournalRecord:
    return _rec(seq, campaign, EventKind.CAMPAIGN_CREATED,
                {"waves": [["bed1"]], "devices": {"bed1": {"model": "CMS8000"}}})


def test_a_containment_recorded_before_a_campaign_shows_in_it_and_in_the_next() -> None:
    held_by = {"state": "isolated", "by": "M. Bianchi"}
    records = [_rec(1, DEVICE_RECORDS, EventKind.CONTAINMENT, held_by, "bed1"),
               _created(2, "c-1"), _created(3, "c-2")]
    for fleet in (project(records), project(records, "c-1"), project(records, "c-2")):
        held = fleet.containment("bed1")
        assert held is not None and held["state"] == "isolated" and held["seq"] == 1


def test_the_latest_containment_wins_and_facts_never_become_the_followed_campaign() -> None:
    records = [_created(1, "c-1"),
               _rec(2, DEVICE_RECORDS, EventKind.CONTAINMENT, {"state": "isolated", "by": "A"}, "bed1"),
               _rec(3, DEVICE_RECORDS, EventKind.CONTAINMENT, {"state": "disconnected", "by": "B"}, "bed1")]
    fleet = project(records)
    assert fleet.campaign == "c-1" and fleet.last_seq == 1
    held = fleet.containment("bed1")
    assert held is not None and held["state"] == "disconnected"
