"""Fixtures for the TUI's tests: a small real demo (emulated fleet, signed packages, sinkhole) and
helpers that drive the real app and wait on conditions (never on fixed sleeps).

- ``demo``: 6 emulated monitors + one hands-on unit, fast timings, waves 1 / 2 / rest with gates;
  monitor 3 (second wave) has a patient connected. Own loopback prefix, port and indicator map, so it
  never collides with other tests; always closed.
- ``journal``: the demo's SQLite journal.
- ``wait_for(pilot, predicate, what=..., timeout=...)``: poll a condition while the app runs.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.demo import Demo, demo_policy, start_demo
from orchestrator.domain.events import EventKind, JournalRecord
from tests.integration.conftest import unique_prefixes
from tui.app import CmspatchApp
from tui.session import Session, SessionConfig

OPERATOR = "a.rossi"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def small_policy() -> Any:
    return demo_policy(fast=True, waves=("1", "2", "100%"), observation_window=0.3, reboot_timeout=10.0,
                       recheck_interval=0.3, max_rechecks=1)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    prefix, indicator_map, _ = unique_prefixes()
    d = start_demo(tmp_path / "demo", monitors=6, faults={3: ("patient",)}, states={"vulnerable": 1},
                   reboot_seconds=0.2, fast=True, address_prefix=prefix, port=_free_port(),
                   indicator_map=indicator_map, policy=small_policy())
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def journal(demo: Demo) -> Iterator[SqliteJournal]:
    with SqliteJournal(demo.journal_path) as j:
        yield j


def demo_app(demo: Demo, journal: SqliteJournal, *, read_only: bool = False, refused: bool = False,
             **config: Any) -> CmspatchApp:
    """The app exactly as ``cmspatch demo`` builds it, on the test's small demo."""
    cfg = SessionConfig(operator=OPERATOR, devices=demo.inventory().devices, read_only=read_only,
                        verify=lambda: demo.verify(refused=refused),
                        new_engine=lambda package: demo.engine(package, journal, operator=OPERATOR), **config)
    return CmspatchApp(Session(cfg))


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], Any], *, what: str,
                   timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)


def records(journal: SqliteJournal, kind: EventKind) -> list[JournalRecord]:
    return [r for r in journal.records() if r.kind is kind]
