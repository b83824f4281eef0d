"""What a person reads first: at 80x24 the fleet table keeps State and every CVE column, a monitor's
screen opens on its decisive rows (last change, why it failed, verdicts or why there are none), and the
hands-on sections appear on hands-on units only."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from orchestrator.domain.events import EventKind
from tests.tui.screen_text import screen_text
from tests.tui.synthetic import Recorder
from tests.tui.test_app_views import recorded_app, settled
from tui.app import CmspatchApp
from tui.model import COLUMN_KEYS, CVE_IDS, FLEET_COLUMNS, fit_columns
from tui.widgets.fleet_table import FleetTable

NARROW = (80, 24)


async def _open(app: CmspatchApp, pilot: Pilot[Any], name: str) -> str:
    """The monitor's screen as shown (the visible part only: nothing asserted on it needs a scroll)."""
    await settled(pilot)
    app.open_monitor(name)
    await pilot.pause(0.2)
    return screen_text(app)


def test_columns_give_way_in_order_and_state_and_the_cves_never_do() -> None:
    keys = lambda width: {COLUMN_KEYS[i] for i in fit_columns(width)}  # noqa: E731
    assert keys(200) == set(COLUMN_KEYS)
    assert "firmware" not in keys(150) and "site" in keys(150)
    for width in (80, 70, 64):
        assert {"state", *CVE_IDS} <= keys(width)
    assert "ward" in keys(78)  # the room left at 80 columns goes to the ward, not a bare bed number
    sorted_by_serial = fit_columns(90, keep="serial")  # the sort column gives way last
    assert "serial" in {COLUMN_KEYS[i] for i in sorted_by_serial} and "serial" not in keys(90)
    assert sum(FLEET_COLUMNS[i][2] + 2 for i in sorted_by_serial) <= 90


async def test_at_80x24_the_fleet_table_shows_state_and_every_cve() -> None:
    app = recorded_app()
    async with app.run_test(size=NARROW) as pilot:
        await settled(pilot)
        header = next(line for line in screen_text(app).splitlines() if "State" in line)
        for cve in CVE_IDS:
            assert cve.removeprefix("CVE-") in header, header
        assert "Firmware" not in header
        table = app.query_one(FleetTable)
        assert table.get_cell("mon-0002", "state") == "✖ failed"
        await pilot.resize_terminal(160, 50)
        await settled(pilot)
        assert "firmware" in table.shown_keys and table.get_cell("mon-0002", "state") == "✖ failed"


async def test_sorting_by_a_hidden_column_still_orders_the_rows() -> None:
    app = recorded_app()
    async with app.run_test(size=NARROW) as pilot:
        await settled(pilot)
        table = app.query_one(FleetTable)
        assert "site" not in table.shown_keys  # the default sort, given way at 80 columns
        order = [str(k.value) for k in table.rows]
        rows = app.model.rows
        assert order == sorted(order, key=lambda n: (rows[n].site, rows[n].ward, rows[n].bed))


async def test_a_failed_monitor_opens_on_why_and_says_it_was_never_verified() -> None:
    app = recorded_app()
    async with app.run_test(size=NARROW) as pilot:
        text = await _open(app, pilot, "mon-0002")
        assert "Last change 20:00:22: installing -> ✖ failed" in text
        assert "Failed: installer exited 1: not enough space" in text
        assert "Verdicts: no verdict: failed before verification" in text
        assert "no verdict yet" not in text


async def test_a_patched_monitor_opens_on_its_verdict_per_cve() -> None:
    app = recorded_app()
    async with app.run_test(size=NARROW) as pilot:
        text = await _open(app, pilot, "mon-0000")
        assert "verifying -> ✔ patched" in text
        for cve in CVE_IDS:
            assert f"{cve.removeprefix('CVE-')} ✔ fixed" in text


async def test_hands_on_sections_only_on_a_hands_on_unit() -> None:
    r = Recorder()
    r.seq = 10_000  # after the demo's records
    exercised = r.rec(EventKind.TRIGGER_EXERCISED, {"trigger": "menu-update", "by": "technician M. Rossi"},
                      "mon-0000")
    app = recorded_app(25, (exercised,))
    async with app.run_test(size=(160, 50)) as pilot:
        await settled(pilot)
        assert app.model.rows["mon-0024"].delivery == "manual"
        app.open_monitor("mon-0000")  # networked, though a technician exercised a trigger on it
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "Hands-on work order" not in text and "Technician confirms" not in text
        assert "trigger menu-update exercised by technician M. Rossi" in text  # on its timeline
        assert app.screen.check_action("confirm_manual", ()) is False
        await pilot.press("escape")
        app.open_monitor("mon-0024")
        await pilot.pause(0.2)
        assert "Hands-on work order" in screen_text(app)
        assert app.screen.check_action("confirm_manual", ()) is None  # shown, not yet possible


async def test_a_verdict_proven_at_the_bench_says_so_beside_the_tick() -> None:
    r = Recorder()
    r.seq = 20_000
    bench = [r.rec(EventKind.VERDICT, {"cve": cve, "verdict": "fixed", "level": "bench",
                                       "reason": "silent on the bench", "evidence": []}, "mon-0003")
             for cve in CVE_IDS]
    app = recorded_app(12, bench)
    async with app.run_test(size=NARROW) as pilot:
        text = await _open(app, pilot, "mon-0003")
        assert "0626 ✔ fixed (bench)" in text
        assert "(device+network)" not in text


async def test_a_failure_reason_code_is_explained_where_it_is_shown() -> None:
    r = Recorder()
    r.seq = 30_000
    failed = r.state("mon-0003", "verifying", "failed", 1, "installer-failed")
    app = recorded_app(12, (failed,))
    async with app.run_test(size=NARROW) as pilot:
        text = await _open(app, pilot, "mon-0003")
        assert "Failed: installer-failed - the monitor's installer reported a failure" in text
