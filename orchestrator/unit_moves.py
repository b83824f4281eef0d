"""A hands-on unit's moves written outside a campaign run: ``cmspatch confirm`` and the bench station
(``cmspatch bench`` and the TUI's bench screen) write a monitor's state this way, the one writer of it
while they hold its claim or the campaign's lock.

Each move (``domain.handson``: the confirmation's, a bench session's) is checked by the lifecycle before
it is journalled, so an illegal one ends the caller's work as the bug it is (``IllegalTransition``)
instead of leaving the journal saying what no run could have done. Deliberately left out: which moves to
make (the domain's) and holding the lock or claim (the caller's).
"""

from __future__ import annotations

from orchestrator.domain.events import Event, EventKind
from orchestrator.domain.lifecycle import DeviceState, check_transition
from orchestrator.domain.status import DeviceStatus
from orchestrator.ports import Journal


def append_moves(journal: Journal, campaign: str, device: DeviceStatus,
                 moves: list[tuple[DeviceState, str]]) -> None:
    """Journal ``moves`` (to, reason) of ``device`` in order, each checked by the lifecycle first."""
    state = device.state
    for to, reason in moves:
        check_transition(device.name, state, to)
        journal.append(Event(campaign, EventKind.STATE_CHANGED, {
            "from": state.value, "to": to.value, "reason": reason, "wave": device.wave}, device.name))
        state = to
