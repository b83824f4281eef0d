"""Triggers exercised by a person: the engine asks, waits, and only then watches and decides.

On a real unit no service command presses the menu "update" or the boot-time "C" key; a technician does.
Here the technician is played by the test: it presses the emulated monitor's key through the emulator's
own API (as a hand on the real unit would) and answers the request in the TUI's way
(``Engine.answer_trigger``) or from another terminal (the real ``cmspatch confirm --trigger`` command).
Everything else is real: SSH to the emulated monitors, the sinkhole, SQLite, the verdict rules.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator import wiring
from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.adapters.sinkhole import Sinkhole
from orchestrator.adapters.ssh import SshTransport
from orchestrator.domain.campaign import Ending
from orchestrator.domain.events import Event, EventKind, JournalRecord
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.verdicts import Verdict
from orchestrator.technician import TechnicianDesk, trigger_answer_payload
from orchestrator.verification import verify_device
from tests.integration.engine_rig import fast_policy, rig
from tests.integration.engine_rig import technician as _technician

NFS_CVES = {"CVE-2025-0626", "CVE-2025-1204"}


def _records(journal: SqliteJournal, campaign: str, kind: EventKind) -> list[JournalRecord]:
    return [r for r in journal.records(campaign) if r.kind is kind]


def test_technician_exercises_both_triggers_and_the_monitor_is_proven_fixed(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        engine = r.engine(journal, fast_policy(trigger_by="technician", trigger_timeout=30.0))
        name = next(iter(engine.devices))
        engine.subscribe(_technician(r, lambda d, t: engine.answer_trigger(d, t, "Ana Lima")))
        outcome = engine.run()

        assert engine.status.devices[name].state is DeviceState.PATCHED, engine.status.devices[name].reason
        assert set(engine.status.devices[name].verdicts.values()) == {Verdict.FIXED}
        requested = _records(journal, engine.campaign_id, EventKind.TRIGGER_REQUESTED)
        assert [q.data["trigger"] for q in requested] == ["menu-update", "boot-key"]
        assert all(q.data["instructions"] and q.data["timeout"] == 30.0 for q in requested)
        exercised = _records(journal, engine.campaign_id, EventKind.TRIGGER_EXERCISED)
        assert {(e.data["trigger"], e.data["by"]) for e in exercised} == {
            ("menu-update", "technician Ana Lima"), ("boot-key", "technician Ana Lima")}
        assert engine.status.devices[name].trigger_request is None
        assert outcome.ending is Ending.COMPLETE
        assert journal.verify().ok


def test_a_trigger_nobody_answers_leaves_its_cve_inconclusive_never_fixed(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        engine = r.engine(journal, fast_policy(trigger_by="technician", trigger_timeout=0.5))
        name = next(iter(engine.devices))
        engine.run()

        device = engine.status.devices[name]
        assert device.state is DeviceState.FAILED and device.reason == "verification-inconclusive"
        for cve in NFS_CVES:
            assert device.verdicts[cve] is Verdict.INCONCLUSIVE
        assert device.verdicts["CVE-2025-0683"] is Verdict.FIXED  # the other CVEs do not need a trigger
        verdicts = {v.data["cve"]: v.data["reason"] for v in _records(journal, engine.campaign_id,
                                                                       EventKind.VERDICT)}
        assert "no technician answered within 0.5 s" in verdicts["CVE-2025-0626"]
        assert not _records(journal, engine.campaign_id, EventKind.TRIGGER_EXERCISED)


def test_an_answer_from_another_terminal_reaches_the_running_campaign(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        engine = r.engine(journal, fast_policy(trigger_by="technician", trigger_timeout=60.0))
        name = next(iter(engine.devices))
        answers: list[subprocess.CompletedProcess[str]] = []
        shown: list[str] = []

        def confirm(device: str, trigger: str) -> None:
            status = subprocess.run(  # what the person in the other terminal looks at first
                [sys.executable, "-m", "orchestrator.cli.main", "status", "--journal", str(r.journal_path)],
                capture_output=True, text=True, timeout=60)
            shown.append(status.stdout)
            answers.append(subprocess.run(
                [sys.executable, "-m", "orchestrator.cli.main", "confirm", device, "--trigger", trigger,
                 "--technician", "Bo Chen", "--journal", str(r.journal_path)],
                capture_output=True, text=True, timeout=60))
        threads: list[threading.Thread] = []
        engine.subscribe(_technician(r, confirm, threads))
        engine.run()
        for thread in threads:  # the campaign may read an answer before its `confirm` process has exited
            thread.join(timeout=60)

        assert [a.returncode for a in answers] == [0, 0], [a.stderr for a in answers]
        assert "exercised by Bo Chen" in answers[0].stderr
        assert "waiting for a technician" in shown[0]
        assert f"cmspatch confirm {name} --trigger menu-update --technician NAME" in shown[0]
        assert engine.status.devices[name].state is DeviceState.PATCHED
        answered = _records(journal, engine.campaign_id, EventKind.TRIGGER_ANSWERED)
        assert [(a.data["by"], a.data["done"]) for a in answered] == [("Bo Chen", True)] * 2


def test_confirming_a_trigger_nobody_asked_for_is_refused_with_a_reason(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, sinkhole=False) as r, r.journal() as journal:
        engine = r.engine(journal, fast_policy(trigger_by="technician", trigger_timeout=0.2))
        name = next(iter(engine.devices))
        engine.run()
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "confirm", name, "--trigger",
                           "boot-key", "--technician", "Bo", "--journal", str(r.journal_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no-trigger-request" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_technician_pressing_the_key_on_a_vulnerable_monitor_is_caught(tmp_path: Path) -> None:
    """The desk without an engine, over a real journal: the same path ``cmspatch confirm`` takes."""
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        device = r.inventory.devices[0]
        campaign = "verify-technician"
        seen: list[int] = [0]

        def fold() -> None:
            for record in journal.records(campaign, since_seq=seen[0]):
                seen[0] = record.seq
                desk.observe(record)

        def emit(name: str, kind: EventKind, data: dict[str, Any]) -> None:
            journal.append(Event(campaign, kind, data, name))
            trigger = str(data["trigger"])

            def act() -> None:  # the technician, then their answer from another terminal
                r.fleet.monitor(name).trigger(trigger)
                journal.append(Event(campaign, EventKind.TRIGGER_ANSWERED,
                                     trigger_answer_payload(trigger, "Ana", True, ""), name))
            threading.Thread(target=act, daemon=True).start()

        desk = TechnicianDesk(emit=emit, fold_external=fold, stopping=lambda: False, timeout=30.0)
        sinkhole: Sinkhole | None = r.sinkhole
        assert sinkhole is not None
        session = SshTransport(known_hosts=r.inventory.known_hosts).open(device)
        try:
            result = verify_device(session, device, expected_version=None, observer=sinkhole,
                                   trigger=desk.trigger_for(device.name), window=4.0)
        finally:
            session.close()

        assert result.triggers == ("menu-update", "boot-key")
        assert result.verdict_for("CVE-2025-0626") is Verdict.VULNERABLE
        assert result.verdict_for("CVE-2025-1204") is Verdict.VULNERABLE


def test_interrupting_while_waiting_for_the_technician_keeps_the_monitor_resumable(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, sinkhole=False) as r, r.journal() as journal:
        engine = r.engine(journal, fast_policy(trigger_by="technician", trigger_timeout=120.0))
        name = next(iter(engine.devices))
        engine.subscribe(lambda rec: engine.interrupt("test") if rec.kind is EventKind.TRIGGER_REQUESTED
                         else None)
        outcome = engine.run()
        assert outcome.ending is Ending.INTERRUPTED
        assert engine.status.devices[name].state is DeviceState.VERIFYING
        assert not _records(journal, engine.campaign_id, EventKind.VERDICT)

        resumed = wiring.resume_engine(campaign_id=engine.campaign_id, inventory=r.inventory,
                                       package=r.package, journal=journal, transports=engine.transports,
                                       operator="test",
                                       policy=fast_policy(trigger_by="technician", trigger_timeout=0.3))
        resumed.run()
        assert resumed.status.devices[name].state is DeviceState.FAILED  # nobody answered the second time


def test_verify_asks_the_technician_on_the_terminal_and_keeps_stdout_for_json(
        fleet_factory: Callable[..., Any], tmp_path: Path) -> None:
    """`cmspatch verify --exercise-triggers --trigger-by technician`: one prompt per trigger on stderr; the
    person presses the key (here the emulator's API) and answers on stdin; --json stays parseable."""
    fleet = fleet_factory(1, states={"vulnerable": 1})
    monitor = fleet.monitors[0]
    journal_path = tmp_path / "journal.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.main", "verify", "-i", str(fleet.inventory_path),
         "--exercise-triggers", "--trigger-by", "technician", "--window", "2", "--json",
         "--journal", str(journal_path), "--sinkhole-prefix", fleet.indicator_map.loopback_prefix],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stderr is not None and proc.stdout is not None
    prompts: list[str] = []
    for answer in ("", "patient arriving"):
        line = ""
        while ">>>" not in line:
            line = proc.stderr.readline()
            assert line, "cmspatch ended before asking"
        prompts.append(line)
        if not answer:
            monitor.trigger("menu-update")  # the technician's hand on the real unit
        proc.stdin.write(answer + "\n")
        proc.stdin.flush()
    out, _ = proc.communicate(timeout=120)
    doc = json.loads(out)

    assert "menu-update" in prompts[0] and "Menu > Maintenance > Update" in prompts[0]
    assert "boot-key" in prompts[1]
    device = doc["devices"][0]
    assert device["triggers"] == ["menu-update"]
    verdicts = {v["cve"]: v["verdict"] for v in device["verdicts"]}
    assert verdicts["CVE-2025-0626"] == "vulnerable"  # the key press made it reach for the share
    evidence = {e["check"]: e for e in device["evidence"]}
    assert "could not exercise it: patient arriving" in evidence["sinkhole-after-boot-key"]["summary"] + \
        json.dumps(evidence["sinkhole-after-boot-key"].get("details", {}))
    with SqliteJournal(journal_path) as journal:
        exercised = [r.data for r in journal.records() if r.kind is EventKind.TRIGGER_EXERCISED]
    assert exercised == [{"trigger": "menu-update", "by": "technician"}]


def test_an_abort_lets_a_monitor_waiting_for_its_technician_finish(tmp_path: Path) -> None:
    """Abort stops new monitors; one whose technician is at the bed is in flight and is finished."""
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        engine = r.engine(journal, fast_policy(trigger_by="technician", trigger_timeout=30.0))
        name = next(iter(engine.devices))

        def answer(device: str, trigger: str) -> None:
            if trigger == "menu-update":
                engine.abort("test", "stop the campaign")
            engine.answer_trigger(device, trigger, "Ana")
        engine.subscribe(_technician(r, answer))
        outcome = engine.run()

        assert engine.status.aborted is not None
        assert engine.status.devices[name].state is DeviceState.PATCHED
        assert outcome.ending is Ending.ABORTED
