"""What a read-only survey (or verify run) may say about one monitor and one CVE, for every VEX format.

A survey installs nothing, so no document made from it says ``fixed``. Per monitor and CVE:

- ``known_affected``      the verdict is vulnerable (behaviour or binaries show the backdoor), or checks
                          for the CVE ran and could not show it absent (in scope and unproven: treated as
                          affected, as the regulators expect);
- ``under_investigation`` nothing could be checked for the CVE (unreachable, every check in error or
                          never run): nobody knows yet;
- ``known_not_affected``  every required check passed: the evidence shows the CVE's mechanism absent on
                          this unit (its firmware was fixed earlier); the impact statement says it was
                          shown by a read-only run, not by a fix this run installed.

CSAF and CycloneDX render the same statement (``known_affected`` = ``exploitable``, ``under_investigation``
= ``in_triage``, ``known_not_affected`` = ``not_affected``), so the two documents cannot classify a monitor
differently. Deliberately left out: severity (CISA's), and anything about patching (see the patch export).
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.domain.checks import CATALOGUE
from orchestrator.domain.findings import words
from orchestrator.exports.model import DeviceRow, ExportModel

KNOWN_AFFECTED = "known_affected"
UNDER_INVESTIGATION = "under_investigation"
KNOWN_NOT_AFFECTED = "known_not_affected"


@dataclass(frozen=True)
class SurveyStatement:
    status: str  # KNOWN_AFFECTED | UNDER_INVESTIGATION | KNOWN_NOT_AFFECTED
    text: str  # the action or impact statement, in words


def _checked(row: DeviceRow, cve: str) -> bool:
    """Some check that speaks to ``cve`` looked and saw something (passed or failed)."""
    return any(e.outcome in ("pass", "fail") and any(c.value == cve for c in CATALOGUE[e.check].cves)
               for e in row.evidence if e.check in CATALOGUE)


def statement(model: ExportModel, row: DeviceRow, cve: str) -> SurveyStatement:
    run = f"{model.campaign.mode} {model.campaign.id}"
    verdict = row.verdict(cve)
    reason = next((c.reason for c in row.cves if c.cve == cve), "")
    if verdict == "fixed":
        return SurveyStatement(KNOWN_NOT_AFFECTED, (
            f"Every required check for {cve} passed during the read-only {run}: the mechanism is absent on "
            f"this unit (firmware {row.firmware_after or row.firmware_before or 'unknown'}). This run "
            "installed nothing; it states what was observed, not a fix."))
    if verdict == "vulnerable":
        return SurveyStatement(KNOWN_AFFECTED, (
            f"Observed during {run}: {words(row.findings)}; {reason or 'the backdoor is present'}. "
            "Isolate the monitor or block 202.114.4.0/24, and install the manufacturer's FSCA package."))
    if not _checked(row, cve):
        why = "the monitor did not answer" if row.reachable is False else "no check for it could run"
        return SurveyStatement(UNDER_INVESTIGATION, (
            f"Nothing could be checked for {cve} during {run} ({why}); survey the monitor again before "
            "deciding. Until then keep it isolated from 202.114.4.0/24."))
    return SurveyStatement(KNOWN_AFFECTED, (
        f"In the FSCA scope and not shown free of {cve} during {run} ({reason or 'unproven'}); treat it as "
        "affected: isolate it or block 202.114.4.0/24, and install the manufacturer's FSCA package."))
