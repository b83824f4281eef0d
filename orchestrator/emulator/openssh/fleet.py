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

What it emulates: the device contract's commands and files (of the shipped profile, or of another
device profile the emulator can serve, ``start(profiles=...)``, written into the chroot as the
asyncssh emulator writes them: ``emulator.profiled``), reboots (every session ends, the port is
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
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from orchestrator.adapters.profile_file import load_profile
from orchestrator.domain.indicators import IndicatorMap
from orchestrator.emulator.catalog import UDP_SERVICE_PORT
from orchestrator.emulator.faults import parse_faults_for, select
from orchestrator.emulator.firmware import binaries_for
from orchestrator.emulator.fleet import DEFAULT_DATA_CAPACITY, _load_or_create_key, profiles_for
from orchestrator.emulator.layout import known_hosts_line, plan_fleet, render_inventory, write_atomic
from orchestrator.emulator.openssh.monitor import SSHD, OpenSshMonitor
from orchestrator.emulator.openssh.rootfs import CHROOT_BASE, check_chroot_path, create_chroot, prepare_common
from orchestrator.emulator.profiled import ProfileLayout, profile_layout
from orchestrator.emulator.rootfs import DeviceIdentity
from orchestrator.errors import EmulatorError

SERVICE_USER = "cmspatch-svc"  # the host account sshd logs the service user in as (created if missing)
POLL_SECONDS = 0.1
UPTIME_REFRESH_SECONDS = 1.0  # /proc/uptime is a plain file: rewritten this often


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
        self.profiles: dict[str, str] = {}  # monitor -> its device profile, where not the shipped one
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
              profiles: str | Mapping[str, str] | None = None, **_ignored: Any) -> OpenSshFleet:
        """Start every sshd and return when each accepts connections. Keyword arguments of
        ``EmulatedFleet.start`` that mean nothing here (``telemetry_interval``) are accepted and ignored.

        ``profiles`` as for ``EmulatedFleet.start``: a monitor on another device profile gets that
        profile's programs and paths in its chroot (``emulator.profiled``: BusyBox shell scripts, nothing
        else), and the inventory names its profile."""
        missing = missing_tools()
        if missing:
            raise EmulatorError(f"the OpenSSH fleet needs {', '.join(missing)}", reason="openssh-missing")
        indicator_map = indicator_map or IndicatorMap()
        plans = plan_fleet(monitors, mix=mix, states=states, address_prefix=address_prefix,
                           indicator_map=indicator_map)
        names = [p.name for p in plans]
        fault_specs = parse_faults_for(faults, names)
        chosen = profiles_for(profiles, names)
        layouts = {ref: profile_layout(load_profile(ref)) for ref in set(chosen.values())}  # refuse early
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
            fleet._build(plans, {name: layouts[ref] for name, ref in chosen.items()})
            fleet.profiles = chosen
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

    def _build(self, plans: list[Any], layouts: Mapping[str, ProfileLayout]) -> None:
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
            if plan.name in layouts:
                layouts[plan.name].apply(root, owner)
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
                                                           known_hosts=self.known_hosts_path, user=self.user,
                                                           profiles=self.profiles))

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
