"""A fleet of real OpenSSH ``sshd`` monitors on loopback, each chrooted into its own BusyBox root.

The second, independent kind of test monitor (issue 11): the SSH server, key exchange, authentication,
SFTP and session handling are OpenSSH's, not asyncssh's, so a test that passes on both fleets does not
depend on what the emulator's server happens to accept. The device side is the emulator's BusyBox root
and shell scripts (``docs/device-contract.md``); nothing Python runs inside a monitor.

``OpenSshFleet.start(workdir, monitors=3, ...)`` (as root) writes, like ``EmulatedFleet``, the login key
(``keys/fleet_ed25519``), ``known_hosts`` and ``inventory.yml`` into ``workdir`` and keeps the host keys in
``workdir/hostkeys`` (stable across reboots and restarts of the same workdir). Each monitor is one
``unshare --pid --fork --kill-child sshd -D -f CONFIG`` process: sshd is the init of its own PID namespace,
so killing it ends every session of that monitor (sshd's session children call setsid and would outlive
a killed listener otherwise). A supervisor thread picks up the device scripts' requests (reboot,
triggers, eth0, install results) and acts on them.

What it emulates: the device contract's commands and files, reboots (every session ends, the port is
closed for ``reboot_seconds``, a new boot id, /tmp emptied), the faults of ``FAULTS_SUPPORTED``, and the
device-side evidence of the backdoor (the binaries, /proc/mounts after a trigger, eth0, a UDP listener in
/proc/net/udp). What it does not: any network behaviour of the backdoor (no telemetry stream, no NFS or
portmapper contact, nothing answers on the UDP port): on this fleet the network checks see a silent
monitor whatever its firmware, and only the device checks can tell vulnerable from fixed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from orchestrator.domain.indicators import CMS_SERVER, IndicatorMap
from orchestrator.emulator import devicefiles, procfs
from orchestrator.emulator.catalog import UDP_SERVICE_PORT
from orchestrator.emulator.faults import FAULTS, check_fault, parse_faults_for, select
from orchestrator.emulator.firmware import Build, binaries_for, derive_build
from orchestrator.emulator.fleet import DEFAULT_DATA_CAPACITY, _load_or_create_key
from orchestrator.emulator.layout import known_hosts_line, plan_fleet, render_inventory, write_atomic
from orchestrator.emulator.openssh.rootfs import CHROOT_BASE, check_chroot_path, create_chroot, prepare_common
from orchestrator.emulator.rootfs import DeviceIdentity, write_file
from orchestrator.errors import EmulatorError

SSHD = "/usr/sbin/sshd"
SERVICE_USER = "cmspatch-svc"  # the host account sshd logs the service user in as (created if missing)
POLL_SECONDS = 0.1
UPTIME_REFRESH_SECONDS = 1.0  # /proc/uptime is a plain file: rewritten this often
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


def missing_tools() -> list[str]:
    """What this host lacks to run the fleet (empty: it can)."""
    missing = [tool for tool in (SSHD, "/usr/lib/openssh/sftp-server") if not os.path.exists(tool)]
    missing += [tool for tool in ("unshare", "busybox", "ldd", "useradd") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root (sshd, chroot and PID namespaces)")
    return missing


def ensure_service_user(name: str = SERVICE_USER) -> tuple[int, int]:
    """The host account sshd authenticates (it looks users up on the host, not in the chroot)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        # '*' not '!': with UsePAM no, sshd refuses an account whose password field says locked.
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/", "--shell", "/bin/sh",
                        "--password", "*", name], check=False, capture_output=True)
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise EmulatorError(f"cannot create the host user {name!r} for the OpenSSH fleet",
                                reason="no-service-user") from None
    return entry.pw_uid, entry.pw_gid


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
            self._proc = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--kill-child", SSHD, "-D", "-e", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        deadline = started + 10
        while True:
            with socket.socket() as probe:
                probe.settimeout(1)
                if probe.connect_ex((self.address, self.port)) == 0:
                    break
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-400:]
                self.shutdown()
                raise EmulatorError(f"sshd for {self.name} on {self.address}:{self.port} did not start: "
                                    f"{tail.strip()}", reason="address-in-use" if "in use" in tail else
                                    "sshd-failed")
            time.sleep(0.01)
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

    def _trigger(self, which: str) -> None:
        """Device side only: a vulnerable build shows the hidden NFS mount in /proc/mounts (with the real
        indicator address, as a real unit would) and brings eth0 up; no packet is sent anywhere."""
        build = self.build
        armed = build is not None and (build.monitor_mount if which == "menu-update" else build.update_mount)
        self.record("trigger", which=which, source="shell", hidden_mount=armed)
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


class OpenSshFleet:
    """N sshd monitors and their supervisor thread; the access files of ``EmulatedFleet`` (module doc)."""

    def __init__(self, workdir: Path, chroots: Path, *, reboot_seconds: float, indicator_map: IndicatorMap,
                 port: int, data_capacity: int, udp_port: int, user: str) -> None:
        self.workdir, self.chroots = workdir, chroots
        self.reboot_seconds = reboot_seconds
        self.indicator_map = indicator_map
        self.port, self.udp_port = port, udp_port
        self.data_capacity = data_capacity
        self.user = user
        self.inventory_path = workdir / "inventory.yml"
        self.known_hosts_path = workdir / "known_hosts"
        self.key_path = workdir / "keys" / "fleet_ed25519"
        self.authorized_line = ""
        self.stopping = threading.Event()
        self._monitors: dict[str, OpenSshMonitor] = {}
        self._thread = threading.Thread(target=self._supervise, name="openssh-fleet", daemon=True)
        self._stopped = False
        self.started_at = 0.0
        self.start_seconds = 0.0

    @classmethod
    def start(cls, workdir: str | os.PathLike[str], *, monitors: int = 3,
              mix: str | Mapping[str, int] | None = None,
              faults: str | Mapping[str, str | Iterable[str]] | None = None,
              address_prefix: str = "127.78", indicator_map: IndicatorMap | None = None, port: int = 2222,
              reboot_seconds: float = 1.0, states: str | Mapping[str, int] | None = None,
              data_capacity: int = DEFAULT_DATA_CAPACITY, udp_port: int = UDP_SERVICE_PORT,
              chroot_base: Path | None = None, user: str = SERVICE_USER,
              **_ignored: Any) -> OpenSshFleet:
        """Start every sshd and return when each accepts connections. Keyword arguments of
        ``EmulatedFleet.start`` that mean nothing here (``telemetry_interval``) are accepted and ignored."""
        missing = missing_tools()
        if missing:
            raise EmulatorError(f"the OpenSSH fleet needs {', '.join(missing)}", reason="openssh-missing")
        indicator_map = indicator_map or IndicatorMap()
        plans = plan_fleet(monitors, mix=mix, states=states, address_prefix=address_prefix,
                           indicator_map=indicator_map)
        names = [p.name for p in plans]
        fault_specs = parse_faults_for(faults, names)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
        base = chroot_base or CHROOT_BASE
        base.mkdir(mode=0o755, parents=True, exist_ok=True)
        check_chroot_path(base)
        reap_stale(base)
        chroots = Path(tempfile.mkdtemp(prefix="fleet-", dir=base))
        os.chmod(chroots, 0o755)
        (chroots / "owner").write_text(f"{os.getpid()} {_started(os.getpid())}\n")
        fleet = cls(Path(workdir).resolve(), chroots, reboot_seconds=reboot_seconds,
                    indicator_map=indicator_map, port=port, data_capacity=data_capacity, udp_port=udp_port,
                    user=user)
        began = time.monotonic()
        try:
            fleet._build(plans)
            for spec in fault_specs:
                for name in select(spec.selector, names):
                    fleet._monitors[name].inject(spec.fault, **spec.params)
            for monitor in fleet._monitors.values():
                monitor.boot()
            fleet._write_access_files(plans)
        except BaseException:
            fleet.stop()
            raise
        fleet.start_seconds = time.monotonic() - began
        fleet.started_at = time.time()
        fleet._thread.start()
        return fleet

    def _build(self, plans: list[Any]) -> None:
        owner = ensure_service_user(self.user)
        for sub in ("keys", "hostkeys", "logs"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        login_key = _load_or_create_key(self.key_path, private=True)
        self.authorized_line = login_key.export_public_key("openssh").decode()
        common = self.chroots / "common"
        applets = prepare_common(common)
        for sub in ("auth", "roots", "sshd"):
            (self.chroots / sub).mkdir(mode=0o755)
        for plan in plans:
            host_key_path = self.workdir / "hostkeys" / f"{plan.name}.key"
            _load_or_create_key(host_key_path, private=False)
            root = self.chroots / "roots" / plan.name
            monitor_bin, update_bin, netconf = binaries_for(plan.state, plan.version)
            create_chroot(root, common, applets,
                          DeviceIdentity(plan.name, plan.model, plan.serial, plan.address, plan.hwaddr),
                          version=plan.version, monitor_bin=monitor_bin, update_bin=update_bin,
                          netconf=netconf, data_capacity=self.data_capacity, owner=owner)
            monitor = OpenSshMonitor(
                self, index=plan.index, name=plan.name, model=plan.model, address=plan.address,
                port=self.port, root=root, owner=owner, host_key_path=host_key_path,
                authorized_keys=self.chroots / "auth" / plan.name,
                config_path=self.chroots / "sshd" / f"{plan.name}.conf",
                log_path=self.workdir / "logs" / f"{plan.name}.log")
            write_atomic(monitor.authorized_keys, self.authorized_line)
            monitor._write_config()
            self._monitors[plan.name] = monitor

    def _write_access_files(self, plans: list[Any]) -> None:
        known, hosts = [], []
        for plan in plans:
            key = _load_or_create_key(self._monitors[plan.name].host_key_path, private=False)
            public = key.export_public_key("openssh").decode().strip()
            known.append(known_hosts_line(plan.address, self.port, public))
            hosts.append((plan, self.port, key.get_fingerprint("sha256"), self._monitors[plan.name].version))
        write_atomic(self.known_hosts_path, "".join(known))
        write_atomic(self.inventory_path, render_inventory(hosts, key_path=self.key_path,
                                                           known_hosts=self.known_hosts_path, user=self.user))

    # ----------------------------------------------------------------- public API
    @property
    def monitors(self) -> tuple[OpenSshMonitor, ...]:
        return tuple(self._monitors.values())

    def monitor(self, name: str) -> OpenSshMonitor:
        matches = [name] if name in self._monitors else select(name, self._monitors)
        if len(matches) != 1:
            raise EmulatorError(f"no monitor named {name!r}" if not matches else
                                f"{name!r} matches several monitors: {', '.join(matches)}",
                                reason="unknown-monitor")
        return self._monitors[matches[0]]

    def stop(self) -> None:
        """Stop every sshd (and with it every session) and remove the chroots."""
        if self._stopped:
            return
        self._stopped = True
        self.stopping.set()
        if self._thread.is_alive():
            self._thread.join(10)
        for monitor in self._monitors.values():
            with monitor._lock:
                monitor.shutdown()
        shutil.rmtree(self.chroots, ignore_errors=True)

    def __enter__(self) -> OpenSshFleet:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _supervise(self) -> None:
        """Act on the device scripts' requests; keep /proc/uptime current."""
        next_uptime = 0.0
        while not self.stopping.wait(POLL_SECONDS):
            now = time.monotonic()
            for monitor in self._monitors.values():
                with contextlib.suppress(Exception):  # one monitor's trouble never stops the others
                    monitor.scan_requests()
                    if now >= next_uptime:
                        monitor.write_uptime()
            if now >= next_uptime:
                next_uptime = now + UPTIME_REFRESH_SECONDS


def reap_stale(base: Path) -> None:
    """Fleets whose owning process died (a killed test run): kill their sshd processes, remove their roots.

    A fleet's sshd commands name its directory (the config lives there), so they are found by it; killing
    ``unshare`` kills its sshd (``--kill-child``) and with it the whole PID namespace.
    """
    for fleet_dir in base.glob("fleet-*"):
        try:
            pid, started = (fleet_dir / "owner").read_text().split()
        except (OSError, ValueError):
            continue  # being created right now, or not ours
        if _started(int(pid)) == started:
            continue
        marker = f"{fleet_dir}/".encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmdline = (proc / "cmdline").read_bytes()
                if cmdline.startswith(b"unshare\0") and marker in cmdline:
                    os.kill(int(proc.name), signal.SIGKILL)
        shutil.rmtree(fleet_dir, ignore_errors=True)


def _started(pid: int) -> str:
    """A process's start time (field 22 of /proc/PID/stat), so a reused pid is not taken for the owner."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "gone"
