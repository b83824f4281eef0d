"""A bug is not a failed monitor: an ``IllegalTransition`` (``errors.InternalError``) raised while a
monitor is driven ends the campaign run and the CLI says "internal error" with exit 70, instead of the
engine journalling one more failure and carrying on with the fleet. How a run ended is the engine's
word (``Ending``); its exit code is the CLI's alone."""

from __future__ import annotations

import pytest

from orchestrator.cli import campaign
from orchestrator.cli.main import main
from orchestrator.domain.campaign import Ending
from orchestrator.domain.lifecycle import DeviceState, check_transition
from orchestrator.errors import ExitCode, IllegalTransition, exit_code_for
from tests.unit import engine_rules_rig as rig
from tests.unit.engine_rules_rig import Worlds, policy, states

package = pytest.fixture(scope="module")(rig.package_fixture)
world = pytest.fixture(rig.world_fixture)


def _out_of_order(_monitor: object) -> None:
    check_transition("bed01", DeviceState.PATCHED, DeviceState.UPLOADING)  # what a buggy step would do


def test_an_illegal_transition_ends_the_run_and_fails_no_monitor(world: Worlds) -> None:
    rules = world(2)
    rules.monitor(1).on("install", _out_of_order)
    engine = rules.engine(policy(exercise_triggers=False, max_workers=1))
    with pytest.raises(IllegalTransition, match="patched -> uploading"):
        engine.run()
    assert states(engine)["bed01"][0] == "installing"  # as journalled: nothing invented, resumable
    assert all(state != "failed" for state, _ in states(engine).values())


def test_the_cli_reports_a_bug_as_an_internal_error_with_exit_70(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def buggy_run(_args: object) -> int:
        raise IllegalTransition("bed01: patched -> uploading is not a legal step")

    monkeypatch.setattr(campaign, "cmd_run", buggy_run)
    assert exit_code_for(IllegalTransition("x")) is ExitCode.INTERNAL
    assert main(["run", "--inventory", "inv.yml", "--package", "p.tar", "--manifest", "m.json",
                 "--policy", "policy.yaml"]) == ExitCode.INTERNAL == 70
    err = capsys.readouterr().err
    assert err.startswith("cmspatch: internal error: IllegalTransition: bed01: patched -> uploading")
    assert "Traceback" not in err


def test_the_cli_alone_turns_how_a_run_ended_into_its_documented_exit_code() -> None:
    assert {e: campaign.EXIT_CODES[e] for e in Ending} == {
        Ending.COMPLETE: 0, Ending.INCOMPLETE: 1, Ending.HALTED: 4, Ending.ABORTED: 4, Ending.AT_GATE: 5,
        Ending.INTERRUPTED: 130}
    assert [e for e in Ending if e.resumable] == [Ending.AT_GATE, Ending.INTERRUPTED]
