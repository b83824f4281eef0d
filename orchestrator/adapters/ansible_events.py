"""ansible-runner / AWX job events, read as typed values. Pure: dicts in, values out, no I/O.

Both the live Ansible transport (events from ansible-runner's event handler) and ``cmspatch import``
(events from a job's ``job_events/*.json``) read events through here, so the two can never disagree
about what a task result means.

The playbooks in ``playbooks/`` name their tasks ``cmspatch:<step>`` and report reasons as
``cmspatch-reason=<code>`` (failures) and ``cmspatch-outcome=<outcome> reason=<code>`` (per host);
those names are the contract between the playbooks and this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import PermanentTransportError, TransientTransportError, TransportError

RESULT_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}
# Tasks that expect the monitor to vanish (it reboots): their unreachable is not the host's end.
IGNORES_UNREACHABLE = frozenset({"cmspatch:reboot", "cmspatch:wait-shell"})

_REASON = re.compile(r"cmspatch-reason=([a-z0-9-]+)")
_OUTCOME = re.compile(r"cmspatch-outcome=([a-z-]+)(?: reason=([a-z0-9-]*))?")


@dataclass(frozen=True)
class TaskResult:
    """One task's result on one host."""

    host: str
    task: str
    action: str
    status: str  # ok | failed | unreachable | skipped
    rc: int | None
    stdout: str
    stderr: str
    message: str
    ignored: bool = False
    at: str = ""
    uuid: str = ""
    counter: int = 0

    @property
    def cmspatch_reason(self) -> str | None:
        found = _REASON.search(self.message) or _REASON.search(self.stderr)
        return found.group(1) if found else None

    @property
    def outcome(self) -> tuple[str, str] | None:
        """``(outcome, reason)`` when this is a ``cmspatch:outcome`` report, else None."""
        found = _OUTCOME.search(self.message)
        return (found.group(1), found.group(2) or "") if found else None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(value)


def task_result(event: dict[str, Any]) -> TaskResult | None:
    """The result an event reports, or None for events that are not a per-host task result."""
    status = RESULT_EVENTS.get(str(event.get("event", "")))
    data = event.get("event_data") or {}
    if status is None or not isinstance(data, dict) or not data.get("host"):
        return None
    res = data.get("res") or {}
    if not isinstance(res, dict):
        res = {}
    task = _text(data.get("task"))
    rc = res.get("rc")
    message = res.get("msg", "")
    ignored = bool(data.get("ignore_errors")) or (status == "unreachable" and task in IGNORES_UNREACHABLE)
    if status == "failed" and res.get("failed_when_result") is False:
        ignored = True
    return TaskResult(
        host=_text(data["host"]),
        task=task,
        action=_text(data.get("resolved_action") or data.get("task_action")),
        status=status,
        rc=int(rc) if isinstance(rc, int) and not isinstance(rc, bool) else None,
        stdout=_text(res.get("stdout")),
        stderr=_text(res.get("stderr")),
        message=message if isinstance(message, str) else _text(message),
        ignored=ignored,
        at=_text(event.get("created")),
        uuid=_text(event.get("uuid")),
        counter=int(event.get("counter") or 0),
    )


def classify_unreachable(message: str, *, host: str) -> TransportError:
    """An UNREACHABLE result as our typed error: what OpenSSH said decides transient or permanent."""
    text = message.lower()
    if "remote host identification has changed" in text or "host key verification failed" in text:
        if "no " in text and "host key is known" in text:
            return PermanentTransportError(f"{host}: no pinned host key for this monitor: {message}",
                                           reason="host-key-unknown", host=host)
        return PermanentTransportError(f"{host}: host key does not match the pinned key: {message}",
                                       reason="host-key-mismatch", host=host)
    if "permission denied" in text:
        return PermanentTransportError(f"{host}: login refused: {message}", reason="auth-refused", host=host)
    if "no space left" in text:
        return PermanentTransportError(f"{host}: no space left on the monitor: {message}", reason="disk-full",
                                       host=host)
    if "connection refused" in text:
        reason = "connection-refused"
    elif "timed out" in text or "timeout" in text:
        reason = "timeout"
    elif "closed" in text or "reset" in text or "broken pipe" in text:
        reason = "connection-dropped"
    else:
        reason = "unreachable"
    return TransientTransportError(f"{host}: unreachable via Ansible: {message}", reason=reason, host=host)
