"""The fleet-status projection: state is derived from journal records only."""

from __future__ import annotations

from typing import Any

from orchestrator.domain.events import GENESIS_HASH, EventKind, JournalRecord
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.status import project
from orchestrator.domain.verdicts import Verdict


class _Stream:
    def __init__(self) -> None:
        self.records: list[JournalRecord] = []

    def add(self, kind: EventKind, data: dict[str, Any], device: str | None = None,
            campaign: str = "c1") -> None:
        seq = len(self.records) + 1
        self.records.append(JournalRecord(seq, campaign, kind, device, f"t{seq}", data, GENESIS_HASH, "h"))

    def created(self, campaign: str = "c1") -> None:
        self.add(EventKind.CAMPAIGN_CREATED, {
            "waves": [["a"], ["b", "c"]],
            "devices": {n: {"model": "CMS8000", "serial": n.upper(), "site": "S", "ward": "W", "bed": "1",
                            "asset_tag": None, "firmware": "old", "delivery": "ssh"} for n in "abc"},
        }, campaign=campaign)

    def move(self, device: str, to: DeviceState, reason: str = "") -> None:
        self.add(EventKind.STATE_CHANGED, {"from": "", "to": to.value, "reason": reason}, device)


def test_devices_start_pending_in_their_wave() -> None:
    s = _Stream()
    s.created()
    fleet = project(s.records)
    assert fleet.devices["b"].state is DeviceState.PENDING
    assert fleet.devices["b"].wave == 1
    assert fleet.counts()["pending"] == 3


def test_the_last_state_change_wins() -> None:
    s = _Stream()
    s.created()
    s.move("a", DeviceState.UPLOADING)
    s.move("a", DeviceState.FAILED, "disk-full")
    fleet = project(s.records)
    assert fleet.devices["a"].state is DeviceState.FAILED
    assert fleet.devices["a"].reason == "disk-full"


def test_attempts_firmware_and_verdicts_are_collected() -> None:
    s = _Stream()
    s.created()
    s.add(EventKind.ATTEMPT, {"step": "connect", "attempt": 1, "outcome": "retry"}, "a")
    s.add(EventKind.ATTEMPT, {"step": "connect", "attempt": 2, "outcome": "ok"}, "a")
    s.add(EventKind.FIRMWARE_READ, {"version": "new", "when": "after"}, "a")
    s.add(EventKind.VERDICT, {"cve": "CVE-2025-0626", "verdict": "fixed", "reason": "", "evidence": []}, "a")
    device = project(s.records).devices["a"]
    assert device.attempts == 2
    assert (device.firmware_before, device.firmware_after) == ("old", "new")
    assert device.verdicts == {"CVE-2025-0626": Verdict.FIXED}


def test_repeated_deferrals_count_as_rechecks() -> None:
    s = _Stream()
    s.created()
    s.move("a", DeviceState.DEFERRED, "patient-connected")
    s.move("a", DeviceState.DEFERRED, "patient-connected")
    assert project(s.records).devices["a"].rechecks == 1


def test_a_gate_waits_until_approved() -> None:
    s = _Stream()
    s.created()
    s.add(EventKind.GATE_WAITING, {"wave": 1})
    assert project(s.records).gate_waiting == 1
    s.add(EventKind.GATE_APPROVED, {"wave": 1, "approver": "ops"})
    fleet = project(s.records)
    assert fleet.gate_waiting is None and fleet.approved == {1: "ops"}


def test_halted_and_finished_are_visible() -> None:
    s = _Stream()
    s.created()
    s.add(EventKind.CAMPAIGN_HALTED, {"reason": "x", "rule": "max-failures", "failed": 2, "executed": 3})
    s.add(EventKind.CAMPAIGN_FINISHED, {"counts": {}})
    fleet = project(s.records)
    assert fleet.halted is not None and fleet.halted["rule"] == "max-failures"
    assert fleet.finished


def test_records_of_another_campaign_are_ignored() -> None:
    s = _Stream()
    s.created()
    s.move("a", DeviceState.FAILED, "x")
    s.add(EventKind.STATE_CHANGED, {"to": "patched"}, "a", campaign="other")
    assert project(s.records).devices["a"].state is DeviceState.FAILED


def test_a_named_campaign_is_projected_even_when_a_newer_one_exists() -> None:
    s = _Stream()
    s.created("c1")
    s.move("a", DeviceState.PATCHED)
    s.created("c2")
    assert project(s.records).campaign == "c2"
    assert project(s.records).devices["a"].state is DeviceState.PENDING
    assert project(s.records, "c1").devices["a"].state is DeviceState.PATCHED


def test_a_deferral_after_progress_still_counts_as_a_recheck() -> None:
    s = _Stream()
    s.created()
    s.move("a", DeviceState.UPLOADING)
    s.move("a", DeviceState.UPLOADED)
    s.move("a", DeviceState.DEFERRED, "patient-connected")
    s.move("a", DeviceState.UPLOADING)
    s.move("a", DeviceState.UPLOADED)
    s.move("a", DeviceState.DEFERRED, "patient-connected")
    assert project(s.records).devices["a"].rechecks == 1
