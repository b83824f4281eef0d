"""The demo's hands-on story end to end, as a new user runs it: the campaign issues the work order, a named
technician confirms the USB install (with the version they read), `cmspatch bench` watches the emulated
unit on its bench address while the technician does each step, and the unit ends patched with its verdicts
at bench level, in status and in all five exports.

Real parts: the demo's emulated fleet and bench unit on loopback, the sinkholes, SQLite, the CLI process.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.demo import Demo, demo_policy, start_demo
from orchestrator.domain.indicators import IndicatorMap
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.exports.csaf import render_csaf
from orchestrator.exports.csv import render_csv
from orchestrator.exports.cyclonedx import render_cyclonedx
from orchestrator.exports.html import render_html
from orchestrator.exports.json import render_json
from orchestrator.exports.model import build_model
from tests.integration.conftest import unique_prefixes
from tests.integration.test_bench_station import drive_bench

TECHNICIAN = "L. Bianchi"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    prefix, indicator_map, port = unique_prefixes()
    bench = IndicatorMap(f"127.{251 - int(indicator_map.loopback_prefix.split('.')[1]) % 50}."
                         f"{indicator_map.loopback_prefix.split('.')[2]}")
    d = start_demo(tmp_path / "demo", monitors=1, faults={}, states={"vulnerable": 1}, reboot_seconds=0.2,
                   fast=True, address_prefix=prefix, port=port, indicator_map=indicator_map, bench_map=bench,
                   policy=demo_policy(fast=True, waves=("100%",), observation_window=0.3))
    try:
        yield d
    finally:
        d.close()


def _bench(demo: Demo, unit: str) -> tuple[int, str, str]:
    """`cmspatch bench` with the demo's technician at the bench: each step done, then answered."""
    assert demo.bench_map is not None
    return drive_bench([unit, "--journal", str(demo.journal_path), "--technician", "B. Verdi",
                        "-i", str(demo.inventory_path), "--window", "2.4",
                        "--sinkhole-prefix", demo.bench_map.loopback_prefix], demo.bench_hands(unit))


def _confirmed(demo: Demo) -> tuple[str, Any, str]:
    """The demo's campaign run, its hands-on unit confirmed by the named technician: (unit, package,
    campaign), the unit awaiting its bench session."""
    unit = demo.manual_units[0]
    package = demo.verify().require()
    with SqliteJournal(demo.journal_path) as journal:
        engine = demo.engine(package, journal)
        engine.run(auto_approve=True)
        assert engine.status.devices[unit].state is DeviceState.AWAITING_TECHNICIAN
        engine.confirm_manual(unit, TECHNICIAN, version=package.target_version)
        assert engine.status.devices[unit].state is DeviceState.AWAITING_BENCH
    return unit, package, engine.campaign_id


def test_the_demos_hands_on_unit_is_confirmed_benched_and_ends_patched_at_bench_level(demo: Demo) -> None:
    unit, package, _ = _confirmed(demo)

    code, out, err = _bench(demo, unit)
    assert code == 0, err
    assert f"{unit}: patched at bench level" in out

    with SqliteJournal(demo.journal_path, create=False, read_only=True) as journal:
        records = list(journal.records())
    model = build_model(records)
    row = next(d for d in model.devices if d.name == unit)
    assert (row.state, row.reason) == ("patched", "verified-at-bench")
    assert {c.level for c in row.cves} == {"bench"} and row.evidence_level == "bench"
    # The shipped profile names the UDP port, so the bench probes it too: the silent unit is fixed on all
    # four (a profile without a port would leave CVE-2024-12248 inconclusive; domain.bench).
    assert {c.cve: c.verdict for c in row.cves} == dict.fromkeys(
        ("CVE-2024-12248", "CVE-2025-0626", "CVE-2025-0683", "CVE-2025-1204"), "fixed")
    assert row.firmware_after == package.target_version
    assert row.firmware_after_by == f"technician {TECHNICIAN}"
    csv_row = next(r for r in csv.DictReader(io.StringIO(render_csv(model).decode())) if r["device"] == unit)
    assert csv_row["evidence_level"] == "bench" and csv_row["state"] == "patched"
    doc = json.loads(render_json(model))
    assert next(d for d in doc["devices"] if d["device"] == unit)["evidence_level"] == "bench"
    assert "Evidence level: bench" in render_csaf(model).decode()
    assert "Evidence level bench:" in render_cyclonedx(model).decode()
    assert "<strong>bench</strong>" in render_html(model).decode()


class _SaysYes:
    """The person at the TUI's bench screen who answers y to every step and touches nothing: in the demo
    the station's own hands (Demo.bench_hands) must do each step, or the unit would stay dark."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    def ask(self, step: str, number: int, instructions: str, *, elapsed: float, window: float) -> Any:
        from orchestrator.ports import Answer

        self.steps.append(step)
        return Answer(done=True)

    def say(self, message: str) -> None:
        pass


def test_the_tui_demos_bench_station_does_what_the_technician_answers_and_ends_patched(demo: Demo) -> None:
    from orchestrator.cli.tui import _demo_bench

    unit, _, campaign = _confirmed(demo)
    screen, records = _SaysYes(), []
    result = _demo_bench(demo, window=2.4)(campaign, unit, "B. Verdi", screen, records.append)
    assert screen.steps == ["on-bench", "patient-simulator", "menu-update", "boot-key"]
    assert result.outcome == "patched", result
    with SqliteJournal(demo.journal_path, create=False, read_only=True) as journal:
        row = next(d for d in build_model(list(journal.records())).devices if d.name == unit)
    assert (row.state, row.reason, row.evidence_level) == ("patched", "verified-at-bench", "bench")
    assert records  # the session's records reach the view
    # The station's hands did each step to the emulated unit (the unit's silence alone would not show it).
    done = [a.get("kind") for a in demo.bench_units[unit].activity()]
    assert done[0] == "boot" and "simulator-attached" in done and done.count("trigger") == 2, done
