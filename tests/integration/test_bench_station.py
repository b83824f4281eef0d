"""`cmspatch bench` against emulated hands-on units on a loopback bench address (real sinkhole, real CLI).

A test technician reads the session's prompts on stderr and does what each asks to the emulated unit
(puts it on the bench, attaches the simulator, presses the menu update and the boot key), then answers on
stdin: the session sees only what the unit really sends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.domain.events import Event, EventKind
from orchestrator.domain.indicators import IndicatorMap
from orchestrator.domain.status import project
from orchestrator.emulator.bench_units import BenchCase, BenchUnit

WINDOW = "2.4"
UNIT = "north-icu-bed09"


def awaiting_journal(path: Path, campaign: str = "c-bench") -> Path:
    """A campaign journal whose hands-on unit waits for its bench session, as the engine leaves it."""
    with SqliteJournal(path) as journal:
        journal.append(Event(campaign, EventKind.CAMPAIGN_CREATED, {
            "waves": [[UNIT]], "devices": {UNIT: {"model": "CMS8000", "serial": "S9", "site": "north",
                                                 "ward": "icu", "bed": "09", "asset_tag": None,
                                                 "firmware": "x", "delivery": "manual"}}}))
        journal.append(Event(campaign, EventKind.STATE_CHANGED,
                             {"from": "pending", "to": "awaiting-technician", "reason": "work-order-issued",
                              "wave": 0}, UNIT))
        journal.append(Event(campaign, EventKind.TECHNICIAN_CONFIRMED,
                             {"technician": "A. Rossi", "note": "", "version": "CMS7.820.200.05/1.10(1.10)"},
                             UNIT))
    return path


def run_bench(journal: Path, unit: BenchUnit, prefix: str, *extra: str,
              hands: dict[str, Callable[[], None]] | None = None,
              answers: dict[str, str] | None = None) -> tuple[int, str, str]:
    actions = {"on-bench": unit.power_on, "patient-simulator": unit.attach_simulator,
               "menu-update": lambda: unit.press("menu-update"), "boot-key": lambda: unit.press("boot-key")}
    actions.update(hands or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.main", "bench", UNIT, "--journal", str(journal),
         "--technician", "B. Verdi", "--address", unit.address, "--window", WINDOW,
         "--sinkhole-prefix", prefix, *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"})
    assert proc.stdin is not None and proc.stderr is not None and proc.stdout is not None
    err: list[str] = []

    def technician() -> None:
        assert proc.stdin is not None and proc.stderr is not None
        for line in proc.stderr:
            err.append(line)
            if line.startswith("bench: STEP "):
                step = line.removeprefix("bench: STEP ").split(":", 1)[0]
                answer = (answers or {}).get(step, "y")
                if answer == "y":
                    actions[step]()
                proc.stdin.write(f"{answer}\n")
                proc.stdin.flush()

    hand = threading.Thread(target=technician, daemon=True)
    hand.start()
    out = proc.stdout.read()
    code = proc.wait(timeout=60)
    hand.join(10)
    return code, out, "".join(err)


def verdicts_in(journal: Path) -> tuple[dict[str, str], dict[str, str], dict[str, object]]:
    with SqliteJournal(journal, create=False, read_only=True) as j:
        device = project(j.records(), "c-bench").devices[UNIT]
    assert device.bench_result is not None
    return ({c: v.value for c, v in device.verdicts.items()},
            {c: lv.value for c, lv in device.verdict_levels.items()}, device.bench_result)


@pytest.mark.parametrize(("case", "prefix", "address", "outcome"), [
    (BenchCase.VULNERABLE, "127.211.4", "127.88.1.10", "vulnerable"),
    (BenchCase.INSUFFICIENT, "127.212.4", "127.88.2.10", "vulnerable"),
    (BenchCase.FIXED_NO_NETWORK, "127.213.4", "127.88.3.10", "patched"),
    (BenchCase.FIXED_BOOT_KEY, "127.214.4", "127.88.4.10", "vulnerable"),
])
def test_each_hands_on_case_ends_as_its_firmware_deserves(tmp_path: Path, case: BenchCase, prefix: str,
                                                         address: str, outcome: str) -> None:
    journal = awaiting_journal(tmp_path / "j.db")
    with BenchUnit(case, address=address, indicator_map=IndicatorMap(prefix), telemetry_interval=0.1) as unit:
        code, out, err = run_bench(journal, unit, prefix)
    assert code == (0 if outcome == "patched" else 1), err
    assert f"{UNIT}: {outcome} at bench level" in out
    verdicts, levels, result = verdicts_in(journal)
    assert set(levels.values()) == {"bench"}
    assert result["outcome"] == outcome
    with SqliteJournal(journal, create=False, read_only=True) as j:
        state = project(j.records(), "c-bench").devices[UNIT].state.value
    assert state == {"patched": "patched", "vulnerable": "failed"}[outcome]  # the session ends the unit
    if case is BenchCase.FIXED_BOOT_KEY:
        assert verdicts["CVE-2025-1204"] == "vulnerable" and verdicts["CVE-2025-0626"] == "fixed"
    if case is BenchCase.FIXED_NO_NETWORK:
        assert verdicts == {"CVE-2025-0626": "fixed", "CVE-2025-1204": "fixed", "CVE-2025-0683": "fixed",
                            "CVE-2024-12248": "fixed"}
    if case is BenchCase.VULNERABLE:
        assert verdicts["CVE-2025-0683"] == "vulnerable"
        assert "SYNTHETIC-PATIENT" not in out + err  # the leak is reported by field names, never in clear


def test_a_bench_session_needs_a_named_technician_never_the_login_name(tmp_path: Path) -> None:
    journal = awaiting_journal(tmp_path / "j.db")
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "bench", UNIT, "--journal",
                           str(journal), "--sinkhole-prefix", "127.215.4"], input="\n", capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "[no-technician]" in proc.stderr
    with SqliteJournal(journal, create=False, read_only=True) as j:
        assert not [r for r in j.records() if r.kind is EventKind.BENCH_STARTED]


def test_a_unit_not_waiting_for_its_bench_session_is_refused(tmp_path: Path) -> None:
    journal = awaiting_journal(tmp_path / "j.db")
    with SqliteJournal(journal) as j:
        j.append(Event("c-bench", EventKind.STATE_CHANGED, {"from": "awaiting-technician", "to": "skipped",
                                                            "reason": "aborted"}, UNIT))
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "bench", UNIT, "--journal",
                           str(journal), "--technician", "B. Verdi", "--sinkhole-prefix", "127.215.4"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "[not-awaiting-bench]" in proc.stderr


def test_the_bench_never_disturbs_a_unit_the_technician_did_not_confirm_off_any_patient(tmp_path: Path
                                                                                       ) -> None:
    # The clinical gate on the CLI path: the unit is switched on (its UDP service listening) but the
    # technician says it is still at the bed. No trigger is requested, no UDP packet reaches it, and the
    # session ends inconclusive with the gate's words, never patched.
    journal = awaiting_journal(tmp_path / "j.db")
    with BenchUnit(BenchCase.VULNERABLE, address="127.88.5.10", indicator_map=IndicatorMap("127.216.4"),
                   telemetry_interval=0.1) as unit:
        unit.power_on()
        code, _, err = run_bench(journal, unit, "127.216.4", answers={"on-bench": "n still at bed 9"})
        activity = unit.activity()
    assert code == 1, err
    assert "STEP menu-update" not in err and "STEP boot-key" not in err and "probing" not in err
    assert not [a for a in activity if a["kind"] in ("udp", "trigger")], activity
    with SqliteJournal(journal, create=False, read_only=True) as j:
        steps = {r.data["step"]: r.data for r in j.records() if r.kind is EventKind.BENCH_STEP}
        finished = [r.data for r in j.records() if r.kind is EventKind.BENCH_FINISHED]
    refused = "not asked: the technician has not confirmed the unit is on the bench, off any patient"
    assert steps["menu-update"]["note"].startswith(refused) and not steps["menu-update"]["done"]
    assert "B. Verdi could not put it on the bench (still at bed 9)" in steps["boot-key"]["note"]
    assert finished and finished[0]["outcome"] != "patched"
