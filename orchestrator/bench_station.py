"""The bench station around one bench session: the one thing ``cmspatch bench`` and the TUI's bench screen
both call, each with its own ``ports.Prompter`` (the terminal, the screen): one session, two views.

``run_station`` refuses a unit that is not a hands-on unit waiting for its bench session
(``domain.bench.may_bench``) and a session without a named technician, holds the journal's claim on the
unit for the whole session (one driver per monitor, as a campaign holds it), starts the sinkhole (the
loopback stand-in, or the indicator addresses themselves on an isolated bench switch), reads the capture
of the bench port once the technician has stopped it, runs ``bench_session.run_bench`` and journals the
unit's moves that its outcome calls for (``domain.handson.bench_moves``: patched, failed, or awaiting its
bench again).

Deliberately left out: opening the journal and finding the campaign (each front end does it its own way:
the CLI from its flags, the TUI from the journal it watches) and asking the technician's name (the
terminal reads a line, the screen has a field; neither is ever pre-filled from the OS account).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.adapters.journal_claims import Claims
from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.adapters.pcap import CaptureReport, read_capture
from orchestrator.adapters.sinkhole import Sinkhole, now_iso
from orchestrator.bench_session import BenchResult, BenchSetup, run_bench
from orchestrator.device_lease import controller_id
from orchestrator.domain import bench, handson
from orchestrator.domain.indicators import IndicatorMap
from orchestrator.domain.status import DeviceStatus, project
from orchestrator.errors import UsageError
from orchestrator.ports import NetworkObserver, Prompter
from orchestrator.unit_moves import append_moves

DEFAULT_WINDOW = 30.0
LOOPBACK_SINKHOLE = "127.114.4"


@dataclass(frozen=True)
class Station:
    """How the bench is set up: the window, the observers, and what is known of the unit."""

    window: float = DEFAULT_WINDOW
    sinkhole_prefix: str | None = LOOPBACK_SINKHOLE  # None: listen as 202.114.4.119/.120 (bench switch)
    sinkhole: bool = True
    pcap: Path | None = None
    networking_removed: bool = False
    address: str | None = None
    address_from: str = ""
    mac: str | None = None
    mac_from: str = ""
    udp_probe_ports: tuple[int, ...] = ()

    def check(self) -> None:
        if self.window <= 0:
            raise UsageError("the observation window must be a positive number of seconds",
                             reason="bad-arguments")
        if not self.sinkhole and self.pcap is None:
            raise UsageError("without a sinkhole nothing watches the unit: give a capture (--pcap)",
                             reason="bad-arguments")


def ready(device: str, status: DeviceStatus) -> DeviceStatus:
    """The unit's status when it may have a bench session now; else a ``UsageError`` saying why."""
    if (why := bench.may_bench(status.state.value, status.delivery)) is not None:
        raise UsageError(f"{device}: {why}", reason="not-awaiting-bench")
    return status


def run_station(journal: SqliteJournal, campaign: str, device: str, status: DeviceStatus,
                technician: str, station: Station, prompter: Prompter, *,
                sinkhole: NetworkObserver | None = None) -> BenchResult:
    """One bench session of ``device`` (module doc). Journals as it goes; blocks for the whole window.

    ``sinkhole``: one already listening on the station's addresses (a campaign's, in the same TUI): the
    session watches through it instead of binding a second one on the same addresses."""
    station.check()
    ready(device, status)
    technician = technician.strip()
    if not technician:
        raise UsageError("a bench session needs the technician's name (who works at the bench)",
                         reason="no-technician")
    mapping = None if station.sinkhole_prefix is None else IndicatorMap(station.sinkhole_prefix)
    label = "bench sinkhole" if mapping is None else f"sinkhole {station.sinkhole_prefix}"
    holder = controller_id()
    with Claims(journal.path).hold(f"bench-{campaign}-{device}", [device], holder):
        setup = BenchSetup(campaign, device, technician, station.window, station.address,
                           station.address_from, station.mac, station.mac_from, station.networking_removed,
                           station.udp_probe_ports, holder)
        capture = None
        capture_label = f"pcap {station.pcap}" if station.pcap is not None else ""
        if station.pcap is not None:
            pcap = station.pcap

            def capture() -> CaptureReport:
                return read_capture(pcap, indicator_map=mapping)
        if not station.sinkhole:
            result = run_bench(journal, setup, prompter, live=None, capture=capture,
                               capture_label=capture_label)
        elif sinkhole is not None:
            result = run_bench(journal, setup, prompter, live=sinkhole, live_label=label,
                               live_since=now_iso(), capture=capture, capture_label=capture_label)
        else:
            with Sinkhole.on_bench() if mapping is None else Sinkhole(mapping) as hole:
                result = run_bench(journal, setup, prompter, live=hole, live_label=label,
                                   live_since=now_iso(), capture=capture, capture_label=capture_label)
        # The session ends the unit (domain.handson.bench_moves), still under the claim: the one writer.
        now = project(journal.records(campaign), campaign).devices[device]
        append_moves(journal, campaign, now, handson.bench_moves(now.state, result.outcome))
        return result
