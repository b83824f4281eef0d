"""The campaign engine drives a monitor over the Ansible delivery path, as it does over SSH.

Real parts only: an emulated monitor on loopback, real ansible-runner and the OpenSSH client running
``playbooks/``, a real sinkhole, a real SQLite journal. The inventory marks the monitor
``delivery: ansible`` and the engine is given no other network transport, so every step (connect,
clinical check, upload, hash, install, reboot, reconnect, checks, triggers) went through ansible-runner.

One monitor per case: each Ansible step is its own ansible-runner process (~1-2 s), so a full
campaign on one monitor takes tens of seconds on the shared machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from orchestrator import wiring
from orchestrator.adapters.ansible import AnsibleTransport
from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.domain.campaign import Ending
from orchestrator.domain.devices import DeliveryPath
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.indicators import ALL_CVES
from orchestrator.domain.inventory import Inventory
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.verdicts import Verdict
from orchestrator.errors import ExitCode
from tests.integration.engine_rig import FAST_RETRY, Rig, fast_policy, rig

# Ansible calls take seconds, not milliseconds: the SSH tests' 10 s command timeout is too tight on a
# loaded machine, and the observation window needs no more than a second on loopback.
POLICY = {"waves": ("1",), "observation_window": 1.0, "command_timeout": 30.0, "reboot_timeout": 30.0}


def ansible_inventory(r: Rig) -> Path:
    """The fleet's inventory with every monitor on the Ansible delivery path (a copy beside it)."""
    doc = yaml.safe_load(r.fleet.inventory_path.read_text(encoding="utf-8"))

    def mark(group: dict) -> None:
        for host in (group.get("hosts") or {}).values():
            host["delivery"] = "ansible"
        for child in (group.get("children") or {}).values():
            mark(child)

    mark(doc["all"])
    path = r.fleet.inventory_path.with_name("inventory-ansible.yml")
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def device_records(records: list[JournalRecord], name: str, kind: EventKind) -> list[JournalRecord]:
    return [rec for rec in records if rec.device == name and rec.kind is kind]


def test_a_campaign_over_ansible_ends_patched_verified_and_journalled(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        inventory_path = ansible_inventory(r)
        inventory: Inventory = load_inventory(inventory_path)
        device = inventory.devices[0]
        assert device.delivery is DeliveryPath.ANSIBLE
        monitor = r.fleet.monitor(device.name)
        before = monitor.version
        monitor.inject("unreachable")  # refused until the engine has journalled one failed connect
        transport = AnsibleTransport(inventory_path)
        try:
            engine = wiring.new_engine(inventory=inventory, package=r.package, journal=journal,
                            transports={DeliveryPath.ANSIBLE: transport}, policy=fast_policy(**POLICY),
                            operator="test", observer=r.sinkhole, retry=FAST_RETRY)

            def on_record(record: JournalRecord) -> None:
                if record.kind is EventKind.ATTEMPT and record.data["outcome"] == "retry":
                    monitor.clear_fault("unreachable")

            engine.subscribe(on_record)
            outcome = engine.run(auto_approve=True)
        finally:
            transport.close()

        assert outcome.ending is Ending.COMPLETE, outcome
        status = engine.status.devices[device.name]
        assert status.state is DeviceState.PATCHED
        assert status.delivery == "ansible"
        assert set(status.verdicts) == {cve.value for cve in ALL_CVES}
        assert all(v is Verdict.FIXED for v in status.verdicts.values()), status.verdicts
        assert r.installs(device.name) == 1

        records = list(journal.records(engine.campaign_id))
        path = [rec.data["to"] for rec in device_records(records, device.name, EventKind.STATE_CHANGED)]
        assert path == ["uploading", "uploaded", "installing", "rebooting", "verifying", "patched"]

        # What the Ansible steps read on the monitor is what the journal says.
        created = next(rec for rec in records if rec.kind is EventKind.CAMPAIGN_CREATED)
        assert created.data["devices"][device.name]["delivery"] == "ansible"
        uploaded = next(rec for rec in device_records(records, device.name, EventKind.STATE_CHANGED)
                        if rec.data["to"] == "uploaded")
        assert uploaded.data["sha256"] == r.package.sha256  # sha256sum run on the monitor by run.yml
        firmware = {rec.data["when"]: rec.data["version"]
                    for rec in device_records(records, device.name, EventKind.FIRMWARE_READ)}
        assert firmware == {"before": before, "after": r.package.target_version}
        attempts = [rec.data for rec in device_records(records, device.name, EventKind.ATTEMPT)]
        # Ansible's UNREACHABLE task result, classified from OpenSSH's message, is the retry's reason.
        refused, *rest = attempts
        assert (refused["step"], refused["outcome"], refused["error_reason"]) == \
            ("connect", "retry", "connection-refused"), refused
        assert "Connection refused" in refused["error"]
        assert {"connect", "clinical-check", "upload", "hash-check", "install", "reboot",
                "reconnect"} <= {a["step"] for a in rest}
        assert all(a["outcome"] == "ok" for a in rest), rest
        checks = device_records(records, device.name, EventKind.CHECK_RESULT)
        device_checks = [rec.data["evidence"] for rec in checks if rec.data["evidence"]["source"] == "device"]
        assert device_checks and all(e["outcome"] == "pass" for e in device_checks), device_checks
        exercised = device_records(records, device.name, EventKind.TRIGGER_EXERCISED)
        assert exercised, "the hidden-mount triggers were not exercised over Ansible"
        verdicts = device_records(records, device.name, EventKind.VERDICT)
        assert {rec.data["cve"] for rec in verdicts} == {cve.value for cve in ALL_CVES}

        report = journal.verify()
        assert report.ok, report


def cmspatch(*args: str, tmpdir: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": tmpdir} if tmpdir else None
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], capture_output=True,
                          text=True, timeout=300, check=False, env=env)


@pytest.fixture
def private_tmpdir() -> Iterator[Path]:
    """The CLI's own temporary directory, to see what it leaves behind. Short (not tmp_path): the SSH
    control sockets live under it and a UNIX socket path is limited to 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="cmsp-t"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_monitor_with_a_patient_is_deferred_over_ansible_from_the_cli(tmp_path: Path,
                                                                       private_tmpdir: Path) -> None:
    with rig(tmp_path, monitors=1, sinkhole=False) as r:
        inventory_path = ansible_inventory(r)
        monitor = r.fleet.monitors[0]
        monitor.connect_patient()
        config = tmp_path / "campaign.yml"
        config.write_text("max_rechecks: 1\nrecheck_interval: 0.2\ncommand_timeout: 30\n"
                          "retry_attempts: 2\nretry_initial: 0.05\nretry_max: 0.1\n", encoding="utf-8")
        args = [a if a != str(r.fleet.inventory_path) else str(inventory_path) for a in r.cli_args()]
        result = cmspatch("run", *args, "--waves", "1", "--yes", "--campaign-config", str(config),
                          tmpdir=str(private_tmpdir))
        assert result.returncode == ExitCode.INCOMPLETE, result.stderr
        assert not list(private_tmpdir.iterdir())  # runner data and ControlPersist directory removed

        with r.journal() as journal:
            records = list(journal.records())
        name = monitor.name
        moves = [(rec.data["to"], rec.data["reason"])
                 for rec in device_records(records, name, EventKind.STATE_CHANGED)]
        assert moves and all(move == ("deferred", "patient-connected") for move in moves), moves
        clinical = [rec.data for rec in device_records(records, name, EventKind.ATTEMPT)
                    if rec.data["step"] == "clinical-check"]
        assert len(clinical) == len(moves) and all(a["outcome"] == "ok" for a in clinical)
        assert r.installs(name) == 0
        assert not any(a["kind"] == "upload" for a in monitor.activity())

        audit = cmspatch("audit", "verify", "--journal", str(r.journal_path))
        assert audit.returncode == ExitCode.OK, audit.stdout + audit.stderr
