"""The engine and the playbook ask the same clinical gate and end each monitor the same way.

The same clinical cases go through both delivery paths against emulated monitors: the engine
(``Engine`` over SSH, as ``cmspatch run`` drives it) and ``playbooks/patch.yml`` (ansible-runner ->
ansible-playbook -> OpenSSH, its job imported with ``cmspatch import``). Per case, the outcome is what the
monitor went through (upload, install, reboot: the emulator's own log) and how the journal ends it
(deferred with which reason, patched, or installed and waiting for its reboot). The cases: a clear
status, a patient, an alarm, garbage, a key said twice with two values, a status command that fails,
a patient connected while the package was uploaded (the re-check before install) and one connected
during the install (the re-check before reboot).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

from orchestrator.adapters.awx_import import import_job
from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.status import project
from orchestrator.emulator import EmulatedFleet
from orchestrator.emulator.catalog import FIXED_VERSION
from orchestrator.emulator.firmware import build_package
from orchestrator.emulator.monitor import EmulatedMonitor
from tests.integration.engine_rig import fast_policy, rig

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
# case -> emulator fault (None: a clear status); the last two connect a patient mid-way (see _patient_on)
CASES: dict[str, str | None] = {
    "clear": None, "patient": "patient", "alarm": "alarm", "garbage": "status-garbage",
    "duplicate": "status-duplicate", "status-fails": "status-fail",
    "patient-during-upload": None, "patient-during-install": None,
}
MIDWAY = {"patient-during-upload": "sha256sum", "patient-during-install": "cms-install"}
EXPECTED = {
    "clear": ("patched", ("upload", "install", "reboot")),
    "patient": ("deferred patient-connected", ()),
    "alarm": ("deferred alarm-active", ()),
    "garbage": ("deferred clinical-status-unknown", ()),
    "duplicate": ("deferred clinical-status-unknown", ()),
    "status-fails": ("deferred clinical-status-unknown", ()),
    "patient-during-upload": ("deferred patient-connected", ("upload",)),
    "patient-during-install": ("installed, not rebooted", ("upload", "install")),
}
Outcomes = dict[str, tuple[str, tuple[str, ...]]]


def _patient_on(monitor: EmulatedMonitor, command: str) -> None:
    """A patient is connected the moment the monitor starts running ``command`` (the hash check after the
    upload, or the installer), as a nurse would while the job is under way; deterministic for both paths."""
    original = monitor.record

    def record(kind: str, **data: Any) -> None:
        original(kind, **data)
        if kind == "command" and command in str(data.get("command", "")) and not monitor.patient_connected:
            monitor.patient_connected = True
            monitor.write_status()

    monitor.record = record  # type: ignore[method-assign]


def _arrange(monitors: list[EmulatedMonitor]) -> dict[str, str]:
    """Give each case a monitor; return {monitor name: case}."""
    cases = {}
    for monitor, (case, fault) in zip(monitors, CASES.items(), strict=True):
        if fault is not None:
            monitor.inject(fault)
        if case in MIDWAY:
            _patient_on(monitor, MIDWAY[case])
        cases[monitor.name] = case
    return cases


def _outcome(state: DeviceState, reason: str, monitor: EmulatedMonitor) -> tuple[str, tuple[str, ...]]:
    kinds = {a["kind"] for a in monitor.activity()}
    done = tuple(k for k in ("upload", "install", "reboot") if k in kinds)
    if state is DeviceState.DEFERRED:
        return f"deferred {reason}", done
    if state in (DeviceState.UPLOADED, DeviceState.INSTALLING, DeviceState.REBOOTING) and "install" in kinds:
        return "installed, not rebooted", done
    return state.value, done


@pytest.fixture(scope="module")
def playbook_outcomes(module_fleet_factory: Callable[..., EmulatedFleet],
                      tmp_path_factory: pytest.TempPathFactory) -> Outcomes:
    fleet = module_fleet_factory(len(CASES), states={"vulnerable": len(CASES)}, reboot_seconds=0.3)
    cases = _arrange(fleet.monitors)
    work = tmp_path_factory.mktemp("parity-playbook")
    package = build_package(work / "cms-fix.tar.gz", variant="fixed")
    (work / "runner").mkdir()
    ansible_runner.run(
        private_data_dir=str(work / "runner"), project_dir=str(fleet.inventory_path.parent),
        playbook=str(PLAYBOOKS / "patch.yml"), inventory=str(fleet.inventory_path), ident="parity",
        extravars={"cmspatch_package": str(package), "cmspatch_sha256": hashlib.sha256(
            package.read_bytes()).hexdigest(), "cmspatch_target_version": FIXED_VERSION},
        envvars={"ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_NOCOLOR": "True",
                 "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        quiet=True)
    with SqliteJournal(work / "journal.db") as journal:
        import_job(work / "runner" / "artifacts" / "parity", journal, campaign="parity",
                   inventory=load_inventory(fleet.inventory_path))
        devices = project(journal.records("parity"), "parity").devices
    return {case: _outcome(devices[name].state, devices[name].reason, fleet.monitor(name))
            for name, case in cases.items()}


@pytest.fixture(scope="module")
def engine_outcomes(tmp_path_factory: pytest.TempPathFactory) -> Outcomes:
    with rig(tmp_path_factory.mktemp("parity-engine"), monitors=len(CASES)) as r, r.journal() as journal:
        cases = _arrange(r.fleet.monitors)
        engine = r.engine(journal, policy=fast_policy(waves=("100%",), max_rechecks=1, recheck_interval=0.1))
        engine.run(auto_approve=True)
        return {case: _outcome(engine.status.devices[name].state, engine.status.devices[name].reason,
                               r.fleet.monitor(name)) for name, case in cases.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_the_engine_and_the_playbook_end_each_clinical_case_the_same_way(
        case: str, engine_outcomes: Outcomes, playbook_outcomes: Outcomes) -> None:
    assert engine_outcomes[case] == EXPECTED[case], "engine"
    assert playbook_outcomes[case] == EXPECTED[case], "playbook"


def test_plain_ansible_playbook_finds_the_clinical_gate_filter(
        fleet_factory: Callable[..., EmulatedFleet], tmp_path: Path) -> None:
    """The bench and most sites run ``ansible-playbook`` itself, from the inventory's directory."""
    fleet = fleet_factory(2)
    fleet.monitors[0].inject("patient")
    fleet.monitors[1].inject("status-garbage")
    package = build_package(tmp_path / "cms-fix.tar.gz", variant="fixed")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(fleet.inventory_path),
         str(PLAYBOOKS / "patch.yml"), "-e", f"cmspatch_package={package}",
         "-e", f"cmspatch_sha256={hashlib.sha256(package.read_bytes()).hexdigest()}",
         "-e", f"cmspatch_target_version={FIXED_VERSION}"],
        cwd=fleet.inventory_path.parent, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_NOCOLOR": "1",
             "ANSIBLE_CONFIG": str(tmp_path / "none.cfg")})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"cmspatch-outcome=deferred reason=patient-connected step=upload: {fleet.monitors[0].name}" \
        in proc.stdout
    assert f"cmspatch-outcome=deferred reason=clinical-status-unknown step=upload: {fleet.monitors[1].name}" \
        in proc.stdout
    assert not any(a["kind"] == "upload" for m in fleet.monitors for a in m.activity())
