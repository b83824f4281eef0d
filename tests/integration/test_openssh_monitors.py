"""Real OpenSSH monitors (sshd in BusyBox chroots, orchestrator/emulator/openssh): a reboot, and a campaign.

The transport contract runs on these monitors in test_transport_conformance.py (parametrized over both
fleets). Here: what only a real sshd can get wrong (a session outliving a reboot), and one campaign end to
end through the engine. These monitors do not emulate the backdoor's network behaviour (no telemetry, no
NFS contact, no UDP answer): the sinkhole hears nothing from them whatever their firmware, so only the
device checks can tell vulnerable from fixed, and the test says so.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.ssh import SshTransport
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.verdicts import Verdict
from orchestrator.emulator.catalog import FIXED_VERSION
from orchestrator.emulator.firmware import build_package
from orchestrator.emulator.openssh import OpenSshFleet, missing_tools
from orchestrator.verification import DeviceVerification, Identities, session_trigger, verify_device
from tests.integration.conftest import wait_until
from tests.integration.engine_rig import Rig, fast_policy, rig

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"needs {', '.join(missing_tools())}")
WINDOW = 0.4


def _ssh(fleet: Any, monitor: Any, command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ssh", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={fleet.known_hosts_path}",
         "-o", "StrictHostKeyChecking=yes", "-i", str(fleet.key_path), "-p", str(monitor.port),
         f"{fleet.user}@{monitor.address}", command],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_reboot_ends_every_session_even_one_still_running(
        openssh_fleet_factory: Callable[..., OpenSshFleet]) -> None:
    fleet = openssh_fleet_factory(1)
    monitor = fleet.monitors[0]
    first = _ssh(fleet, monitor, "cat /proc/sys/kernel/random/boot_id; : > /tmp/marker; echo ready; "
                                 "sleep 120")
    assert first.stdout is not None
    boot_id = first.stdout.readline().strip()
    assert first.stdout.readline().strip() == "ready"
    monitor.reboot()
    try:
        first.wait(10)  # sshd's session processes call setsid: only the PID namespace ends them
    except subprocess.TimeoutExpired:
        first.kill()
        pytest.fail("a session survived the reboot")
    wait_until(lambda: monitor.online and monitor.boot_id != boot_id, timeout=10, what="the monitor to boot")
    second = _ssh(fleet, monitor, "cat /proc/sys/kernel/random/boot_id; ls /tmp")
    out, err = second.communicate(timeout=15)
    assert second.returncode == 0, err
    assert out.split() == [monitor.boot_id]  # a new boot id, /tmp emptied, the same host key accepted
    assert monitor.boot_id != boot_id


def _verify(r: Rig, name: str, expected_version: str | None) -> DeviceVerification:
    inventory = load_inventory(r.fleet.inventory_path)
    device = inventory.device(name)
    session = SshTransport(known_hosts=inventory.known_hosts).open(device)
    try:
        return verify_device(session, device, observer=r.sinkhole, trigger=session_trigger(session),
                             window=WINDOW, fleet=Identities(inventory.devices),
                             expected_version=expected_version)
    finally:
        session.close()


def _outcomes(result: DeviceVerification, source: str) -> dict[str, str]:
    return {e.check: e.outcome for e in result.evidence if e.source == source}


def test_cms_install_answers_the_contracts_exit_codes(openssh_fleet_factory: Callable[..., OpenSshFleet],
                                                     tmp_path: Path) -> None:
    fleet = openssh_fleet_factory(1, mix="CMS8000=1")
    monitor = fleet.monitors[0]
    other_model = build_package(tmp_path / "cms6000.tar.gz", models=["CMS6000"])
    fixed = build_package(tmp_path / "fixed.tar.gz")
    inventory = load_inventory(fleet.inventory_path)
    session = SshTransport(known_hosts=inventory.known_hosts).open(inventory.device(monitor.name))
    try:
        session.put(other_model, "/data/upgrade/cms6000.tar.gz")
        session.put(fixed, "/data/upgrade/fixed.tar.gz")
        codes = {case: session.run(command).exit_status for case, command in {
            "usage": "cms-install", "no file": "cms-install /data/upgrade/missing.tar.gz",
            "not a package": "cms-install /etc/firmware_version",
            "other model": "cms-install /data/upgrade/cms6000.tar.gz"}.items()}
        monitor.inject("disk-full")
        full = session.run("cms-install /data/upgrade/fixed.tar.gz")
        monitor.clear_fault("disk-full")
        installed = session.run("cms-install /data/upgrade/fixed.tar.gz; cat /etc/firmware_version")
    finally:
        session.close()
    assert codes == {"usage": 2, "no file": 2, "not a package": 3, "other model": 4}
    assert full.exit_status == 6 and b"space" in full.stderr
    assert installed.ok and installed.text.strip().endswith(FIXED_VERSION)
    assert monitor.version != FIXED_VERSION  # installed, active only after the next reboot
    assert (monitor.root / "var/backup/cms/monitor").exists()  # the running build kept for a rollback


def test_a_campaign_on_real_openssh_monitors_defers_patches_catches_rollback_resumes_and_refuses(
        tmp_path: Path) -> None:
    with rig(tmp_path, monitors=6, start=OpenSshFleet.start) as r, r.journal() as journal:
        patient, patched, rollback, dropped, rekeyed, full = (m.name for m in r.fleet.monitors)
        r.fleet.monitor(full).inject("disk-full")
        r.fleet.monitor(patient).connect_patient()
        r.fleet.monitor(rollback).inject("reboot-rollback")
        r.fleet.monitor(dropped).inject("upload-drop", offset=512)  # the package is 565 bytes
        r.fleet.monitor(rekeyed).inject("host-key-changed")
        before = _verify(r, patched, None)
        assert _outcomes(before, "device") and "fail" in _outcomes(before, "device").values()
        # The hidden mount is device-side evidence here: /proc/mounts shows it after the trigger.
        assert _outcomes(before, "device")["nfs-mount-after-menu-update"] == "fail"
        # The limit of this fleet, explicit: its network side is silent, so no network check fails on a
        # vulnerable monitor here (the emulator's tests cover the network evidence).
        assert "fail" not in _outcomes(before, "network").values()

        engine = r.engine(journal, policy=fast_policy(waves=("100%",), canary_must_pass=False,
                                                      max_rechecks=1, observation_window=WINDOW))
        engine.run(auto_approve=True)
        status = engine.status.devices

        assert (status[patient].state, status[patient].reason) == (DeviceState.DEFERRED, "patient-connected")
        assert r.installs(patient) == 0
        assert status[patched].state is DeviceState.PATCHED, status[patched]
        assert set(status[patched].verdicts.values()) == {Verdict.FIXED}
        assert (status[rollback].state, status[rollback].reason) == (DeviceState.FAILED, "silent-rollback")
        assert status[rollback].firmware_after == status[rollback].firmware_before
        assert status[dropped].state is DeviceState.PATCHED, status[dropped]
        activity = r.fleet.monitor(dropped).activity()
        assert [a["offset"] for a in activity if a["kind"] == "upload-drop"] == [512]
        uploads = [a["bytes"] for a in activity if a["kind"] == "upload"]
        assert uploads[-1] == r.package.size - 512  # resumed: only the rest travelled
        assert (status[rekeyed].state, status[rekeyed].reason) == (DeviceState.FAILED, "host-key-mismatch")
        assert not any(a["kind"] == "exec" for a in r.fleet.monitor(rekeyed).activity())
        assert (status[full].state, status[full].reason) == (DeviceState.FAILED, "disk-full")

        after = _verify(r, patched, status[patched].firmware_after)
        device_checks = _outcomes(after, "device")
        assert device_checks.keys() == _outcomes(before, "device").keys()
        assert set(device_checks.values()) == {"pass"}, device_checks
