"""The TUI and the engine read one projection: the budget shown before approving a wave is the one the
halting rule applies, and how a campaign ended is said in words.

The real app, engine, journal, trust checks and verification; the monitors are scripted
(``orchestrator.adapters.scripted``) so each campaign takes well under a second of engine time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.demo_trust import make_demo_trust
from orchestrator.adapters.package_verify import VerificationReport, verify_package
from orchestrator.domain.events import EventKind
from orchestrator.domain.projection import failure_budget
from orchestrator.engine import Engine
from tests.trust_helpers import FIXED_VERSION, write_package
from tests.tui.conftest import wait_for
from tests.tui.screen_text import screen_text
from tests.unit.engine_rules_rig import Rules, device, policy, records
from tui.app import CmspatchApp
from tui.model import Phase
from tui.screens.modals import ConfirmModal
from tui.session import Session, SessionConfig

SIZE = (160, 50)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> VerificationReport:
    directory = tmp_path_factory.mktemp("package")
    path = write_package(directory, version=FIXED_VERSION)
    trust = make_demo_trust(directory, path)
    return verify_package(path, trust.manifest, trust.policy, state=trust.state, record=False)


@pytest.fixture
def rules(tmp_path: Path, report: VerificationReport) -> Iterator[Rules]:
    world = Rules(tmp_path, report.require(), (device(1), device(2), device(3)))
    yield world
    world.close()


def _app(rules: Rules, report: VerificationReport, made: list[Engine], **overrides: Any) -> CmspatchApp:
    def new_engine(package: Any) -> Engine:
        made.append(rules.engine(policy(**overrides)))
        return made[-1]

    config = SessionConfig(operator="a.rossi", devices=rules.devices, verify=lambda: report,
                           new_engine=new_engine)
    return CmspatchApp(Session(config), tick_seconds=0.05)


async def _start(app: CmspatchApp, pilot: Any) -> None:
    await wait_for(pilot, lambda: app.session.verified is not None, what="the package to be verified")
    await pilot.press("s")
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the start dialog")
    await pilot.click("#confirm-yes")


def _notes(app: CmspatchApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_the_budget_before_approving_a_wave_is_the_one_that_halts(
        rules: Rules, report: VerificationReport) -> None:
    # An unreachable canary does not count (unreachable_is_failure off): the old TUI budget counted it and
    # told the operator no failure was left, while the engine would allow one more.
    rules.monitor(1).unreachable = True
    rules.monitor(3).install_exit = 5
    made: list[Engine] = []
    app = _app(rules, report, made, waves=("2", "100%"), require_approval=True, canary_must_pass=False,
               unreachable_is_failure=False, max_failures=1)
    async with app.run_test(size=SIZE) as pilot:
        await _start(app, pilot)
        await wait_for(pilot, lambda: app.model.phase is Phase.GATE and app.model.gate_wave == 1,
                       what="the gate of wave 2", timeout=30)
        engine = made[0]
        assert app.model.waves[0].devices == ["bed01", "bed02"], "the plan this test is written for"
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the approve dialog")
        assert isinstance(app.screen, ConfirmModal)
        shown = app.screen.body
        applied = failure_budget(engine.status, engine.policy, 1)
        assert f"failure budget: {applied.describe()}." in shown
        assert "0 failed of max 1: 1 left before halt" in shown
        await pilot.click("#confirm-yes")
        await wait_for(pilot, lambda: app.engine_done.is_set(), what="the campaign to end", timeout=30)
        halted = records(engine, EventKind.CAMPAIGN_HALTED)
        assert [r.data for r in halted] == [failure_budget(engine.status, engine.policy).decision().to_dict()]
        assert halted[0].data["rule"] == "max-failures" and halted[0].data["failed"] == 1
        await wait_for(pilot, lambda: app.model.phase is Phase.HALTED, what="the halt on screen")


async def test_a_finished_campaign_with_a_failure_is_not_shown_as_a_clean_finish(
        rules: Rules, report: VerificationReport) -> None:
    rules.monitor(2).install_exit = 5
    app = _app(rules, report, [], canary_must_pass=False)
    async with app.run_test(size=SIZE) as pilot:
        await _start(app, pilot)
        await wait_for(pilot, lambda: app.engine_done.is_set() and app.model.phase is Phase.FINISHED,
                       what="the campaign to finish", timeout=30)
        await pilot.press("c")
        await wait_for(pilot, lambda: "FINISHED, NOT ALL PATCHED (1 failed)" in screen_text(app),
                       what="the unfinished words on the Campaign tab", timeout=10)
        text = screen_text(app)
        assert "✔ Campaign" not in text
        await wait_for(pilot, lambda: any("Campaign ended:" in n for n in _notes(app)), what="the toast")
        assert [n for n in _notes(app) if "Campaign ended" in n] == [
            "Campaign ended: not every monitor patched: 1 failed"]
        assert not any("exit code" in n for n in _notes(app))
