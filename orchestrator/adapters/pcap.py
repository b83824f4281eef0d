"""Reading a capture from a mirror port (pcap or pcapng, via dpkt): did anything talk to 202.114.4.0/24?

Every packet to or from the indicator network (and, when an ``IndicatorMap`` is given, its loopback
stand-in, as in emulation) is counted and its flow classified by port: 515-520 CMS telemetry, 511 HL7,
111/2049 NFS. What the device sent is reassembled per TCP flow (by sequence number, duplicates dropped)
and decoded with the same ``domain.telemetry`` decoders the sinkhole uses, so a capture and the sinkhole
produce the same ``ports.Observation`` values. ``CaptureObserver`` serves them as a ``NetworkObserver``.
Unlike the sinkhole, a capture sees the link layer: each observation carries the sender's MAC (Ethernet
and Linux cooked captures), which ``domain.attribution`` uses to tie it to a monitor.

Patient data is never kept or printed: observations carry kinds, field names and hashes only.
Deliberately left out: IPv6 (the indicators are IPv4), IP fragment reassembly, TCP out-of-window
subtleties: a capture is evidence of contact, not a forensic replay.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dpkt

from orchestrator.adapters.sinkhole import in_window, port_class, source_matches
from orchestrator.domain import telemetry
from orchestrator.domain.indicators import INDICATOR_NETWORK, IndicatorMap
from orchestrator.errors import UsageError
from orchestrator.ports import Observation

_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


class CaptureError(UsageError):
    reason = "pcap-unreadable"


@dataclass(frozen=True)
class FlowSummary:
    device: str  # address:port of the non-indicator side
    indicator: str  # unmapped indicator address:port
    protocol: str
    port_class: str  # "cms" | "hl7" | "nfs-tcp" | "nfs-udp" | "other"
    packets: int
    bytes: int
    first_seen: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CaptureReport:
    path: str
    sha256: str  # of the capture file
    packets: int
    indicator_packets: int
    flows: tuple[FlowSummary, ...]
    observations: tuple[Observation, ...]
    notes: tuple[str, ...] = ()
    first_packet: str = ""  # the window the capture covers (ISO-8601 UTC; "" when it holds no packet)
    last_packet: str = ""
    # IPv4 packets per sender address, to anyone (the bench: did a unit send anything at all?), and the
    # MAC each sender was seen with (Ethernet and cooked captures).
    senders: dict[str, int] = field(default_factory=dict)
    sender_macs: dict[str, str] = field(default_factory=dict)

    def sent_by(self, address: str | None, mac: str | None = None) -> int:
        """Packets sent by ``address`` or, where the link layer shows it, by ``mac``."""
        by_mac = {a for a, m in self.sender_macs.items() if mac is not None and m == mac.lower()}
        return sum(n for a, n in self.senders.items() if a == address or a in by_mac)

    @property
    def clean(self) -> bool:
        return self.indicator_packets == 0

    @property
    def patient_data_seen(self) -> bool:
        return any(o.patient_record for o in self.observations)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "sha256": self.sha256, "packets": self.packets,
            "indicator_packets": self.indicator_packets, "clean": self.clean,
            "patient_data_seen": self.patient_data_seen, "flows": [f.to_dict() for f in self.flows],
            "observations": [dict(o.__dict__, field_names=list(o.field_names)) for o in self.observations],
            "notes": list(self.notes), "first_packet": self.first_packet, "last_packet": self.last_packet,
            "senders": dict(self.senders), "sender_macs": dict(self.sender_macs),
        }


@dataclass
class _Flow:
    device: tuple[str, int]
    indicator: tuple[str, int]
    protocol: str
    first_ts: float
    mac: str | None = None  # the device's, from its first frame towards the indicator (Ethernet only)
    packets: int = 0
    size: int = 0
    syn_seen: bool = False
    segments: dict[int, bytes] = field(default_factory=dict)  # seq -> payload (device -> indicator)
    datagrams: list[tuple[float, bytes]] = field(default_factory=list)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def _packets(path: Path) -> Iterator[tuple[float, int, bytes]]:
    """(timestamp, link type, frame) for every packet of a pcap or pcapng file."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise CaptureError(f"{path}: cannot read the capture ({exc.strerror})") from exc
    with fh:
        magic = fh.read(4)
        fh.seek(0)
        try:
            if magic in _PCAP_MAGICS:
                reader: Any = dpkt.pcap.Reader(fh)
            elif magic == _PCAPNG_MAGIC:
                reader = dpkt.pcapng.Reader(fh)
            else:
                raise CaptureError(f"{path}: not a pcap or pcapng file")
            linktype = reader.datalink()
            for ts, frame in reader:
                yield float(ts), linktype, bytes(frame)
        except CaptureError:
            raise
        except (ValueError, dpkt.dpkt.Error, EOFError) as exc:
            raise CaptureError(f"{path}: corrupt capture ({exc})") from exc


def _mac(raw: bytes) -> str | None:
    """The sender's MAC, or None where the frame names nobody: the all-zero address of a loopback
    capture's Ethernet header would otherwise tie every sender to every other (``CaptureReport.sent_by``
    counted every packet of a loopback capture as the unit's)."""
    return ":".join(f"{b:02x}" for b in raw) if len(raw) == 6 and any(raw) else None


def _ip_of(linktype: int, frame: bytes) -> tuple[Any, str | None] | None:
    """The IPv4 packet of a frame and the sender's MAC (Ethernet and Linux cooked captures have one)."""
    mac: str | None = None
    try:
        if linktype == dpkt.pcap.DLT_EN10MB:
            eth = dpkt.ethernet.Ethernet(frame)
            pkt: Any = eth.data
            mac = _mac(bytes(eth.src))
        elif linktype in (dpkt.pcap.DLT_NULL, dpkt.pcap.DLT_LOOP):
            pkt = dpkt.loopback.Loopback(frame).data
        elif linktype in (dpkt.pcap.DLT_RAW, 12, 14, 228):
            pkt = dpkt.ip.IP(frame)
        elif linktype == dpkt.pcap.DLT_LINUX_SLL:
            sll = dpkt.sll.SLL(frame)
            pkt = sll.data
            mac = _mac(bytes(sll.hdr)[:sll.hlen]) if sll.hlen == 6 else None
        else:
            return None
    except (dpkt.dpkt.Error, ValueError, IndexError):
        return None
    return (pkt, mac) if isinstance(pkt, dpkt.ip.IP) else None


def read_capture(path: str | Path, *, indicator_map: IndicatorMap | None = None) -> CaptureReport:
    """Read a capture and report every contact with the indicator network. Raises ``CaptureError``."""
    path = Path(path)
    mapped = ipaddress.IPv4Network(f"{indicator_map.loopback_prefix}.0/24") if indicator_map else None

    def indicator(addr: ipaddress.IPv4Address) -> str | None:
        if addr in INDICATOR_NETWORK:
            return str(addr)
        if mapped is not None and addr in mapped:
            return f"202.114.4.{int(addr) & 0xFF}"
        return None

    flows: dict[tuple[str, int, str, int, str], _Flow] = {}
    senders: dict[str, int] = {}
    sender_macs: dict[str, str] = {}
    total = flagged = 0
    first = last = None
    notes: list[str] = []
    try:
        for ts, linktype, frame in _packets(path):
            total += 1
            first = ts if first is None else min(first, ts)
            last = ts if last is None else max(last, ts)
            framed = _ip_of(linktype, frame)
            if framed is None:
                continue
            ip, mac = framed
            src = ipaddress.IPv4Address(socket.inet_ntoa(ip.src))
            dst = ipaddress.IPv4Address(socket.inet_ntoa(ip.dst))
            senders[str(src)] = senders.get(str(src), 0) + 1
            if mac is not None:
                sender_macs.setdefault(str(src), mac)
            src_ind, dst_ind = indicator(src), indicator(dst)
            if src_ind is None and dst_ind is None:
                continue
            flagged += 1
            l4 = ip.data
            proto = "tcp" if isinstance(l4, dpkt.tcp.TCP) else "udp" if isinstance(l4, dpkt.udp.UDP) else "ip"
            sport = getattr(l4, "sport", 0)
            dport = getattr(l4, "dport", 0)
            outbound = dst_ind is not None  # device -> indicator
            if outbound:
                key = (str(src), sport, str(dst_ind), dport, proto)
            else:
                key = (str(dst), dport, str(src_ind), sport, proto)
            flow = flows.setdefault(key, _Flow((key[0], key[1]), (key[2], key[3]), proto, ts))
            flow.packets += 1
            flow.size += len(frame)
            if outbound and flow.mac is None:
                flow.mac = mac
            payload = bytes(getattr(l4, "data", b"")) if proto != "ip" else b""
            if outbound and proto == "tcp":
                if l4.flags & dpkt.tcp.TH_SYN:
                    flow.syn_seen = True
                if payload:
                    flow.segments.setdefault(l4.seq, payload)
            elif outbound and proto == "udp" and payload:
                flow.datagrams.append((ts, payload))
    except CaptureError as exc:
        if total == 0:
            raise
        notes.append(f"capture ends early after {total} packets: {exc.message}")
    summaries, observations = _decode_flows(flows)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return CaptureReport(str(path), digest, total, flagged, tuple(summaries), tuple(observations),
                         tuple(notes), _iso(first) if first is not None else "",
                         _iso(last) if last is not None else "", senders, sender_macs)


def _decode_flows(flows: dict[tuple[str, int, str, int, str], _Flow]
                  ) -> tuple[list[FlowSummary], list[Observation]]:
    observations: list[Observation] = []
    summaries: list[FlowSummary] = []
    for (dev_ip, dev_port, ind_ip, ind_port, proto), flow in sorted(flows.items(),
                                                                    key=lambda kv: kv[1].first_ts):
        pclass = port_class(ind_port, proto)
        source, target = f"{dev_ip}:{dev_port}", f"{ind_ip}:{ind_port}"
        at = _iso(flow.first_ts)
        summaries.append(FlowSummary(source, target, proto, pclass, flow.packets, flow.size, at))
        observations.append(Observation(at=at, source=source, target=target, protocol=proto, kind="connect",
                                        summary=f"{proto.upper()} contact with {target} ({pclass}), "
                                                f"{flow.packets} packet(s)",
                                        sha256=telemetry.sha256(f"{source}->{target}".encode()),
                                        mac=flow.mac))
        decoded: list[telemetry.Decoded] = []
        if proto == "tcp" and flow.segments:
            stream = b"".join(flow.segments[s] for s in sorted(flow.segments))
            decoded = telemetry.decode_payload(pclass, stream)
        for _ts, data in flow.datagrams:
            if pclass == "nfs-udp":
                decoded += telemetry.decode_payload(pclass, data)
            else:
                decoded.append(telemetry.Decoded("datagram", f"UDP datagram of {len(data)} bytes",
                                                 telemetry.sha256(data)))
        observations += [Observation(at=at, source=source, target=target, protocol=proto, kind=d.kind,
                                     summary=d.summary, sha256=d.sha256, patient_record=d.patient_record,
                                     field_names=d.field_names, mac=flow.mac) for d in decoded]
    return summaries, observations


class CaptureObserver:
    """A capture served as a ``ports.NetworkObserver`` (the same evidence path as the live sinkhole)."""

    recorded = True  # its traffic predates the run: verification reads it whole, not "since now"

    def __init__(self, report: CaptureReport, *, indicator_map: IndicatorMap | None = None) -> None:
        self.report = report
        self.indicator_map = indicator_map

    def wait_for(self, predicate: Callable[[Observation], bool], timeout: float) -> bool:
        """A capture does not grow: whether it holds such an observation, at once (``timeout`` unused)."""
        return any(predicate(o) for o in self.report.observations)

    def observations(self, *, since: str | None = None, until: str | None = None,
                     source: str | None = None) -> list[Observation]:
        """``ports.NetworkObserver.observations`` over the capture (with the sender's MAC where the link
        layer is Ethernet)."""
        return [o for o in self.report.observations
                if in_window(o, since, until) and source_matches(o.source, source)]
