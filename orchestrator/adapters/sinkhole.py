"""The sinkhole: listeners that impersonate the backdoor's servers and record who calls them.

It listens as 202.114.4.119 (CMS server, NFS export /pm) and 202.114.4.120 (HL7 server) on TCP 511,
515-520, 111, 2049 and UDP 111, 2049. Every connection and datagram becomes a ``ports.Observation``
(source = the monitor), and what arrives is decoded with ``domain.telemetry``: CMS blocks (patient
record 0x3E), HL7 over MLLP (PID), ONC RPC (GETPORT, MOUNT MNT "/pm").

Safety, by construction:
- It only ever *listens*. There is no code path that opens a connection: it uses ``start_server`` and
  datagram endpoints with a local address only. Replies go back on the accepted TCP connection or to the
  sender of a datagram, never anywhere else.
- It binds only loopback stand-ins (``IndicatorMap``, the default, used in emulation and tests) or, on
  an isolated bench switch, the indicator addresses themselves (``Sinkhole.on_bench()``). Anything else
  is refused with ``UnsafeMapping`` before a socket is made.
- RPC is answered just far enough for the device to reach MOUNT MNT; the mount itself is refused, so a
  device never receives files to copy over its own and run.
- Patient data is never kept: the raw bytes live only in the decode buffer; an observation holds that
  something was seen, field names and a SHA-256.

An asyncio loop runs in a background thread; the API (``start``, ``stop``, ``observations``,
``wait_for``) is synchronous and thread-safe, so the engine's worker threads can share one sinkhole.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import cast

from orchestrator.domain import oncrpc, telemetry
from orchestrator.domain.indicators import (
    CMS_SERVER,
    CMS_TCP_PORTS,
    HL7_SERVER,
    HL7_TCP_PORT,
    INDICATOR_NETWORK,
    SINKHOLE_TCP_PORTS,
    SINKHOLE_UDP_PORTS,
    IndicatorMap,
    UnsafeMapping,
)
from orchestrator.errors import CmspatchError
from orchestrator.ports import Observation

UNDECODED_LIMIT = 256 * 1024  # bytes held per connection while waiting for the rest of a block
IDLE_TIMEOUT = 10.0
MAX_OBSERVATIONS = 50_000  # the oldest go first: verification windows always look at recent traffic
REPEAT_INTERVAL = 0.5  # per connection, the same kind of content is recorded at most twice a second


_Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class SinkholeError(CmspatchError):
    reason = "sinkhole-bind"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def port_class(port: int, protocol: str) -> str:
    if port in CMS_TCP_PORTS:
        return "cms"
    if port == HL7_TCP_PORT:
        return "hl7"
    if port in (111, 2049):
        return "nfs-tcp" if protocol == "tcp" else "nfs-udp"
    return "other"


def check_listen_address(indicator: str, address: str) -> None:
    """Refuse to listen anywhere but loopback or the indicator address itself (isolated bench)."""
    try:
        addr = ipaddress.IPv4Address(address)
    except ValueError as exc:
        raise UnsafeMapping(f"not an IPv4 address: {address!r}") from exc
    if addr.is_loopback:
        return
    if addr in INDICATOR_NETWORK and str(addr) == indicator:
        return
    raise UnsafeMapping(f"the sinkhole listens only on loopback or on the indicator address itself, "
                        f"not on {address} (for {indicator})")


class Sinkhole:
    """Implements ``ports.NetworkObserver``. Use as a context manager or call ``start``/``stop``."""

    recorded = False  # live: what it sees happens now, after our triggers

    def __init__(self, indicator_map: IndicatorMap | None = None, *, listen: Mapping[str, str] | None = None,
                 tcp_ports: Iterable[int] = SINKHOLE_TCP_PORTS, udp_ports: Iterable[int] = SINKHOLE_UDP_PORTS,
                 idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.indicator_map = indicator_map or IndicatorMap()
        if listen is None:
            listen = {str(ip): self.indicator_map.map(ip) for ip in (CMS_SERVER, HL7_SERVER)}
        for indicator, address in listen.items():
            if ipaddress.IPv4Address(indicator) not in INDICATOR_NETWORK:
                raise UnsafeMapping(f"{indicator} is not an indicator address")
            check_listen_address(indicator, address)
        self.listen: dict[str, str] = dict(listen)
        self.tcp_ports = tuple(tcp_ports)
        self.udp_ports = tuple(udp_ports)
        self.idle_timeout = idle_timeout
        self._observations: deque[Observation] = deque(maxlen=MAX_OBSERVATIONS)
        self._appended = 0  # absolute count, so waiters find what is new even after old ones fall out
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._transports: list[asyncio.BaseTransport] = []

    @classmethod
    def on_bench(cls, **kwargs: object) -> Sinkhole:
        """Listen on 202.114.4.119/.120 themselves: only on an isolated bench switch."""
        listen = {str(CMS_SERVER): str(CMS_SERVER), str(HL7_SERVER): str(HL7_SERVER)}
        return cls(None, listen=listen, **kwargs)  # type: ignore[arg-type]

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> Sinkhole:
        if self._thread is not None:
            return self
        ready: threading.Event = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._bind())
            except BaseException as exc:  # reported to start()'s caller below
                failure.append(exc)
                ready.set()
                loop.run_until_complete(self._close())
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._close())
            loop.close()

        self._thread = threading.Thread(target=run, name="cmspatch-sinkhole", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            exc = failure[0]
            raise SinkholeError(f"sinkhole could not listen: {exc}") from exc
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> Sinkhole:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    async def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        for indicator, address in self.listen.items():
            for port in self.tcp_ports:
                handler = self._tcp_handler(indicator, port)
                server = await asyncio.start_server(handler, host=address, port=port, reuse_address=True)
                self._servers.append(server)
            for port in self.udp_ports:
                transport, _ = await loop.create_datagram_endpoint(
                    _datagram_factory(self, indicator, port), local_addr=(address, port))
                self._transports.append(transport)

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        for transport in self._transports:
            transport.close()
        # Connection handlers still waiting for data: end them while the loop can still run their cleanup.
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        self._transports.clear()

    # --- recording ---------------------------------------------------------------------------------
    def _record(self, obs: Observation) -> None:
        with self._cond:
            self._observations.append(obs)
            self._appended += 1
            self._cond.notify_all()

    def _record_decoded(self, source: str, target: str, protocol: str, decoded: telemetry.Decoded) -> None:
        self._record(Observation(at=now_iso(), source=source, target=target, protocol=protocol,
                                 kind=decoded.kind, summary=decoded.summary, sha256=decoded.sha256,
                                 patient_record=decoded.patient_record, field_names=decoded.field_names))

    def observations(self, *, since: str | None = None, until: str | None = None,
                     source: str | None = None) -> list[Observation]:
        """``ports.NetworkObserver.observations``: oldest first, every sender unless ``source`` is given.
        A sinkhole sees no MAC (it accepts connections at layer 4): its observations carry none."""
        with self._cond:
            items = list(self._observations)
        return [o for o in items if in_window(o, since, until) and source_matches(o.source, source)]

    def wait_for(self, predicate: Callable[[Observation], bool], timeout: float) -> bool:
        """Block until an observation satisfies ``predicate`` (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        checked = 0  # each waiter scans only what arrived since it last looked
        with self._cond:
            while True:
                new = min(self._appended - checked, len(self._observations))
                fresh = list(itertools.islice(reversed(self._observations), new))
                checked = self._appended
                if any(predicate(o) for o in fresh):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)

    # --- protocols ---------------------------------------------------------------------------------
    def _tcp_handler(self, indicator: str, port: int) -> _Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peername") or ("?", 0)
            source, target, pclass = f"{peer[0]}:{peer[1]}", f"{indicator}:{port}", port_class(port, "tcp")
            self._record(Observation(at=now_iso(), source=source, target=target, protocol="tcp",
                                     kind="connect", summary=f"TCP connection to {target} ({pclass})",
                                     sha256=telemetry.sha256(f"{source}->{target}".encode())))
            buffer = b""
            last: dict[tuple[str, str], float] = {}
            try:
                while True:
                    try:
                        async with asyncio.timeout(self.idle_timeout):
                            chunk = await reader.read(65536)
                    except TimeoutError:
                        break
                    if not chunk:
                        break
                    buffer = self._consume(buffer + chunk, pclass, source, target, writer, last)
                    await writer.drain()
                    if len(buffer) > UNDECODED_LIMIT:  # not our protocol: say so once, keep memory bounded
                        self._undecodable(source, target, buffer)
                        buffer = b""
                if buffer:
                    self._undecodable(source, target, buffer)
            except (ConnectionError, OSError):
                pass  # the device hung up; what was seen is already recorded
            except asyncio.CancelledError:
                pass  # the sinkhole is stopping: end quietly (asyncio logs a cancelled handler as an error)
            finally:
                buffer = b""
                writer.close()

        return handle

    def _undecodable(self, source: str, target: str, data: bytes) -> None:
        self._record_decoded(source, target, "tcp", telemetry.Decoded(
            "undecodable", f"{len(data)} bytes to {target} not recognised", telemetry.sha256(data)))

    def _consume(self, buffer: bytes, pclass: str, source: str, target: str,
                 writer: asyncio.StreamWriter, last: dict[tuple[str, str], float]) -> bytes:
        if pclass == "cms":
            decoded, used = telemetry.decode_cms_stream(buffer)
        elif pclass == "hl7":
            decoded, used = telemetry.decode_hl7_stream(buffer)
        elif pclass == "nfs-tcp":
            messages, rest = oncrpc.split_records(buffer)
            decoded = []
            for message in messages:
                item, call = telemetry.decode_rpc(message)
                decoded.append(item)
                if call is not None:
                    writer.write(oncrpc.record_mark(oncrpc.reply_for(call)))
            used = len(buffer) - len(rest)
        else:
            decoded, used = [], 0
        for item in decoded:
            # A streaming monitor sends many frames a second: keep one of each kind per REPEAT_INTERVAL.
            key, now = (item.kind, item.summary), time.monotonic()
            if pclass not in ("cms", "hl7") or now - last.get(key, -REPEAT_INTERVAL) >= REPEAT_INTERVAL:
                last[key] = now
                self._record_decoded(source, target, "tcp", item)
        return buffer[used:]


def _datagram_factory(sinkhole: Sinkhole, indicator: str, port: int) -> Callable[[], _Datagrams]:
    return lambda: _Datagrams(sinkhole, indicator, port)


def in_window(obs: Observation, since: str | None, until: str | None) -> bool:
    return (since is None or obs.at >= since) and (until is None or obs.at <= until)


def source_matches(observed: str, wanted: str | None) -> bool:
    if wanted is None:
        return True
    return observed == wanted or observed.rsplit(":", 1)[0] == wanted


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, sinkhole: Sinkhole, indicator: str, port: int) -> None:
        self.sinkhole = sinkhole
        self.target = f"{indicator}:{port}"
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        source = f"{addr[0]}:{addr[1]}"
        decoded, call = telemetry.decode_rpc(data)
        if decoded.kind == "undecodable":
            decoded = telemetry.Decoded("datagram", f"UDP datagram of {len(data)} bytes to {self.target}",
                                        decoded.sha256)
        self.sinkhole._record_decoded(source, self.target, "udp", decoded)
        if call is not None and self.transport is not None:
            self.transport.sendto(oncrpc.reply_for(call), addr)  # back to the sender only
