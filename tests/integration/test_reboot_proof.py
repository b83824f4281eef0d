"""A reboot is proven by a changed boot identity, never assumed (issue 10, observation 5; issue 17, 8).

Against the emulated fleet over real SSH, with the real engine and SQLite journal: a monitor that keeps
its sessions after ``reboot`` (``slow-drop@N``) or never restarts (``fake-reboot``) is never verified as
rebooted, and a run killed mid-reboot does not reboot the monitor a second time when it resumes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrator import wiring
from orchestrator.adapters.ansible import AnsibleTransport
from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.domain.devices import DeliveryPath
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.status import project
from orchestrator.emulator.monitor import EmulatedMonitor
from orchestrator.errors import ExitCode
from tests.integration.conftest import wait_until
from tests.integration.engine_rig import FAST_RETRY, Rig, fast_policy, rig
from tests.integration.test_engine_ansible import POLICY, ansible_inventory

FAST = ["--waves", "1,100%", "--observation-window", "0.4", "--reboot-timeout", "8", "--yes"]


def _campaign(r: Rig, **policy: Any) -> tuple[list[JournalRecord], Any]:
    with r.journal() as journal:
        engine = r.engine(journal, policy=fast_policy(waves=("1",), canary_must_pass=False, **policy))
        engine.run(auto_approve=True)
        return list(journal.records(engine.campaign_id)), engine.status.devices[r.fleet.monitors[0].name]


def _verified_after_boot(monitor: EmulatedMonitor) -> bool:
    """The emulator saw no verification read (of the firmware version) before it had booted again."""
    activity = monitor.activity()
    reboot_at = next(i for i, a in enumerate(activity) if a["kind"] == "reboot")
    booted_at = next(i for i, a in enumerate(activity) if a["kind"] == "boot" and i > reboot_at)
    reads = [i for i, a in enumerate(activity)
             if i > reboot_at and a["kind"] == "command" and "firmware_version" in str(a["command"])]
    return bool(reads) and min(reads) > booted_at


def _boot_records(records: list[JournalRecord]) -> list[dict[str, Any]]:
    return [rec.data for rec in records if rec.kind is EventKind.BOOT_IDENTITY]


def _reboots(monitor: EmulatedMonitor) -> int:
    return sum(1 for a in monitor.activity() if a["kind"] == "reboot")


def _booted_since_reboot(monitor: EmulatedMonitor) -> bool:
    kinds = [a["kind"] for a in monitor.activity()]
    return "reboot" in kinds and "boot" in kinds[kinds.index("reboot"):] and monitor.online


def test_a_monitor_keeping_its_sessions_past_the_reboot_timeout_fails_reboot_not_observed(
        tmp_path: Path) -> None:
    # Before: the session was waited on for at most min(15 s, reboot_timeout), then the old, still
    # running system was verified (here a false "silent-rollback").
    with rig(tmp_path, monitors=1) as r:
        monitor = r.fleet.monitors[0]
        monitor.inject("slow-drop", seconds=3)
        records, status = _campaign(r, reboot_timeout=2.0)
        assert (status.state, status.reason) == (DeviceState.FAILED, "reboot-not-observed")
        before, *after = _boot_records(records)
        assert before["when"] == "before" and before["identity"]["boot_id"]
        assert after and all(a["decision"]["reason"] == "boot-id-unchanged" for a in after), after
        assert after[-1]["identity"]["boot_id"] == before["identity"]["boot_id"]
        assert not [rec for rec in records if rec.kind is EventKind.CHECK_RESULT]  # nothing verified


def test_a_monitor_keeping_its_sessions_is_verified_only_after_its_boot_id_changed(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r:
        monitor = r.fleet.monitors[0]
        old_boot = monitor.boot_id
        monitor.inject("slow-drop", seconds=3)
        records, status = _campaign(r, reboot_timeout=20.0)
        assert status.state is DeviceState.PATCHED, status.reason
        before, after = _boot_records(records)
        assert before["identity"]["boot_id"] == old_boot
        assert after["decision"]["outcome"] == "rebooted"
        assert after["identity"]["boot_id"] == monitor.boot_id != old_boot
        assert _verified_after_boot(monitor), monitor.activity()


def test_over_ansible_a_monitor_keeping_its_sessions_is_verified_only_after_its_boot_id_changed(
        tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        inventory_path = ansible_inventory(r)
        inventory = load_inventory(inventory_path)
        monitor = r.fleet.monitor(inventory.devices[0].name)
        old_boot = monitor.boot_id
        monitor.inject("slow-drop", seconds=3)
        transport = AnsibleTransport(inventory_path)
        try:
            engine = wiring.new_engine(inventory=inventory, package=r.package, journal=journal,
                            transports={DeliveryPath.ANSIBLE: transport}, policy=fast_policy(**POLICY),
                            operator="test", observer=r.sinkhole, retry=FAST_RETRY)
            engine.run(auto_approve=True)
        finally:
            transport.close()
        status = engine.status.devices[monitor.name]
        assert status.state is DeviceState.PATCHED, status.reason
        after = _boot_records(list(journal.records(engine.campaign_id)))[-1]
        assert after["decision"]["outcome"] == "rebooted"
        assert after["identity"]["boot_id"] == monitor.boot_id != old_boot
        assert _verified_after_boot(monitor), monitor.activity()


def test_a_reboot_that_exits_0_and_restarts_nothing_fails_reboot_not_observed(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r:
        monitor = r.fleet.monitors[0]
        monitor.inject("fake-reboot")
        records, status = _campaign(r, reboot_timeout=2.0)
        assert (status.state, status.reason) == (DeviceState.FAILED, "reboot-not-observed")
        assert _boot_records(records)[-1]["decision"]["outcome"] == "same-boot"
        assert monitor.version != r.package.target_version  # installed, never activated


def test_without_a_boot_id_the_reboot_is_proven_by_the_uptime_and_the_marker_in_tmp(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r:
        r.fleet.monitors[0].inject("no-boot-id")
        records, status = _campaign(r)
        assert status.state is DeviceState.PATCHED, status.reason
        before, after = _boot_records(records)
        assert not before["identity"]["boot_id"] and before["identity"]["marker"] == before["marker"]
        assert after["decision"]["reason"] == "uptime-reset"
        assert after["identity"]["marker"] == ""  # the reboot emptied the tmpfs


def test_without_a_boot_id_a_marker_still_in_tmp_is_the_old_system(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r:
        monitor = r.fleet.monitors[0]
        monitor.inject("no-boot-id")
        monitor.inject("fake-reboot")
        records, status = _campaign(r, reboot_timeout=2.0)
        assert (status.state, status.reason) == (DeviceState.FAILED, "reboot-not-observed")
        assert _boot_records(records)[-1]["decision"]["reason"] == "marker-present"


def test_a_run_killed_mid_reboot_resumes_to_verification_without_a_second_reboot(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, sinkhole=False) as r:  # the CLI runs its own sinkhole
        monitor = r.fleet.monitors[0]
        monitor.inject("slow-drop", seconds=3)  # the kill lands while the old system still runs
        config = r.workdir / "campaign.yml"
        config.write_text("retry_attempts: 3\nretry_initial: 0.05\nretry_max: 0.2\nrecheck_interval: 0.2\n")
        command = [sys.executable, "-m", "orchestrator.cli.main", "run", *r.cli_args(), *FAST,
                   "--campaign-config", str(config), "--json"]
        log = r.workdir / "cli-stderr.log"
        with log.open("w") as stderr:
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:  # kill -9 right after `reboot` was sent
            record = json.loads(line)
            if record["kind"] == "attempt" and record["data"]["step"] == "reboot":
                break
        else:
            raise AssertionError(f"the run ended before its reboot: {log.read_text()}")
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
        with SqliteJournal(r.journal_path) as journal:
            assert project(journal.records()).devices[monitor.name].state is DeviceState.REBOOTING
        wait_until(lambda: _booted_since_reboot(monitor), timeout=20, what="the monitor's own reboot")

        resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=120,
                                 check=False)
        assert resumed.returncode == ExitCode.OK, resumed.stderr
        assert _reboots(monitor) == 1
        with SqliteJournal(r.journal_path) as journal:
            assert journal.verify().ok
            records = list(journal.records())
            fleet = project(records)
        assert fleet.devices[monitor.name].state is DeviceState.PATCHED
        resume = [rec.data for rec in records if rec.kind is EventKind.BOOT_IDENTITY
                  and rec.data["when"] == "resume"]
        assert [d["decision"]["outcome"] for d in resume] == ["rebooted"]
        moved = [rec.data for rec in records
                 if rec.kind is EventKind.STATE_CHANGED and rec.data["to"] == "verifying"]
        assert [m["reason"] for m in moved] == ["rebooted-before-interruption"]
        assert r.installs(monitor.name) == 1
