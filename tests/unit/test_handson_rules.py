"""The hands-on path's rules (``domain.handson``) and its states in the lifecycle and the fold."""

from __future__ import annotations

import pytest

from orchestrator.domain.campaign import CampaignPolicy, all_done, counts_as_failure
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.handson import (
    bench_moves,
    confirmation_move,
    confirmation_payload,
    next_step,
    technician_name,
)
from orchestrator.domain.lifecycle import TERMINAL, DeviceState, check_transition
from orchestrator.domain.status import FleetStatus
from orchestrator.errors import IllegalTransition, UsageError

S = DeviceState


def _record(seq: int, kind: EventKind, data: dict[str, object], device: str = "usb01") -> JournalRecord:
    return JournalRecord(seq=seq, at=f"2026-12-01T10:00:{seq:02d}+00:00", campaign="c1", kind=kind,
                         device=device, data=data, prev_hash="0" * 64, hash=f"{seq:064x}")


def test_a_confirmed_unit_awaits_its_bench_and_is_no_outcome() -> None:
    check_transition("usb01", S.AWAITING_TECHNICIAN, S.AWAITING_BENCH)
    assert S.AWAITING_BENCH not in TERMINAL
    assert not counts_as_failure(CampaignPolicy(), S.AWAITING_BENCH, "technician-confirmed")
    assert not all_done({"patched": 3, "awaiting-bench": 1})


def test_a_confirmation_no_longer_verifies_in_the_campaign() -> None:
    with pytest.raises(IllegalTransition):
        check_transition("usb01", S.AWAITING_TECHNICIAN, S.VERIFYING)


def test_the_bench_session_ends_an_awaiting_unit() -> None:
    for target in (S.VERIFYING, S.PATCHED, S.FAILED):
        check_transition("usb01", S.AWAITING_BENCH, target)
    check_transition("usb01", S.VERIFYING, S.AWAITING_BENCH)  # cut short: the bench again


def test_only_a_named_technician_confirms() -> None:
    assert technician_name("  L. Bianchi ") == "L. Bianchi"
    for blank in ("", "   ", None):
        with pytest.raises(UsageError) as info:
            technician_name(blank)
        assert info.value.reason == "no-technician"


def test_the_version_read_is_journalled_as_typed() -> None:
    assert confirmation_payload("G. Neri", "", " CMS7.820.200.05 ") == {
        "technician": "G. Neri", "note": "", "version": "CMS7.820.200.05"}
    assert "version" not in confirmation_payload("G. Neri", "", "  ")


def test_the_move_after_a_confirmation() -> None:
    assert confirmation_move(S.AWAITING_TECHNICIAN, None) is None
    assert confirmation_move(S.AWAITING_TECHNICIAN, "G. Neri") == (S.AWAITING_BENCH, "technician-confirmed")
    assert confirmation_move(S.VERIFYING, "G. Neri") == (S.AWAITING_BENCH, "bench-session-needed")
    assert confirmation_move(S.AWAITING_BENCH, "G. Neri") is None


def test_the_next_step_names_the_command() -> None:
    assert "cmspatch confirm usb01 --technician NAME" in next_step("usb01", S.AWAITING_TECHNICIAN)
    assert "cmspatch bench usb01" in next_step("usb01", S.AWAITING_BENCH, journal="j.db")
    assert next_step("usb01", S.PATCHED) == ""


def test_the_fold_shows_the_version_as_the_technicians_until_cmspatch_reads_one() -> None:
    fleet = FleetStatus(campaign="c1")
    fleet.apply(_record(1, EventKind.TECHNICIAN_CONFIRMED, {"technician": "G. Neri", "version": "V2"}))
    device = fleet.devices["usb01"]
    assert (device.technician, device.firmware_after, device.firmware_after_by) == (
        "G. Neri", "V2", "technician G. Neri")
    fleet.apply(_record(2, EventKind.FIRMWARE_READ, {"version": "V2", "when": "after"}))
    assert fleet.devices["usb01"].firmware_after_by == ""
    assert fleet.counts()["awaiting-bench"] == 0


def test_a_bench_session_ends_the_unit_by_its_outcome() -> None:
    assert bench_moves(S.AWAITING_BENCH, "patched") == [(S.PATCHED, "verified-at-bench")]
    assert bench_moves(S.AWAITING_BENCH, "vulnerable") == [(S.FAILED, "backdoor-still-present")]
    # Nothing proven either way is not a failure: the unit waits for another bench session.
    assert bench_moves(S.AWAITING_BENCH, "inconclusive") == [(S.AWAITING_BENCH, "bench-inconclusive")]
    assert bench_moves(S.AWAITING_TECHNICIAN, "patched") == [(S.AWAITING_BENCH, "benched"),
                                                            (S.PATCHED, "verified-at-bench")]
    with pytest.raises(ValueError):
        bench_moves(S.AWAITING_BENCH, "fine")


def test_every_bench_move_is_a_legal_step() -> None:
    for start in (S.AWAITING_TECHNICIAN, S.AWAITING_BENCH):
        for outcome in ("patched", "vulnerable", "inconclusive"):
            state = start
            for to, _ in bench_moves(start, outcome):
                check_transition("usb01", state, to)
                state = to
