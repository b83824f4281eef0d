"""A real-OpenSSH monitor's chroot: the emulator's BusyBox root plus OpenSSH's sftp-server and two scripts.

``ChrootDirectory`` wants every component of the root's path owned by root and writable by nobody else,
so roots live under ``CHROOT_BASE`` (not under /tmp, which is world-writable). OpenSSH's ``sftp-server``
is dynamically linked: it and the libraries ``ldd`` names are copied once per fleet and hard-linked into
each root, like BusyBox.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from orchestrator.emulator.openssh.scripts import SCRIPTS
from orchestrator.emulator.rootfs import DeviceIdentity, create_rootfs, prepare_template
from orchestrator.errors import EmulatorError

CHROOT_BASE = Path(os.environ.get("CMSPATCH_OPENSSH_CHROOTS", "/var/lib/cmspatch-openssh"))
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
_LDD_PATH = re.compile(r"(/\S+)")
# The device-side files the service account writes (its logs and the upload-drop fault it consumes).
_USER_FILES = ("var/log/cms-activity", "var/log/sftp.log")


def check_chroot_path(path: Path) -> None:
    """Refuse a base sshd would refuse later, with words: every component root-owned, not g/o-writable."""
    for part in (path, *path.parents):
        st = part.stat()
        if st.st_uid != 0 or st.st_mode & 0o022:
            raise EmulatorError(f"{part} is not root-owned and closed to group/other writes: sshd refuses "
                                f"ChrootDirectory under it (set CMSPATCH_OPENSSH_CHROOTS)",
                                reason="bad-chroot-base")


def prepare_common(common: Path) -> list[str]:
    """The emulator's template (BusyBox, device scripts) plus sftp-server, its libraries and our scripts."""
    applets = prepare_template(common)
    libs = [SFTP_SERVER]
    ldd = subprocess.run(["ldd", SFTP_SERVER], capture_output=True, text=True, check=False).stdout
    for line in ldd.splitlines():
        match = _LDD_PATH.search(line.split("=>")[-1])
        if match and os.path.exists(match.group(1)):
            libs.append(match.group(1))
    for source in libs:
        target = common / "sys" / source.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copy2(os.path.realpath(source), target)
    for rel, text in SCRIPTS.items():
        path = common / ("openssh_" + rel.replace("/", "_"))
        path.write_text(text)
        os.chmod(path, 0o755)
    return applets


def create_chroot(root: Path, common: Path, applets: list[str], ident: DeviceIdentity, *, version: str,
                  monitor_bin: bytes, update_bin: bytes, netconf: bytes, data_capacity: int,
                  owner: tuple[int, int]) -> None:
    create_rootfs(root, common, applets, ident, version=version, monitor_bin=monitor_bin,
                  update_bin=update_bin, netconf=netconf, data_capacity=data_capacity, owner=owner)
    sysdir = common / "sys"
    for dirpath, _dirs, files in os.walk(sysdir):
        rel = os.path.relpath(dirpath, sysdir)
        os.makedirs(root / rel, exist_ok=True)
        for name in files:
            os.link(os.path.join(dirpath, name), root / rel / name)
    os.makedirs(root / "usr/libexec", exist_ok=True)
    os.link(root / "usr/lib/openssh/sftp-server", root / "usr/libexec/sftp-server")
    for rel in SCRIPTS:
        os.link(common / ("openssh_" + rel.replace("/", "_")), root / rel)
    for rel in _USER_FILES:
        (root / rel).touch()
        os.chown(root / rel, *owner)
    os.makedirs(root / "proc/sys/kernel/random", exist_ok=True)
