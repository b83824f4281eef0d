"""From evidence to a verdict per CVE (pure). A new version string proves nothing; evidence does.

Each CVE needs every one of its *required* checks present and passed to be ``FIXED``; any *decisive*
failure among the checks tied to it (``checks.CATALOGUE``) makes it ``VULNERABLE``; everything else
(a check missing, not run, in error, "inconclusive" such as a network window with a contact that fits
no monitor (``domain.attribution``), or a non-decisive failure such as the wrong version) leaves it
``INCONCLUSIVE``. Only the outcome "pass" counts as passed. Order of precedence: VULNERABLE >
INCONCLUSIVE > FIXED. So an unreachable monitor is inconclusive, never fixed, but a monitor seen leaking
by the sinkhole is vulnerable even without SSH.

| CVE            | FIXED needs all of these present and passed  | VULNERABLE if any decisive check fails |
|----------------|----------------------------------------------|----------------------------------------|
| CVE-2025-0626  | monitor-mount-string, nfs-mount,             | those, nfs-mount-after-menu-update,    |
| monitor, menu  | indicator-socket, sinkhole-after-menu-update | eth0-after-menu-update, sinkhole-nfs,  |
| update         | (trigger exercised, window clean)            | indicator-route                        |
| CVE-2025-1204  | update-mount-string, nfs-mount,              | those, nfs-mount-after-boot-key,       |
| update, C key  | indicator-socket, sinkhole-after-boot-key    | eth0-after-boot-key, sinkhole-nfs,     |
| at boot        | (trigger exercised, window clean)            | indicator-route                        |
| CVE-2025-0683  | monitor-indicator-address,                   | any of those (telemetry, HL7 or any    |
| PHI leak       | update-indicator-address, indicator-route,   | other contact with 202.114.4.0/24)     |
|                | indicator-socket, sinkhole-window            |                                        |
| CVE-2024-12248 | udp-listener, udp-probe                      | a listener, or an answer to the probe  |

Non-decisive failures that keep a CVE at INCONCLUSIVE: ``firmware-version`` (not the package's target:
all four CVEs), ``binary-hashes`` (differs from the manifest: both NFS CVEs).

Caveat written into the reason: CVE-2025-0683 FIXED with no patient connected (``patient-status``) rests
on weaker network evidence, because the backdoor only sends patient data once a patient is connected.
Deliberately left out: weighing evidence by age or source; the caller decides what it hands in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from orchestrator.domain.checks import CATALOGUE, cves_of
from orchestrator.domain.evidence import DEFAULT_LEVEL, EvidenceLevel
from orchestrator.domain.indicators import ALL_CVES, MODELS, Cve
from orchestrator.domain.verdicts import CveVerdict, Evidence, Verdict

REQUIRED: dict[Cve, tuple[str, ...]] = {
    Cve.MONITOR_NFS: ("monitor-mount-string", "nfs-mount", "indicator-socket", "sinkhole-after-menu-update"),
    Cve.UPDATE_NFS: ("update-mount-string", "nfs-mount", "indicator-socket", "sinkhole-after-boot-key"),
    Cve.PHI_LEAK: ("monitor-indicator-address", "update-indicator-address", "indicator-route",
                   "indicator-socket", "sinkhole-window"),
    Cve.UDP_RCE: ("udp-listener", "udp-probe"),
}


def decide(cve: Cve, evidence: Iterable[Evidence], *, required: Mapping[Cve, Sequence[str]] = REQUIRED,
           level: EvidenceLevel = DEFAULT_LEVEL) -> CveVerdict:
    """``required``: the checks FIXED needs per CVE (the bench has its own table, ``domain.bench``);
    ``level``: how the evidence was established, carried by the verdict (``domain.evidence``)."""
    verdict = _decide(cve, tuple(evidence), required)
    return replace(verdict, level=level) if level is not verdict.level else verdict


def _decide(cve: Cve, evidence: Iterable[Evidence], required: Mapping[Cve, Sequence[str]]) -> CveVerdict:
    relevant = tuple(e for e in evidence if cve in cves_of(e))
    decisive = [e for e in relevant if e.outcome == "fail" and CATALOGUE[e.check].decisive]
    if decisive:
        reason = "; ".join(dict.fromkeys(e.summary for e in decisive))
        return CveVerdict(cve, Verdict.VULNERABLE, relevant, reason)
    by_check: dict[str, list[Evidence]] = {}
    for e in relevant:
        by_check.setdefault(e.check, []).append(e)
    not_checked: dict[str, list[str]] = {}  # why -> checks, so one cause is said once
    unproven: dict[str, list[str]] = {}  # "inconclusive": looked, saw what proves nothing either way
    for check in required[cve]:
        seen = by_check.get(check, [])
        # Only "pass" passes: "error", "inconclusive" or any outcome this rule does not know proves nothing.
        open_ = next((e for e in seen if e.outcome not in ("pass", "fail")), None)
        if not seen:
            not_checked.setdefault("never looked at", []).append(check)
        elif open_ is not None:
            why = str(open_.details.get("error") or open_.summary)
            (unproven if open_.outcome == "inconclusive" else not_checked).setdefault(why, []).append(check)
    problems = [f"not checked ({why}): {', '.join(names)}" for why, names in not_checked.items()]
    problems += [f"inconclusive ({why}): {', '.join(names)}" for why, names in unproven.items()]
    problems += [e.summary for e in relevant if e.outcome == "fail"]
    if problems:
        return CveVerdict(cve, Verdict.INCONCLUSIVE, relevant, "; ".join(dict.fromkeys(problems)))
    reason = "all required checks passed: " + ", ".join(required[cve])
    patient = _patient_connected(relevant)
    if cve is Cve.PHI_LEAK and patient is not True:
        who = "no patient was connected" if patient is False else "whether a patient was connected is unknown"
        reason += (f"; {who} during the window, so network silence is weaker evidence "
                   "(the backdoor sends patient data once a patient is connected)")
    return CveVerdict(cve, Verdict.FIXED, relevant, reason)


def _patient_connected(evidence: Sequence[Evidence]) -> bool | None:
    states = [e.details.get("patient_connected") for e in evidence if e.check == "patient-status"]
    # At the bench a patient simulator stands in for the patient: the leak has something to send.
    states += [True for e in evidence if e.check == "bench-patient-simulator" and e.outcome == "pass"]
    if True in states:
        return True
    return False if False in states else None


def decide_all(evidence: Iterable[Evidence]) -> tuple[CveVerdict, ...]:
    items = tuple(evidence)
    return tuple(decide(cve, items) for cve in ALL_CVES)


# --- fleet survey classification -----------------------------------------------------------------

@dataclass(frozen=True)
class SurveyStatus:
    """Where one monitor stands in a survey: ``status`` is one of the four words below."""

    status: str  # "vulnerable" (seen) | "unproven" (in scope, not proven fixed) | "fixed" | "unknown"
    affected: bool
    reasons: tuple[str, ...]


def survey_status(model: str, firmware: str | None, verdicts: Sequence[CveVerdict],
                  known_affected_versions: Iterable[str]) -> SurveyStatus:
    """Affected = in the FSCA's model scope and not proven fixed. Three of the four CVEs cover every
    firmware version, so a version absent from CISA's list does not clear a monitor; it only adds a reason.
    """
    reasons: list[str] = []
    vulnerable = [v for v in verdicts if v.verdict is Verdict.VULNERABLE]
    in_scope = model in MODELS
    reasons.append(f"model {model} is {'in' if in_scope else 'not in'} the FSCA scope")
    if firmware is not None and firmware in set(known_affected_versions):
        reasons.append(f"firmware {firmware} is named affected by CISA")
    for v in vulnerable:
        reasons.append(f"{v.cve.value} observed: {v.reason}")
    if vulnerable:
        return SurveyStatus("vulnerable", True, tuple(reasons))
    if verdicts and all(v.verdict is Verdict.FIXED for v in verdicts):
        reasons.append("all four CVEs verified fixed")
        return SurveyStatus("fixed", False, tuple(reasons))
    open_cves = [v.cve.value for v in verdicts if v.verdict is Verdict.INCONCLUSIVE]
    if open_cves:
        reasons.append("not proven fixed: " + ", ".join(open_cves) + " inconclusive")
    if not in_scope:
        return SurveyStatus("unknown", False, tuple(reasons))
    return SurveyStatus("unproven", True, tuple(reasons))
