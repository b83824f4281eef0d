"""Verdict values: per monitor and per CVE, fixed / still vulnerable / inconclusive, with evidence.

An unreachable monitor or a check that could not run is ``INCONCLUSIVE``, never ``FIXED``. Each verdict
says how it was established (``level``: device+network, bench, recorded; ``domain.evidence``). Evidence
never holds patient data in clear: only that a record was seen, its field names and a hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator.domain.evidence import DEFAULT_LEVEL, EvidenceLevel
from orchestrator.domain.indicators import Cve


class Verdict(StrEnum):
    FIXED = "fixed"
    VULNERABLE = "vulnerable"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Evidence:
    """What one check looked at, when, what it saw, and a SHA-256 of the raw material."""

    check: str  # check id from the catalogue, e.g. "binary-mount-string"
    source: str  # "device" | "network" | "pcap" | "technician"
    observed_at: str  # ISO-8601 UTC
    outcome: str  # "pass" | "fail" | "error" | "inconclusive" (only "pass" passes: domain.verdict_rules)
    summary: str  # one plain sentence
    sha256: str  # hash of the raw material (command output, decoded capture), never the material
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "source": self.source,
            "observed_at": self.observed_at,
            "outcome": self.outcome,
            "summary": self.summary,
            "sha256": self.sha256,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class CveVerdict:
    cve: Cve
    verdict: Verdict
    evidence: tuple[Evidence, ...] = ()
    reason: str = ""
    level: EvidenceLevel = DEFAULT_LEVEL  # how it was established (``domain.evidence``)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cve": self.cve.value,
            "verdict": self.verdict.value,
            "level": self.level.value,
            "reason": self.reason,
            "evidence": [e.to_dict() for e in self.evidence],
        }
