"""A real capture (tshark/dumpcap on loopback) of emulated monitors, read back by `adapters.pcap`.

A capture only proves something if it was running: each test brackets what it exercises between two
marker datagrams (a UDP probe, which is no indicator traffic) and waits until tshark has printed each,
so nothing exercised falls outside the capture and nothing captured is left unwritten when it stops.
"""

from __future__ import annotations

import re
import selectors
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orchestrator.adapters.pcap import read_capture
from orchestrator.adapters.sinkhole import Sinkhole
from orchestrator.emulator import EmulatedFleet

TSHARK = shutil.which("tshark")
MARKER_PORT = 51999
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark (Debian package tshark) is not installed")


class Capture:
    def __init__(self, proc: subprocess.Popen[bytes], address: str) -> None:
        self.proc, self.address = proc, address
        self._buffer = b""
        self._sel = selectors.DefaultSelector()
        assert proc.stdout is not None
        self._sel.register(proc.stdout, selectors.EVENT_READ)

    def marker(self, timeout: float = 15.0) -> None:
        """Send marker datagrams until tshark prints one of these very datagrams (told apart by their
        source ports): the capture is live, and written, up to now. Another packet's line arriving late
        is not enough: it once was, and the file then ended before what it was meant to bracket."""
        assert self.proc.stdout is not None
        deadline, sent = time.monotonic() + timeout, []
        while not any(re.search(rb"\b%d\b\D+\b%d\b" % (port, MARKER_PORT), self._buffer) for port in sent):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                pytest.fail("tshark did not see the marker datagram")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", 0))
                s.sendto(b"marker", (self.address, MARKER_PORT))
                sent.append(s.getsockname()[1])
            while self._sel.select(0.05):
                chunk = self.proc.stdout.read1(4096)  # type: ignore[attr-defined]
                if not chunk:
                    break
                self._buffer += chunk


@contextmanager
def capture(path: Path, bpf: str, marker_address: str) -> Iterator[Capture]:
    assert TSHARK is not None
    proc = subprocess.Popen(
        [TSHARK, "-l", "-P", "-n", "-i", "lo", "-f", f"({bpf}) or udp port {MARKER_PORT}", "-w", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        cap = Capture(proc, marker_address)
        cap.marker()
        yield cap
        cap.marker()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)


def test_capture_of_a_leaking_monitor_is_flagged_with_the_patient_record(
        fleet_factory: Callable[..., EmulatedFleet], tmp_path: Path) -> None:
    fleet = fleet_factory(1, states={"vulnerable": 1})
    monitor = fleet.monitors[0]
    path = tmp_path / "leak.pcapng"
    prefix = fleet.indicator_map.loopback_prefix
    with Sinkhole(fleet.indicator_map) as hole, capture(path, f"net {prefix}.0/24", monitor.address):
        monitor.connect_patient()
        assert hole.wait_for(lambda o: o.kind == "hl7" and o.patient_record, 15)
        assert hole.wait_for(lambda o: o.kind == "cms-telemetry" and o.patient_record, 15)
    report = read_capture(path, indicator_map=fleet.indicator_map)
    assert not report.clean and report.patient_data_seen
    assert {f.port_class for f in report.flows} >= {"cms", "hl7"}
    assert {f.device.rsplit(":", 1)[0] for f in report.flows} == {monitor.address}


def test_capture_of_a_fixed_monitor_pressed_on_every_trigger_is_clean(
        fleet_factory: Callable[..., EmulatedFleet], tmp_path: Path) -> None:
    fleet = fleet_factory(1, states={"fixed": 1})
    monitor = fleet.monitors[0]
    path = tmp_path / "fixed.pcapng"
    bpf = f"host {monitor.address} and net {fleet.indicator_map.loopback_prefix}.0/24"
    with Sinkhole(fleet.indicator_map), capture(path, bpf, monitor.address):
        monitor.connect_patient()
        monitor.trigger("menu-update")  # returns once the hidden mount, if there were one, has run
        monitor.trigger("boot-key")
    report = read_capture(path, indicator_map=fleet.indicator_map)
    assert report.packets >= 2 and report.clean  # the two markers, and nothing towards the indicators
