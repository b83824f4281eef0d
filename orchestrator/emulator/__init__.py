"""The emulated CMS monitor fleet: real SSH servers over real BusyBox roots, on loopback only.

Nobody has a CMS8000 at hand: this is the default target of the demo, every integration test, the
benchmarks and training. Product code never imports it (import-linter enforces); only tests, ``bench/``
and the ``cmspatch fleet emulate`` / demo commands do. Device-side contract: see the team notes
("Emulated monitor, device side") and ``scripts`` / ``rootfs``.
"""

from __future__ import annotations

from orchestrator.emulator.backdoor import SYNTHETIC_PATIENT_NAME
from orchestrator.emulator.catalog import (
    FIXED_VERSION,
    INSUFFICIENT_VERSION,
    UDP_SERVICE_PORT,
    VULNERABLE_VERSIONS,
    FirmwareState,
)
from orchestrator.emulator.faults import FAULTS
from orchestrator.emulator.fleet import EmulatedFleet
from orchestrator.emulator.monitor import EmulatedMonitor

__all__ = [
    "FAULTS",
    "FIXED_VERSION",
    "INSUFFICIENT_VERSION",
    "SYNTHETIC_PATIENT_NAME",
    "UDP_SERVICE_PORT",
    "VULNERABLE_VERSIONS",
    "EmulatedFleet",
    "EmulatedMonitor",
    "FirmwareState",
]
