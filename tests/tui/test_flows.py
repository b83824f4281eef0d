"""The TUI driving real campaigns: a real engine on emulated monitors over SSH, a real journal, real
signatures. Every decision goes through the keys and confirmation modals a person would use."""

from __future__ import annotations

import threading

from textual.widgets import Input

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.demo import Demo
from orchestrator.domain.campaign import Ending
from orchestrator.domain.events import EventKind
from tests.tui.conftest import OPERATOR, demo_app, records, wait_for
from tests.tui.screen_text import screen_text
from tui.model import Phase
from tui.screens.modals import ConfirmModal, TechnicianModal
from tui.screens.monitor import MonitorScreen

SIZE = (160, 50)


async def click(pilot, selector: str) -> None:  # type: ignore[no-untyped-def]
    """Click a widget of the screen on top once it is there (a modal composes after it is pushed)."""
    await wait_for(pilot, lambda: pilot.app.screen.query(selector), what=f"{selector} on screen")
    await pilot.click(selector)


async def start_campaign(app, pilot) -> None:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: app.session.verified is not None, what="the package to be verified")
    await pilot.press("s")
    assert isinstance(app.screen, ConfirmModal), "starting must ask first"
    await click(pilot, "#confirm-yes")
    await wait_for(pilot, lambda: app.model.phase is Phase.GATE, what="the canary to finish at the gate")


async def test_refused_package_shows_its_reason_and_cannot_start(demo: Demo, journal: SqliteJournal) -> None:
    app = demo_app(demo, journal, refused=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.session.report is not None, what="the trust report")
        await pilot.press("p")
        text = screen_text(app)
        assert "PACKAGE REFUSED" in text
        assert "still carries the backdoor" in text
        await pilot.press("s")
        assert not isinstance(app.screen, ConfirmModal)
        app.action_start()  # also refused when triggered directly (command palette, mouse)
        await pilot.pause()
        assert app.session.engine is None
    assert journal.campaigns() == []


async def test_canary_then_next_wave_approved_through_the_confirmation_modal(
        demo: Demo, journal: SqliteJournal) -> None:
    app = demo_app(demo, journal)
    async with app.run_test(size=SIZE) as pilot:
        await start_campaign(app, pilot)
        canary = app.model.waves[0].devices[0]
        assert app.model.rows[canary].state == "patched"
        assert app.model.gate_wave == 1
        await pilot.press("a")
        assert isinstance(app.screen, ConfirmModal)
        await click(pilot, "#confirm-no")  # cancelling changes nothing
        assert not records(journal, EventKind.GATE_APPROVED)
        await pilot.press("a")
        await click(pilot, "#confirm-yes")
        await wait_for(pilot, lambda: records(journal, EventKind.GATE_APPROVED), what="wave 2 approved")
        assert records(journal, EventKind.GATE_APPROVED)[0].data == {"wave": 1, "approver": OPERATOR}
        await wait_for(pilot, lambda: app.model.gate_wave == 2, what="wave 3's gate")
        # The screen follows the model on a coalescing timer: wait for the frame, don't race it.
        await wait_for(pilot, lambda: "Wave 2" in screen_text(app), what="wave 2 on screen", timeout=10)


async def test_pause_then_resume_is_journalled_and_shown(demo: Demo, journal: SqliteJournal) -> None:
    app = demo_app(demo, journal)
    async with app.run_test(size=SIZE) as pilot:
        await start_campaign(app, pilot)
        await pilot.press("z")
        await wait_for(pilot, lambda: app.model.phase is Phase.PAUSED, what="the pause to show")
        await wait_for(pilot, lambda: "PAUSED" in screen_text(app), what="PAUSED on screen", timeout=10)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.model.phase is Phase.GATE, what="the resume to show")
        assert [r.data["by"] for r in records(journal, EventKind.CAMPAIGN_PAUSED)] == [OPERATOR]
        assert [r.data["by"] for r in records(journal, EventKind.CAMPAIGN_RESUMED)] == [OPERATOR]


async def test_abort_asks_for_a_reason_and_skips_what_was_not_started(
        demo: Demo, journal: SqliteJournal) -> None:
    app = demo_app(demo, journal)
    async with app.run_test(size=SIZE) as pilot:
        await start_campaign(app, pilot)
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmModal)
        await click(pilot, "#confirm-yes")  # no reason typed: refused, the modal stays
        assert isinstance(app.screen, ConfirmModal)
        reason = app.screen.query_one("#confirm-reason", Input)
        reason.value = "wrong package for ward B"
        reason.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.model.phase is Phase.ABORTED and app.engine_done.is_set(),
                       what="the abort to end the campaign")
        assert app.session.outcome.ending is Ending.ABORTED
        aborted = records(journal, EventKind.CAMPAIGN_ABORTED)
        assert aborted[0].data == {"by": OPERATOR, "reason": "wrong package for ward B"}
        skipped = [n for n, r in app.model.rows.items() if r.state == "skipped"]
        assert len(skipped) == len(app.model.rows) - 1  # everything but the patched canary


async def test_monitor_screen_shows_the_evidence_behind_each_verdict(
        demo: Demo, journal: SqliteJournal) -> None:
    app = demo_app(demo, journal)
    async with app.run_test(size=SIZE) as pilot:
        await start_campaign(app, pilot)
        canary = app.model.waves[0].devices[0]
        await pilot.press("f", "slash", *canary, "enter")
        await wait_for(pilot, lambda: app.query_one("#fleet-table").row_count == 1, what="the search")
        await pilot.press("enter")
        assert isinstance(app.screen, MonitorScreen)
        text = screen_text(app) + str(app.screen.query_one("#monitor-verdicts").content)
        assert "State: ✔ patched" in text
        for cve in ("CVE-2024-12248", "CVE-2025-0626", "CVE-2025-0683", "CVE-2025-1204"):
            assert f"{cve}: ✔ fixed" in text
        assert "[pass] monitor-mount-string" in text  # the evidence, not just the verdict
        assert "sha256 " in text
        await pilot.press("escape")
        assert not isinstance(app.screen, MonitorScreen)


async def test_technician_confirms_a_hands_on_unit_from_its_monitor_screen(
        demo: Demo, journal: SqliteJournal) -> None:
    app = demo_app(demo, journal)
    manual = demo.manual_units[0]
    async with app.run_test(size=SIZE) as pilot:
        await start_campaign(app, pilot)
        await pilot.press("a")
        await click(pilot, "#confirm-yes")
        await wait_for(pilot, lambda: app.model.rows[manual].state == "awaiting-technician",
                       what="the work order")
        app.open_monitor(manual)
        await pilot.pause()
        text = screen_text(app)
        assert "Hands-on work order" in text and "Copy the file to a clean USB stick" in text
        assert "Ask the technician to start a firmware update from the monitor's menu" in text
        await pilot.press("m")
        assert isinstance(app.screen, TechnicianModal)
        assert app.screen.query_one("#tech-name", Input).value == ""  # asked, never the login name
        app.screen.query_one("#tech-name", Input).value = "L. Bianchi"
        app.screen.query_one("#tech-version", Input).value = "CMS7.820.200.05"
        await click(pilot, "#tech-yes")
        await wait_for(pilot, lambda: records(journal, EventKind.TECHNICIAN_CONFIRMED),
                       what="the confirmation in the journal")
        assert records(journal, EventKind.TECHNICIAN_CONFIRMED)[0].data["technician"] == "L. Bianchi"
        await wait_for(pilot, lambda: app.model.rows[manual].state == "awaiting-bench",
                       what="the unit to await its bench session")
        confirmed = records(journal, EventKind.TECHNICIAN_CONFIRMED)[0].data
        assert confirmed["version"] == "CMS7.820.200.05"
        text = screen_text(app)
        assert "after CMS7.820.200.05 (read by technician L. Bianchi)" in text
        assert "Waiting for its bench session" in text and f"cmspatch bench {manual}" in text


async def test_headless_campaign_is_watched_from_the_journal_then_resumed(
        demo: Demo, journal: SqliteJournal) -> None:
    package = demo.verify().require()
    headless = demo.engine(package, journal, operator="night-shift")
    headless.stop_at_gate()
    outcome = headless.run()  # the canary, then stops at wave 2's gate like `cmspatch run` without --yes
    assert outcome.ending is Ending.AT_GATE
    cid = outcome.campaign_id
    app = demo_app(demo, journal, campaign_id=cid,
                   read_journal=lambda since: journal.records(cid, since_seq=since),
                   resume_engine=lambda pkg: demo.resume(pkg, journal, cid, operator=OPERATOR))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model.phase is Phase.GATE, what="the journal's state")
        assert app.model.campaign_id == cid
        assert app.model.rows[app.model.waves[0].devices[0]].state == "patched"
        await wait_for(pilot, lambda: app.session.verified is not None, what="the package check")
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmModal)
        await click(pilot, "#confirm-yes")
        await wait_for(pilot, lambda: app.session.engine is not None and app.check_action("approve", ()),
                       what="the resumed engine at the gate")
        await pilot.press("a")
        await click(pilot, "#confirm-yes")
        await wait_for(pilot, lambda: app.model.gate_wave == 2, what="wave 2 done after resuming")
        approvals = records(journal, EventKind.GATE_APPROVED)
        assert [(r.campaign, r.data["approver"]) for r in approvals] == [(cid, OPERATOR)]
        assert len({r.seq for r in app.model.rows[app.model.waves[0].devices[0]].timeline}) == \
            len(app.model.rows[app.model.waves[0].devices[0]].timeline)  # nothing shown twice


async def test_read_only_window_refuses_every_decision(demo: Demo, journal: SqliteJournal) -> None:
    package = demo.verify().require()
    engine = demo.engine(package, journal, operator="night-shift")
    worker = threading.Thread(target=engine.run, daemon=True)
    worker.start()
    try:
        app = demo_app(demo, journal, read_only=True, campaign_id=engine.campaign_id,
                       read_journal=lambda since: journal.records(engine.campaign_id, since_seq=since))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.model.phase is Phase.GATE, what="the watched gate")
            footer = screen_text(app).splitlines()[-1]
            for hidden in ("Approve", "Pause", "Abort", "Start"):
                assert hidden not in footer
            for key in ("a", "x", "z", "s"):
                await pilot.press(key)
                assert not isinstance(app.screen, ConfirmModal)
            app.action_approve()  # triggered anyway (palette, script): refused, and said so
            app.action_abort()
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmModal)
            assert any("read-only" in n.message for n in app._notifications)
        assert not records(journal, EventKind.GATE_APPROVED)
        assert not records(journal, EventKind.CAMPAIGN_ABORTED)
    finally:
        engine.interrupt("test")
        worker.join(timeout=30)
