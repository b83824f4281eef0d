"""The hands-on path's rules: a unit without service access, installed from USB by a named technician.

Such a unit goes PENDING -> AWAITING_TECHNICIAN (work order issued) -> AWAITING_BENCH (a named technician
confirmed the install, with the version they read on the About screen) -> its bench session verifies it
(``cmspatch bench DEVICE``) -> PATCHED, FAILED, or AWAITING_BENCH again when it proved nothing
(``bench_moves``). Waiting is not an outcome: a unit waiting for its technician or its bench is neither
failed nor counted against a wave's failure budget, and a campaign run does not drive it (the bench
session does).

The name is a person's, typed by them or for them: nothing here (or in the CLI and the TUI) fills it in
from the login account, since "root" is not who installed the fix. The version they read is journalled
as they typed it and shown as theirs ("read by technician NAME"), never as a reading cmspatch made.

Deliberately left out: no I/O, and the bench session's own rules (``domain.bench``, ``bench_session``).
"""

from __future__ import annotations

from typing import Any

from orchestrator.domain.lifecycle import DeviceState
from orchestrator.errors import UsageError

# States in which a hands-on unit waits for a person; the campaign run leaves it alone.
WAITING: frozenset[DeviceState] = frozenset({DeviceState.AWAITING_TECHNICIAN, DeviceState.AWAITING_BENCH})

CONFIRMED = "technician-confirmed"  # AWAITING_TECHNICIAN -> AWAITING_BENCH
BENCH_AGAIN = "bench-session-needed"  # VERIFYING -> AWAITING_BENCH (a verification that did not end)


def technician_name(given: str | None) -> str:
    """The technician's name as given, trimmed; refused when empty (the journal records a person)."""
    name = (given or "").strip()
    if not name:
        raise UsageError("name the technician who did the work (--technician NAME): the journal and the "
                         "exports record a person", reason="no-technician")
    return name


def confirmation_payload(technician: str, note: str = "", version: str | None = None) -> dict[str, Any]:
    """The ``technician-confirmed`` payload: who installed it, their note, and the version they read."""
    data: dict[str, Any] = {"technician": technician_name(technician), "note": note}
    if version and version.strip():
        data["version"] = version.strip()
    return data


def confirmation_move(state: DeviceState, technician: str | None) -> tuple[DeviceState, str] | None:
    """The move a confirmed hands-on unit makes now, or None (not confirmed yet, or already moved)."""
    if state is DeviceState.AWAITING_TECHNICIAN and technician:
        return DeviceState.AWAITING_BENCH, CONFIRMED
    if state is DeviceState.VERIFYING:
        return DeviceState.AWAITING_BENCH, BENCH_AGAIN
    return None


# A bench session's outcome (``domain.bench.bench_outcome``) -> the unit's state and the reason recorded.
BENCH_ENDS: dict[str, tuple[DeviceState, str]] = {
    "patched": (DeviceState.PATCHED, "verified-at-bench"),
    "vulnerable": (DeviceState.FAILED, "backdoor-still-present"),
    "inconclusive": (DeviceState.AWAITING_BENCH, "bench-inconclusive"),  # not failed: bench it again
}


def bench_moves(state: DeviceState, outcome: str) -> list[tuple[DeviceState, str]]:
    """The moves a finished bench session makes from ``state``: a unit still awaiting its technician
    (benched without ``cmspatch confirm``) first awaits its bench, then takes the session's outcome."""
    if outcome not in BENCH_ENDS:
        raise ValueError(f"unknown bench outcome {outcome!r}")
    moves = [(DeviceState.AWAITING_BENCH, "benched")] if state is DeviceState.AWAITING_TECHNICIAN else []
    return [*moves, BENCH_ENDS[outcome]]


def next_step(name: str, state: DeviceState, *, technician: str | None = None, journal: str = "J") -> str:
    """What a person does next for a hands-on unit waiting in ``state`` (a command line), or ''."""
    if state is DeviceState.AWAITING_TECHNICIAN and not technician:
        return (f"install from the work order, then: cmspatch confirm {name} --technician NAME "
                f"--version VERSION-ON-ABOUT-SCREEN --journal {journal}")
    if state is DeviceState.AWAITING_TECHNICIAN or state is DeviceState.AWAITING_BENCH:
        return (f"connect it to the bench switch, then: cmspatch bench {name} --technician NAME "
                f"--journal {journal}")
    return ""
