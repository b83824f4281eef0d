"""The emulated fleet: one process, one asyncio loop in a background thread, N monitors behind a sync API.

``EmulatedFleet.start(workdir, ...)`` lays out every monitor's root under ``workdir/monitors``, writes the
fleet login key (``keys/fleet_ed25519``, 0600), ``known_hosts`` and ``inventory.yml``, and starts one SSH
listener per monitor on its own loopback address. Host keys are kept in ``workdir/hostkeys`` and reused
when the same workdir is started again, so a ``known_hosts`` stays valid across restarts.
Deliberately left out: persistence of firmware state across fleet restarts (roots are rebuilt).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import asyncssh

from orchestrator.adapters.profile_file import load_profile
from orchestrator.domain.indicators import IndicatorMap
from orchestrator.domain.profile import DEFAULT_PROFILE, NAME_RE
from orchestrator.emulator.catalog import UDP_SERVICE_PORT
from orchestrator.emulator.faults import parse_faults_for, select
from orchestrator.emulator.firmware import binaries_for
from orchestrator.emulator.layout import (
    MonitorPlan,
    known_hosts_line,
    plan_fleet,
    render_inventory,
    write_atomic,
)
from orchestrator.emulator.monitor import EmulatedMonitor
from orchestrator.emulator.profiled import profile_layout
from orchestrator.emulator.rootfs import DeviceIdentity, create_rootfs, prepare_template
from orchestrator.errors import EmulatorError

T = TypeVar("T")
UID_BASE = 420000  # per-monitor unprivileged uid of the device shell (when we run as root)
POLL_SECONDS = 0.2  # how often live shells are checked for `reboot` / `cms-service` requests
DEFAULT_DATA_CAPACITY = 64 * 1024 * 1024


class EmulatedFleet:
    def __init__(self, workdir: Path, *, reboot_seconds: float, indicator_map: IndicatorMap, port: int,
                 telemetry_interval: float, data_capacity: int, udp_port: int) -> None:
        self.workdir = workdir
        self.reboot_seconds = reboot_seconds
        self.indicator_map = indicator_map
        self.port = port
        self.telemetry_interval = telemetry_interval
        self.data_capacity = data_capacity
        self.udp_port = udp_port
        self.user = "service"  # the service account the inventory names (OpenSshFleet has its own)
        self.inventory_path = workdir / "inventory.yml"
        self.known_hosts_path = workdir / "known_hosts"
        self.key_path = workdir / "keys" / "fleet_ed25519"
        self.fleet_public_key: asyncssh.SSHKey
        self._monitors: dict[str, EmulatedMonitor] = {}
        self.profiles: dict[str, str] = {}  # monitor -> its device profile, where not the shipped one
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="emulated-fleet", daemon=True)
        self._poller: asyncio.Task[None] | None = None
        self._stopped = False
        self.started_at = 0.0

    # ----------------------------------------------------------------- construction
    @classmethod
    def start(cls, workdir: str | os.PathLike[str], *, monitors: int = 10,
              mix: str | Mapping[str, int] | None = None,
              faults: str | Mapping[str, str | Iterable[str]] | None = None,
              address_prefix: str = "127.77", indicator_map: IndicatorMap | None = None, port: int = 2222,
              reboot_seconds: float = 1.0, states: str | Mapping[str, int] | None = None,
              telemetry_interval: float = 0.5, data_capacity: int = DEFAULT_DATA_CAPACITY,
              udp_port: int = UDP_SERVICE_PORT, profiles: str | Mapping[str, str] | None = None
              ) -> EmulatedFleet:
        """Start the fleet and return when every monitor answers on its address (see module doc).

        ``profiles``: the device profile every monitor follows (a name or path), or ``{selector:
        profile}`` for some of them (selectors as for faults); the others, and ``None``, follow the
        shipped emulated CMS service shell (``profiled``)."""
        indicator_map = indicator_map or IndicatorMap()
        if not 0 < port < 65536 or not 0 < udp_port < 65536:
            raise EmulatorError(f"bad port {port}/{udp_port}", reason="bad-port")
        plans = plan_fleet(monitors, mix=mix, states=states, address_prefix=address_prefix,
                           indicator_map=indicator_map)
        names = [p.name for p in plans]
        fault_specs = parse_faults_for(faults, names)
        chosen = profiles_for(profiles, names)
        fleet = cls(Path(workdir).resolve(), reboot_seconds=reboot_seconds, indicator_map=indicator_map,
                    port=port, telemetry_interval=telemetry_interval, data_capacity=data_capacity,
                    udp_port=udp_port)
        fleet._thread.start()
        try:
            fleet._build(plans, chosen)
            for spec in fault_specs:
                for name in select(spec.selector, names):
                    fleet._monitors[name].inject(spec.fault, **spec.params)
            fleet.call(fleet._boot_all())
            fleet._write_access_files(plans)
        except BaseException:
            fleet.stop()
            raise
        fleet.started_at = time.time()
        return fleet

    def _build(self, plans: list[MonitorPlan], profiles: Mapping[str, str]) -> None:
        (self.workdir / "keys").mkdir(parents=True, exist_ok=True)
        hostkeys = self.workdir / "hostkeys"
        hostkeys.mkdir(exist_ok=True)
        self.fleet_public_key = _load_or_create_key(self.key_path, private=True)
        common = self.workdir / "common"
        applets = prepare_template(common)
        root_mode = os.geteuid() == 0
        layouts = {ref: profile_layout(load_profile(ref)) for ref in set(profiles.values())}
        for plan in plans:
            host_key = _load_or_create_key(hostkeys / f"{plan.name}.key", private=False)
            owner = (UID_BASE + plan.index, UID_BASE + plan.index) if root_mode else None
            root = self.workdir / "monitors" / plan.name
            monitor_bin, update_bin, netconf = binaries_for(plan.state, plan.version)
            create_rootfs(root, common, applets,
                          DeviceIdentity(plan.name, plan.model, plan.serial, plan.address, plan.hwaddr),
                          version=plan.version, monitor_bin=monitor_bin, update_bin=update_bin,
                          netconf=netconf, data_capacity=self.data_capacity, owner=owner)
            if plan.name in profiles:
                layouts[profiles[plan.name]].apply(root, owner)
                self.profiles[plan.name] = profiles[plan.name]
            self._monitors[plan.name] = EmulatedMonitor(
                self, index=plan.index, name=plan.name, model=plan.model, serial=plan.serial,
                site=plan.ward.site, ward=plan.ward.ward, bed=plan.bed, address=plan.address, port=self.port,
                root=root, owner=owner, host_key=host_key)

    async def _boot_all(self) -> None:
        try:
            await asyncio.gather(*(m.boot() for m in self._monitors.values()))
        except OSError as exc:
            raise EmulatorError(f"cannot listen: {exc} (another fleet on the same addresses and port?)",
                                reason="address-in-use") from exc
        self._poller = asyncio.ensure_future(self._poll_requests())

    def _write_access_files(self, plans: list[MonitorPlan]) -> None:
        known = []
        hosts = []
        for plan in plans:
            monitor = self._monitors[plan.name]
            public = monitor.host_key.export_public_key("openssh").decode().strip()
            known.append(known_hosts_line(plan.address, self.port, public))
            hosts.append((plan, self.port, monitor.host_key.get_fingerprint("sha256"), monitor.version))
        write_atomic(self.known_hosts_path, "".join(known))
        write_atomic(self.inventory_path, render_inventory(hosts, key_path=self.key_path,
                                                           known_hosts=self.known_hosts_path,
                                                           profiles=self.profiles))

    # ----------------------------------------------------------------- public API
    @property
    def monitors(self) -> tuple[EmulatedMonitor, ...]:
        return tuple(self._monitors.values())

    def monitor(self, name: str) -> EmulatedMonitor:
        try:
            return self._monitors[name]
        except KeyError:
            matches = select(name, self._monitors)
            if len(matches) == 1:
                return self._monitors[matches[0]]
            raise EmulatorError(f"no monitor named {name!r}" if not matches else
                                f"{name!r} matches several monitors: {', '.join(matches)}",
                                reason="unknown-monitor") from None

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run a coroutine on the fleet's loop and wait for it (from any other thread)."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise EmulatorError("EmulatedFleet's sync API called from its own event loop",
                                reason="wrong-thread")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise EmulatorError("the emulated fleet did not answer in time", reason="timeout") from exc

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            try:
                self.call(self._close_all(), timeout=30)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(10)
        if not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> EmulatedFleet:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ----------------------------------------------------------------- loop internals
    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    async def _close_all(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        await asyncio.gather(*(m.close() for m in self._monitors.values()), return_exceptions=True)

    async def _poll_requests(self) -> None:
        """Pick up `reboot` and `cms-service` requests from shells that are still running."""
        while True:
            await asyncio.sleep(POLL_SECONDS)
            for monitor in self._monitors.values():
                if monitor.live_processes > 0:
                    monitor.scan_requests()


def profiles_for(spec: str | Mapping[str, str] | None, names: list[str]) -> dict[str, str]:
    """monitor -> profile reference for the monitors that do not follow the shipped profile."""
    if spec is None:
        return {}
    items = {"*": spec} if isinstance(spec, str) else dict(spec)
    out: dict[str, str] = {}
    for selector, ref in items.items():
        matched = select(selector, names)
        if not matched:
            raise EmulatorError(f"profile selector {selector!r} matches no monitor",
                                reason="bad-profile-spec")
        out.update(dict.fromkeys(matched, ref if NAME_RE.fullmatch(ref) else str(Path(ref).resolve())))
    return {name: ref for name, ref in out.items() if ref != DEFAULT_PROFILE}


def _load_or_create_key(path: Path, *, private: bool) -> asyncssh.SSHKey:
    """Load an Ed25519 key, or create it (0600; plus ``.pub`` for the fleet's login key)."""
    if path.exists():
        key = asyncssh.read_private_key(str(path))
    else:
        key = asyncssh.generate_private_key("ssh-ed25519", comment=f"cmspatch-emulator {path.stem}")
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(key.export_private_key("openssh"))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        if private:
            write_atomic(path.with_name(path.name + ".pub"), key.export_public_key("openssh").decode())
    os.chmod(path, 0o600)
    return key
