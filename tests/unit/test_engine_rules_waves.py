"""Engine rules of waves, approval gates, the failure budget and operator control, on scripted monitors."""

from __future__ import annotations

import pytest

from orchestrator.domain.campaign import Ending
from orchestrator.domain.events import EventKind, JournalRecord
from tests.unit import engine_rules_rig as rig
from tests.unit.engine_rules_rig import Rules, Worlds, device, policy, records, states

package = pytest.fixture(scope="module")(rig.package_fixture)
world = pytest.fixture(rig.world_fixture)


def _failing(rules: Rules, *indices: int) -> None:
    for i in indices:
        rules.monitor(i).install_exit = 1  # the shipped profile's "any other exit": installer-failed


def test_a_headless_run_stops_at_the_second_wave_gate_without_touching_it(world: Worlds) -> None:
    rules = world(3)
    engine = rules.engine(policy(require_approval=True, waves=("1", "100%")))
    engine.stop_at_gate()
    outcome = engine.run()
    assert (outcome.ending, outcome.stopped_at_gate) == (Ending.AT_GATE, 1)
    assert states(engine)["bed01"] == ("patched", "verified")
    assert [rules.monitor(i).count("connect") for i in (2, 3)] == [0, 0]
    assert [r.data["wave"] for r in records(engine, EventKind.GATE_WAITING)] == [1]


def test_an_approval_given_while_the_gate_waits_opens_it_and_names_the_approver(world: Worlds) -> None:
    rules = world(2)
    engine = rules.engine(policy(require_approval=True))

    def approve(record: JournalRecord) -> None:
        if record.kind is EventKind.GATE_WAITING:
            engine.approve(int(record.data["wave"]), "dr. lee (biomed)")

    engine.subscribe(approve)
    outcome = engine.run()
    assert outcome.ending is Ending.COMPLETE
    assert [r.data["approver"] for r in records(engine, EventKind.GATE_APPROVED)] == ["dr. lee (biomed)"]


def test_auto_approve_is_journalled_as_the_operators_yes(world: Worlds) -> None:
    rules = world(2)
    engine, outcome = rules.run(policy(require_approval=True), auto_approve=True)
    assert outcome.ending is Ending.COMPLETE
    assert [r.data["approver"] for r in records(engine, EventKind.GATE_APPROVED)] == ["rule-test (--yes)"]


def test_a_failed_canary_halts_and_the_rest_is_skipped_untouched(world: Worlds) -> None:
    rules = world(3)
    _failing(rules, 1)
    engine, outcome = rules.run()
    assert outcome.ending is Ending.HALTED and outcome.halted is not None
    assert outcome.halted.rule == "canary-failed"
    halted = ("skipped", "campaign-halted")
    assert states(engine) == {"bed01": ("failed", "installer-failed"), "bed02": halted, "bed03": halted}
    assert [rules.monitor(i).count("connect") for i in (2, 3)] == [0, 0]


def test_the_cumulative_failure_budget_halts_once_reached(world: Worlds) -> None:
    rules = world(5)
    _failing(rules, 1, 2, 3, 4, 5)
    engine, outcome = rules.run(policy(waves=("100%",), canary_must_pass=False, max_failures=2, max_workers=1,
                                       per_site_concurrency=1))
    assert outcome.halted is not None and (outcome.halted.rule, outcome.halted.failed) == ("max-failures", 2)
    assert sorted(s for s, _ in states(engine).values()) == ["failed"] * 2 + ["skipped"] * 3
    assert sum(m.count("install-run") for m in rules.monitors) == 2


def test_the_per_wave_failure_budget_is_counted_inside_the_wave(world: Worlds) -> None:
    rules = world(4)
    _failing(rules, 2, 3)
    engine, outcome = rules.run(policy(waves=("1", "100%"), canary_must_pass=False, wave_max_failures=2,
                                       max_workers=1, per_site_concurrency=1))
    assert outcome.halted is not None and outcome.halted.rule == "wave-max-failures"
    assert states(engine)["bed01"] == ("patched", "verified")
    assert states(engine)["bed04"] == ("skipped", "campaign-halted")


def test_deferrals_never_spend_the_failure_budget(world: Worlds) -> None:
    rules = world(3)
    for m in rules.monitors:
        m.patient = True
    engine, outcome = rules.run(policy(canary_must_pass=True, max_failures=1, max_rechecks=0))
    assert outcome.halted is None and outcome.ending is Ending.INCOMPLETE
    assert {s for s, _ in states(engine).values()} == {"deferred"}


def test_unreachable_monitors_spend_the_budget_only_when_the_policy_says_so(world: Worlds) -> None:
    rules = world(3)
    for m in rules.monitors:
        m.unreachable = True
    engine, outcome = rules.run(policy(waves=("100%",), unreachable_is_failure=False, canary_must_pass=False,
                                       max_failures=1))
    assert outcome.halted is None
    assert set(states(engine).values()) == {("failed", "unreachable")}
    rules = world(3)
    for m in rules.monitors:
        m.unreachable = True
    _, outcome = rules.run(policy(waves=("100%",), canary_must_pass=False, max_failures=1, max_workers=1,
                                  per_site_concurrency=1))
    assert outcome.halted is not None and outcome.halted.rule == "max-failures"


def test_the_failure_percentage_waits_for_its_minimum_of_executed_monitors(world: Worlds) -> None:
    rules = world(4)
    _failing(rules, 1)
    engine, outcome = rules.run(policy(waves=("100%",), canary_must_pass=False, max_failure_pct=20,
                                       min_executed_for_pct=4))
    assert outcome.halted is not None and outcome.halted.rule == "max-failure-pct"
    assert outcome.halted.executed == 4  # one failure in four: only counted once four had finished
    assert [s for s, _ in states(engine).values()].count("patched") == 3


def test_a_halted_campaign_stays_halted_when_run_again(world: Worlds) -> None:
    rules = world(2)
    _failing(rules, 1)
    engine, _ = rules.run()
    connects = rules.monitor(2).count("connect")
    again = rules.resume(engine.campaign_id, journal=engine.journal).run()
    assert again.ending is Ending.HALTED
    assert rules.monitor(2).count("connect") == connects == 0


def test_an_abort_skips_what_has_not_started_and_lets_the_running_monitor_finish(world: Worlds) -> None:
    rules = world(3)
    engine = rules.engine(policy(waves=("100%",), max_workers=1, per_site_concurrency=1))
    rules.monitor(1).on("install", lambda m: engine.abort("nurse in charge", "ward emergency"))
    outcome = engine.run()
    assert outcome.ending is Ending.ABORTED
    assert states(engine) == {"bed01": ("patched", "verified"), "bed02": ("skipped", "campaign-aborted"),
                              "bed03": ("skipped", "campaign-aborted")}
    assert [r.data["by"] for r in records(engine, EventKind.CAMPAIGN_ABORTED)] == ["nurse in charge"]


def test_waves_drawn_per_site_start_each_site_with_its_own_canary(world: Worlds) -> None:
    rules = world(device(1, site="North"), device(2, site="North"), device(3, site="South"),
                  device(4, site="South"))
    engine, outcome = rules.run(policy(waves=("1", "100%"), group_by="site"))
    assert outcome.ending is Ending.COMPLETE
    first_wave = next(r.data["devices"] for r in records(engine, EventKind.WAVE_STARTED))
    assert sorted(first_wave) == ["bed01", "bed03"]
