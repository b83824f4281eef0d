"""Shared fixtures for integration tests: emulated fleets that never collide and are always stopped.

Several engineers (and CI) run integration tests at the same time on one machine, so every fleet gets its
own loopback address prefix, SSH port and ``IndicatorMap`` prefix (a sinkhole a test starts on
``fleet.indicator_map`` sees only that fleet). Fixtures:

- ``fleet_factory(monitors=3, **kwargs) -> EmulatedFleet``: function-scoped; kwargs go to
  ``EmulatedFleet.start`` (mix, states, faults, reboot_seconds, ...). Each fleet has its own workdir.
- ``module_fleet_factory``: the same, module-scoped (share one fleet between tests that don't interfere).
- ``fleet``: a ready 3-monitor vulnerable fleet (function-scoped).
- ``wait_until(predicate, timeout=10.0, what="...")``: poll a condition, fail with ``what`` on timeout
  (also importable: ``from tests.integration.conftest import wait_until``).
Defaults for tests: ``reboot_seconds=0.3``, ``telemetry_interval=0.2``.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.domain.indicators import IndicatorMap
from orchestrator.emulator import EmulatedFleet
from orchestrator.errors import EmulatorError

_rng = random.Random(os.getpid() ^ int(time.time()))
_counter = itertools.count(_rng.randrange(10_000))
# 127.20-127.99 for monitors (127.77 is the demo's default, skipped); 127.150-127.249 for indicator maps.
_ADDRESS_OCTETS = [n for n in range(20, 100) if n != 77]


def unique_prefixes() -> tuple[str, IndicatorMap, int]:
    n = next(_counter)
    address_prefix = f"127.{_ADDRESS_OCTETS[n % len(_ADDRESS_OCTETS)]}"
    indicator = IndicatorMap(f"127.{150 + (n // 256) % 100}.{n % 256}")
    port = 20000 + (os.getpid() * 7 + n) % 30000
    return address_prefix, indicator, port


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition",
               interval: float = 0.05) -> Any:
    """Return the predicate's first truthy value; fail the test if none comes within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _start(base: Path, fleets: list[EmulatedFleet], monitors: int, kwargs: dict[str, Any]) -> EmulatedFleet:
    kwargs.setdefault("reboot_seconds", 0.3)
    kwargs.setdefault("telemetry_interval", 0.2)
    for attempt in range(5):
        address_prefix, indicator_map, port = unique_prefixes()
        args = {"address_prefix": address_prefix, "indicator_map": indicator_map, "port": port, **kwargs}
        workdir = base / f"fleet{len(fleets)}-{attempt}"
        try:
            fleet = EmulatedFleet.start(workdir, monitors=monitors, **args)
        except EmulatorError as exc:
            if exc.reason == "address-in-use" and attempt < 4:
                continue
            raise
        fleets.append(fleet)
        return fleet
    raise AssertionError("unreachable")


@pytest.fixture
def fleet_factory(tmp_path: Path) -> Iterator[Callable[..., EmulatedFleet]]:
    fleets: list[EmulatedFleet] = []

    def make(monitors: int = 3, **kwargs: Any) -> EmulatedFleet:
        return _start(tmp_path, fleets, monitors, kwargs)

    yield make
    for fleet in fleets:
        fleet.stop()


@pytest.fixture(scope="module")
def module_fleet_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., EmulatedFleet]]:
    fleets: list[EmulatedFleet] = []
    base = tmp_path_factory.mktemp("fleet")

    def make(monitors: int = 3, **kwargs: Any) -> EmulatedFleet:
        return _start(base, fleets, monitors, kwargs)

    yield make
    for fleet in fleets:
        fleet.stop()


@pytest.fixture
def fleet(fleet_factory: Callable[..., EmulatedFleet]) -> EmulatedFleet:
    return fleet_factory(3)


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., Any]:
    return wait_until
