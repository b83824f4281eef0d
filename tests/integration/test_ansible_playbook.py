"""``playbooks/patch.yml``, run for real (ansible-runner -> ansible-playbook -> OpenSSH) on a small
emulated fleet, and ``cmspatch import`` of the job it leaves behind.

One job serves every test in this module (Ansible is slow; the machine is shared): four monitors, two
healthy, one with a patient connected, one with a full data partition.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ansible_runner
import pytest
import yaml

from orchestrator.adapters.awx_import import import_job
from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.cli.main import main as cmspatch
from orchestrator.domain.lease import LEASE_NAME, new_lease, parse_lease
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.status import project
from orchestrator.emulator import EmulatedFleet
from orchestrator.emulator.catalog import FIXED_VERSION
from orchestrator.emulator.firmware import build_package

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
HEALTHY = ("north-icu-bed01", "north-ccu-bed01")
PATIENT = "south-picu-bed01"
DISK_FULL = "east-er-bed01"
LEASED = "south-nicu-bed01"  # another campaign holds a live lease on it
# Modules that run on the controller whatever the target (no Python needed on a monitor).
CONTROLLER_ACTIONS = {"ansible.builtin.assert", "ansible.builtin.debug", "ansible.builtin.set_fact",
                      "ansible.builtin.fail", "ansible.builtin.meta", "ansible.builtin.import_tasks"}


@dataclass(frozen=True)
class Job:
    fleet: EmulatedFleet
    artifacts: Path
    status: str
    rc: int
    package_sha256: str


@pytest.fixture(scope="module")
def job(module_fleet_factory: Callable[..., EmulatedFleet], tmp_path_factory: pytest.TempPathFactory) -> Job:
    fleet = module_fleet_factory(5, faults={PATIENT: "patient", DISK_FULL: "disk-full"}, reboot_seconds=0.5)
    held = fleet.monitor(LEASED).root / "data" / "upgrade" / LEASE_NAME
    held.parent.mkdir(parents=True, exist_ok=True)
    held.write_text(new_lease("c-other", "other-laptop:4242", now=time.time(), ttl=3600).text() + "\n")
    work = tmp_path_factory.mktemp("ansible-job")
    package = build_package(work / "cms-fix.tar.gz", variant="fixed")
    sha = hashlib.sha256(package.read_bytes()).hexdigest()
    (work / "runner").mkdir()
    runner = ansible_runner.run(
        private_data_dir=str(work / "runner"), project_dir=str(fleet.inventory_path.parent),
        playbook=str(PLAYBOOKS / "patch.yml"), inventory=str(fleet.inventory_path), ident="job-1",
        extravars={"cmspatch_package": str(package), "cmspatch_sha256": sha,
                   "cmspatch_target_version": FIXED_VERSION},
        envvars={"ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_NOCOLOR": "True",
                 "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        quiet=True,
    )
    return Job(fleet=fleet, artifacts=work / "runner" / "artifacts" / "job-1", status=str(runner.status),
               rc=int(runner.rc), package_sha256=sha)


def _events(job: Job) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((job.artifacts / "job_events").glob("*.json"))]


def _outcomes(job: Job) -> dict[str, str]:
    found = {}
    for event in _events(job):
        msg = str(((event.get("event_data") or {}).get("res") or {}).get("msg", ""))
        if msg.startswith("cmspatch-outcome="):
            found[event["event_data"]["host"]] = msg
    return found


def test_playbook_uses_no_python_on_the_monitors_and_pins_host_keys() -> None:
    for path in [PLAYBOOKS / "patch.yml", *(PLAYBOOKS / "tasks").glob("*.yml")]:
        document = yaml.safe_load(path.read_text())
        plays = document if path.name == "patch.yml" else [{"tasks": document}]
        for play in plays:
            if "hosts" in play:
                assert play.get("gather_facts") is False, path
            stack = list(play["tasks"])
            while stack:
                task = stack.pop()
                stack += task.get("block", []) + task.get("rescue", [])
                if "block" in task:
                    continue
                action = next(k for k in task if k.startswith("ansible.builtin.") or k == "cmspatch_lease")
                # cmspatch_lease runs its shell scripts over the connection exactly as raw does
                remote_ok = (action in ("ansible.builtin.raw", "cmspatch_lease")
                             or task.get("delegate_to") == "localhost")
                assert remote_ok or action in CONTROLLER_ACTIONS, f"{path}: {task['name']} uses {action}"
    connection = yaml.safe_load((PLAYBOOKS / "group_vars/all.yml").read_text())
    assert connection["ansible_host_key_checking"] is True
    assert "Compression=no" in connection["ansible_ssh_args"]
    assert "StrictHostKeyChecking=no" not in (PLAYBOOKS / "tasks/ssh_options.yml").read_text()


def test_patch_playbook_patches_healthy_monitors(job: Job) -> None:
    for name in HEALTHY:
        assert job.fleet.monitor(name).version == FIXED_VERSION
        assert job.fleet.monitor(name).firmware_state == "fixed"
        assert _outcomes(job)[name].startswith("cmspatch-outcome=patched")


def test_patch_playbook_defers_a_monitor_with_a_patient_and_does_not_fail_it(job: Job) -> None:
    monitor = job.fleet.monitor(PATIENT)
    assert monitor.firmware_state == "vulnerable"
    assert _outcomes(job)[PATIENT].startswith("cmspatch-outcome=deferred reason=patient-connected")
    assert not any(e["kind"] == "upload" for e in monitor.activity())
    stats = next(e for e in _events(job) if e["event"] == "playbook_on_stats")["event_data"]
    assert PATIENT not in stats.get("failures", {}) and PATIENT not in stats.get("dark", {})


def test_patch_playbook_leaves_a_monitor_another_campaign_drives_and_gives_its_own_leases_back(
        job: Job) -> None:
    monitor = job.fleet.monitor(LEASED)
    assert _outcomes(job)[LEASED].startswith("cmspatch-outcome=deferred reason=held-by-another-controller")
    assert "campaign c-other on other-laptop:4242" in _outcomes(job)[LEASED]
    assert monitor.firmware_state == "vulnerable"
    assert not any(e["kind"] == "upload" for e in monitor.activity())
    still = parse_lease((monitor.root / "data" / "upgrade" / LEASE_NAME).read_text())
    assert still is not None and still.campaign == "c-other"
    for name in (*HEALTHY, DISK_FULL):  # patched or failed: this job's lease is given back
        assert not (job.fleet.monitor(name).root / "data" / "upgrade" / LEASE_NAME).exists(), name


def test_patch_playbook_fails_a_disk_full_monitor_with_its_reason(job: Job) -> None:
    assert job.fleet.monitor(DISK_FULL).firmware_state == "vulnerable"
    assert _outcomes(job)[DISK_FULL].startswith("cmspatch-outcome=failed reason=disk-full")
    assert job.status == "failed" and job.rc != 0


def test_imported_job_shows_the_same_outcome_in_the_campaign_status(job: Job, tmp_path: Path) -> None:
    inventory = load_inventory(job.fleet.inventory_path)
    with SqliteJournal(tmp_path / "journal.db") as journal:
        result = import_job(job.artifacts, journal, campaign="awx-test", inventory=inventory)
        fleet = project(journal.records("awx-test"), "awx-test")
        assert journal.verify().ok
    assert result.added == result.mapped > 0
    states = {name: d.state for name, d in fleet.devices.items()}
    assert states == {HEALTHY[0]: DeviceState.PATCHED, HEALTHY[1]: DeviceState.PATCHED,
                      PATIENT: DeviceState.DEFERRED, DISK_FULL: DeviceState.FAILED,
                      LEASED: DeviceState.DEFERRED}
    assert fleet.devices[LEASED].reason == "held-by-another-controller"
    assert fleet.devices[DISK_FULL].reason == "disk-full"
    assert fleet.devices[HEALTHY[0]].firmware_after == FIXED_VERSION
    assert fleet.devices[HEALTHY[0]].model == inventory.device(HEALTHY[0]).model
    assert fleet.created["package_sha256"] == job.package_sha256
    assert fleet.finished


def test_importing_the_same_job_twice_adds_nothing(job: Job, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    journal = str(tmp_path / "journal.db")
    artifacts = tmp_path / "copy"
    shutil.copytree(job.artifacts, artifacts)
    assert cmspatch(["import", str(artifacts), "--journal", journal, "--json"]) == 1  # failed + deferred
    first = json.loads(capsys.readouterr().out)
    assert cmspatch(["import", str(artifacts), "--journal", journal, "--json"]) == 1
    second = json.loads(capsys.readouterr().out)
    assert first["added"] > 0 and second["added"] == 0
    assert first["campaign"] == second["campaign"] == "awx-copy"
    with SqliteJournal(journal) as opened:
        assert len(list(opened.records())) == first["added"]
