"""Every fault, injected on one monitor and observed from outside with real clients."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paramiko
import pytest

from orchestrator.emulator import EmulatedFleet, EmulatedMonitor
from orchestrator.emulator.catalog import LEGACY_PASSWORD
from orchestrator.emulator.faults import parse_faults
from orchestrator.emulator.firmware import build_package
from orchestrator.errors import EmulatorError
from tests.integration.conftest import wait_until

Factory = Callable[..., Any]


def connect(fleet: EmulatedFleet, m: EmulatedMonitor, **kwargs: Any) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(fleet.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    args: dict[str, Any] = {"username": "service", "key_filename": str(fleet.key_path), **kwargs}
    client.connect(m.address, port=m.port, look_for_keys=False, allow_agent=False, timeout=5, **args)
    return client


def run(client: paramiko.SSHClient, command: str) -> tuple[int, str, str]:
    _, out, err = client.exec_command(command, timeout=30)
    status = out.channel.recv_exit_status()
    return status, out.read().decode(), err.read().decode()


def boots(m: EmulatedMonitor) -> int:
    return sum(1 for a in m.activity() if a["kind"] == "boot")


@pytest.fixture(scope="module")
def shared(module_fleet_factory: Factory) -> EmulatedFleet:
    return module_fleet_factory(8, mix="CMS8000=1")


def test_unreachable_refuses_connections_until_cleared(shared: EmulatedFleet) -> None:
    m = shared.monitors[0]
    m.inject("unreachable")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((m.address, m.port), timeout=2)
    m.clear_fault("unreachable")
    with connect(shared, m) as client:
        assert run(client, "true")[0] == 0


def test_auth_refused_rejects_the_fleet_key(shared: EmulatedFleet) -> None:
    m = shared.monitors[1]
    m.inject("auth-refused")
    try:
        with pytest.raises(paramiko.AuthenticationException):
            connect(shared, m)
    finally:
        m.clear_fault("auth-refused")


def test_changed_host_key_is_caught_by_pinned_known_hosts(shared: EmulatedFleet) -> None:
    m = shared.monitors[2]
    m.inject("host-key-changed")
    try:
        with pytest.raises(paramiko.BadHostKeyException):
            connect(shared, m)
        result = subprocess.run(
            ["ssh", "-i", str(shared.key_path), "-o", f"UserKnownHostsFile={shared.known_hosts_path}",
             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(m.port),
             f"service@{m.address}", "true"], capture_output=True, text=True, timeout=20, check=False)
        assert result.returncode == 255 and "HOST IDENTIFICATION HAS CHANGED" in result.stderr
    finally:
        m.clear_fault("host-key-changed")
    connect(shared, m).close()


def test_upload_drops_the_connection_at_the_chosen_offset_once(shared: EmulatedFleet, tmp_path: Path) -> None:
    m = shared.monitors[3]
    payload = tmp_path / "big.bin"
    payload.write_bytes(bytes(range(256)) * 1200)  # 307200 bytes
    m.inject("upload-drop", offset=100_000)
    with connect(shared, m) as client, pytest.raises((EOFError, OSError, paramiko.SSHException)):
        client.open_sftp().put(str(payload), "/data/upgrade/big.bin")
    assert (m.root / "data/upgrade/big.bin").stat().st_size == 100_000
    assert [a["offset"] for a in m.activity() if a["kind"] == "upload-drop"] == [100_000]
    with connect(shared, m) as client:  # the fault was one-shot: the retry goes through
        client.open_sftp().put(str(payload), "/data/upgrade/big.bin")
    assert (m.root / "data/upgrade/big.bin").stat().st_size == 307_200


def test_slow_link_caps_upload_bandwidth(shared: EmulatedFleet, tmp_path: Path) -> None:
    m = shared.monitors[4]
    payload = tmp_path / "quarter.bin"
    payload.write_bytes(b"\x01" * 262_144)
    m.inject("slow-link", rate=262_144)
    try:
        with connect(shared, m) as client:
            sftp = client.open_sftp()
            started = time.monotonic()
            sftp.put(str(payload), "/data/upgrade/quarter.bin")
            elapsed = time.monotonic() - started
    finally:
        m.clear_fault("slow-link")
    assert elapsed >= 0.8, elapsed  # 256 KiB at 256 KiB/s (unthrottled it takes a few ms)


def test_full_data_partition_refuses_uploads_and_installs(shared: EmulatedFleet, tmp_path: Path) -> None:
    m = shared.monitors[5]
    package = build_package(tmp_path / "fix.tar.gz", variant="fixed")
    with connect(shared, m) as client:
        client.open_sftp().put(str(package), "/data/upgrade/fix.tar.gz")
    m.inject("disk-full")
    try:
        with connect(shared, m) as client:
            with pytest.raises(OSError):
                client.open_sftp().put(str(package), "/data/upgrade/again.tar.gz")
            status, _, err = run(client, "cms-install /data/upgrade/fix.tar.gz")
            _, df, _ = run(client, "df -k /data")
    finally:
        m.clear_fault("disk-full")
    assert status == 6 and "insufficient space" in err
    assert df.splitlines()[1].split()[3] == "0"


def test_installer_failure_exits_non_zero_with_a_message(shared: EmulatedFleet, tmp_path: Path) -> None:
    m = shared.monitors[6]
    package = build_package(tmp_path / "fix.tar.gz", variant="fixed")
    m.inject("install-fail")
    try:
        with connect(shared, m) as client:
            client.open_sftp().put(str(package), "/data/upgrade/fix.tar.gz")
            status, _, err = run(client, "cms-install /data/upgrade/fix.tar.gz")
            _, log, _ = run(client, "cat /var/log/cms-install.log")
    finally:
        m.clear_fault("install-fail")
    assert status == 5 and "flash write error" in err
    assert "FAILED" in log
    assert m.firmware_state == "vulnerable"
    assert [a["ok"] for a in m.activity() if a["kind"] == "install"] == [False]


def test_patient_and_alarm_show_in_cms_status(shared: EmulatedFleet) -> None:
    m = shared.monitors[7]
    m.connect_patient()
    m.set_alarm(True)
    with connect(shared, m) as client:
        busy = run(client, "cms-status")[1]
    m.disconnect_patient()
    m.set_alarm(False)
    with connect(shared, m) as client:
        idle = run(client, "cms-status")[1]
    assert "patient=connected" in busy and "alarm=active" in busy
    assert "patient=none" in idle and "alarm=none" in idle


def test_default_password_login_only_while_the_fault_is_injected(shared: EmulatedFleet) -> None:
    m = shared.monitors[7]
    kwargs = {"key_filename": None, "password": LEGACY_PASSWORD}
    with pytest.raises(paramiko.SSHException):
        connect(shared, m, **kwargs)
    m.inject("default-password")
    try:
        with connect(shared, m, **kwargs) as client:
            assert run(client, "echo in")[1].strip() == "in"
    finally:
        m.clear_fault("default-password")


def test_reboot_that_never_returns_until_the_fault_is_cleared(fleet_factory: Factory) -> None:
    fleet = fleet_factory(1, faults="*=reboot-hang")
    m = fleet.monitors[0]
    before = boots(m)
    m.reboot()
    wait_until(lambda: any(a["kind"] == "reboot-hang" for a in m.activity()), what="the hung reboot")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((m.address, m.port), timeout=2)
    m.clear_fault("reboot-hang")
    wait_until(lambda: boots(m) > before, what="the monitor to boot once the fault is cleared")


def test_reboot_rollback_comes_back_with_the_old_version(fleet_factory: Factory, tmp_path: Path) -> None:
    fleet = fleet_factory(1, faults="*=reboot-rollback")
    m = fleet.monitors[0]
    old = m.version
    package = build_package(tmp_path / "fix.tar.gz", variant="fixed")
    before = boots(m)
    with connect(fleet, m) as client:
        client.open_sftp().put(str(package), "/data/upgrade/fix.tar.gz")
        assert run(client, "cms-install /data/upgrade/fix.tar.gz")[0] == 0
        run(client, "reboot")
    wait_until(lambda: boots(m) > before, what="the monitor to come back")
    assert (m.version, m.firmware_state) == (old, "vulnerable")
    assert any(a["kind"] == "rollback" for a in m.activity())


def test_fault_spec_syntax_and_unknown_faults() -> None:
    specs = parse_faults("bed07=upload-drop@100k*2,bed09=patient,*=slow-link@2M")
    assert [(s.selector, s.fault, s.params) for s in specs] == [
        ("bed07", "upload-drop", {"offset": 102_400, "times": 2}), ("bed09", "patient", {}),
        ("*", "slow-link", {"rate": 2 * 1024 * 1024})]
    for bad in ("bed07=melt", "bed07", "bed07=patient@3", "bed07=upload-drop"):
        with pytest.raises(EmulatorError):
            parse_faults(bad)
