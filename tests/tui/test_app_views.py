"""The views on a recorded journal: command palette, mouse sorting, search, log pane, help."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.command import CommandPalette
from textual.pilot import Pilot

from orchestrator.domain.events import JournalRecord
from tests.tui.screen_text import screen_text
from tests.tui.synthetic import demo_records
from tui.app import CmspatchApp
from tui.model import FLEET_COLUMNS
from tui.screens.modals import HelpScreen
from tui.session import Session, SessionConfig
from tui.widgets.fleet_table import FleetTable

SIZE = (160, 50)


def recorded_app(n: int = 12, extra: Iterable[JournalRecord] = ()) -> CmspatchApp:
    """The app over the synthetic campaign at its first gate (and ``extra`` records after it)."""
    devices, records = demo_records(n)
    session = Session(SessionConfig(operator="a.rossi", devices=tuple(devices)))
    for record in (*records, *extra):
        session.inbox.put(record)
    return CmspatchApp(session)


async def settled(pilot: Pilot[Any]) -> None:
    while len(pilot.app.session.inbox):  # type: ignore[attr-defined]
        await pilot.pause(0.05)
    await pilot.pause(0.2)


def shown_states(app: CmspatchApp) -> list[str]:
    table = app.query_one(FleetTable)
    return [str(table.get_row_at(i)[6]) for i in range(table.row_count)]


async def test_command_palette_filters_the_fleet_to_failed_monitors() -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"Show failed monitors")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert shown_states(app) == ["✖ failed"]


async def test_clicking_a_column_header_sorts_by_it_and_again_reverses() -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        table = app.query_one(FleetTable)
        state_x = sum(width + 2 for _, _, width in FLEET_COLUMNS[:6]) + 2  # the State header (cells pad 1+1)
        await pilot.click(FleetTable, offset=(state_x, 0))
        assert table.query_spec.sort == "state" and not table.query_spec.reverse
        first = shown_states(app)
        assert first == sorted(first)
        await pilot.click(FleetTable, offset=(state_x, 0))
        assert table.query_spec.reverse
        assert shown_states(app) == sorted(first, reverse=True)


async def test_search_narrows_the_table_and_counts_stay_for_the_whole_fleet() -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("slash", *"state:deferred", "enter")
        assert shown_states(app) == ["‖ deferred"]
        text = screen_text(app)
        assert "12 monitors:" in text and "1/12 shown" in text


async def test_escape_leaves_the_search_box_for_the_table_and_keeps_the_filter() -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("slash", *"state:deferred")
        assert app.focused is not None and app.focused.id == "fleet-filter"
        await pilot.press("escape")
        assert isinstance(app.focused, FleetTable)
        await pilot.pause(0.4)  # the filter applies after its debounce, as when typing
        assert shown_states(app) == ["‖ deferred"]
        await pilot.press("f")  # a key is a command again, not text in the box
        assert app.query_one("#fleet-filter").value == "state:deferred"  # type: ignore[attr-defined]


async def test_log_pane_shows_failures_and_deferrals_and_can_be_hidden() -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        text = screen_text(app)
        assert "mon-0002 ✖ failed: installer exited 1" in text
        assert "mon-0001 ‖ deferred: patient connected" in text
        await pilot.press("l")
        assert "mon-0002 ✖ failed" not in screen_text(app)


async def test_question_mark_opens_help_and_escape_closes_it() -> None:
    app = recorded_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.pause()  # mounted before the next key: under load escape otherwise reached the fleet
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
