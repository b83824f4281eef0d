"""Shared fixtures for integration tests: emulated fleets that never collide and are always stopped.

Several engineers (and CI) run integration tests at the same time on one machine, so every fleet gets its
own loopback address prefix, SSH port and ``IndicatorMap`` prefix (a sinkhole a test starts on
``fleet.indicator_map`` sees only that fleet). Fixtures:

- ``fleet_factory(monitors=3, **kwargs) -> EmulatedFleet``: function-scoped; kwargs go to
  ``EmulatedFleet.start`` (mix, states, faults, reboot_seconds, ...). Each fleet has its own workdir.
- ``module_fleet_factory``: the same, module-scoped (share one fleet between tests that don't interfere).
- ``fleet``: a ready 3-monitor vulnerable fleet (function-scoped).
- ``listener_factory(address, port, respond=None) -> Listener``: a loopback TCP listener that records
  what each peer sent (``.received(peer=None) -> bytes``, ``.peers()``); ``respond(bytes_so_far)`` may
  return a reply to send. Always closed at teardown.
- ``wait_until(predicate, timeout=10.0, what="...")``: poll a condition, fail with ``what`` on timeout
  (also importable: ``from tests.integration.conftest import wait_until``).
Defaults for tests: ``reboot_seconds=0.3``, ``telemetry_interval=0.2``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import socket
import threading
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


def _start(base: Path, fleets: list[Any], monitors: int, kwargs: dict[str, Any],
           start: Callable[..., Any] = EmulatedFleet.start) -> Any:
    kwargs.setdefault("reboot_seconds", 0.3)
    kwargs.setdefault("telemetry_interval", 0.2)
    for attempt in range(5):
        address_prefix, indicator_map, port = unique_prefixes()
        args = {"address_prefix": address_prefix, "indicator_map": indicator_map, "port": port, **kwargs}
        workdir = base / f"fleet{len(fleets)}-{attempt}"
        try:
            fleet = start(workdir, monitors=monitors, **args)
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


class Listener:
    """A TCP listener on loopback that keeps every byte each peer sent (a minimal sinkhole)."""

    def __init__(self, address: str, port: int,
                 respond: Callable[[bytes], bytes | None] | None = None) -> None:
        self.address, self.respond = address, respond
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((address, port))
        self.port = self._sock.getsockname()[1]
        self._sock.listen(64)
        self._lock = threading.Lock()
        self._data: dict[tuple[str, int], bytearray] = {}
        self._closed_peers: set[tuple[str, int]] = set()
        self._conns: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, peer = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self._data[peer] = bytearray()
                self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn, peer), daemon=True).start()

    def _read(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    with self._lock:
                        self._closed_peers.add(peer)
                    return
                with self._lock:
                    self._data[peer] += chunk
                    so_far = bytes(self._data[peer])
                if self.respond is not None:
                    reply = self.respond(so_far)
                    if reply:
                        with contextlib.suppress(OSError):
                            conn.sendall(reply)

    def peers(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._data)

    def open_peers(self) -> list[tuple[str, int]]:
        with self._lock:
            return [p for p in self._data if p not in self._closed_peers]

    def received(self, peer_address: str | None = None) -> bytes:
        with self._lock:
            return b"".join(bytes(v) for p, v in self._data.items() if peer_address in (None, p[0]))

    def close(self) -> None:
        self._stop = True
        self._sock.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def listener_factory() -> Iterator[Callable[..., Listener]]:
    listeners: list[Listener] = []

    def make(address: str, port: int, respond: Callable[[bytes], bytes | None] | None = None) -> Listener:
        listener = Listener(address, port, respond)
        listeners.append(listener)
        return listener

    yield make
    for listener in listeners:
        listener.close()


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., Any]:
    return wait_until


# ---------------------------------------------------------------- real OpenSSH monitors (issue 11)
# ``openssh_fleet_factory(monitors=3, **kwargs) -> OpenSshFleet``: one real ``sshd`` per monitor in a
# BusyBox chroot (orchestrator/emulator/openssh), same kwargs and access files as ``fleet_factory``.
# Skips only where sshd, unshare, BusyBox or root are missing (CI has them: make deps).
def _openssh_start(base: Path, fleets: list[Any], monitors: int, kwargs: dict[str, Any]) -> Any:
    from orchestrator.emulator.openssh import OpenSshFleet, missing_tools

    if missing := missing_tools():
        pytest.skip(f"real OpenSSH monitors need {', '.join(missing)}")
    return _start(base, fleets, monitors, kwargs, start=OpenSshFleet.start)


@pytest.fixture
def openssh_fleet_factory(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    fleets: list[Any] = []
    yield lambda monitors=3, **kwargs: _openssh_start(tmp_path, fleets, monitors, kwargs)
    for fleet in fleets:
        fleet.stop()


@pytest.fixture(scope="module")
def module_openssh_fleet_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Any]]:
    fleets: list[Any] = []
    base = tmp_path_factory.mktemp("openssh-fleet")
    yield lambda monitors=3, **kwargs: _openssh_start(base, fleets, monitors, kwargs)
    for fleet in fleets:
        fleet.stop()
