"""A monitor's root filesystem: BusyBox hard links, the device files, and the emulated /proc and /sys.

Every monitor gets its own small tree (~40 KB of its own files): BusyBox and the device scripts are hard
links to one copy per fleet (never to the host's /bin/busybox, so nothing done inside a monitor can touch
the host's files; ~120 links to BusyBox per monitor, so past the filesystem's link limit -- ext4's
65,000, reached near 540 monitors -- the links continue from a fresh copy: ``_link``), the firmware
binaries are the monitor's own copies (an installer replaces them). Only applets that describe or act on
the monitor itself are linked: no network clients (``nc``, ``wget``, ``ping``: a monitor never opens a
socket the emulator does not control), no ``reboot``/``ifconfig``/``df`` applets (scripts stand in for
them, see ``scripts``). /proc and /sys are plain files the emulator rewrites whenever the emulated state
changes; they show the real indicator addresses (202.114.4.x), as a real monitor would, while the
emulator's packets go to their loopback stand-ins.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.emulator.scripts import PROFILE, RCS, SCRIPTS

APPLETS: tuple[str, ...] = (
    "sh", "ash", "cat", "ls", "cp", "mv", "rm", "mkdir", "rmdir", "ln", "chmod", "chown", "touch", "echo",
    "printf", "test", "[", "[[", "head", "tail", "wc", "grep", "egrep", "fgrep", "sed", "awk", "cut", "sort",
    "uniq", "tr", "tar", "gzip", "gunzip", "zcat", "sha256sum", "sha1sum", "sha512sum", "md5sum", "du",
    "find", "xargs", "sleep", "usleep", "date", "uname", "id", "whoami", "env", "printenv", "true", "false",
    "basename", "dirname", "readlink", "realpath", "stat", "mount", "route", "netstat", "ps", "kill", "dd",
    "od", "hexdump", "strings", "cmp", "diff", "tee", "which", "expr", "seq", "mktemp", "sync", "uptime",
    "vi", "less", "more", "clear", "reset", "stty", "tty", "yes", "timeout", "pwd", "base64", "cksum",
    "sum", "split", "fold", "nohup", "tac", "rev", "comm", "truncate", "xxd", "cpio", "unzip", "logger",
    "hostname", "free", "dmesg", "fsync", "nproc", "groups", "watch", "pidof",
)
BIN_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin")  # read-only for SFTP clients too
_TEMPLATE_MARK = ".cmspatch-emulator-template"
# In creation order (parents first).
_DIRS = ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "etc/init.d", "opt", "opt/cms", "opt/cms/bin",
         "data", "data/upgrade", "var", "var/log", "var/lib", "var/lib/cms", "var/lib/cms/faults",
         "var/backup", "run", "run/cms", "run/cms/requests", "root", "tmp", "mnt", "dev", "proc", "proc/net",
         "sys", "sys/class", "sys/class/net", "sys/class/net/eth0", "sys/class/net/lo")
# What the device's shell may change (owned by the monitor's uid); everything else stays root's.
_OWNED_DIRS = ("etc", "opt/cms/bin", "data", "data/upgrade", "var/log", "var/backup", "run/cms",
               "run/cms/requests", "root", "mnt")
_OWNED = ("etc/firmware_version", "etc/network.conf", "opt/cms/bin/monitor", "opt/cms/bin/update",
          "var/log/cms-install.log")


@dataclass(frozen=True)
class DeviceIdentity:
    name: str
    model: str
    serial: str
    address: str  # the monitor's loopback address, also its emulated eth0 address
    hwaddr: str


def prepare_template(common: Path, busybox: str | None = None) -> list[str]:
    """Copy BusyBox and the scripts once per fleet; return the applets this BusyBox provides."""
    busybox = busybox or shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        from orchestrator.errors import EmulatorError

        raise EmulatorError("BusyBox not found: install Debian's busybox-static (make deps)",
                            reason="busybox-missing")
    common.mkdir(parents=True, exist_ok=True)
    target = common / "busybox"
    if not target.exists():
        tmp = common / ".busybox.tmp"
        tmp.write_bytes(_hide_applets(Path(busybox).read_bytes()))
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    for rel, text in SCRIPTS.items():
        path = common / rel.replace("/", "_")
        path.write_text(text)
        os.chmod(path, 0o755)
    (common / _TEMPLATE_MARK).write_text("")
    available = set(os.popen(f"{target} --list").read().split())
    return [a for a in APPLETS if a in available]


_LINK_SOURCES: dict[str, str] = {}  # a fleet's shared file -> the copy new links are made to now
_LINK_LOCK = threading.Lock()


def _link(source: str, target: str) -> None:
    """Hard-link ``target`` to ``source``; once ``source`` has as many links as the filesystem allows
    (EMLINK), to a fresh copy of it (``source.2``, ``source.3``, ...) that the next links share."""
    with _LINK_LOCK:
        current = _LINK_SOURCES.get(source, source)
        if current != source and not os.path.exists(current):  # that fleet's files were removed
            current = source
        try:
            os.link(current, target)
            return
        except OSError as exc:
            if exc.errno != errno.EMLINK:
                raise
        copies = 2
        while os.path.exists(fresh := f"{source}.{copies}"):
            copies += 1
        shutil.copy2(source, fresh)
        _LINK_SOURCES[source] = fresh
        os.link(fresh, target)


def _hide_applets(binary: bytes) -> bytes:
    """Rename the ``df`` applet in the fleet's copy of BusyBox so that ``df`` runs the monitor's script.

    Debian's static BusyBox is built "standalone": its shell runs a known applet name in-process even
    when a script of that name comes first in PATH, and ``df`` would then report the host's disks. The
    applet table is sorted; "dg" keeps its place (after "devmem", before "diff"). Harmless if absent.
    """
    table = binary.find(b"\x00[\x00[[\x00")
    at = binary.find(b"\x00df\x00", table) if table >= 0 else -1
    if at < 0 or at - table > 4096:
        return binary
    return binary[:at] + b"\x00dg\x00" + binary[at + 4:]


def create_rootfs(root: Path, common: Path, applets: Iterable[str], ident: DeviceIdentity, *,
                  version: str, monitor_bin: bytes, update_bin: bytes, netconf: bytes,
                  data_capacity: int, owner: tuple[int, int] | None) -> None:
    """Build one monitor's root. ``owner`` (uid, gid) owns what the device's shell may change."""
    if root.exists():
        shutil.rmtree(root)
    # Plain os calls on str paths: on an overlay filesystem each syscall costs ~0.2 ms, and 500 monitors
    # are built in start-up time, so no pathlib churn and no existence checks.
    r = str(root)
    os.makedirs(r)
    for d in _DIRS:
        os.mkdir(f"{r}/{d}")
    bb = str(common / "busybox")
    for applet in ("busybox", *applets):
        _link(bb, f"{r}/bin/{applet}")
    for rel in SCRIPTS:
        _link(str(common / rel.replace("/", "_")), f"{r}/{rel}")
    files: dict[str, bytes] = {
        "etc/firmware_version": (version + "\n").encode(),
        "etc/device.conf": (f"MODEL={ident.model}\nSERIAL={ident.serial}\nHWADDR={ident.hwaddr}\n"
                            f"IPADDR={ident.address}\n"
                            f"BCAST={ident.address.rsplit('.', 1)[0]}.255\n").encode(),
        "etc/network.conf": netconf,
        "etc/hostname": (ident.name + "\n").encode(),
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n"
                      + (f"service:x:{owner[0]}:{owner[1]}:CMS service:/root:/bin/sh\n".encode()
                         if owner else b""),
        "etc/group": b"root:x:0:\n" + (f"service:x:{owner[1]}:\n".encode() if owner else b""),
        "etc/profile": PROFILE.encode(),
        "etc/init.d/rcS": RCS.encode(),
        "opt/cms/bin/monitor": monitor_bin,
        "opt/cms/bin/update": update_bin,
        "var/log/cms-install.log": b"",
        "var/lib/cms/data_capacity": f"{data_capacity}\n".encode(),
        "var/lib/cms/status": b"patient=none\nalarm=none\n",
        "proc/version": b"Linux version 2.6.27 (builder@cms) (gcc version 4.3.3) #1 PREEMPT\n",
    }
    executable = ("opt/cms/bin/monitor", "opt/cms/bin/update", "etc/init.d/rcS")
    for rel, data in files.items():
        mode = 0o755 if rel in executable else 0o644
        fd = os.open(f"{r}/{rel}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.write(fd, data)
            if owner is not None and rel in _OWNED:
                os.fchown(fd, *owner)
        finally:
            os.close(fd)
    os.chmod(f"{r}/tmp", 0o1777)
    _make_dev(root / "dev")
    if owner is not None:
        for rel in _OWNED_DIRS:
            os.lchown(f"{r}/{rel}", *owner)


def _make_dev(dev: Path) -> None:
    for name, minor in (("null", 3), ("zero", 5), ("full", 7), ("random", 8), ("urandom", 9)):
        try:
            os.mknod(dev / name, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
            os.chmod(dev / name, 0o666)
        except (PermissionError, FileExistsError):
            # Unprivileged fallback: a plain file stands in (only /dev/null is commonly needed).
            (dev / name).touch()
            os.chmod(dev / name, 0o666)
    try:
        os.mknod(dev / "tty", 0o666 | stat.S_IFCHR, os.makedev(5, 0))
        os.chmod(dev / "tty", 0o666)
    except (PermissionError, FileExistsError):
        pass


def write_file(path: Path, data: str) -> None:
    """Atomically replace an emulator-owned file (readers in the monitor never see half a file). The temp
    name is the writer's own: two threads rewriting one file (a reboot and the uptime refresh) must not
    rename each other's temp file away."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(data)
    os.replace(tmp, path)
