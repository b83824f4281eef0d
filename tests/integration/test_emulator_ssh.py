"""The emulated monitor speaks real SSH: OpenSSH and paramiko clients, exec, PTY shell, SFTP, scp."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml

from orchestrator.emulator import EmulatedFleet, EmulatedMonitor


def ssh_argv(fleet: EmulatedFleet, monitor: EmulatedMonitor, *extra: str) -> list[str]:
    return ["ssh", "-i", str(fleet.key_path), "-o", f"UserKnownHostsFile={fleet.known_hosts_path}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            "-p", str(monitor.port), *extra, f"service@{monitor.address}"]


def paramiko_client(fleet: EmulatedFleet, monitor: EmulatedMonitor) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(fleet.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(monitor.address, port=monitor.port, username="service", key_filename=str(fleet.key_path),
                   look_for_keys=False, allow_agent=False, timeout=5)
    return client


@pytest.fixture(scope="module")
def shared(module_fleet_factory: Callable[..., EmulatedFleet]) -> EmulatedFleet:
    return module_fleet_factory(3)


def test_openssh_exec_runs_in_the_monitors_busybox_root(shared: EmulatedFleet) -> None:
    m = shared.monitors[0]
    result = subprocess.run([*ssh_argv(shared, m), "cat /etc/firmware_version; . /etc/device.conf; "
                             "echo $MODEL $SERIAL; ls /opt/cms/bin; echo oops >&2; exit 3"],
                            capture_output=True, text=True, timeout=20, check=False)
    assert result.returncode == 3, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == m.version
    assert lines[1] == f"{m.model} {m.serial}"
    assert "monitor" in lines[2:] and "update" in lines[2:]
    assert "oops" in result.stderr


def test_paramiko_exec_and_sftp_upload_land_in_the_monitor_root(shared: EmulatedFleet,
                                                                tmp_path: Path) -> None:
    m = shared.monitors[1]
    payload = tmp_path / "pkg.bin"
    payload.write_bytes(b"x" * 300_000)
    with paramiko_client(shared, m) as client:
        sftp = client.open_sftp()
        sftp.put(str(payload), "/data/upgrade/pkg.bin")
        sftp.close()
        _, out, _ = client.exec_command("sha256sum /data/upgrade/pkg.bin; wc -c < /data/upgrade/pkg.bin")
        text = out.read().decode()
    assert (m.root / "data/upgrade/pkg.bin").stat().st_size == 300_000
    assert "300000" in text
    uploads = [a for a in m.activity() if a["kind"] == "upload"]
    assert uploads and uploads[-1]["bytes"] == 300_000


def test_sftp_cannot_leave_the_monitor_root(shared: EmulatedFleet) -> None:
    m = shared.monitors[1]
    with paramiko_client(shared, m) as client:
        sftp = client.open_sftp()
        names = sftp.listdir("/../../..")
        assert "opt" in names and "data" in names  # "/.." is the monitor's own root
        with pytest.raises(OSError):
            sftp.open("/bin/busybox", "w")


def test_openssh_scp_and_sftp_clients_work_unchanged(shared: EmulatedFleet, tmp_path: Path) -> None:
    m = shared.monitors[2]
    src = tmp_path / "hello.txt"
    src.write_text("hello monitor\n")
    common = ["-i", str(shared.key_path), "-o", f"UserKnownHostsFile={shared.known_hosts_path}",
              "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-P", str(m.port)]
    scp = subprocess.run(["scp", *common, str(src), f"service@{m.address}:/data/upgrade/hello.txt"],
                         capture_output=True, text=True, timeout=20, check=False)
    assert scp.returncode == 0, scp.stderr
    legacy = subprocess.run(["scp", "-O", *common, str(src), f"service@{m.address}:/tmp/legacy.txt"],
                            capture_output=True, text=True, timeout=20, check=False)
    assert legacy.returncode == 0, legacy.stderr
    sftp = subprocess.run(["sftp", *common, "-b", "-", f"service@{m.address}"], input="ls /data/upgrade\n",
                          capture_output=True, text=True, timeout=20, check=False)
    assert sftp.returncode == 0, sftp.stderr
    assert "hello.txt" in sftp.stdout
    assert (m.root / "tmp/legacy.txt").read_text() == "hello monitor\n"


def test_interactive_pty_shell_runs_busybox_sh(shared: EmulatedFleet) -> None:
    m = shared.monitors[0]
    with paramiko_client(shared, m) as client:
        chan = client.invoke_shell(term="xterm", width=100, height=30)
        chan.settimeout(10)
        chan.sendall(b"stty size; echo marker-$((6*7)); exit\n")
        out = b""
        while not chan.exit_status_ready() or chan.recv_ready():
            data = chan.recv(4096)
            if not data:
                break
            out += data
    assert b"marker-42" in out
    assert b"30 100" in out


def test_exec_with_forced_tty_works_like_ansible_raw(shared: EmulatedFleet) -> None:
    m = shared.monitors[0]
    result = subprocess.run([*ssh_argv(shared, m, "-tt"), "stty size; cms-status"], capture_output=True,
                            text=True, timeout=20, check=False)
    assert result.returncode == 0, result.stderr
    assert "standard input: Not a tty" not in result.stdout  # stty found a terminal
    assert "patient=none" in result.stdout


def test_inventory_pins_every_host_key_and_spans_three_sites(shared: EmulatedFleet) -> None:
    doc: dict[str, Any] = yaml.safe_load(shared.inventory_path.read_text())
    top = doc["all"]
    assert top["vars"]["ansible_user"] == "service"
    assert Path(top["vars"]["ansible_ssh_private_key_file"]) == shared.key_path
    assert (shared.key_path.stat().st_mode & 0o777) == 0o600
    assert f"UserKnownHostsFile={shared.known_hosts_path}" in top["vars"]["ansible_ssh_common_args"]
    hosts = {}
    for site in top["children"].values():
        for ward in site["children"].values():
            hosts.update(ward["hosts"])
    assert len(top["children"]) == 3
    keygen = subprocess.run(["ssh-keygen", "-lf", str(shared.known_hosts_path)], capture_output=True,
                            text=True, check=True)
    for m in shared.monitors:
        h = hosts[m.name]
        seen = (h["ansible_host"], h["ansible_port"], h["model"], h["serial_number"])
        assert seen == (m.address, m.port, m.model, m.serial)
        assert h["host_key"] in keygen.stdout
