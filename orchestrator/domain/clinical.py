"""The one clinical gate: may this monitor be disturbed right now?

Every action that can disturb a monitor (upload, install, reboot, a trigger such as the menu update or
the boot key, a UDP probe) asks ``may_disturb`` first, on every path: campaign, survey, verify, the
Ansible playbooks (through the ``cmspatch_clinical`` filter plugin, which calls this function), the demo.
There is no second parser of ``cms-status``: a second copy is how a survey once pressed the boot key on a
monitor with a patient connected.

A hands-on unit on the bench has no service shell and so no status command to read: the bench station
(``bench_session``, behind ``cmspatch bench`` and the TUI's bench screen) asks ``may_disturb_on_bench``
instead, before each trigger request and the UDP probe. Its only ground is the technician's recorded
confirmation that the unit is on the bench switch, off the ward and off any patient; without that
confirmation (not given, refused, or given by nobody named) the answer is *do not disturb*, as here.

The grammar (``DEFAULT_GRAMMAR``, the shipped profile's; a device profile names its own keys and values,
``StatusGrammar``):
``key=value`` lines; ``patient`` is ``connected`` or ``none`` and ``alarm`` is ``active`` or ``none``
(case-insensitive, surrounding blanks ignored). Lines that are not ``key=value`` are ignored.
Anything else means *do not disturb*: a missing key, an unknown value, the same key twice with two
values, a command that failed or printed nothing. Not knowing is not permission to restart a monitor.

Deliberately left out: no I/O and no clock. The caller runs the status command and passes its output
(``None`` when the command could not run or exited non-zero).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# The command whose output the gate reads is the device profile's (``domain.profile``: ``clinical_status``).


class Deferral(StrEnum):
    PATIENT_CONNECTED = "patient-connected"
    ALARM_ACTIVE = "alarm-active"
    OUTSIDE_WINDOW = "outside-maintenance-window"
    STATUS_UNKNOWN = "clinical-status-unknown"
    NOT_ON_BENCH = "not-confirmed-on-bench"


@dataclass(frozen=True)
class ClinicalStatus:
    patient: bool
    alarm: bool


@dataclass(frozen=True)
class ClinicalGate:
    """The gate's answer: ``allowed`` or the reason it is not (a ``Deferral``), with what was read."""

    allowed: bool
    reason: Deferral | None
    status: ClinicalStatus | None
    detail: str = ""  # more words for ``why_not`` (the bench: what the technician said)

    @property
    def why_not(self) -> str:
        """Plain words for evidence and logs ("patient connected"); empty when allowed."""
        if self.reason is None:
            return ""
        return f"{_WORDS[self.reason]}: {self.detail}" if self.detail else _WORDS[self.reason]


_WORDS = {
    Deferral.PATIENT_CONNECTED: "patient connected",
    Deferral.ALARM_ACTIVE: "alarm active",
    Deferral.OUTSIDE_WINDOW: "outside the maintenance window",
    Deferral.STATUS_UNKNOWN: "clinical status unknown",
    Deferral.NOT_ON_BENCH: "the technician has not confirmed the unit is on the bench, off any patient",
}

_KV = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(\S*)\s*$")


@dataclass(frozen=True)
class StatusKey:
    """One key of the status output: the value that means clear, and those that mean busy (lowercase)."""

    key: str
    clear: str
    busy: tuple[str, ...]


@dataclass(frozen=True)
class StatusGrammar:
    """What a device profile's status command prints (``domain.profile``); the default is the shipped
    ``cms-status``'s. Any value outside ``clear`` and ``busy`` reads as unknown: do not disturb."""

    patient: StatusKey
    alarm: StatusKey


DEFAULT_GRAMMAR = StatusGrammar(patient=StatusKey("patient", "none", ("connected",)),
                                alarm=StatusKey("alarm", "none", ("active",)))


def parse_cms_status(text: str | None, grammar: StatusGrammar = DEFAULT_GRAMMAR) -> ClinicalStatus | None:
    """Status output -> status; None when it does not say, unambiguously, both things."""
    if text is None:
        return None
    seen: dict[str, set[str]] = {}
    for line in text.splitlines():
        if (m := _KV.match(line)) is not None:
            seen.setdefault(m.group(1).lower(), set()).add(m.group(2).lower())
    busy: dict[str, bool] = {}
    for role, spec in (("patient", grammar.patient), ("alarm", grammar.alarm)):
        got = seen.get(spec.key, set())
        if len(got) != 1 or (value := next(iter(got))) not in (spec.clear, *spec.busy):
            return None
        busy[role] = value != spec.clear
    return ClinicalStatus(patient=busy["patient"], alarm=busy["alarm"])


def clinical_deferral(status: ClinicalStatus | None) -> Deferral | None:
    if status is None:
        return Deferral.STATUS_UNKNOWN
    if status.patient:
        return Deferral.PATIENT_CONNECTED
    if status.alarm:
        return Deferral.ALARM_ACTIVE
    return None


def may_disturb(status_output: str | None, grammar: StatusGrammar = DEFAULT_GRAMMAR) -> ClinicalGate:
    """The gate. ``status_output`` is what the status command printed, or None when it failed;
    ``grammar`` is the monitor's profile's (default: the shipped ``cms-status``)."""
    status = parse_cms_status(status_output, grammar)
    reason = clinical_deferral(status)
    return ClinicalGate(allowed=reason is None, reason=reason, status=status)


@dataclass(frozen=True)
class BenchConfirmation:
    """What the technician recorded at the bench's first step: ``done`` (the unit is on the bench switch,
    off the ward and off any patient) or not, by whom, with their note."""

    by: str
    done: bool
    note: str = ""


def may_disturb_on_bench(confirmation: BenchConfirmation | None) -> ClinicalGate:
    """The gate for a unit with no service shell (module doc): allowed only on a named technician's
    recorded confirmation; ``None`` (not asked or not answered yet) is refused like a refusal."""
    if confirmation is None:
        return ClinicalGate(False, Deferral.NOT_ON_BENCH, None, "not confirmed yet")
    if not confirmation.by.strip():
        return ClinicalGate(False, Deferral.NOT_ON_BENCH, None, "the confirmation names no technician")
    if not confirmation.done:
        said = f" ({confirmation.note})" if confirmation.note else ""
        return ClinicalGate(False, Deferral.NOT_ON_BENCH, None,
                            f"{confirmation.by} could not put it on the bench{said}")
    return ClinicalGate(True, None, None)
