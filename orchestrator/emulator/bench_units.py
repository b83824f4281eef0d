"""Hands-on units on the bench: no service access, only network behaviour, on a loopback bench address.

A unit that exposes no service shell is what the bench verification station (``cmspatch bench``) proves
from the network alone. Four cases, each built from the same fake firmware as the fleet's monitors
(``firmware.binaries_for`` / ``fake_elf``) and behaving as ``firmware.derive_build`` says those bytes do:

- ``vulnerable``: eth0 up; the UDP service answers; with a patient (simulator) attached it streams CMS
  telemetry and HL7 to the indicator addresses; both triggers mount the share.
- ``insufficiently-patched``: the January 2025 build, eth0 disabled in its config; the hidden code brings
  eth0 up on either trigger and mounts the share, and from then on leaks and answers like the vulnerable one.
- ``fixed-networking-removed``: the July 2025 build: sends nothing at all, answers nothing.
- ``fixed-boot-key-still-mounts``: a fixed ``monitor`` beside an ``update`` that still carries the hidden
  mount: quiet until the boot key, which reaches for the share.

The technician's hands are the methods ``attach_simulator`` and ``press``; tests call them when the bench
session asks. Every socket goes through ``backdoor.open_to`` (loopback only). Used by tests and ``bench/``
only; product code never imports the emulator.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from enum import StrEnum
from types import TracebackType
from typing import Any, TypeVar

from orchestrator.domain.indicators import CMS_SERVER, CMS_TCP_PORTS, HL7_SERVER, HL7_TCP_PORT, IndicatorMap
from orchestrator.emulator.backdoor import Patient, guard_loopback
from orchestrator.emulator.catalog import FIXED_VERSION, INSUFFICIENT_VERSION, UDP_SERVICE_PORT, FirmwareState
from orchestrator.emulator.firmware import Build, binaries_for, derive_build, fake_elf, network_conf
from orchestrator.emulator.services import UdpService, attempt_nfs_mount, stream_telemetry
from orchestrator.errors import EmulatorError

T = TypeVar("T")


class BenchCase(StrEnum):
    VULNERABLE = "vulnerable"
    INSUFFICIENT = "insufficiently-patched"
    FIXED_NO_NETWORK = "fixed-networking-removed"
    FIXED_BOOT_KEY = "fixed-boot-key-still-mounts"


def firmware_of(case: BenchCase) -> tuple[bytes, bytes, bytes]:
    """(monitor, update, network.conf) installed on a unit of ``case``."""
    if case is BenchCase.VULNERABLE:
        return binaries_for(FirmwareState.VULNERABLE, "CMS7.820.075.08/0.74(0.75)")
    if case is BenchCase.INSUFFICIENT:
        return binaries_for(FirmwareState.INSUFFICIENT, INSUFFICIENT_VERSION)
    if case is BenchCase.FIXED_NO_NETWORK:
        monitor, update, _ = binaries_for(FirmwareState.FIXED, FIXED_VERSION)
        return monitor, update, network_conf(eth0_enabled=False)
    monitor, _, _ = binaries_for(FirmwareState.FIXED, FIXED_VERSION)
    return monitor, fake_elf("update", FIXED_VERSION, backdoor=True), network_conf(eth0_enabled=False)


class BenchUnit:
    """One hands-on unit on the bench (see module doc). Start with ``with BenchUnit(...) as unit``."""

    def __init__(self, case: BenchCase | str, *, address: str, indicator_map: IndicatorMap,
                 udp_port: int = UDP_SERVICE_PORT, telemetry_interval: float = 0.2, name: str = "bench-unit",
                 model: str = "CMS8000", index: int = 0) -> None:
        guard_loopback(address)
        self.case = BenchCase(case)
        self.address, self.indicator_map, self.udp_port = address, indicator_map, udp_port
        self.name, self.model, self.index = name, model, index
        self._interval = telemetry_interval
        self.build: Build = derive_build(*firmware_of(self.case))
        self.online = False
        self.eth0_up = False
        self.patient_connected = False
        self.nfs_server: str | None = None
        self.tcp_connections: dict[str, tuple[int, str, int]] = {}
        self._activity: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"bench-{name}", daemon=True)
        self._udp: asyncio.DatagramTransport | None = None
        self._telemetry: asyncio.Task[None] | None = None

    # --- the services' view of a unit (services.EmulatedMonitor) ----------------------------------
    @property
    def telemetry_interval(self) -> float:
        return self._interval

    @property
    def cms_target(self) -> tuple[str, int]:
        return self.indicator_map.map(CMS_SERVER), CMS_TCP_PORTS[0]

    @property
    def hl7_target(self) -> tuple[str, int]:
        return self.indicator_map.map(HL7_SERVER), HL7_TCP_PORT

    def record(self, kind: str, **data: Any) -> None:
        with self._lock:
            self._activity.append({"t": time.time(), "kind": kind, "unit": self.name, **data})

    def refresh_proc(self) -> None:
        """No /proc to refresh: nobody reads this unit's state but the network."""

    # --- the technician's hands -------------------------------------------------------------------
    def power_on(self) -> None:
        self._call(self._power_on())

    def attach_simulator(self) -> None:
        self._call(self._attach())

    def press(self, trigger: str) -> None:
        """The menu update (``menu-update``) or the boot-time C key (``boot-key``)."""
        if trigger not in ("menu-update", "boot-key"):
            raise EmulatorError(f"unknown trigger {trigger!r} (menu-update, boot-key)", reason="bad-trigger")
        self._call(self._press(trigger))

    def activity(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(a) for a in self._activity]

    # --- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> BenchUnit:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._thread.is_alive():
            self._call(self._power_off())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if not self._thread.is_alive():
            coro.close()
            raise EmulatorError(f"{self.name} is not running (use it as a context manager)",
                                reason="monitor-offline")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _power_on(self) -> None:
        self.online = True
        self.record("boot", case=self.case.value)
        await self._set_eth0(self.build.eth0_enabled, reason="config")

    async def _power_off(self) -> None:
        self.online = False
        if self._telemetry is not None:
            self._telemetry.cancel()
            await asyncio.wait({self._telemetry}, timeout=1.0)
            self._telemetry = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    async def _attach(self) -> None:
        self.patient_connected = True
        self.record("simulator-attached")
        self._update_telemetry()

    async def _press(self, trigger: str) -> None:
        armed = self.build.monitor_mount if trigger == "menu-update" else self.build.update_mount
        self.record("trigger", which=trigger, hidden_mount=armed)
        if not self.online or not armed:
            return
        await self._set_eth0(True, reason=f"hidden mount ({trigger})")
        await attempt_nfs_mount(self, self.indicator_map.map(CMS_SERVER))

    async def _set_eth0(self, up: bool, *, reason: str) -> None:
        self.eth0_up = up
        self.record("eth0", state="up" if up else "down", reason=reason)
        if up and self.build.udp_listener and self._udp is None:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(
                lambda: UdpService(self), local_addr=(self.address, self.udp_port))
            self._udp = transport
        self._update_telemetry()

    def _update_telemetry(self) -> None:
        should = self.online and self.patient_connected and self.eth0_up and self.build.telemetry
        if should and (self._telemetry is None or self._telemetry.done()):
            patient = Patient(department="BENCH", bed="00")
            self._telemetry = asyncio.ensure_future(stream_telemetry(self, patient))
