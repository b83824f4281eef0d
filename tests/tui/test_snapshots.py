"""Snapshots of the stable screens, from a deterministic journal (fixed clock, fixed ids).

Update after an intended change with ``pytest tests/tui/test_snapshots.py --snapshot-update`` and look
at the SVGs in ``__snapshots__`` before committing them.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from tests.tui.synthetic import demo_records
from tui.app import CmspatchApp
from tui.session import Session, SessionConfig

SIZE = (160, 50)


def fixture_app() -> CmspatchApp:
    devices, records = demo_records(12)
    session = Session(SessionConfig(operator="a.rossi", devices=tuple(devices), title="cmspatch"))
    for record in records:
        session.inbox.put(record)
    return CmspatchApp(session)


async def settle(pilot: Pilot[Any]) -> None:
    app = pilot.app
    while len(app.session.inbox):  # type: ignore[attr-defined]
        await pilot.pause(0.05)
    await pilot.pause(0.2)


def test_fleet_screen_shows_states_in_words_and_symbols(snap_compare: Any) -> None:
    assert snap_compare(fixture_app(), terminal_size=SIZE, run_before=settle)


def test_campaign_screen_shows_waves_budget_and_deferrals(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("c")
        await pilot.pause(0.1)

    assert snap_compare(fixture_app(), terminal_size=SIZE, run_before=run_before)


def test_monitor_screen_shows_verdicts_and_timeline(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        pilot.app.open_monitor("mon-0000")  # type: ignore[attr-defined]
        await pilot.pause(0.1)

    assert snap_compare(fixture_app(), terminal_size=SIZE, run_before=run_before)
