"""The clinical gate on every path that can disturb a monitor: survey and verify (triggers and the UDP
probe, through the real CLI), a technician asked for a trigger, the campaign's verification, the demo.

Real parts throughout: emulated monitors over SSH on loopback, the sinkhole, SQLite, the CLI process.
Each clinical monitor sits next to a clear one that the same run does trigger, so a gate that held
everything, or nothing, fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator import wiring
from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.adapters.ssh import SshTransport
from orchestrator.demo import demo_policy, start_demo
from orchestrator.domain.devices import CredentialRef, DeliveryPath, Device
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.emulator import EmulatedFleet
from orchestrator.verification import verify_device
from tests.integration.conftest import unique_prefixes
from tests.integration.engine_rig import FAST_RETRY, fast_policy, rig

HELD_CVES = ("CVE-2025-0626", "CVE-2025-1204", "CVE-2024-12248")  # the triggers' two, the probe's one
# fault -> what the gate says, in the evidence and in the summary
CASES = {"patient": ("patient-connected", "patient connected"), "alarm": ("alarm-active", "alarm active"),
         "status-garbage": ("clinical-status-unknown", "clinical status unknown"),
         "status-fail": ("clinical-status-unknown", "clinical status unknown")}


@dataclass
class Ward:
    fleet: EmulatedFleet
    out: Path
    clear: str  # a fixed monitor with no patient: the positive control
    held: dict[str, str]  # monitor -> fault

    def cli(self, *args: str, stdin: int | None = subprocess.DEVNULL) -> tuple[int, str, str]:
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli.main", *args, "-i", str(self.fleet.inventory_path),
             "--window", "0.6", "--sinkhole-prefix", self.fleet.indicator_map.loopback_prefix],
            capture_output=True, text=True, cwd=self.out, timeout=120, check=False, stdin=stdin)
        return proc.returncode, proc.stdout, proc.stderr

    def kinds(self, name: str) -> set[str]:
        return {entry["kind"] for entry in self.fleet.monitor(name).activity()}


@pytest.fixture(scope="module")
def ward(module_fleet_factory: Callable[..., EmulatedFleet],
         tmp_path_factory: pytest.TempPathFactory) -> Ward:
    # Vulnerable monitors answer on UDP (their listener records each datagram): a probe that slipped
    # past the gate would show in their activity.
    # A fixed monitor with a patient shows the verdicts the gate leaves: inconclusive, never fixed.
    fleet = module_fleet_factory(6, states={"vulnerable": 4, "fixed": 2})
    vulnerable = [m for m in fleet.monitors if m.firmware_state == "vulnerable"]
    clear, fixed_patient = (m for m in fleet.monitors if m.firmware_state == "fixed")
    held = {}
    for monitor, fault in [*zip(vulnerable, CASES, strict=True), (fixed_patient, "patient")]:
        monitor.inject(fault)
        held[monitor.name] = fault
    return Ward(fleet, tmp_path_factory.mktemp("clinical-out"), clear.name, held)


def _rows(stdout: str) -> dict[str, dict[str, Any]]:
    return {d["device"]: d for d in json.loads(stdout)["devices"]}


def _assert_held(ward: Ward, rows: dict[str, dict[str, Any]]) -> None:
    for name, fault in ward.held.items():
        reason, words = CASES[fault]
        row = rows[name]
        assert row["clinical_hold"] == reason, name
        assert row["triggers"] == []
        evidence = {e["check"]: e for e in row["evidence"]}
        for check in ("sinkhole-after-menu-update", "sinkhole-after-boot-key", "udp-probe"):
            assert evidence[check]["summary"].startswith(f"not checked: not exercised: {words}"), check
            assert evidence[check]["details"]["clinical"] == reason
        verdicts = {v["cve"]: v["verdict"] for v in row["verdicts"]}
        expected = "inconclusive" if ward.fleet.monitor(name).firmware_state == "fixed" else "vulnerable"
        assert {verdicts[cve] for cve in HELD_CVES} == {expected}, name  # vulnerable: by its binaries
        assert not ward.kinds(name) & {"trigger", "udp", "nfs-mount", "reboot"}, name


def test_survey_with_triggers_leaves_monitors_in_clinical_use_untouched_and_says_so(ward: Ward) -> None:
    code, stdout, stderr = ward.cli("survey", "--exercise-triggers", "--json")
    rows = _rows(stdout)
    _assert_held(ward, rows)
    assert rows[ward.clear]["triggers"] == ["menu-update", "boot-key"]  # the gate let the clear one through
    assert "trigger" in ward.kinds(ward.clear)
    summary = json.loads(stdout)["summary"]
    assert summary["clinical_hold"] == {"patient-connected": 2, "alarm-active": 1,
                                        "clinical-status-unknown": 2}
    assert code == 1, stderr


def test_survey_summary_and_status_count_the_monitors_left_untouched(ward: Ward) -> None:
    line = ("5 monitor(s) left untouched for clinical reasons (not probed, not triggered): "
            "1 alarm-active, 2 clinical-status-unknown, 2 patient-connected")
    journal = str(ward.out / "journal.db")
    _, stdout, _ = ward.cli("survey", "--exercise-triggers", "--journal", journal)
    assert line in stdout
    status = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "status", "--journal", journal],
                            capture_output=True, text=True, timeout=60, check=False)
    assert line in status.stdout, status.stdout + status.stderr
    patient = next(n for n, f in ward.held.items() if f == "patient")
    rows = status.stdout.splitlines()
    assert any(patient in row and "(untouched: patient-connected)" in row for row in rows)


def test_verify_with_triggers_never_presses_a_trigger_on_a_monitor_in_clinical_use(ward: Ward) -> None:
    _, stdout, _ = ward.cli("verify", "--exercise-triggers", "--json")
    rows = _rows(stdout)
    _assert_held(ward, rows)
    assert rows[ward.clear]["all_fixed"]


def test_a_technician_is_never_asked_for_a_trigger_on_a_monitor_with_a_patient(ward: Ward) -> None:
    patient = next(n for n, f in ward.held.items() if f == "patient" and n != ward.clear)
    _, stdout, stderr = ward.cli("verify", "--exercise-triggers", "--trigger-by", "technician", "--json",
                                 "--limit", patient)
    assert ">>>" not in stderr and "Press Enter" not in stderr
    assert _rows(stdout)[patient]["clinical_hold"] == "patient-connected"
    # The control: the clear monitor is asked (and, with nobody at the terminal, not exercised).
    _, stdout, stderr = ward.cli("verify", "--exercise-triggers", "--trigger-by", "technician", "--json",
                                 "--limit", ward.clear)
    assert f">>> {ward.clear}" in stderr and "boot-key" in stderr
    assert _rows(stdout)[ward.clear]["clinical_hold"] is None


def test_without_a_session_no_trigger_is_asked_for_and_no_probe_sent() -> None:
    """A unit whose status cannot be read (no service session): nobody is asked to press a key."""
    asked: list[str] = []
    probed: list[str] = []
    unit = Device(name="west-icu-usb01", model="CMS8000", serial="S1", site="west", ward="icu", bed="1",
                  address="127.0.0.9", port=22, user="service", credential=CredentialRef(), host_key=None,
                  delivery=DeliveryPath.MANUAL)
    result = verify_device(None, unit, expected_version=None, observer=None, trigger=asked.append,
                           window=0.0, prober=lambda address, ports: probed.append(address) or [],
                           no_session_reason="no service access (hands-on unit)")
    assert asked == [] and probed == [] and result.triggers == ()
    assert result.clinical_hold == "clinical-status-unknown"
    held = [e for e in result.evidence if e.details.get("clinical")]
    assert {e.check for e in held} == {"udp-probe", "sinkhole-after-menu-update", "sinkhole-after-boot-key"}
    assert all("no service session to read cms-status" in e.summary for e in held)


def test_a_patient_connected_during_the_reboot_holds_the_campaign_triggers(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        monitor = r.fleet.monitors[0]
        engine = r.engine(journal, policy=fast_policy(waves=("1",)))

        def on_record(record: JournalRecord) -> None:
            if record.kind is EventKind.STATE_CHANGED and record.data["to"] == "verifying":
                monitor.connect_patient()  # came back from the reboot to a patient being connected

        engine.subscribe(on_record)
        engine.run(auto_approve=True)
        device = engine.status.devices[monitor.name]
        assert device.state is DeviceState.FAILED and device.reason == "verification-inconclusive"
        assert not [a for a in monitor.activity() if a["kind"] in ("trigger", "udp")]
        held = [rec.data["evidence"] for rec in journal.records(engine.campaign_id)
                if rec.kind is EventKind.CHECK_RESULT and rec.data["evidence"]["details"].get("clinical")]
        assert {e["check"] for e in held} == {"udp-probe", "sinkhole-after-menu-update",
                                              "sinkhole-after-boot-key"}
        assert all("not exercised: patient connected" in e["summary"] for e in held)
        assert not [rec for rec in journal.records(engine.campaign_id)
                    if rec.kind is EventKind.TRIGGER_EXERCISED]


def test_the_demo_campaign_never_reboots_or_triggers_a_monitor_in_clinical_use(tmp_path: Path) -> None:
    prefix, indicator_map, port = unique_prefixes()
    policy = demo_policy(fast=True, waves=("100%",), require_approval=False, recheck_interval=0.1,
                         max_rechecks=1)
    with start_demo(tmp_path / "demo", monitors=4, faults={1: ("patient",), 2: ("alarm",)},
                    states={"vulnerable": 4}, manual_unit=False, reboot_seconds=0.2, fast=True,
                    address_prefix=prefix, port=port, indicator_map=indicator_map, policy=policy) as demo:
        with SqliteJournal(demo.journal_path) as journal:
            engine = demo.engine(demo.verify().require(), journal)
            engine.run(auto_approve=True)
            states = {name: (d.state, d.reason) for name, d in engine.status.devices.items()}
        patient, alarm = demo.fleet.monitors[1], demo.fleet.monitors[2]
        assert states[patient.name] == (DeviceState.DEFERRED, "patient-connected")
        assert states[alarm.name] == (DeviceState.DEFERRED, "alarm-active")
        for monitor in (patient, alarm):
            kinds = {a["kind"] for a in monitor.activity()}
            assert not kinds & {"upload", "install", "reboot", "trigger", "udp"}, monitor.name
        patched = [m for m in demo.fleet.monitors if states[m.name][0] is DeviceState.PATCHED]
        assert patched and all("reboot" in {a["kind"] for a in m.activity()} for m in patched)


def test_a_resumed_upload_asks_the_gate_again_before_sending_anything(tmp_path: Path) -> None:
    """Interrupted after its upload, the monitor gets a patient; the resumed run defers it untouched."""
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        monitor = r.fleet.monitors[0]
        engine = r.engine(journal, policy=fast_policy(waves=("1",)))
        engine.subscribe(lambda rec: engine.interrupt() if rec.kind is EventKind.STATE_CHANGED
                         and rec.data["to"] == "uploaded" else None)
        engine.run(auto_approve=True)
        assert engine.status.devices[monitor.name].state is DeviceState.UPLOADED
        assert [a["kind"] for a in monitor.activity()].count("upload") == 1
        monitor.connect_patient()
        before = len(monitor.activity())
        inventory = r.inventory
        transports = {DeliveryPath.SSH: SshTransport(known_hosts=inventory.known_hosts)}
        resumed = wiring.resume_engine(journal=journal, campaign_id=engine.campaign_id, inventory=inventory,
                                package=r.package, operator="test", observer=r.sinkhole, retry=FAST_RETRY,
                                transports=transports,
                                policy=fast_policy(waves=("1",), max_rechecks=1, recheck_interval=0.1))
        resumed.run(auto_approve=True)
        device = resumed.status.devices[monitor.name]
        assert (device.state, device.reason) == (DeviceState.DEFERRED, "patient-connected")
        since = monitor.activity()[before:]
        commands = [a["command"] for a in since if a["kind"] == "command"]
        assert "cms-status" in commands  # it asked, and did nothing the answer forbids
        assert not [c for c in commands if any(w in c for w in ("sha256sum", "cms-install", "reboot"))]
        assert not [a for a in since if a["kind"] in ("upload", "install", "reboot")]
