"""A journal record in words: the one describer every view uses (CLI progress, the TUI's log pane and
monitor timeline, the exports' timelines).

Why one: four renderers of the same records had drifted (a state change read "failed (reason)" on the
CLI, "✖ failed: reason" in the TUI log, "deployed -> failed" in an export), and a new event kind had to
be taught to each. Here each kind is worded once; a view picks which records it shows (``notable``) and
what it puts in front of the words (a time, a mark), nothing more.

Two audiences, because not every reader may see every field:

- ``Audience.OPERATOR``: the person running the campaign, on their own screen. They read the free text
  the engine recorded (an error message, a technician's note, a trigger's instructions, a log message):
  it is what they need to act, and it never leaves the room.
- ``Audience.EXPORT``: a document that leaves the hospital (JSON, HTML, CSAF...). Only named fields that
  hold codes, identifiers, versions and the names of those who acted are used; free text is left out,
  since it could hold a secret or patient data and cannot be cleaned reliably (``exports.sanitize``, which
  the exports still run over every line as the last gate, says why).

Deliberately left out: times, device names in front of device lines, colours and layout (the views'
business), and any reading of state beyond the record itself (the phase is ``domain.projection``'s).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.lifecycle import DeviceState


class Audience(StrEnum):
    OPERATOR = "operator"
    EXPORT = "export"


# Words and symbols, never colour alone (NO_COLOR makes a terminal monochrome).
STATE_WORDS: dict[str, str] = {
    "inventory": "· inventory",
    DeviceState.PENDING.value: "○ pending",
    DeviceState.DEFERRED.value: "‖ deferred",
    DeviceState.UPLOADING.value: "↑ uploading",
    DeviceState.UPLOADED.value: "↑ uploaded",
    DeviceState.INSTALLING.value: "» installing",
    DeviceState.REBOOTING.value: "↻ rebooting",
    DeviceState.VERIFYING.value: "… verifying",
    DeviceState.AWAITING_TECHNICIAN.value: "☐ technician",
    DeviceState.AWAITING_BENCH.value: "☐ bench",
    DeviceState.PATCHED.value: "✔ patched",
    DeviceState.FAILED.value: "✖ failed",
    DeviceState.SKIPPED.value: "⊘ skipped",
}
VERDICT_WORDS: dict[str, str] = {
    "fixed": "✔ fixed",
    "vulnerable": "✖ VULN",
    "inconclusive": "? unsure",
    "": "·",
}
# A state change a person following the campaign must see: where a monitor ended, or waits for someone.
_NOTABLE_STATES = frozenset({DeviceState.PATCHED.value, DeviceState.FAILED.value, DeviceState.DEFERRED.value,
                             DeviceState.SKIPPED.value, DeviceState.AWAITING_TECHNICIAN.value,
                             DeviceState.AWAITING_BENCH.value})
_CAMPAIGN_KINDS = frozenset({
    EventKind.CAMPAIGN_CREATED, EventKind.WAVE_STARTED, EventKind.WAVE_FINISHED, EventKind.GATE_WAITING,
    EventKind.GATE_APPROVED, EventKind.CAMPAIGN_PAUSED, EventKind.CAMPAIGN_RESUMED,
    EventKind.CAMPAIGN_HALTED, EventKind.CAMPAIGN_ABORTED, EventKind.CAMPAIGN_FINISHED,
    EventKind.UNATTRIBUTED_CONTACT, EventKind.LOG,
})
_PERSON_KINDS = frozenset({EventKind.WORK_ORDER, EventKind.TECHNICIAN_CONFIRMED, EventKind.TRIGGER_REQUESTED,
                           EventKind.TRIGGER_ANSWERED})


def state_words(state: str) -> str:
    return STATE_WORDS.get(state, state)


def verdict_words(verdict: str) -> str:
    return VERDICT_WORDS.get(verdict, verdict)


def counts_words(counts: Mapping[str, Any]) -> str:
    """``{"patched": 3, "failed": 1}`` as "✖ failed 1, ✔ patched 3" (zeros left out)."""
    return ", ".join(f"{state_words(str(k))} {v}" for k, v in sorted(counts.items()) if v) or "nothing"


def notable(record: JournalRecord) -> bool:
    """Worth a line in a progress log (the CLI's stderr, the TUI's log pane): campaign-level records, where
    a monitor ended or waits, retries, what a person is asked or did, and a CVE found still open. The
    steps in between are on the monitor's own timeline."""
    d, kind = record.data, record.kind
    if record.device is None:
        return kind in _CAMPAIGN_KINDS
    if kind is EventKind.STATE_CHANGED:
        return str(d.get("to")) in _NOTABLE_STATES
    if kind is EventKind.ATTEMPT:
        return d.get("outcome") == "retry"
    if kind is EventKind.VERDICT:
        return d.get("verdict") == "vulnerable"
    return kind in _PERSON_KINDS


def headline(record: JournalRecord, audience: Audience = Audience.OPERATOR) -> str | None:
    """The progress-log line for a notable record (the monitor named first), else None."""
    if not notable(record):
        return None
    if record.kind is EventKind.STATE_CHANGED:  # where it got to: the step it left is on its timeline
        d = record.data
        to = state_words(str(d.get("to"))) if audience is Audience.OPERATOR else d.get("to")
        text = f"{to}: {d.get('reason')}" if d.get("reason") else str(to)
    else:
        text = describe(record, audience)
    return f"{record.device} {text}" if record.device else text


def describe(record: JournalRecord, audience: Audience = Audience.OPERATOR) -> str:
    """One line for one record, in words. Every kind has one; an unknown one reads as its kind."""
    word = _WORDS.get(record.kind)
    return word(record.data, audience is Audience.OPERATOR) if word is not None else record.kind.value


def _wave(d: Mapping[str, Any]) -> int:
    """Waves are numbered from 1 for people (the journal counts from 0)."""
    try:
        return int(d.get("wave", 0)) + 1
    except (TypeError, ValueError):
        return 0


def _free(text: object, operator: bool, sep: str = ": ") -> str:
    """A free-text field: shown to the operator, never exported."""
    return f"{sep}{text}" if operator and text else ""


def _state_changed(d: Mapping[str, Any], operator: bool) -> str:
    attempt = f" attempt {d['attempt']}" if d.get("attempt") else ""
    why = f": {d.get('reason')}" if d.get("reason") else ""  # a reason code, not free text
    to = state_words(str(d.get("to"))) if operator else d.get("to")  # symbols are for terminals
    return f"{d.get('from')} -> {to}{attempt}{why}"


def _attempt(d: Mapping[str, Any], operator: bool) -> str:
    code = f" [{d.get('error_reason')}]" if d.get("error_reason") else ""
    verb = "failed, retrying" if d.get("outcome") == "retry" else str(d.get("outcome"))
    return f"{d.get('step')} attempt {d.get('attempt')} {verb}{code}{_free(d.get('error'), operator)}"


def _check(d: Mapping[str, Any], operator: bool) -> str:
    raw = d.get("evidence")
    ev: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    return f"check {ev.get('check')} {ev.get('outcome')}: {ev.get('summary')}"


def _verdict(d: Mapping[str, Any], operator: bool) -> str:
    level = f" [{d.get('level')}]" if d.get("level") else ""
    why = f": {d.get('reason')}" if d.get("reason") else ""
    verdict = verdict_words(str(d.get("verdict"))) if operator else d.get("verdict")
    return f"{d.get('cve')} {verdict}{level}{why}"


def _confirmed(d: Mapping[str, Any], operator: bool) -> str:
    version = f"; version read on the About screen: {d.get('version')}" if d.get("version") else ""
    return f"confirmed by technician {d.get('technician')}{version}{_free(d.get('note'), operator, ' - ')}"


def _requested(d: Mapping[str, Any], operator: bool) -> str:
    try:
        within = f" within {float(d.get('timeout') or 0):g} s"
    except (TypeError, ValueError):
        within = ""
    return f"TECHNICIAN NEEDED ({d.get('trigger')}){within}{_free(d.get('instructions'), operator)}"


def _answered(d: Mapping[str, Any], operator: bool) -> str:
    did = "exercised" if d.get("done") else "could not be exercised"
    return f"{d.get('trigger')} {did} by {d.get('by')}{_free(d.get('note'), operator, ' - ')}"


def _survey(d: Mapping[str, Any], operator: bool) -> str:
    affected = "affected" if d.get("affected") else "not affected"
    status = f" ({d.get('status')})" if d.get("status") else ""
    reasons = ", ".join(str(r) for r in d.get("reasons") or ())
    return f"survey: {affected}{status}{_free(reasons, operator)}"


def _created(d: Mapping[str, Any], operator: bool) -> str:
    by = f" by {d.get('operator')}" if d.get("operator") else ""
    return (f"campaign created{by}: {len(d.get('devices') or {})} monitors in {len(d.get('waves') or ())} "
            f"wave(s), package {d.get('package_name')} -> {d.get('target_version')}")


def _halted(d: Mapping[str, Any], operator: bool) -> str:
    return (f"HALTED: {d.get('reason')} [{d.get('rule')}: {d.get('failed')} failed of "
            f"{d.get('executed')} executed]")


def _bench_step(d: Mapping[str, Any], operator: bool) -> str:
    did = "done" if d.get("done") else "not done"
    return f"bench step {d.get('step')} {did} by {d.get('by')}{_free(d.get('note'), operator, ' - ')}"


def _contact(d: Mapping[str, Any], operator: bool) -> str:
    return f"{d.get('total')} unattributed contact(s) while {d.get('watched')} was verified"


_WORDS: dict[EventKind, Callable[[Mapping[str, Any], bool], str]] = {
    EventKind.STATE_CHANGED: _state_changed,
    EventKind.ATTEMPT: _attempt,
    EventKind.FIRMWARE_READ: lambda d, _: f"firmware {d.get('when')}: {d.get('version')}",
    EventKind.BOOT_IDENTITY: lambda d, _: f"boot identity read ({d.get('when')})",
    EventKind.CHECK_RESULT: _check,
    EventKind.VERDICT: _verdict,
    EventKind.WORK_ORDER: lambda d, _: "work order issued to the technician (hands-on)",
    EventKind.TECHNICIAN_CONFIRMED: _confirmed,
    EventKind.TRIGGER_EXERCISED: lambda d, _: f"trigger {d.get('trigger')} exercised by {d.get('by')}",
    EventKind.TRIGGER_REQUESTED: _requested,
    EventKind.TRIGGER_ANSWERED: _answered,
    EventKind.SURVEY: _survey,
    EventKind.UNATTRIBUTED_CONTACT: _contact,
    EventKind.CAMPAIGN_CREATED: _created,
    EventKind.WAVE_STARTED: lambda d, _: f"wave {_wave(d)} started ({len(d.get('devices') or ())} monitors)",
    EventKind.WAVE_FINISHED: lambda d, _: f"wave {_wave(d)} finished: {counts_words(d.get('counts') or {})}",
    EventKind.GATE_WAITING: lambda d, _: f"wave {_wave(d)} waits for approval",
    EventKind.GATE_APPROVED: lambda d, _: f"wave {_wave(d)} approved by {d.get('approver')}",
    EventKind.CAMPAIGN_PAUSED: lambda d, _: f"paused by {d.get('by')}",
    EventKind.CAMPAIGN_RESUMED: lambda d, _: f"resumed by {d.get('by')}",
    EventKind.CAMPAIGN_HALTED: _halted,
    EventKind.CAMPAIGN_ABORTED: lambda d, op: f"ABORTED by {d.get('by')}{_free(d.get('reason'), op)}",
    EventKind.CAMPAIGN_FINISHED: lambda d, _: f"campaign finished: {counts_words(d.get('counts') or {})}",
    EventKind.SURVEY_STARTED: lambda d, _: f"{d.get('mode')} started by {d.get('operator')}: "
                                           f"{len(d.get('devices') or {})} monitors",
    EventKind.VITALS_CHECK: lambda d, _: f"vitals check {d.get('outcome')} by {d.get('technician')}",
    EventKind.CONTAINMENT: lambda d, _: f"containment {d.get('state')} ({d.get('how')}) by {d.get('by')}",
    EventKind.BENCH_STARTED: lambda d, _: f"bench session started by {d.get('technician')}",
    EventKind.BENCH_STEP: _bench_step,
    EventKind.BENCH_FINISHED: lambda d, _: f"bench finished: {d.get('outcome')} [{d.get('level')}]",
    EventKind.LOG: lambda d, op: f"{d.get('level', 'info')}{_free(d.get('message'), op)}",
}
