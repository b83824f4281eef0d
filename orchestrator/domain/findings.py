"""What a monitor was seen doing, in words a regulator reads: the behaviour behind a verdict.

A verdict says *whether* a CVE is there; an auditor, a survey report and an incident form ask *what was
observed*: patient data sent in clear, contact with 202.114.4.0/24, a mount of the hidden share, the
backdoor's strings in the binaries, binaries that match no known build, a UDP listener that answers.
``observed`` reads a monitor's evidence records (check, outcome, summary, SHA-256, time) and names each
behaviour once, with the evidence that shows it (the check, the time and the hash of the raw material),
so a document can cite the proof without copying it.

Only failed checks count: "inconclusive" or "error" shows nothing, and a passed check is not a finding.
Which findings are grounds for an incident report (tampering or compromise rather than the shipped
backdoor merely being present) is ``INCIDENT_GROUNDS``; a vitals mismatch and a "fixed" unit caught
reaching out are judged by ``domain.incident``, which knows the monitor's history.

Deliberately left out: no I/O, and no free text from the evidence beyond its one-line summary (the
exports' whitelisting applies before anything here is rendered).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Proof:
    check: str
    observed_at: str
    sha256: str
    summary: str

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check, "observed_at": self.observed_at, "sha256": self.sha256,
                "summary": self.summary}


@dataclass(frozen=True)
class Finding:
    kind: str  # one of BEHAVIOUR's keys
    text: str
    proofs: tuple[Proof, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "evidence": [p.to_dict() for p in self.proofs]}


# kind -> (the words, the failed checks that show it); order is the order documents list them in
BEHAVIOUR: dict[str, tuple[str, tuple[str, ...]]] = {
    "patient-data-leaving": ("patient data seen leaving in clear towards 202.114.4.0/24",
                             ("sinkhole-window",)),
    "indicator-contact": ("contact with the indicator range 202.114.4.0/24",
                          ("sinkhole-window", "sinkhole-nfs", "sinkhole-after-menu-update",
                           "sinkhole-after-boot-key", "indicator-socket", "indicator-route")),
    "share-mounted": ("a mount of the hidden NFS share (or an attempt at it)",
                      ("nfs-mount", "nfs-mount-after-menu-update", "nfs-mount-after-boot-key", "sinkhole-nfs",
                       "sinkhole-after-menu-update", "sinkhole-after-boot-key")),
    "backdoor-in-binaries": ("the backdoor's mount command or indicator addresses in the binaries",
                             ("monitor-mount-string", "update-mount-string", "monitor-indicator-address",
                              "update-indicator-address")),
    "unknown-binaries": ("binaries that differ from the package's manifest and from the known vulnerable "
                         "build", ("binary-hashes",)),
    "udp-listener": ("a UDP listener that answers (CVE-2024-12248)", ("udp-listener", "udp-probe")),
    "eth0-raised": ("a trigger brought a disabled eth0 up",
                    ("eth0-after-menu-update", "eth0-after-boot-key")),
}
# Behaviour that shows tampering or compromise, not merely the shipped backdoor being installed.
INCIDENT_GROUNDS = ("patient-data-leaving", "share-mounted", "unknown-binaries")


def _shows(kind: str, item: Mapping[str, Any]) -> bool:
    check, summary = str(item.get("check") or ""), str(item.get("summary") or "")
    raw = item.get("details")
    details: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    if kind == "patient-data-leaving":
        return bool(details.get("patient_record_seen")) or "patient data seen" in summary
    if kind == "share-mounted" and check.startswith("sinkhole"):
        return True  # the NFS windows count only portmapper/MOUNT/NFS contact
    if kind == "unknown-binaries":
        # "differs from the manifest" for a path that is not the known vulnerable build either
        parts = [p.strip() for p in summary.split(";")]
        vulnerable = {p.split(" is the known")[0] for p in parts if "known vulnerable build" in p}
        return any(p.endswith("differs from the manifest") and p.split(" differs")[0] not in vulnerable
                   for p in parts)
    return True


def observed(evidence: Iterable[Mapping[str, Any]]) -> tuple[Finding, ...]:
    """Each behaviour the failed checks show, once, with every piece of evidence that shows it."""
    failed = [e for e in evidence if e.get("outcome") == "fail"]
    found: list[Finding] = []
    for kind, (text, checks) in BEHAVIOUR.items():
        proofs: dict[tuple[str, str], Proof] = {}
        for item in failed:
            if item.get("check") in checks and _shows(kind, item):
                proof = Proof(str(item.get("check")), str(item.get("observed_at") or ""),
                              str(item.get("sha256") or ""), str(item.get("summary") or ""))
                proofs.setdefault((proof.check, proof.sha256), proof)
        if proofs:
            found.append(Finding(kind, text, tuple(sorted(proofs.values(), key=lambda p: p.observed_at))))
    return tuple(found)


def words(findings: Iterable[Finding]) -> str:
    """One line for a CSV cell or a table: the behaviours, ``; `` between them, or ``none observed``."""
    return "; ".join(f.text for f in findings) or "none observed"
