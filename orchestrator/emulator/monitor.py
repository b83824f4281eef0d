"""One emulated monitor: its SSH listener, its firmware behaviour, its faults and its activity log.

All state changes happen on the fleet's event loop; the public methods are thread-safe wrappers (tests,
the CLI and the TUI call them from other threads). Behaviour is derived at boot from the installed
binaries (``firmware.derive_build``), so an installed package takes effect at the next reboot, as on the
device. State lives in the monitor's root filesystem, so it survives a reboot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncssh

from orchestrator.domain.indicators import CMS_SERVER, CMS_TCP_PORTS, HL7_SERVER, HL7_TCP_PORT
from orchestrator.emulator import devicefiles, procfs
from orchestrator.emulator.backdoor import Patient
from orchestrator.emulator.catalog import LEGACY_PASSWORD, LEGACY_USER, FirmwareState
from orchestrator.emulator.faults import FAULTS, check_fault
from orchestrator.emulator.firmware import Build, derive_build
from orchestrator.emulator.rootfs import write_file
from orchestrator.emulator.sshserver import MonitorSFTPServer, MonitorSSHServer, handle_process
from orchestrator.errors import EmulatorError

if TYPE_CHECKING:
    from orchestrator.emulator.fleet import EmulatedFleet

T = TypeVar("T")
ACTIVITY_LIMIT = 5000  # per monitor; oldest entries are dropped first
USERS = ("service", "root")
RUNNING_BEFORE_START = 3 * 86400.0  # uptime at the fleet's start: monitors run for days between reboots


class EmulatedMonitor:
    def __init__(self, fleet: EmulatedFleet, *, index: int, name: str, model: str, serial: str, site: str,
                 ward: str, bed: str, address: str, port: int, root: Path, owner: tuple[int, int] | None,
                 host_key: asyncssh.SSHKey) -> None:
        self._fleet = fleet
        self.index = index
        self.name, self.model, self.serial = name, model, serial
        self.site, self.ward, self.bed = site, ward, bed
        self.address, self.port = address, port
        self.root, self.owner = root, owner
        self.host_key = host_key
        self._alt_host_key: asyncssh.SSHKey | None = None
        self._faults: dict[str, dict[str, int]] = {}
        self._activity: deque[dict[str, Any]] = deque(maxlen=ACTIVITY_LIMIT)
        self._lock = threading.Lock()
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._telemetry: asyncio.Task[None] | None = None
        self._reboot_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.live_processes = 0
        self.process_groups: set[int] = set()  # device shells running now (killed by a reboot)
        self.online = False
        self._hung = False
        self.build: Build | None = None
        self._version = ""
        self.boot_id = ""  # the kernel's boot id: drawn again at every (emulated) boot
        self._booted_at = time.monotonic()
        self.eth0_up = False
        self.nfs_server: str | None = None
        self.patient_connected = False
        self.alarm = False
        self.tcp_connections: dict[str, tuple[int, str, int]] = {}
        self._next_send = 0.0

    # ----------------------------------------------------------------- public, thread-safe API
    @property
    def firmware_state(self) -> str:
        return self.build.state.value if self.build else FirmwareState.VULNERABLE.value

    @property
    def version(self) -> str:
        return self._version

    @property
    def installed_version(self) -> str:
        """What /etc/firmware_version says now (differs from ``version`` between install and reboot)."""
        return (self.root / "etc/firmware_version").read_text().strip()

    def inject(self, fault: str, **params: int) -> None:
        checked = check_fault(fault, params)
        self._call(self._inject(fault, checked))

    def clear_fault(self, fault: str) -> None:
        if fault not in FAULTS:
            raise EmulatorError(f"unknown fault {fault!r}", reason="unknown-fault")
        self._call(self._clear(fault))

    def faults(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {k: dict(v) for k, v in self._faults.items()}

    def connect_patient(self) -> None:
        self.inject("patient")

    def disconnect_patient(self) -> None:
        self.clear_fault("patient")

    def set_alarm(self, active: bool) -> None:
        self.inject("alarm") if active else self.clear_fault("alarm")

    def trigger(self, which: str) -> None:
        """Press the menu "update" (``menu-update``) or the boot-time "C" key (``boot-key``)."""
        if which not in ("menu-update", "boot-key"):
            raise EmulatorError(f"unknown trigger {which!r} (menu-update, boot-key)", reason="bad-trigger")
        self._call(self._trigger(which, source="api"))

    def reboot(self) -> None:
        self._call(self._start_reboot(source="api"))

    def activity(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._activity]

    def record(self, kind: str, **data: Any) -> None:
        entry = {"t": time.time(), "kind": kind, "monitor": self.name, **data}
        with self._lock:
            self._activity.append(entry)

    def has_fault(self, fault: str) -> bool:
        return fault in self._faults

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._fleet.call(coro)

    # ----------------------------------------------------------------- used by the SSH server
    def shell_argv(self, args: list[str]) -> list[str]:
        if self.owner is not None:
            return ["chroot", f"--userspec={self.owner[0]}:{self.owner[1]}", str(self.root), *args]
        return ["unshare", "--user", "--map-root-user", "chroot", str(self.root), *args]

    def accepts_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if self.has_fault("auth-refused") or username not in USERS:
            return False
        return key.public_data == self._fleet.fleet_public_key.public_data

    def accepts_password(self, username: str, password: str) -> bool:
        return (self.has_fault("default-password") and not self.has_fault("auth-refused")
                and username == LEGACY_USER and password == LEGACY_PASSWORD)

    def connection_opened(self, conn: asyncssh.SSHServerConnection) -> None:
        self._connections.add(conn)
        peer = conn.get_extra_info("peername") or ("?", 0)
        self.record("connect", peer=f"{peer[0]}:{peer[1]}")

    def connection_closed(self, conn: asyncssh.SSHServerConnection) -> None:
        self._connections.discard(conn)

    def process_started(self) -> None:
        self.live_processes += 1
        self._write_uptime()  # /proc/uptime is a plain file here: brought up to date for each command

    def process_finished(self) -> None:
        self.live_processes -= 1
        self.scan_requests()

    def data_free(self) -> int:
        capacity = int((self.root / "var/lib/cms/data_capacity").read_text().strip() or 0)
        return capacity - devicefiles.data_used(self.root)

    def upload_drop_offset(self) -> int | None:
        fault = self._faults.get("upload-drop")
        return fault["offset"] if fault is not None else None

    def upload_dropped(self, path: str, offset: int) -> None:
        self.record("upload-drop", path=path, offset=offset)
        fault = self._faults.get("upload-drop")
        if fault is not None and fault.get("times", 1) > 0:
            fault["remaining"] = fault.get("remaining", fault.get("times", 1)) - 1
            if fault["remaining"] <= 0:
                with self._lock:
                    self._faults.pop("upload-drop", None)

    async def throttle(self, nbytes: int) -> None:
        fault = self._faults.get("slow-link")
        if fault is None:
            return
        now = time.monotonic()
        start = max(now, self._next_send)
        self._next_send = start + nbytes / fault["rate"]
        while (left := self._next_send - time.monotonic()) > 0:
            if "slow-link" not in self._faults:  # cleared: the link is fast again, held writes go now
                self._next_send = time.monotonic()
                return
            await asyncio.sleep(min(left, 0.05))

    # ----------------------------------------------------------------- requests from the device shell
    def scan_requests(self) -> None:
        for kind, content in devicefiles.take_requests(self.root):
            if kind == "reboot":
                self._spawn(self._start_reboot(source="shell"))
            elif kind in ("trigger-menu-update", "trigger-boot-key"):
                self._spawn(self._trigger(kind.removeprefix("trigger-"), source="shell"))
            elif kind in ("eth0-up", "eth0-down"):
                self._set_eth0(kind == "eth0-up", reason="ifconfig")
            elif kind == "install":
                self.record("install", **devicefiles.install_record(content))

    # ----------------------------------------------------------------- lifecycle (event loop only)
    async def boot(self) -> None:
        """What rcS does: read the installed build, bring eth0 up per its config, start the services."""
        self._hung = False
        self.build = derive_build((self.root / "opt/cms/bin/monitor").read_bytes(),
                                  (self.root / "opt/cms/bin/update").read_bytes(),
                                  (self.root / "etc/network.conf").read_bytes())
        self._version = self.installed_version
        self._new_boot()
        self.eth0_up = self.build.eth0_enabled
        self.nfs_server = None
        self.tcp_connections.clear()
        if self.build.udp_listener:
            await self._start_udp()
        self.online = True
        if not self.has_fault("unreachable"):
            await self._listen()
        self.write_status()
        self.refresh_proc()
        self._update_telemetry()
        self.record("boot", version=self._version, firmware_state=self.firmware_state, boot_id=self.boot_id)

    def _new_boot(self) -> None:
        """A new boot id in /proc (none with the no-boot-id fault), the uptime from 0, /tmp empty (a
        tmpfs): what cmspatch reads to prove that a reboot happened (``domain.boot``)."""
        # The first boot is the one the monitor was running when the emulator found it, days ago.
        self._booted_at = time.monotonic() - (0.0 if self.boot_id else RUNNING_BEFORE_START)
        self.boot_id = str(uuid.uuid4())
        self._write_boot_id()
        self._write_uptime()
        devicefiles.empty_tmp(self.root)

    def _write_uptime(self) -> None:
        devicefiles.write_uptime(self.root, time.monotonic() - self._booted_at)

    def _write_boot_id(self) -> None:
        devicefiles.write_boot_id(self.root, None if self.has_fault("no-boot-id") else self.boot_id)

    async def shutdown(self, *, reason: str) -> None:
        self.online = False
        await self._unlisten()
        for conn in list(self._connections):
            conn.abort()
        self._connections.clear()
        for pgid in list(self.process_groups):  # a reboot ends every process on the device
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        await self._stop_telemetry()
        self.eth0_up = False
        self.nfs_server = None
        self.tcp_connections.clear()
        self.refresh_proc()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.shutdown(reason="fleet-stop")

    async def _listen(self) -> None:
        if self._acceptor is not None or not self.online:
            return
        key = self.host_key
        if self.has_fault("host-key-changed"):
            if self._alt_host_key is None:
                self._alt_host_key = asyncssh.generate_private_key("ssh-ed25519")
            key = self._alt_host_key
        self._acceptor = await asyncssh.create_server(
            lambda: MonitorSSHServer(self), self.address, self.port, server_host_keys=[key],
            process_factory=lambda process: handle_process(self, process),
            sftp_factory=lambda chan: MonitorSFTPServer(chan, self), allow_scp=True, encoding=None,
            line_editor=False, login_timeout=30, keepalive_interval=0, reuse_address=True,
        )

    async def _unlisten(self) -> None:
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.close()
            with contextlib.suppress(Exception):
                await acceptor.wait_closed()

    async def _start_reboot(self, *, source: str) -> None:
        if self._reboot_task is not None and not self._reboot_task.done():
            return
        self._reboot_task = self._spawn(self._reboot(source))

    async def _reboot(self, source: str) -> None:
        self.record("reboot", source=source)
        if self.has_fault("fake-reboot"):  # `reboot` said yes; nothing restarts
            self.record("reboot-faked")
            return
        if (slow := self._faults.get("slow-drop")) is not None:  # the old system keeps running a while
            self.record("reboot-slow-drop", seconds=slow["seconds"])
            await asyncio.sleep(slow["seconds"])
        await asyncio.sleep(0.05)  # let the exit status of `reboot` reach the client first
        await self.shutdown(reason="reboot")
        await asyncio.sleep(self._fleet.reboot_seconds)
        if self.has_fault("reboot-hang"):
            self._hung = True
            self.record("reboot-hang")
            return
        if self.has_fault("reboot-rollback") and devicefiles.rollback(self.root, None):
            self.record("rollback", to=self.installed_version)
        await self.boot()

    async def _inject(self, fault: str, params: dict[str, int]) -> None:
        with self._lock:
            self._faults[fault] = dict(params)
        self.record("fault", fault=fault, **params)
        await self._apply_fault(fault, active=True)

    async def _clear(self, fault: str) -> None:
        with self._lock:
            present = self._faults.pop(fault, None) is not None
        if present:
            self.record("fault-cleared", fault=fault)
            await self._apply_fault(fault, active=False)

    async def _apply_fault(self, fault: str, *, active: bool) -> None:
        if fault == "unreachable":
            if active:
                await self._unlisten()
                for conn in list(self._connections):
                    conn.abort()
            else:
                await self._listen()
        elif fault == "host-key-changed":
            await self._unlisten()
            await self._listen()
        elif fault in devicefiles.STATUS_FAULTS:
            self.patient_connected = self.has_fault("patient")
            self.alarm = self.has_fault("alarm")
            self.write_status()
            self._update_telemetry()
        elif fault == "disk-full":
            capacity = devicefiles.data_used(self.root) if active else self._fleet.data_capacity
            write_file(self.root / "var/lib/cms/data_capacity", f"{capacity}\n")
        elif fault == "install-fail":
            flag = self.root / "var/lib/cms/faults/install-fail"
            flag.touch() if active else flag.unlink(missing_ok=True)
        elif fault == "no-boot-id":
            self._write_boot_id()
        elif fault == "reboot-hang" and not active and self._hung and not self.online:
            await self.boot()

    # ----------------------------------------------------------------- emulated state files
    def write_status(self) -> None:
        devicefiles.write_status(self.root, self.has_fault, patient_connected=self.patient_connected,
                                 alarm_active=self.alarm)

    def refresh_proc(self) -> None:
        udp_port = self._fleet.udp_port if self._udp is not None else None
        view = procfs.NetView(self.address, 22, self.eth0_up, self.nfs_server, udp_port,
                              tuple(self.tcp_connections.values()))
        devicefiles.write_proc(self.root, view)

    def _set_eth0(self, up: bool, *, reason: str) -> None:
        if self.eth0_up != up:
            self.eth0_up = up
            self.record("eth0", state="up" if up else "down", reason=reason)
            self.refresh_proc()
            self._update_telemetry()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ----------------------------------------------------------------- backdoor behaviours
    async def _start_udp(self) -> None:
        from orchestrator.emulator.services import UdpService

        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: UdpService(self), local_addr=(self.address, self._fleet.udp_port), reuse_port=False)
        self._udp = transport

    def _update_telemetry(self) -> None:
        should = (self.online and self.patient_connected and self.eth0_up and self.build is not None
                  and self.build.telemetry)
        if should and (self._telemetry is None or self._telemetry.done()):
            from orchestrator.emulator.services import stream_telemetry

            patient = Patient(department=self.ward, bed=self.bed)
            self._telemetry = self._spawn(stream_telemetry(self, patient))
        elif not should and self._telemetry is not None:
            self._telemetry.cancel()
            self._telemetry = None

    async def _stop_telemetry(self) -> None:
        task, self._telemetry = self._telemetry, None
        # A cancellation can be swallowed (Python 3.11's asyncio.wait_for loses one that lands as its
        # inner await completes): cancel until the task is really done, never await it unbounded.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.2)
        if task is not None and not task.cancelled():
            task.exception()  # retrieved, so a crash of the stream is not reported as never awaited

    async def _trigger(self, which: str, *, source: str) -> None:
        from orchestrator.emulator.services import attempt_nfs_mount

        if not self.online or self.build is None:
            raise EmulatorError(f"{self.name} is not running", reason="monitor-offline")
        armed = self.build.monitor_mount if which == "menu-update" else self.build.update_mount
        self.record("trigger", which=which, source=source, hidden_mount=armed)
        if not armed:
            return
        self._set_eth0(True, reason=f"hidden mount ({which})")
        await attempt_nfs_mount(self, self._fleet.indicator_map.map(CMS_SERVER))

    @property
    def telemetry_interval(self) -> float:
        return self._fleet.telemetry_interval

    @property
    def cms_target(self) -> tuple[str, int]:
        return self._fleet.indicator_map.map(CMS_SERVER), CMS_TCP_PORTS[0]

    @property
    def hl7_target(self) -> tuple[str, int]:
        return self._fleet.indicator_map.map(HL7_SERVER), HL7_TCP_PORT

    def __repr__(self) -> str:
        return (f"EmulatedMonitor({self.name!r}, {self.model}, {self.address}:{self.port}, "
                f"{self.firmware_state})")

