"""Take, renew and release the lease on one monitor over its service session (``domain.lease``).

The flow calls ``acquire`` before it does anything to a monitor, ``renew`` between steps and ``release``
once the monitor is settled (patched, failed, skipped or deferred). An interrupted run keeps its lease:
the monitor is mid-flight, and the resumed campaign takes its own lease back.

What is journalled: a lease taken over from another campaign (whose, and when it ran out), a lease found
held by another campaign (the deferral names the holder), a lease lost between steps. Taking a free lease
and renewing it are not: they are the normal case, and the monitor's file says who holds it now.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

from orchestrator.domain.lease import (
    Lease,
    LeaseAction,
    decide,
    lease_path,
    new_lease,
    parse_result,
    read_command,
    release_command,
    renew_command,
    take_command,
    take_over_command,
)
from orchestrator.errors import CmspatchError, PermanentTransportError

_ROUNDS = 4  # a conflict means the lease changed under us: decide again from what the monitor says now


def controller_id() -> str:
    """Who drives: host and process, as the lease file and the journal name it."""
    return f"{socket.gethostname()}:{os.getpid()}"


class DeviceLease:
    def __init__(self, *, campaign: str, upload_dir: str, ttl: int,
                 run: Callable[[str], Any], log: Callable[[str, str, dict[str, Any]], object],
                 clock: Callable[[], float] = time.time, holder: str | None = None) -> None:
        self.campaign = campaign
        self.path = lease_path(upload_dir)
        self.ttl = ttl
        self._run = run  # one shell command on the monitor -> CommandResult
        self._log = log  # (level, message, lease data) -> a journal LOG record for this monitor
        self._clock = clock
        self.holder = holder or controller_id()
        self.held: Lease | None = None

    def acquire(self) -> Lease | None:
        """Hold this monitor's lease. Returns ``None`` when held, else the other campaign's live lease."""
        current: Lease | None = None  # optimistic: most monitors have no lease, and a refused take says whose
        for _ in range(_ROUNDS):
            now = self._clock()
            action = decide(current, self.campaign, now)
            if action is LeaseAction.HELD:
                assert current is not None
                return current
            mine = new_lease(self.campaign, self.holder, now, self.ttl)
            if action is LeaseAction.TAKE:
                result = self._ask(take_command(self.path, mine))
            elif action is LeaseAction.RENEW:
                assert current is not None
                result = self._ask(renew_command(self.path, current, mine))
            else:
                assert current is not None
                result = self._ask(take_over_command(self.path, current, mine))
                if result.ok:
                    self._log("warning", f"lease of {current.describe()} had run out: taken over",
                              {"action": "taken-over", "previous": current.to_dict(), "raw": current.raw})
            if result.ok:
                self.held = mine
                return None
            current = result.current if result.current is not None else self._ask(
                read_command(self.path)).current
        if current is None:  # nobody holds it and we could not write it (a full /data, no shell)
            raise PermanentTransportError(f"cannot write the lease file {self.path}", reason="lease-failed")
        return current  # still changing under us after several rounds: someone else is at it right now

    def renew(self) -> Lease | None:
        """Extend our lease; ``None`` when still ours, else the lease that replaced it (lost)."""
        if self.held is None:
            return None
        mine = new_lease(self.campaign, self.holder, self._clock(), self.ttl)
        result = self._ask(renew_command(self.path, self.held, mine))
        if result.ok:
            self.held = mine
            return None
        lost = result.current or Lease(campaign="(none)", holder="(nobody)", expires=0)
        self.held = None
        self._log("warning", f"lease lost between steps: the monitor now names {lost.describe()}",
                  {"action": "lost", "now": lost.to_dict()})
        return lost

    def release(self) -> None:
        """Give the monitor back. Best effort: an unreachable monitor keeps the lease until it runs out."""
        if self.held is None:
            return
        held, self.held = self.held, None
        try:
            self._ask(release_command(self.path, held))
        except CmspatchError as exc:
            self._log("warning", f"lease not released ({exc.message}); it runs out by itself",
                      {"action": "not-released", "lease": held.to_dict()})

    def _ask(self, command: str) -> Any:
        result = self._run(command)
        return parse_result(result.text if result.ok else "")
