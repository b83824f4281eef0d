"""Installing real packages changes what a monitor does; reboots drop sessions and keep state."""

from __future__ import annotations

import hashlib
import socket
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paramiko
import pytest

from orchestrator.domain.indicators import MOUNT_PATTERN, MOUNT_STRING
from orchestrator.emulator import FIXED_VERSION, INSUFFICIENT_VERSION, EmulatedFleet, EmulatedMonitor
from orchestrator.emulator.firmware import build_package
from orchestrator.errors import EmulatorError
from tests.integration.conftest import wait_until

Factory = Callable[..., Any]


def connect(fleet: EmulatedFleet, m: EmulatedMonitor) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(fleet.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(m.address, port=m.port, username="service", key_filename=str(fleet.key_path),
                   look_for_keys=False, allow_agent=False, timeout=5)
    return client


def run(client: paramiko.SSHClient, command: str) -> tuple[int, str, str]:
    _, out, err = client.exec_command(command, timeout=30)
    status = out.channel.recv_exit_status()
    return status, out.read().decode(), err.read().decode()


def boots(m: EmulatedMonitor) -> int:
    return sum(1 for a in m.activity() if a["kind"] == "boot")


def refused(m: EmulatedMonitor) -> bool:
    try:
        socket.create_connection((m.address, m.port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def install_and_reboot(fleet: EmulatedFleet, m: EmulatedMonitor, package: Path) -> tuple[int, str, str]:
    before = boots(m)
    with connect(fleet, m) as client:
        sftp = client.open_sftp()
        sftp.put(str(package), "/data/upgrade/" + package.name)
        sftp.close()
        result = run(client, f"cms-install /data/upgrade/{package.name}")
        if result[0] == 0:
            run(client, "reboot")
    if result[0] == 0:
        wait_until(lambda: boots(m) > before, what="the monitor to come back from reboot")
    return result


def test_build_package_is_deterministic_and_vendor_shaped(tmp_path: Path) -> None:
    a = build_package(tmp_path / "a.tar.gz", variant="fixed")
    b = build_package(tmp_path / "b.tar.gz", variant="fixed")
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    with tarfile.open(a) as tar:
        names = set(tar.getnames())
        monitor = tar.extractfile("bin/monitor").read()  # type: ignore[union-attr]
        assert tar.extractfile("VERSION").read().decode().strip() == FIXED_VERSION  # type: ignore[union-attr]
    assert {"VERSION", "MODELS", "bin/monitor", "bin/update"} <= names
    assert monitor.startswith(b"\x7fELF") and MOUNT_STRING not in monitor and b"202.114.4." not in monitor
    with tarfile.open(build_package(tmp_path / "i.tar.gz", variant="insufficient")) as tar:
        assert "etc/network.conf" in tar.getnames()
        assert MOUNT_PATTERN.search(tar.extractfile("bin/update").read())  # type: ignore[union-attr]
    with pytest.raises(EmulatorError):
        build_package(tmp_path / "x.tar.gz", variant="sideways")


def test_installing_the_fixed_package_and_rebooting_makes_the_monitor_fixed(
        module_fleet_factory: Factory, tmp_path: Path) -> None:
    fleet = module_fleet_factory(3, mix="CMS8000=3")
    m = fleet.monitors[0]
    old = m.version
    status, out, err = install_and_reboot(fleet, m, build_package(tmp_path / "fix.tar.gz", variant="fixed"))
    assert status == 0, err
    assert FIXED_VERSION in out
    assert (m.firmware_state, m.version) == ("fixed", FIXED_VERSION)
    with connect(fleet, m) as client:
        _, text, _ = run(client, "cat /etc/firmware_version; tail -n 1 /var/log/cms-install.log; "
                                 "cat /proc/net/udp")
    assert text.splitlines()[0] == FIXED_VERSION
    assert "installed" in text and ":C738" not in text
    assert [a for a in m.activity() if a["kind"] == "install"][-1]["version"] == FIXED_VERSION
    assert old != FIXED_VERSION


def test_installing_the_january_package_only_disables_eth0(module_fleet_factory: Factory,
                                                           tmp_path: Path) -> None:
    fleet = module_fleet_factory(1, mix="CMS8000=1")
    m = fleet.monitors[0]
    package = build_package(tmp_path / "jan.tar.gz", variant="insufficient")
    status, _, err = install_and_reboot(fleet, m, package)
    assert status == 0, err
    assert (m.firmware_state, m.version) == ("insufficient", INSUFFICIENT_VERSION)
    with connect(fleet, m) as client:
        _, text, _ = run(client, "cat /sys/class/net/eth0/operstate; grep ETH0= /etc/network.conf")
    assert text.split() == ["down", "ETH0=disabled"]


def test_installer_refuses_a_package_for_another_model_and_garbage(
        module_fleet_factory: Factory, tmp_path: Path) -> None:
    fleet = module_fleet_factory(1, mix="CMS8000=1")
    m = fleet.monitors[0]
    wrong = build_package(tmp_path / "mn120.tar.gz", variant="fixed", models=["MN-120"])
    status, _, err = install_and_reboot(fleet, m, wrong)
    assert status == 4 and "model CMS8000" in err
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a package")
    status, _, err = install_and_reboot(fleet, m, junk)
    assert status == 3 and "gzip" in err
    assert m.firmware_state == "vulnerable"


def test_reboot_drops_sessions_refuses_connections_and_comes_back(fleet_factory: Factory) -> None:
    fleet = fleet_factory(1, reboot_seconds=1.5)
    m = fleet.monitors[0]
    before = boots(m)
    watcher = connect(fleet, m)
    with connect(fleet, m) as client:
        status, out, _ = run(client, "reboot")
    assert status == 0 and "going down" in out
    wait_until(lambda: not watcher.get_transport().is_active(), what="open sessions to be dropped")  # type: ignore[union-attr]
    wait_until(lambda: refused(m), what="connections to be refused while rebooting")
    wait_until(lambda: boots(m) > before, what="the monitor to come back")
    with connect(fleet, m) as client:
        assert run(client, "echo back")[1].strip() == "back"
    watcher.close()


def test_reboot_ends_the_processes_running_on_the_monitor(fleet_factory: Factory) -> None:
    fleet = fleet_factory(1)
    m = fleet.monitors[0]
    before = boots(m)
    client = connect(fleet, m)
    _, out, _ = client.exec_command("echo $$; exec sleep 300")
    pid = int(out.readline())
    sleep = wait_until(lambda: _process(pid, b"sleep"), what="the shell to become the sleep")
    m.reboot()
    # Generous timeouts: a loaded machine (load 11 on 2 cores) is slow, and a met condition ends the wait.
    wait_until(lambda: boots(m) > before, timeout=60, what="the monitor to come back")
    wait_until(lambda: _process(pid) != sleep, timeout=60, what=f"the sleep (pid {pid}) to die")
    client.close()


def _process(pid: int, command: bytes = b"") -> tuple[str, bytes] | None:
    """The live process ``pid`` as (start time, command line), or None when it is gone or a zombie; with
    ``command``, None until its command line starts with it. The start time tells a pid the kernel gave
    to another process (pid_max is 32768 here; a full run forks a lot) from the one the test started."""
    proc = Path(f"/proc/{pid}")
    try:
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        cmdline = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return None
    if fields[0] == "Z" or not cmdline.startswith(command):  # fields[0] is stat's 3rd field, the state
        return None
    return fields[19], cmdline  # stat's 22nd field: the start time, in clock ticks since boot
