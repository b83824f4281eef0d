"""The bench session from the TUI: a hands-on unit's monitor screen offers b, the bench screen asks the
technician's name (empty, required) and drives ``bench_station.run_station`` step by step.

Real parts: the app as ``cmspatch tui --journal J --campaign C -i INVENTORY`` builds it (a read-only
watch of the journal, the bench runner of ``cli/tui.py`` writing through its own connection), emulated
hands-on units on a loopback bench address, the real sinkhole. The test's hands do to the emulated unit
what each step on the screen asks (power on, attach the simulator, press the keys), then answer y.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.cli.tui import bench_runner
from orchestrator.domain.events import EventKind
from orchestrator.domain.indicators import IndicatorMap
from orchestrator.domain.status import project
from orchestrator.emulator.bench_units import BenchCase, BenchUnit
from tests.integration.test_bench_station import UNIT, awaiting_journal
from tests.tui.conftest import OPERATOR, wait_for
from tests.tui.screen_text import screen_text
from tests.tui.test_flows import SIZE, click
from tui.app import CmspatchApp
from tui.screens.bench import BenchScreen
from tui.screens.monitor import MonitorScreen
from tui.session import Session, SessionConfig

TECHNICIAN = "B. Verdi"
WINDOW = 2.4


def inventory(path: Path, address: str) -> Path:
    path.write_text(f"""all:
  children:
    north:
      vars: {{site: north}}
      children:
        north_icu:
          vars: {{ward: icu}}
          hosts:
            {UNIT}: {{model: CMS8000, serial_number: "S9", bed: "09", delivery: manual,
                      bench_address: "{address}"}}
""", encoding="utf-8")
    return path


def bench_app(journal_file: Path, watched: SqliteJournal, inventory_file: Path, prefix: str) -> CmspatchApp:
    """``cmspatch tui --journal J --campaign c-bench -i INVENTORY --indicator-prefix P --bench-window W``."""
    args = argparse.Namespace(journal=str(journal_file), campaign="c-bench", inventory=str(inventory_file),
                              indicator_prefix=prefix, bench_window=WINDOW)
    config = SessionConfig(operator=OPERATOR, campaign_id="c-bench",
                           read_journal=lambda since: watched.records(since_seq=since),
                           bench=bench_runner(args, lambda: None))
    return CmspatchApp(Session(config))


async def open_bench(app: CmspatchApp, pilot: Pilot[Any]) -> BenchScreen:
    await wait_for(pilot, lambda: (row := app.model.rows.get(UNIT)) is not None and row.technician,
                   what="the confirmed unit in the fleet")
    app.open_monitor(UNIT)
    await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), what="the monitor screen")
    await wait_for(pilot, lambda: "Bench session" in screen_text(app),  # may_bench allows it: shown
                   what="the bench binding in the footer", timeout=10)
    await pilot.press("b")
    screen = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, BenchScreen) else None,
                            what="the bench screen")
    assert isinstance(screen, BenchScreen)
    assert screen.query_one("#bench-technician", Input).value == ""  # never the operator's or login name
    return screen


def unit_state(journal_file: Path) -> tuple[str, str, dict[str, str], dict[str, str]]:
    with SqliteJournal(journal_file, create=False, read_only=True) as j:
        d = project(j.records(), "c-bench").devices[UNIT]
    return (d.state.value, d.reason, {c: v.value for c, v in d.verdicts.items()},
            {c: lv.value for c, lv in d.verdict_levels.items()})


@pytest.mark.parametrize(("case", "prefix", "address", "state", "reason"), [
    (BenchCase.FIXED_NO_NETWORK, "127.221.4", "127.89.1.10", "patched", "verified-at-bench"),
    (BenchCase.FIXED_BOOT_KEY, "127.222.4", "127.89.2.10", "failed", "backdoor-still-present"),
])
async def test_a_bench_session_from_the_monitor_screen_ends_the_unit_as_its_firmware_deserves(
        tmp_path: Path, case: BenchCase, prefix: str, address: str, state: str, reason: str) -> None:
    journal_file = awaiting_journal(tmp_path / "j.db")
    inv = inventory(tmp_path / "inventory.yml", address)
    with BenchUnit(case, address=address, indicator_map=IndicatorMap(prefix),
                   telemetry_interval=0.1) as unit, \
            SqliteJournal(journal_file, create=False, read_only=True) as watched:
        hands: dict[str, Callable[[], None]] = {
            "on-bench": unit.power_on, "patient-simulator": unit.attach_simulator,
            "menu-update": lambda: unit.press("menu-update"), "boot-key": lambda: unit.press("boot-key")}
        app = bench_app(journal_file, watched, inv, prefix)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_bench(app, pilot)
            await pilot.click("#bench-technician")
            await pilot.press(*TECHNICIAN)
            await click(pilot, "#bench-start")
            answered: list[str] = []
            while len(answered) < 4:
                step = await wait_for(pilot, lambda: screen.asking if screen.asking not in answered else None,
                                      what=f"the next step after {answered}", timeout=30)
                text = screen_text(app)
                assert f"STEP {len(answered) + 1}/4 {step}" in text and f"of {WINDOW:g} s]" in text
                hands[step]()
                await pilot.press("y")
                answered.append(step)
            await wait_for(pilot, lambda: screen.result is not None or screen.error, what="the outcome",
                           timeout=30)
            assert screen.error is None
            outcome = "patched" if state == "patched" else "vulnerable"
            assert f"{UNIT}: {outcome} at bench level" in screen_text(app)
            await wait_for(pilot, lambda: app.model.rows[UNIT].state == state, what="the fleet row to follow")
    assert answered == ["on-bench", "patient-simulator", "menu-update", "boot-key"]
    st, why, verdicts, levels = unit_state(journal_file)
    assert (st, why) == (state, reason)
    assert set(levels.values()) == {"bench"}
    if case is BenchCase.FIXED_BOOT_KEY:
        assert verdicts["CVE-2025-1204"] == "vulnerable" and verdicts["CVE-2025-0626"] == "fixed"
    with SqliteJournal(journal_file, create=False, read_only=True) as j:
        steps = [(r.data["step"], r.data["done"], r.data["by"]) for r in j.records()
                 if r.kind is EventKind.BENCH_STEP]
    assert steps == [(s, True, TECHNICIAN) for s in answered]


async def test_a_bench_session_without_the_technicians_name_is_refused(tmp_path: Path) -> None:
    journal_file = awaiting_journal(tmp_path / "j.db")
    inv = inventory(tmp_path / "inventory.yml", "127.89.3.10")
    with SqliteJournal(journal_file, create=False, read_only=True) as watched:
        app = bench_app(journal_file, watched, inv, "127.223.4")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_bench(app, pilot)
            await click(pilot, "#bench-start")  # the name field left empty: never the login name
            await pilot.pause(0.3)
            assert screen.prompter is None and "technician's name" in screen_text(app)
            assert isinstance(app.screen, BenchScreen)
    with SqliteJournal(journal_file, create=False, read_only=True) as j:
        assert not [r for r in j.records() if r.kind is EventKind.BENCH_STARTED]
    assert unit_state(journal_file)[0] == "awaiting-technician"  # as the fixture left it: untouched
