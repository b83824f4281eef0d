"""Asking a person to exercise a hidden-mount trigger, and waiting for the answer.

A real monitor has no service command that presses its menu "update" or its boot-time "C" key (the
emulator's ``cms-service trigger`` stands in for that in emulation). On a real unit, and on every hands-on
unit, a technician at the bed does it. The verification calls a ``Trigger`` like any other; this one

1. emits ``trigger-requested`` (the trigger, what to do in plain words, how long we wait), which the TUI
   shows on the monitor's screen and ``cmspatch run`` prints with the command that answers it;
2. waits until ``trigger-answered`` arrives, from the TUI in this process (``Engine.answer_trigger``) or
   from another terminal (``cmspatch confirm DEVICE --trigger NAME``, folded in from the journal), or
   until the timeout or an interruption of the campaign (a halt or an abort lets it finish: in flight);
3. returns if the technician did it, raises ``TriggerNotExercised`` otherwise, which the verification
   records as "not run" evidence, so the CVE it speaks to stays inconclusive, never fixed.

Nobody is asked unless the clinical gate said yes a moment before: ``verification.verify_device`` asks
``domain.clinical.may_disturb`` on the monitor's ``cms-status`` right before calling any trigger, so a
technician is never asked to press the boot key (a restart) on a monitor with a patient connected or an
alarm active, nor on one whose status cannot be read (a hands-on unit without a service session: the
person at the bed could see the patient, but the request would rest on nothing cmspatch read).

The verification's observation window starts before the request, so whatever the monitor does between
the key press and the answer is watched. Deliberately left out: any I/O of its own; the engine hands in
how to emit, how to look for answers written by other processes, and when to stop waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.domain import checks
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.errors import CmspatchError

POLL_SECONDS = 0.5  # how often answers written by another process are looked for


def trigger_answer_payload(trigger: str, by: str, done: bool, note: str) -> dict[str, object]:
    """The ``trigger-answered`` payload (read by ``TechnicianDesk.observe``), the same from the TUI and
    from ``cmspatch confirm --trigger``."""
    return {"trigger": trigger, "by": by, "done": done, "note": note}


class TriggerNotExercised(CmspatchError):
    """The technician could not do it, nobody answered in time, or the campaign stopped meanwhile."""


@dataclass(frozen=True)
class TriggerAnswer:
    done: bool
    by: str
    note: str = ""


class TechnicianDesk:
    """The pending requests of one engine and the answers that arrive for them (thread-safe)."""

    def __init__(self, *, emit: Callable[[str, EventKind, dict[str, object]], None],
                 fold_external: Callable[[], None], stopping: Callable[[], bool], timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._emit = emit
        self._fold_external = fold_external
        self._stopping = stopping
        self.timeout = timeout
        self._clock = clock
        self._cond = threading.Condition()
        self._waiting: set[tuple[str, str]] = set()
        self._answers: dict[tuple[str, str], TriggerAnswer] = {}
        self.answered_by: dict[tuple[str, str], str] = {}  # who exercised which trigger, for the journal

    def observe(self, record: JournalRecord) -> None:
        """Every record the engine applies passes here; answers to a pending request wake its waiter."""
        if record.kind is not EventKind.TRIGGER_ANSWERED or record.device is None:
            return
        key = (record.device, str(record.data.get("trigger", "")))
        with self._cond:
            if key in self._waiting:
                self._answers[key] = TriggerAnswer(bool(record.data.get("done", True)),
                                                   str(record.data.get("by", "")),
                                                   str(record.data.get("note", "")))
                self._cond.notify_all()

    def wake(self) -> None:
        """The campaign is being interrupted: let every waiter look at ``stopping`` now."""
        with self._cond:
            self._cond.notify_all()

    def trigger_for(self, device: str) -> Callable[[str], None]:
        def trigger(name: str) -> None:
            self.request(device, name)
        return trigger

    def request(self, device: str, name: str) -> TriggerAnswer:
        if name not in checks.TRIGGERS:
            raise ValueError(f"unknown trigger {name!r}")
        key = (device, name)
        with self._cond:
            self._waiting.add(key)
            self._answers.pop(key, None)
        try:
            self._emit(device, EventKind.TRIGGER_REQUESTED, {
                "trigger": name, "instructions": checks.TRIGGER_INSTRUCTIONS[name], "timeout": self.timeout})
            answer = self._wait(key)
        finally:
            with self._cond:
                self._waiting.discard(key)
                self._answers.pop(key, None)
        if not answer.done:
            raise TriggerNotExercised(
                f"technician {answer.by or '?'} could not exercise it" + (f": {answer.note}" if answer.note
                                                                          else ""),
                reason="trigger-declined")
        self.answered_by[key] = answer.by
        return answer

    def _wait(self, key: tuple[str, str]) -> TriggerAnswer:
        deadline = self._clock() + self.timeout
        while True:
            self._fold_external()  # an answer from `cmspatch confirm --trigger` in another terminal
            with self._cond:
                answer = self._answers.get(key)
                if answer is not None:
                    return answer
                if self._stopping():
                    raise TriggerNotExercised("the campaign was interrupted while waiting for the technician",
                                              reason="trigger-not-answered")
                left = deadline - self._clock()
                if left <= 0:
                    raise TriggerNotExercised(f"no technician answered within {self.timeout:g} s",
                                              reason="trigger-not-answered")
                self._cond.wait(min(POLL_SECONDS, left))
