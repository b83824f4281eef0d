"""Verification waits by the ``Clock`` port it is given (``ports.Clock``), never by ``time`` itself: with a
clock of its own a test verifies a monitor over a ten-minute window without waiting for it."""

from __future__ import annotations

import time

import pytest

from orchestrator.domain.checks import TRIGGERS
from orchestrator.verification import session_trigger, verify_device
from tests.unit import engine_rules_rig as rig
from tests.unit.engine_rules_rig import Worlds

package = pytest.fixture(scope="module")(rig.package_fixture)
world = pytest.fixture(rig.world_fixture)


class SteppedClock:
    """Time that passes only when slept through."""

    def __init__(self) -> None:
        self.at = 1000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += seconds


def test_the_pause_after_each_trigger_is_the_clocks_not_a_real_wait(world: Worlds) -> None:
    rules = world(1)
    device = rules.devices[0]
    session = rules.fleet.transport.open(device)
    clock = SteppedClock()
    started = time.monotonic()
    result = verify_device(session, device, expected_version=None, observer=None,
                           trigger=session_trigger(session), window=600.0, prober=rules.fleet.prober,
                           clock=clock)
    assert time.monotonic() - started < 5.0  # not the 600 s window
    assert result.triggers == TRIGGERS and clock.slept == [300.0, 300.0]  # each trigger's share of it
