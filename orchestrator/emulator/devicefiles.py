"""The files a monitor's supervisor reads and writes in the monitor's root, whoever the SSH server is.

Shared by the asyncssh emulator (``monitor``) and the real-OpenSSH fleet (``openssh``): the device scripts'
requests, the clinical status file, the /proc and /sys stand-ins, the boot identity, and the installer's
backup a silent rollback restores. One copy, so both kinds of test monitor show the same device.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.emulator import procfs
from orchestrator.emulator.rootfs import write_file

STATUS_FAULTS = ("patient", "alarm", "status-garbage", "status-duplicate", "status-fail")
_ROLLBACK = {"monitor": "opt/cms/bin/monitor", "update": "opt/cms/bin/update",
             "firmware_version": "etc/firmware_version", "network.conf": "etc/network.conf"}


def take_requests(root: Path) -> list[tuple[str, str]]:
    """(kind, content) of each request the device scripts left in /run/cms/requests, removed as read."""
    directory = root / "run/cms/requests"
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    taken = []
    for name in names:
        if name.startswith("."):
            continue
        path = directory / name
        try:
            content = path.read_text(errors="replace").strip()
            path.unlink()
        except OSError:
            continue
        taken.append((name.rsplit(".", 1)[0], content))
    return taken


def install_record(content: str) -> dict[str, Any]:
    """cms-install's result request ("ok 0 VERSION" / "fail CODE MESSAGE") as an activity entry's data."""
    status, _, rest = content.partition(" ")
    code, _, detail = rest.partition(" ")
    return {"ok": status == "ok", "exit": int(code or 0),
            **({"version": detail} if status == "ok" else {"error": detail})}


def write_status(root: Path, has_fault: Callable[[str], bool], *, patient_connected: bool,
                 alarm_active: bool) -> None:
    """What cms-status prints for patient/alarm: the monitor's state, garbled by the status faults."""
    patient = "connected" if patient_connected else "none"
    alarm = "active" if alarm_active else "none"
    if has_fault("status-garbage"):
        text = "patient=?\nalarm=?\n"
    elif has_fault("status-duplicate"):
        other = "none" if patient == "connected" else "connected"
        text = f"patient={patient}\nalarm={alarm}\npatient={other}\n"
    else:
        text = f"patient={patient}\nalarm={alarm}\n"
    write_file(root / "var/lib/cms/status", text)
    flag = root / "var/lib/cms/faults/status-fail"
    flag.touch() if has_fault("status-fail") else flag.unlink(missing_ok=True)


def write_proc(root: Path, view: procfs.NetView) -> None:
    write_file(root / "proc/mounts", procfs.mounts(view))
    write_file(root / "proc/net/route", procfs.route(view))
    write_file(root / "proc/net/tcp", procfs.tcp(view))
    write_file(root / "proc/net/udp", procfs.udp(view))
    if not (root / "proc/net/tcp6").exists():
        write_file(root / "proc/net/tcp6", procfs.TCP_HEADER)
        write_file(root / "proc/net/udp6", procfs.UDP_HEADER)
    write_file(root / "sys/class/net/eth0/operstate", procfs.operstate(view))


def write_uptime(root: Path, seconds: float) -> None:
    write_file(root / "proc/uptime", f"{seconds:.2f} {seconds * 0.9:.2f}\n")


def write_boot_id(root: Path, boot_id: str | None) -> None:
    """The kernel's boot id; ``None``: a kernel without one (the no-boot-id fault)."""
    path = root / "proc/sys/kernel/random/boot_id"
    if boot_id is None:
        path.unlink(missing_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file(path, boot_id + "\n")


def empty_tmp(root: Path) -> None:
    """/tmp is a tmpfs: empty after every boot."""
    with os.scandir(root / "tmp") as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def rollback(root: Path, owner: tuple[int, int] | None) -> bool:
    """Put the build cms-install backed up back in place (a failed boot falling back); False: no backup."""
    backup = root / "var/backup/cms"
    if not all((backup / name).exists() for name in _ROLLBACK):
        return False
    for name, rel in _ROLLBACK.items():
        tmp = root / (rel + ".rollback")
        shutil.copyfile(backup / name, tmp)
        if owner is not None:
            os.chown(tmp, *owner)
        os.replace(tmp, root / rel)
    return True


def data_used(root: Path) -> int:
    """Bytes of the files on /data (what cms-install's ``du`` counts)."""
    total = 0
    for dirpath, _dirs, files in os.walk(root / "data"):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
