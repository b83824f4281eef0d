"""The per-monitor state machine.

Every transition a monitor goes through is explicit, persisted as an event, and checked here: a step
out of order raises ``IllegalTransition`` (a programming error, never a silent state), the way TUF
refuses to load metadata out of order.
"""

from __future__ import annotations

from enum import StrEnum

from orchestrator.errors import IllegalTransition


class DeviceState(StrEnum):
    PENDING = "pending"
    DEFERRED = "deferred"  # patient connected, alarm, or outside maintenance window: re-checked later
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    INSTALLING = "installing"
    REBOOTING = "rebooting"
    VERIFYING = "verifying"
    AWAITING_TECHNICIAN = "awaiting-technician"  # manual path: work order issued
    # Manual path: a named technician confirmed the USB install; the unit waits for its bench session
    # (``cmspatch bench DEVICE``). Not an outcome: never failed, never counted against a failure budget.
    AWAITING_BENCH = "awaiting-bench"
    PATCHED = "patched"
    FAILED = "failed"
    SKIPPED = "skipped"  # not started because the campaign halted/aborted, or already patched


TERMINAL: frozenset[DeviceState] = frozenset({DeviceState.PATCHED, DeviceState.FAILED, DeviceState.SKIPPED})

_S = DeviceState
ALLOWED: dict[DeviceState, frozenset[DeviceState]] = {
    _S.PENDING: frozenset(
        {_S.DEFERRED, _S.UPLOADING, _S.AWAITING_TECHNICIAN, _S.VERIFYING, _S.FAILED, _S.SKIPPED}
    ),
    _S.DEFERRED: frozenset({_S.PENDING, _S.DEFERRED, _S.UPLOADING, _S.AWAITING_TECHNICIAN, _S.SKIPPED}),
    # UPLOADING -> DEFERRED: a resumed upload finds a patient connected since; nothing irreversible yet.
    _S.UPLOADING: frozenset({_S.UPLOADING, _S.UPLOADED, _S.FAILED, _S.DEFERRED}),
    # UPLOADED -> DEFERRED: a patient connected while the file was travelling; nothing irreversible yet.
    _S.UPLOADED: frozenset({_S.INSTALLING, _S.FAILED, _S.UPLOADING, _S.DEFERRED}),
    _S.INSTALLING: frozenset({_S.REBOOTING, _S.FAILED}),
    _S.REBOOTING: frozenset({_S.VERIFYING, _S.FAILED}),
    _S.AWAITING_TECHNICIAN: frozenset({_S.AWAITING_BENCH, _S.FAILED, _S.SKIPPED}),
    # The bench session verifies (VERIFYING) and ends the unit; VERIFYING -> AWAITING_BENCH: a hands-on
    # unit whose verification did not end (an interrupted or inconclusive bench session, a journal
    # written before the bench existed) waits for the bench again: nothing else can observe it.
    # AWAITING_BENCH -> AWAITING_BENCH: a bench session that proved nothing either way; the next one may.
    _S.AWAITING_BENCH: frozenset({_S.AWAITING_BENCH, _S.VERIFYING, _S.PATCHED, _S.FAILED}),
    _S.VERIFYING: frozenset({_S.PATCHED, _S.FAILED, _S.AWAITING_BENCH}),
    _S.PATCHED: frozenset(),
    _S.FAILED: frozenset(),
    _S.SKIPPED: frozenset(),
}


def check_transition(device: str, current: DeviceState, target: DeviceState) -> None:
    """Raise ``IllegalTransition`` unless ``current -> target`` is a step the lifecycle allows."""
    if target not in ALLOWED[current]:
        raise IllegalTransition(f"{device}: {current.value} -> {target.value} is not a legal step")
