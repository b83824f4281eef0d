"""`cmspatch bench` against emulated hands-on units on a loopback bench address (real sinkhole, real CLI).

A test technician reads the session's prompts on stderr and does what each asks to the emulated unit
(puts it on the bench, attaches the simulator, presses the menu update and the boot key), then answers on
stdin: the session sees only what the unit really sends.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.adapters.pcap import read_capture
from orchestrator.domain.events import Event, EventKind
from orchestrator.domain.indicators import IndicatorMap
from orchestrator.domain.status import project
from orchestrator.emulator.bench_units import BenchCase, BenchUnit
from tests.integration.test_pcap_capture import TSHARK, capture

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
    return drive_bench([UNIT, "--journal", str(journal), "--technician", "B. Verdi", "--address",
                        unit.address, "--window", WINDOW, "--sinkhole-prefix", prefix, *extra],
                       actions, answers)


def drive_bench(args: list[str], actions: dict[str, Callable[[], None]],
                answers: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`cmspatch bench ARGS` with a technician who reads each step's prompt, does ``actions[step]`` (unless
    ``answers`` says otherwise) and answers: (exit code, stdout, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.main", "bench", *args],
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


@pytest.mark.skipif(TSHARK is None, reason="tshark (Debian package tshark) is not installed")
@pytest.mark.parametrize(("chatter", "outcome"), [(0, "patched"), (1, "inconclusive")])
def test_a_fix_that_removes_networking_is_proven_by_a_real_capture_of_the_bench_port(
        tmp_path: Path, chatter: int, outcome: str) -> None:
    # tshark captures the unit's bench address from before the session until the technician stops it
    # when asked (after the window); cmspatch reads that file. A unit that sent nothing at all is patched
    # with its silence recorded; one that sent a single datagram (to no indicator address) is not.
    # The capture leaves out ICMP: an emulated unit is a loopback address, and the kernel (not the unit)
    # answers the session's UDP probe of it with port-unreachable, which a unit without networking could not.
    journal = awaiting_journal(tmp_path / "j.db")
    pcap = tmp_path / "bench-port.pcapng"
    prefix, address = ("127.217.4", "127.88.6.10") if chatter == 0 else ("127.218.4", "127.88.7.10")
    with BenchUnit(BenchCase.FIXED_NO_NETWORK, address=address, indicator_map=IndicatorMap(prefix),
                   telemetry_interval=0.1) as unit, ExitStack() as tshark:
        tshark.enter_context(capture(pcap, f"host {address} and not icmp", "127.0.0.1"))

        def simulator_and_chatter() -> None:
            unit.attach_simulator()
            for _ in range(chatter):  # e.g. a DHCP or NTP attempt left in the firmware
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind((address, 0))
                    s.sendto(b"hello?", ("127.0.0.1", 51998))
        code, out, err = run_bench(journal, unit, prefix, "--networking-removed", "--pcap", str(pcap),
                                   hands={"patient-simulator": simulator_and_chatter,
                                          "stop-capture": tshark.close})
    assert code == (0 if outcome == "patched" else 1), err
    assert f"{UNIT}: {outcome} at bench level" in out
    with SqliteJournal(journal, create=False, read_only=True) as j:
        records = list(j.records())
    silence = [r.data["evidence"] for r in records if r.kind is EventKind.CHECK_RESULT
               and r.data["evidence"]["check"] == "bench-silence"]
    watch = [r.data["evidence"] for r in records if r.kind is EventKind.CHECK_RESULT
             and r.data["evidence"]["check"] == "bench-watch"]
    assert watch[0]["outcome"] == "pass" and f"pcap {pcap}" in watch[0]["details"]["observers"], (
        watch[0]["details"], read_capture(pcap).last_packet)
    assert silence[0]["details"]["packets_from_unit"] == chatter
    assert silence[0]["outcome"] == ("pass" if chatter == 0 else "fail"), silence
    finished = next(r.data for r in records if r.kind is EventKind.BENCH_FINISHED)
    assert finished["silent"] is (chatter == 0) and finished["outcome"] == outcome
    assert finished["capture"]["sha256"] == read_capture(pcap).sha256
    assert finished["capture"]["senders"].get(address, 0) == chatter  # the per-sender counts, journalled
