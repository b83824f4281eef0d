"""A benign UDP probe of a monitor's own address: does anything answer where CVE-2024-12248 listens?

The probe is one small, well-formed datagram per port: never malformed, never a broadcast, because the
2022 advisory (ICSMA-22-244-01) says a malformed UDP packet or broadcast crashes every monitor on the
segment, and we must never disturb a monitor that watches a patient. "Answered" means the listener is
there and talks; "refused" (ICMP port unreachable) means nothing listens; "silent" proves little.

Network safety: the network guard checks the address first (an indicator address, or a configured
loopback stand-in of one, is never probed: "not-run", reason ``indicator-address`` in the detail), and
this build only probes loopback addresses (the emulated fleet). A non-loopback address is not probed and
the result says so ("not-run"), which leaves CVE-2024-12248 inconclusive, never fixed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from orchestrator.domain.checks import ProbeResult
from orchestrator.domain.netguard import IndicatorAddressRefused, refuse_indicator

PROBE_PAYLOAD = b"CMSPATCH-PROBE\x00"
PROBE_TIMEOUT = 0.3


def probe_udp(address: str, ports: Iterable[int], *, timeout: float = PROBE_TIMEOUT) -> list[ProbeResult]:
    try:
        loopback = ipaddress.IPv4Address(address).is_loopback
    except ValueError:
        loopback = False
    port_list = sorted(set(ports))
    try:  # first, so a refused address says why; only IPv4 literals are ever probed: nothing to resolve
        refuse_indicator(address, purpose="probe")
    except IndicatorAddressRefused as exc:
        return [ProbeResult(p, "not-run", f"{exc.message} [{exc.reason}]") for p in port_list]
    if not loopback:
        why = f"{address} is not a loopback address; cmspatch sends no packet off this machine"
        return [ProbeResult(p, "not-run", why) for p in port_list]
    results: list[ProbeResult] = []
    for port in port_list:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect((address, port))  # UDP "connect" only fixes the peer, so ICMP errors surface
                sock.send(PROBE_PAYLOAD)
                answer = sock.recv(2048)
                results.append(ProbeResult(port, "answered", f"{len(answer)} bytes back"))
            except ConnectionRefusedError:
                results.append(ProbeResult(port, "refused", "port unreachable"))
            except TimeoutError:
                results.append(ProbeResult(port, "silent", f"no answer within {timeout:.1f} s"))
            except OSError as exc:
                results.append(ProbeResult(port, "not-run", f"{type(exc).__name__}: {exc}"))
    return results
