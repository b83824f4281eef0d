"""One real-OpenSSH monitor: its sshd (the init of its own PID namespace), faults, reboots and activity.

The fault, activity and reboot API is ``EmulatedMonitor``'s, so the same tests drive either kind of
monitor. Its state lives in its chroot (the BusyBox root) and survives a reboot, as on the device; what
the device scripts ask for arrives as request files (``devicefiles.take_requests``), picked up by the
fleet's supervisor thread. See ``openssh.fleet`` for what is and is not emulated.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.domain.indicators import CMS_SERVER
from orchestrator.emulator import devicefiles, procfs
from orchestrator.emulator.faults import FAULTS, check_fault
from orchestrator.emulator.firmware import Build, derive_build
from orchestrator.emulator.layout import write_atomic
from orchestrator.emulator.rootfs import write_file
from orchestrator.errors import EmulatorError

if TYPE_CHECKING:
    from orchestrator.emulator.openssh.fleet import OpenSshFleet

SSHD = "/usr/sbin/sshd"
RUNNING_BEFORE_START = 3 * 86400.0
FAULTS_SUPPORTED = ("unreachable", "auth-refused", "host-key-changed", "upload-drop", "disk-full",
                    "install-fail", "reboot-hang", "reboot-rollback", "fake-reboot", "no-boot-id", "patient",
                    "alarm", "status-garbage", "status-duplicate", "status-fail")
SSHD_CONFIG = """\
ListenAddress {address}:{port}
HostKey {host_key}
PidFile none
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AllowUsers {user}
AuthorizedKeysFile {authorized_keys}
ChrootDirectory {root}
ForceCommand /bin/cms-session
Subsystem sftp /usr/libexec/cms-sftp
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
PrintMotd no
PrintLastLog no
UseDNS no
MaxStartups 200:30:400
MaxSessions 64
LoginGraceTime 30
ClientAliveInterval 0
LogLevel INFO
"""


class OpenSshMonitor:
    """One sshd monitor; the fault, activity and reboot API of ``EmulatedMonitor`` that tests use."""

    def __init__(self, fleet: OpenSshFleet, *, index: int, name: str, model: str, address: str, port: int,
                 root: Path, owner: tuple[int, int], host_key_path: Path, authorized_keys: Path,
                 config_path: Path, log_path: Path) -> None:
        self._fleet = fleet
        self.index, self.name, self.model = index, name, model
        self.address, self.port = address, port
        self.root, self.owner = root, owner
        self.host_key_path = host_key_path
        self.authorized_keys = authorized_keys
        self.config_path, self.log_path = config_path, log_path
        self._faults: dict[str, dict[str, int]] = {}
        self._activity: list[dict[str, Any]] = []
        self._offsets: dict[str, int] = {}
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._reboot_thread: threading.Thread | None = None
        self._hung = False
        self._booted_at = time.monotonic()
        self.boot_id = ""
        self.build: Build | None = None
        self._version = ""
        self.eth0_up = False
        self.nfs_server: str | None = None
        self.started_seconds = 0.0  # how long the last sshd took to accept connections

    # ----------------------------------------------------------------- public API
    @property
    def version(self) -> str:
        """The running firmware (what booted), as ``EmulatedMonitor.version``."""
        return self._version

    @property
    def installed_version(self) -> str:
        return (self.root / "etc/firmware_version").read_text().strip()

    @property
    def firmware_state(self) -> str:
        return self.build.state.value if self.build else "vulnerable"

    @property
    def online(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def sshd_pid(self) -> int | None:
        """The sshd listener (init of the monitor's PID namespace), for RSS measurements."""
        if self._proc is None:
            return None
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children").read_text().split()
            return int(children[0]) if children else None
        return None

    def inject(self, fault: str, **params: int) -> None:
        if fault in FAULTS and fault not in FAULTS_SUPPORTED:
            raise EmulatorError(f"fault {fault!r} is not emulated by the OpenSSH fleet "
                                f"(supported: {', '.join(FAULTS_SUPPORTED)})", reason="unknown-fault")
        checked = check_fault(fault, params)
        with self._lock:
            self._faults[fault] = checked
            self.record("fault", fault=fault, **checked)
            self._apply_fault(fault, active=True)

    def clear_fault(self, fault: str) -> None:
        if fault not in FAULTS:
            raise EmulatorError(f"unknown fault {fault!r}", reason="unknown-fault")
        with self._lock:
            if self._faults.pop(fault, None) is None:
                return
            self.record("fault-cleared", fault=fault)
            self._apply_fault(fault, active=False)

    def has_fault(self, fault: str) -> bool:
        return fault in self._faults

    def faults(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {k: dict(v) for k, v in self._faults.items()}

    def connect_patient(self) -> None:
        self.inject("patient")

    def disconnect_patient(self) -> None:
        self.clear_fault("patient")

    def set_alarm(self, active: bool) -> None:
        self.inject("alarm") if active else self.clear_fault("alarm")

    def reboot(self) -> None:
        self._start_reboot(source="api")

    def trigger(self, which: str) -> None:
        """Press the menu "update" (``menu-update``) or the boot-time "C" key (``boot-key``), as a technician
        at the bed does on a unit whose profile has no service command for it."""
        if which not in ("menu-update", "boot-key"):
            raise EmulatorError(f"unknown trigger {which!r} (menu-update, boot-key)", reason="bad-trigger")
        self._trigger(which, source="api")

    def record(self, kind: str, **data: Any) -> None:
        with self._lock:
            self._activity.append({"t": time.time(), "kind": kind, "monitor": self.name, **data})

    def activity(self) -> list[dict[str, Any]]:
        """Supervisor events plus what the device logged (exec, upload, upload-drop), in arrival order."""
        with self._lock:
            self._ingest_logs()
            return [dict(entry) for entry in self._activity]

    # ----------------------------------------------------------------- lifecycle
    def boot(self) -> None:
        """What rcS does (derive the build, eth0 per its config) and what the kernel does (boot id, /tmp)."""
        with self._lock:
            self._hung = False
            self.build = derive_build((self.root / "opt/cms/bin/monitor").read_bytes(),
                                      (self.root / "opt/cms/bin/update").read_bytes(),
                                      (self.root / "etc/network.conf").read_bytes())
            self._version = self.installed_version
            self._booted_at = time.monotonic() - (0.0 if self.boot_id else RUNNING_BEFORE_START)
            self.boot_id = str(uuid.uuid4())
            self._write_boot_id()
            self.write_uptime()
            devicefiles.empty_tmp(self.root)
            self.eth0_up = self.build.eth0_enabled
            self.nfs_server = None
            self.write_status()
            self.refresh_proc()
            if not self.has_fault("unreachable"):
                self._start_sshd()
            self.record("boot", version=self._version, firmware_state=self.firmware_state,
                        boot_id=self.boot_id)

    def shutdown(self) -> None:
        """Kill sshd, the init of this monitor's PID namespace: the kernel ends every session with it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        pid = None
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
        with contextlib.suppress(OSError):
            os.kill(pid or proc.pid, signal.SIGKILL)
        try:
            proc.wait(10)  # unshare returns once its child (the namespace's init) is gone, i.e. all of it
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        self.eth0_up = False
        self.nfs_server = None
        self.refresh_proc()

    def _start_sshd(self) -> None:
        started = time.monotonic()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            proc = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--kill-child", SSHD, "-D", "-e", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        # `online` is true only once sshd answers: a test that waits for "online and a new boot id" must not
        # see the window between the fork and the listen (CI saw it as "connection refused").
        deadline = started + 10
        while True:
            with socket.socket() as probe:
                probe.settimeout(1)
                if probe.connect_ex((self.address, self.port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-400:]
                self._proc = proc
                self.shutdown()
                raise EmulatorError(f"sshd for {self.name} on {self.address}:{self.port} did not start: "
                                    f"{tail.strip()}", reason="address-in-use" if "in use" in tail else
                                    "sshd-failed")
            time.sleep(0.01)
        self._proc = proc
        self.started_seconds = time.monotonic() - started

    def _start_reboot(self, *, source: str) -> None:
        with self._lock:
            if self._reboot_thread is not None and self._reboot_thread.is_alive():
                return
            self._reboot_thread = threading.Thread(target=self._reboot, args=(source,),
                                                   name=f"reboot-{self.name}", daemon=True)
            self._reboot_thread.start()

    def _reboot(self, source: str) -> None:
        self.record("reboot", source=source)
        if self.has_fault("fake-reboot"):
            self.record("reboot-faked")
            return
        time.sleep(0.05)  # let the exit status of `reboot` reach the client first
        with self._lock:
            self.shutdown()
        if self._fleet.stopping.wait(self._fleet.reboot_seconds):
            return
        with self._lock:
            if self._fleet.stopping.is_set():
                return
            if self.has_fault("reboot-hang"):
                self._hung = True
                self.record("reboot-hang")
                return
            if self.has_fault("reboot-rollback") and devicefiles.rollback(self.root, self.owner):
                self.record("rollback", to=self.installed_version)
            self.boot()

    def _apply_fault(self, fault: str, *, active: bool) -> None:
        if fault == "unreachable":
            if active:
                self.shutdown()
            elif not self.online and not self._hung:
                self._start_sshd()
        elif fault == "host-key-changed":
            self._write_config()
            if self.online:
                self.shutdown()  # a restart with the other key, as a reflashed unit would come back
                self._start_sshd()
        elif fault == "auth-refused":
            write_atomic(self.authorized_keys, "" if active else self._fleet.authorized_line)
        elif fault == "upload-drop":
            path = self.root / "run/cms/upload-drop"
            if active:
                params = self._faults[fault]
                write_file(path, f"{params['offset']} {params.get('times', 1)}\n")
                os.chown(path, *self.owner)
            else:
                path.unlink(missing_ok=True)
        elif fault in devicefiles.STATUS_FAULTS:
            self.write_status()
        elif fault == "disk-full":
            capacity = devicefiles.data_used(self.root) if active else self._fleet.data_capacity
            write_file(self.root / "var/lib/cms/data_capacity", f"{capacity}\n")
        elif fault == "install-fail":
            flag = self.root / "var/lib/cms/faults/install-fail"
            flag.touch() if active else flag.unlink(missing_ok=True)
        elif fault == "no-boot-id":
            self._write_boot_id()
        elif fault == "reboot-hang" and not active and self._hung:
            self.boot()

    # ----------------------------------------------------------------- device files
    def _write_config(self) -> None:
        key = self.host_key_path
        if self.has_fault("host-key-changed"):
            key = self.host_key_path.with_name(self.host_key_path.name + ".changed")
            if not key.exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True,
                               capture_output=True)
        write_atomic(self.config_path, SSHD_CONFIG.format(
            address=self.address, port=self.port, host_key=key, user=self._fleet.user,
            authorized_keys=self.authorized_keys, root=self.root), mode=0o600)

    def write_status(self) -> None:
        devicefiles.write_status(self.root, self.has_fault, patient_connected=self.has_fault("patient"),
                                 alarm_active=self.has_fault("alarm"))

    def refresh_proc(self) -> None:
        listening = self.build is not None and self.build.udp_listener and self.online
        view = procfs.NetView(self.address, 22, self.eth0_up, self.nfs_server,
                              self._fleet.udp_port if listening else None, ())
        devicefiles.write_proc(self.root, view)

    def write_uptime(self) -> None:
        devicefiles.write_uptime(self.root, time.monotonic() - self._booted_at)

    def _write_boot_id(self) -> None:
        devicefiles.write_boot_id(self.root, None if self.has_fault("no-boot-id") else self.boot_id)

    # ----------------------------------------------------------------- requests and logs of the device
    def scan_requests(self) -> None:
        for kind, content in devicefiles.take_requests(self.root):
            if kind == "reboot":
                self._start_reboot(source="shell")
            elif kind in ("trigger-menu-update", "trigger-boot-key"):
                self._trigger(kind.removeprefix("trigger-"))
            elif kind in ("eth0-up", "eth0-down"):
                with self._lock:
                    self.eth0_up = kind == "eth0-up"
                    self.refresh_proc()
            elif kind == "install":
                self.record("install", **devicefiles.install_record(content))

    def _trigger(self, which: str, source: str = "shell") -> None:
        """Device side only: a vulnerable build shows the hidden NFS mount in /proc/mounts (with the real
        indicator address, as a real unit would) and brings eth0 up; no packet is sent anywhere."""
        build = self.build
        armed = build is not None and (build.monitor_mount if which == "menu-update" else build.update_mount)
        self.record("trigger", which=which, source=source, hidden_mount=armed)
        if armed:
            with self._lock:
                self.eth0_up = True
                self.nfs_server = str(CMS_SERVER)
                self.refresh_proc()

    def _ingest_logs(self) -> None:
        for entry in self._read_new("var/log/cms-activity", b"\0"):
            kind, _, rest = entry.partition(" ")
            if kind == "exec":
                self._activity.append({"t": time.time(), "kind": "exec", "monitor": self.name,
                                       "command": rest})
            elif kind == "upload-drop":
                self._activity.append({"t": time.time(), "kind": "upload-drop", "monitor": self.name,
                                       "offset": int(rest or 0)})
        for line in self._read_new("var/log/sftp.log", b"\n"):
            # sftp-server: close "/data/upgrade/x" bytes read 0 written 3145851
            head, sep, tail = line.rpartition(" bytes read ")
            if not sep or "close \"" not in head:
                continue
            path = head.split('close "', 1)[1].rstrip('"')
            _read, _, written = tail.partition(" written ")
            if written.strip().isdigit() and int(written) > 0:
                self._activity.append({"t": time.time(), "kind": "upload", "monitor": self.name, "path": path,
                                       "bytes": int(written)})

    def _read_new(self, rel: str, separator: bytes) -> list[str]:
        """Complete records appended to a device log since the last read."""
        path = self.root / rel
        offset = self._offsets.get(rel, 0)
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except OSError:
            return []
        end = data.rfind(separator)
        if end < 0:
            return []
        self._offsets[rel] = offset + end + 1
        return [r.decode(errors="replace") for r in data[:end].split(separator) if r]

    def __repr__(self) -> str:
        return (f"OpenSshMonitor({self.name!r}, {self.model}, {self.address}:{self.port}, "
                f"{self.firmware_state})")
