"""The bench verification station's rules (pure): when a hands-on unit is proven fixed from the network.

A unit without service access cannot be checked on the device. After its USB install a technician puts it
on an isolated bench switch where the sinkhole listens as the indicator addresses (and a capture of the
bench port may be read), and cmspatch watches while the technician works through ``STEPS``: confirm the
unit is on the bench and off any patient, attach a patient simulator (so the CVE-2025-0683 leak would have
something to send), press the menu update, press the boot key. The verdicts are at level ``bench``
(``domain.evidence``), decided by ``verdict_rules.decide`` on the table ``BENCH_REQUIRED``:

| CVE            | FIXED at bench needs all of these present and passed                              |
|----------------|-----------------------------------------------------------------------------------|
| CVE-2025-0626  | bench-watch, bench-patient-simulator, sinkhole-after-menu-update, sinkhole-nfs    |
| CVE-2025-1204  | bench-watch, bench-patient-simulator, sinkhole-after-boot-key, sinkhole-nfs       |
| CVE-2025-0683  | bench-watch, bench-patient-simulator, sinkhole-window                             |
| CVE-2024-12248 | bench-watch, udp-probe (only when the device profile names the port to probe)     |
| (a fix that removes networking: the three above also need bench-silence)          |

- ``bench-watch``: an observer covered the whole session (a live sinkhole running from its start to its
  end, or a capture whose packets bracket it) and the session lasted the observation window.
- A trigger counts only when the technician said it was done; its window runs from the request to the
  end of the watch that followed. Contacts from the unit in it are decisive failures (VULNERABLE);
  contacts that fit no unit make it inconclusive, as on the network path (``domain.attribution``).
- ``bench-silence`` (a fix that removes networking): only a capture of the bench port sees *everything*
  the unit sends; the sinkhole sees only the indicator addresses. Silence is recorded as such; a packet is
  a non-decisive failure (the fix is not what it says: inconclusive, not vulnerable, unless it reached
  the indicator addresses); no capture leaves it unproven.
- The UDP probe and the trigger requests wait for the technician's ``on-bench`` confirmation: the bench
  has no status command to read, and a unit still at a bed must not be restarted or probed
  (``may_act``, which asks the one clinical gate: ``clinical.may_disturb_on_bench``). Without a UDP
  port named by the profile CVE-2024-12248 stays inconclusive.

The session ends ``patched`` when the three network CVEs are fixed and CVE-2024-12248 is fixed or
inconclusive only because no probe port is named; ``vulnerable`` on any vulnerable verdict; else
``inconclusive``. Deliberately left out: I/O, clocks, who the unit is on the network (the caller splits
contacts into the unit's and unattributed ones with ``domain.attribution``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator.domain import checks, clinical
from orchestrator.domain.checks import ObservationLike, ProbeResult
from orchestrator.domain.evidence import EvidenceLevel
from orchestrator.domain.indicators import ALL_CVES, Cve
from orchestrator.domain.verdict_rules import decide
from orchestrator.domain.verdicts import CveVerdict, Evidence, Verdict

STEPS: tuple[str, ...] = ("on-bench", "patient-simulator", "menu-update", "boot-key")
STEP_INSTRUCTIONS: dict[str, str] = {
    "on-bench": "Connect the unit to the bench switch port and switch it on. Confirm it is off the ward and "
                "connected to no patient.",
    "patient-simulator": "Attach the patient simulator to the unit's ECG, SpO2 and NIBP inputs and check the "
                         "unit shows its readings.",
    "menu-update": checks.TRIGGER_INSTRUCTIONS["menu-update"],
    "boot-key": checks.TRIGGER_INSTRUCTIONS["boot-key"],
}
# With a capture of the bench port: the last prompt, once the window is over. A capture file can be read
# whole only once it is stopped, and it must outlast the session (its last packet after the session's end)
# for ``bench-watch`` and ``bench-silence`` to count it.
CAPTURE_STEP = "stop-capture"
CAPTURE_INSTRUCTIONS = ("Stop the capture of the bench port now (it must have been running since before the "
                        "session started) and save it where cmspatch reads it.")
BENCH_READY_STATES = frozenset({"awaiting-technician", "awaiting-bench"})
NO_UDP_PORT = "the device profile names no UDP port to probe"
_NETWORK_CVES = (Cve.MONITOR_NFS, Cve.UPDATE_NFS, Cve.PHI_LEAK)

BENCH_REQUIRED: dict[Cve, tuple[str, ...]] = {
    Cve.MONITOR_NFS: ("bench-watch", "bench-patient-simulator", "sinkhole-after-menu-update", "sinkhole-nfs"),
    Cve.UPDATE_NFS: ("bench-watch", "bench-patient-simulator", "sinkhole-after-boot-key", "sinkhole-nfs"),
    Cve.PHI_LEAK: ("bench-watch", "bench-patient-simulator", "sinkhole-window"),
    Cve.UDP_RCE: ("bench-watch", "udp-probe"),
}


def required(networking_removed: bool) -> dict[Cve, tuple[str, ...]]:
    if not networking_removed:
        return dict(BENCH_REQUIRED)
    return {cve: (*names, "bench-silence") if cve in _NETWORK_CVES else names
            for cve, names in BENCH_REQUIRED.items()}


@dataclass(frozen=True)
class StepAnswer:
    step: str
    done: bool
    by: str
    note: str = ""
    asked_at: str = ""
    answered_at: str = ""


@dataclass(frozen=True)
class Coverage:
    """What one observer covered: ``since``/``until`` (ISO-8601; "" when it saw nothing to date it by)."""

    observer: str  # "sinkhole 127.114.4" | "bench sinkhole" | "pcap FILE"
    since: str
    until: str

    def covers(self, start: str, end: str) -> bool:
        return bool(self.since and self.until) and self.since <= start and self.until >= end


@dataclass(frozen=True)
class TriggerWindow:
    since: str
    until: str
    seconds: float


@dataclass(frozen=True)
class BenchFacts:
    """Everything a bench session saw, handed to ``bench_evidence``."""

    started: str
    ended: str
    window: float  # the observation window the session had to last
    watched: float  # seconds it did last
    source: str  # the unit as the evidence names it (its bench address, or "the unit")
    coverage: tuple[Coverage, ...]
    steps: Mapping[str, StepAnswer]
    trigger_windows: Mapping[str, TriggerWindow]
    contacts: tuple[ObservationLike, ...]  # the unit's contacts with the indicator range
    strangers: tuple[ObservationLike, ...] = ()  # contacts with the range that fit no unit
    networking_removed: bool = False
    sent_anything: int | None = None  # packets from the unit on the bench port (a capture); None: unseen
    silence_observer: str = ""  # the capture that counted them
    probe: tuple[ProbeResult, ...] | None = None  # None: no port named by the profile, or not run
    probe_not_run: str = NO_UDP_PORT
    probe_address: str = ""


def may_act(steps: Mapping[str, StepAnswer]) -> str | None:
    """None when the clinical gate allows disturbing the unit (a trigger request, the UDP probe): the
    technician's ``on-bench`` answer, read by ``clinical.may_disturb_on_bench``; else why not."""
    answer = steps.get("on-bench")
    gate = clinical.may_disturb_on_bench(
        None if answer is None else clinical.BenchConfirmation(answer.by, answer.done, answer.note))
    return None if gate.allowed else gate.why_not


def may_bench(state: str, delivery: str) -> str | None:
    """None when a campaign's monitor may have a bench session now; else why not (in words)."""
    if delivery != "manual":
        return (f"it is on the {delivery} path; the bench is for hands-on units (cmspatch verify proves "
                "the others)")
    if state not in BENCH_READY_STATES:
        return f"it is {state}, not waiting for its bench session"
    return None


def _in(o: ObservationLike, since: str, until: str) -> bool:
    return since <= o.at <= until


def bench_evidence(f: BenchFacts) -> tuple[Evidence, ...]:
    at = f.ended
    out: list[Evidence] = []
    covering = [c.observer for c in f.coverage if c.covers(f.started, f.ended)]
    if not covering:
        shown = "; ".join(f"{c.observer} {c.since or '?'}..{c.until or '?'}" for c in f.coverage) or "none"
        out.append(checks.not_run("bench-watch", at, f"no observer covered the whole session "
                                  f"{f.started}..{f.ended} (observers: {shown})"))
    elif f.watched < f.window:
        out.append(checks.not_run("bench-watch", at,
                                  f"watched {f.watched:.1f} s of the {f.window:g} s window"))
    else:
        out.append(_pass("bench-watch", at, f"watched {f.watched:.1f} s by {', '.join(covering)} "
                         f"({f.started}..{f.ended})", {"observers": covering, "watched": round(f.watched, 3),
                                                        "since": f.started, "until": f.ended}))
    sim = f.steps.get("patient-simulator")
    if sim is not None and sim.done:
        out.append(_pass("bench-patient-simulator", at, f"patient simulator attached, confirmed by {sim.by}",
                         {"by": sim.by, "at": sim.answered_at}))
    else:
        why = f"{sim.by} could not attach it: {sim.note}" if sim is not None else "never confirmed"
        out.append(checks.not_run("bench-patient-simulator", at, f"no patient simulator attached ({why})"))
    out += _trigger_evidence(f)
    outside = [o for o in f.contacts if not any(_in(o, w.since, w.until) for w in f.trigger_windows.values())]
    strangers_out = [o for o in f.strangers
                     if not any(_in(o, w.since, w.until) for w in f.trigger_windows.values())]
    for check, seen, odd in (("sinkhole-window", f.contacts, f.strangers), ("sinkhole-nfs", outside,
                                                                             strangers_out)):
        out.append(checks.network_window(check, list(seen), at, since=f.started, until=f.ended,
                                         source=f.source, watched=f.watched, unattributed=list(odd)))
    silence = _silence(f, at)
    if silence is not None:
        out.append(silence)
    if f.probe is None:
        out.append(checks.not_run("udp-probe", at, f.probe_not_run))
    else:
        out.append(checks.udp_probe(f.probe, at, f.probe_address or f.source))
    return tuple(out)


def _trigger_evidence(f: BenchFacts) -> list[Evidence]:
    out: list[Evidence] = []
    for name in checks.TRIGGERS:
        check = f"sinkhole-after-{name}"
        answer, window = f.steps.get(name), f.trigger_windows.get(name)
        if answer is None or not answer.done or window is None:
            why = (f"{answer.by} could not: {answer.note}" if answer is not None and not answer.done
                   else "the technician was not asked" if answer is None else "no watch followed it")
            out.append(checks.not_run(check, f.ended, f"trigger {name} not exercised ({why})"))
            continue
        seen = [o for o in f.contacts if _in(o, window.since, window.until)]
        odd = [o for o in f.strangers if _in(o, window.since, window.until)]
        ev = checks.network_window(check, seen, window.until, since=window.since, until=window.until,
                                   source=f.source, watched=window.seconds, unattributed=odd)
        out.append(Evidence(ev.check, ev.source, ev.observed_at, ev.outcome, ev.summary, ev.sha256,
                            {**ev.details, "pressed_by": answer.by}))
    return out


def _silence(f: BenchFacts, at: str) -> Evidence | None:
    if f.sent_anything is None:
        if not f.networking_removed:
            return None
        return checks.not_run("bench-silence", at, "only a capture of the bench port shows that nothing at "
                              "all was sent (the sinkhole sees the indicator addresses only): give --pcap")
    details = {"packets_from_unit": f.sent_anything, "observer": f.silence_observer,
               "networking_removed": f.networking_removed}
    if f.sent_anything == 0 and not f.contacts:
        return _pass("bench-silence", at, f"the unit sent nothing at all on the bench port between "
                     f"{f.started} and {f.ended} ({f.silence_observer})", details)
    summary = (f"the unit sent {f.sent_anything} packet(s) on the bench port ({f.silence_observer})"
               + ("; the fix is said to remove networking" if f.networking_removed else ""))
    return Evidence("bench-silence", "pcap", at, "fail", summary, checks.digest("bench-silence", summary),
                    {"cves": [c.value for c in checks.CATALOGUE["bench-silence"].cves], **details})


def _pass(check: str, at: str, summary: str, details: Mapping[str, object]) -> Evidence:
    spec = checks.CATALOGUE[check]
    return Evidence(check, spec.source, at, "pass", summary, checks.digest(check, summary),
                    {"cves": [c.value for c in spec.cves], **details})


def bench_verdicts(evidence: Sequence[Evidence], *, networking_removed: bool) -> tuple[CveVerdict, ...]:
    table = required(networking_removed)
    return tuple(decide(cve, evidence, required=table, level=EvidenceLevel.BENCH) for cve in ALL_CVES)


def _udp_unprovable(verdict: CveVerdict) -> bool:
    """CVE-2024-12248 inconclusive only because the profile names no port to probe."""
    probes = [e for e in verdict.evidence if e.check == "udp-probe"]
    others = [e for e in verdict.evidence if e.check != "udp-probe"]
    return (verdict.verdict is Verdict.INCONCLUSIVE and bool(probes)
            and all(e.details.get("error") == NO_UDP_PORT for e in probes)
            and all(e.outcome == "pass" for e in others) and bool(others))


def bench_outcome(verdicts: Sequence[CveVerdict]) -> tuple[str, str]:
    """("patched" | "vulnerable" | "inconclusive", why in words): the module doc's rule."""
    vulnerable = [v for v in verdicts if v.verdict is Verdict.VULNERABLE]
    if vulnerable:
        return "vulnerable", "; ".join(f"{v.cve.value}: {v.reason}" for v in vulnerable)
    by_cve = {v.cve: v for v in verdicts}
    open_ = [c for c in _NETWORK_CVES if c not in by_cve or by_cve[c].verdict is not Verdict.FIXED]
    udp = by_cve.get(Cve.UDP_RCE)
    if open_ or udp is None:
        return "inconclusive", "; ".join(f"{c.value}: {by_cve[c].reason if c in by_cve else 'not decided'}"
                                         for c in open_) or "CVE-2024-12248 not decided"
    if udp.verdict is Verdict.FIXED:
        return "patched", "all four CVEs fixed at bench level"
    if _udp_unprovable(udp):
        return "patched", (f"CVE-2025-0626, CVE-2025-1204 and CVE-2025-0683 fixed at bench level; "
                           f"CVE-2024-12248 inconclusive ({NO_UDP_PORT})")
    return "inconclusive", f"CVE-2024-12248: {udp.reason}"

