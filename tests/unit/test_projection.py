"""The campaign projection: phase, tallies, failure budget and outcomes, read off the folded journal."""

from __future__ import annotations

from typing import Any

from orchestrator.domain.campaign import CampaignPolicy, Tally, halt_decision
from orchestrator.domain.events import GENESIS_HASH, EventKind, JournalRecord
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.projection import (
    CVE_IDS,
    Outcome,
    Phase,
    complete,
    failure_budget,
    journalled_policy,
    outcome_counts,
    phase,
    tally,
    unfinished_words,
)
from orchestrator.domain.status import FleetStatus, project

S = DeviceState


class _Stream:
    def __init__(self, devices: str = "abcd", waves: list[list[str]] | None = None,
                 **policy: Any) -> None:
        self.records: list[JournalRecord] = []
        self.add(EventKind.CAMPAIGN_CREATED, {
            "waves": waves or [["a"], ["b", "c", "d"]], "policy": policy,
            "devices": {n: {"model": "CMS8000", "serial": n, "site": "S", "ward": "W", "bed": n,
                            "firmware": "old", "delivery": "ssh"} for n in devices}})

    def add(self, kind: EventKind, data: dict[str, Any], device: str | None = None) -> None:
        seq = len(self.records) + 1
        self.records.append(JournalRecord(seq, "c1", kind, device, f"t{seq}", data, GENESIS_HASH, "h"))

    def wave(self, index: int) -> None:
        self.add(EventKind.WAVE_STARTED, {"wave": index, "devices": []})

    def move(self, device: str, to: DeviceState, reason: str = "") -> None:
        self.add(EventKind.STATE_CHANGED, {"from": "", "to": to.value, "reason": reason}, device)

    def fixed(self, device: str) -> None:
        for cve in CVE_IDS:
            self.add(EventKind.VERDICT, {"cve": cve, "verdict": "fixed"}, device)

    def fleet(self) -> FleetStatus:
        return project(self.records)


def test_a_halt_outlives_the_finished_record_after_it() -> None:
    s = _Stream()
    s.add(EventKind.CAMPAIGN_HALTED, {"reason": "the canary wave had a failure", "failed": 1, "executed": 1})
    s.add(EventKind.CAMPAIGN_FINISHED, {"counts": {}})
    assert phase(s.fleet()) is Phase.HALTED


def test_a_pause_outlives_a_gate_and_resuming_returns_to_it() -> None:
    s = _Stream()
    s.add(EventKind.GATE_WAITING, {"wave": 1})
    s.add(EventKind.CAMPAIGN_PAUSED, {"by": "x"})
    assert phase(s.fleet()) is Phase.PAUSED
    s.add(EventKind.CAMPAIGN_RESUMED, {"by": "x"})
    assert phase(s.fleet()) is Phase.GATE
    assert phase(FleetStatus()) is Phase.NOT_STARTED


def test_monitors_skipped_because_the_campaign_stopped_were_not_executed() -> None:
    s = _Stream()
    s.wave(0)
    s.move("a", S.FAILED, "install-failed")
    s.move("b", S.SKIPPED, "campaign-halted")
    s.move("c", S.SKIPPED, "already-patched")
    assert tally(s.fleet(), CampaignPolicy()) == Tally(executed=2, failed=1)


def test_unreachable_monitors_count_only_when_the_policy_says_so() -> None:
    s = _Stream()
    s.wave(0)
    s.move("a", S.FAILED, "unreachable")
    assert tally(s.fleet(), CampaignPolicy(unreachable_is_failure=False)) == Tally(1, 0)
    assert tally(s.fleet(), CampaignPolicy()) == Tally(1, 1)


def test_a_recheck_that_fails_counts_against_the_wave_running_then() -> None:
    s = _Stream()
    s.wave(0)
    s.move("a", S.DEFERRED, "patient-connected")
    s.wave(1)
    s.move("a", S.FAILED, "install-failed")
    fleet = s.fleet()
    policy = CampaignPolicy()
    assert tally(fleet, policy, 0) == Tally(0, 0) and tally(fleet, policy, 1) == Tally(1, 1)


def test_the_budget_decides_exactly_as_the_halting_rule() -> None:
    policy = CampaignPolicy(max_failures=3, wave_max_failures=2, canary_must_pass=False)
    s = _Stream()
    s.wave(0)
    s.move("a", S.PATCHED)
    s.wave(1)
    s.move("b", S.FAILED, "install-failed")
    budget = failure_budget(s.fleet(), policy)
    assert budget.decision() is None
    assert budget.describe() == ("1 failed of max 3: 2 left before halt; "
                                 "wave 2: 1 failed of max 2: 1 left before halt")
    assert budget.left() == 1
    s.move("c", S.FAILED, "install-failed")
    budget = failure_budget(s.fleet(), policy)
    decision = budget.decision()
    assert decision == halt_decision(policy, Tally(3, 2), Tally(2, 2), 1)
    assert decision is not None and decision.rule == "wave-max-failures" and budget.left() == 0


def test_before_the_next_wave_its_own_rules_start_from_nothing() -> None:
    policy = CampaignPolicy(max_failures=5, wave_max_failures=1)
    s = _Stream()
    s.wave(0)
    s.move("a", S.FAILED, "unreachable")
    s.add(EventKind.GATE_WAITING, {"wave": 1})
    budget = failure_budget(s.fleet(), policy, 1)
    assert budget.total == Tally(1, 1) and budget.wave == Tally(0, 0) and budget.wave_index == 1
    assert "canary" not in budget.describe()


def test_the_canary_rule_is_shown_while_the_canary_runs() -> None:
    s = _Stream()
    s.wave(0)
    assert failure_budget(s.fleet(), CampaignPolicy()).describe().startswith(
        "canary wave: 0 failed; any failure halts")


def test_percentage_rule_says_when_it_starts_to_apply() -> None:
    policy = CampaignPolicy(max_failure_pct=20, min_executed_for_pct=5, canary_must_pass=False,
                            unreachable_is_failure=False)
    s = _Stream()
    s.wave(1)
    s.move("b", S.FAILED, "install-failed")
    assert failure_budget(s.fleet(), policy).lines() == [
        "100% failed of 1 executed (halts at 20%, once 5 executed)",
        "unreachable monitors do not count as failures"]


def test_the_journalled_policy_is_read_back_and_a_bad_one_is_none() -> None:
    assert journalled_policy(_Stream(max_failures=2).fleet()) == CampaignPolicy(max_failures=2)
    assert journalled_policy(_Stream(max_failures=-1).fleet()) is None


def test_a_monitor_skipped_as_already_patched_counts_as_patched() -> None:
    s = _Stream()
    s.move("a", S.PATCHED)
    s.fixed("a")
    s.move("b", S.SKIPPED, "already-patched")
    s.fixed("b")
    s.move("c", S.FAILED, "install-failed")
    s.move("d", S.DEFERRED, "patient-connected")
    counts = outcome_counts(s.fleet())
    assert counts[Outcome.PATCHED] == 2 and counts[Outcome.FAILED] == 1 and counts[Outcome.DEFERRED] == 1


def test_a_finished_campaign_with_a_failure_is_not_complete() -> None:
    s = _Stream(devices="ab", waves=[["a", "b"]])
    s.move("a", S.PATCHED)
    s.move("b", S.FAILED, "install-failed")
    s.add(EventKind.CAMPAIGN_FINISHED, {"counts": {}})
    fleet = s.fleet()
    assert phase(fleet) is Phase.FINISHED and not complete(fleet)
    assert unfinished_words(fleet) == "1 failed"
