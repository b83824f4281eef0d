"""The prompt to the technician: a monitor asks for a trigger, the engineer answers from its screen.

Real parts throughout: the demo's emulated fleet over SSH, the sinkhole, SQLite, the Engine in the app's
worker. ``Demo.press_trigger`` stands in for the technician's hands (the emulated key press) when the
answer is "done"; the answer itself goes through the Monitor screen, its modal and ``Engine.answer_trigger``.
"""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Input

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.demo import Demo
from orchestrator.domain.events import EventKind
from tests.tui.conftest import OPERATOR, demo_app, records, small_policy, wait_for
from tests.tui.screen_text import screen_text
from tests.tui.test_flows import SIZE, click
from tui.model import Phase
from tui.screens.modals import ConfirmModal, TriggerAnswerModal
from tui.screens.monitor import MonitorScreen

TECHNICIAN = "M. Rossi"  # a person at the bed, not the operator running the campaign


async def test_the_technician_answers_each_trigger_from_the_monitor_screen(
        demo: Demo, journal: SqliteJournal) -> None:
    policy = replace(small_policy(), trigger_by="technician", trigger_timeout=60.0)
    app = demo_app(demo, journal, technician_hands=demo.press_trigger)
    app.session.config.new_engine = lambda package: demo.engine(package, journal, operator=OPERATOR,
                                                                policy=policy)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.session.verified is not None, what="the package to be verified")
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmModal)
        await click(pilot, "#confirm-yes")
        canary = await wait_for(pilot, lambda: next((n for n, r in app.model.rows.items()
                                                     if r.trigger_request), None), what="a trigger request")
        assert "TECHNICIAN NEEDED" in "\n".join(app.model.log)
        await pilot.press("c")
        await wait_for(pilot, lambda: f"Technician needed at the bed: {canary}" in screen_text(app),
                       what="the campaign tab to say who is needed", timeout=10)
        app.open_monitor(canary)
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), what="the monitor screen")
        await wait_for(pilot, lambda: "TECHNICIAN NEEDED" in screen_text(app), what="the prompt on screen")
        assert "menu-update" in screen_text(app)

        await pilot.press("t")  # done at the bed: the demo's hands press the emulated key first
        await wait_for(pilot, lambda: isinstance(app.screen, TriggerAnswerModal), what="the answer modal")
        assert app.screen.query_one("#trig-name", Input).value == ""  # asked, never the operator's
        app.screen.query_one("#trig-name", Input).value = TECHNICIAN
        await click(pilot, "#trig-yes")
        await wait_for(pilot, lambda: (app.model.rows[canary].trigger_request or {}).get("trigger")
                       == "boot-key", what="the boot-key request")

        await pilot.press("n")  # could not: a note is required
        await wait_for(pilot, lambda: isinstance(app.screen, TriggerAnswerModal), what="the answer modal")
        assert app.screen.query_one("#trig-name", Input).value == TECHNICIAN  # as typed a moment ago
        await click(pilot, "#trig-yes")
        assert isinstance(app.screen, TriggerAnswerModal), "no reason given: the modal stays"
        await pilot.click("#trig-note")
        await pilot.press(*"patient arriving")
        await click(pilot, "#trig-yes")
        await wait_for(pilot, lambda: app.model.phase is Phase.HALTED, what="the canary to end the campaign")

        answered = [(r.data["trigger"], r.data["done"], r.data["by"], r.data["note"])
                    for r in records(journal, EventKind.TRIGGER_ANSWERED)]
        assert answered == [("menu-update", True, TECHNICIAN, ""),
                            ("boot-key", False, TECHNICIAN, "patient arriving")]
        exercised = [(r.data["trigger"], r.data["by"]) for r in records(journal, EventKind.TRIGGER_EXERCISED)]
        assert exercised == [("menu-update", f"technician {TECHNICIAN}")]
        verdicts = {r.data["cve"]: r.data["verdict"] for r in records(journal, EventKind.VERDICT)}
        assert verdicts["CVE-2025-0626"] == "fixed"  # the key was pressed and the sinkhole saw nothing
        assert verdicts["CVE-2025-1204"] == "inconclusive"  # not exercised: never fixed
        assert app.model.rows[canary].state == "failed"
