from __future__ import annotations

import itertools

import pytest

from orchestrator.domain.lifecycle import DeviceState, check_transition
from orchestrator.errors import IllegalTransition


def test_installing_before_uploading_is_an_illegal_transition() -> None:
    with pytest.raises(IllegalTransition):
        check_transition("bed-1", DeviceState.PENDING, DeviceState.INSTALLING)


def test_a_patched_monitor_never_moves_again() -> None:
    for target in DeviceState:
        with pytest.raises(IllegalTransition):
            check_transition("bed-1", DeviceState.PATCHED, target)


def test_the_ssh_happy_path_is_legal() -> None:
    path = [DeviceState.PENDING, DeviceState.UPLOADING, DeviceState.UPLOADED, DeviceState.INSTALLING,
            DeviceState.REBOOTING, DeviceState.VERIFYING, DeviceState.PATCHED]
    for a, b in itertools.pairwise(path):
        check_transition("bed-1", a, b)


def test_a_monitor_can_be_deferred_until_something_irreversible_happened() -> None:
    for before in (DeviceState.PENDING, DeviceState.UPLOADING, DeviceState.UPLOADED):
        check_transition("bed-1", before, DeviceState.DEFERRED)
    for after in (DeviceState.INSTALLING, DeviceState.REBOOTING, DeviceState.VERIFYING):
        with pytest.raises(IllegalTransition):
            check_transition("bed-1", after, DeviceState.DEFERRED)
