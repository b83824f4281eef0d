"""Incident report drafts: what a person files with the regulator when evidence shows tampering.

A draft is pre-filled from what cmspatch knows (the monitor's manufacturer, model, serial, firmware,
facility, ward; the dates; what was observed, with the journal record's hash as its evidence; the
actions taken; the reporter) and left for a person to complete and file (Italy: Ministero della Salute,
art. 10 D.Lgs. 137/2022; Germany: BfArM; US: FDA MedWatch 3500A). It never holds patient data: a vitals
finding carries the *simulator's* settings and what the monitor displayed for them.

``grounds`` and ``incident_draft`` read the whole record of a monitor: patient data seen leaving, a mount
of the hidden share, binaries that match no known build (``domain.findings.INCIDENT_GROUNDS``), a unit
some run showed fixed caught reaching out later, and vitals mismatches. ``cmspatch incident`` and
``cmspatch vitals`` (at once, for a mismatch) write the same draft.

Deliberately left out: no I/O (the CLIs write each draft as new files); nothing journals that a draft was
written, so ``incident --all`` drafts every monitor with grounds, filed or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.domain.findings import INCIDENT_GROUNDS, Finding, Proof

MANUFACTURER = {"MN-120": "Epsimed (manufactured by Contec Medical Systems)"}


# --- drafts from the whole record of one monitor (``cmspatch incident``) ------------------------------

@dataclass(frozen=True)
class Sighting:
    """One run's view of the monitor: a patch campaign's outcome or a survey's word, what it saw, when."""

    run: str
    mode: str  # "patch" | "survey" | "verify"
    at: str  # when the run's verdicts were reached (or it started)
    standing: str  # patch: the export outcome (patched ...); survey/verify: vulnerable | unproven | fixed ...
    firmware: str
    findings: tuple[Finding, ...] = ()

    @property
    def fixed(self) -> bool:
        """The run showed the monitor fixed: patched and proven, or a read-only run with every CVE fixed."""
        return self.standing in ("patched", "fixed")


@dataclass(frozen=True)
class Ground:
    """One reason the evidence gives to report the monitor, with the proof of it."""

    kind: str  # a findings.INCIDENT_GROUNDS kind, "fixed-unit-reaching-out" or "vitals-mismatch"
    text: str
    run: str
    at: str
    proofs: tuple[Proof, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "run": self.run, "at": self.at,
                "evidence": [p.to_dict() for p in self.proofs]}


def grounds(sightings: Sequence[Sighting], vitals: Sequence[Mapping[str, Any]] = ()) -> tuple[Ground, ...]:
    """Every reason to report: tampering/compromise behaviour a run saw, a unit some run showed fixed seen
    reaching out in a later run, and a vitals check whose displayed values did not match the simulator."""
    found: list[Ground] = []
    ordered = sorted(sightings, key=lambda s: s.at)
    for s in ordered:
        found += [Ground(f.kind, f.text, s.run, s.at, f.proofs)
                  for f in s.findings if f.kind in INCIDENT_GROUNDS]
    shown = next((s for s in ordered if s.fixed), None)  # the first run that showed it fixed
    later = next(((s, f) for s in ordered if shown is not None and s.at > shown.at
                  for f in s.findings if f.kind == "indicator-contact"), None)
    if shown is not None and later is not None:
        run, contact = later
        found.append(Ground(
            "fixed-unit-reaching-out",
            f"shown fixed by {shown.mode} {shown.run} ({shown.at}), then seen in {run.mode} {run.run} "
            f"({run.at}): {contact.text}", run.run, run.at, contact.proofs))
    for check in vitals:
        if check.get("outcome") == "tampering-suspected":
            simulator = f"; simulator {check['simulator']}" if check.get("simulator") else ""
            found.append(Ground(
                "vitals-mismatch",
                "displayed vital signs differ from a patient simulator's settings: " + _readings(check),
                str(check.get("run") or "vitals check"), str(check.get("at") or ""),
                (Proof("vitals-check", str(check.get("at") or ""), str(check.get("hash") or ""),
                       f"journal record {check.get('seq')}{simulator}"),)))
    return tuple(found)


def _readings(check: Mapping[str, Any]) -> str:
    """The readings beyond tolerance in words: the simulator's settings and what the monitor displayed."""
    out = []
    for r in check.get("readings") or ():
        if isinstance(r, Mapping) and r.get("within") is False:
            out.append(f"{r.get('label')}: simulator set to {r.get('set_to'):g} {r.get('unit')}, monitor "
                       f"displayed {r.get('displayed'):g} (tolerance +-{r.get('tolerance'):g})")
    return "; ".join(out) or ", ".join(str(m) for m in check.get("mismatches") or ())


# Where each draft field goes on the forms. FDA 3500A block letters and numbers follow 21 CFR 803.32 (user
# facility reports) and FDA's 3500A instructions; the Italian and German forms' own field names could not
# be confirmed here, so those are named by section in English.
FORM_FIELDS: dict[str, dict[str, str]] = {
    "device.brand": {"fda_3500a": "D1 Brand name"},
    "device.common_name": {"fda_3500a": "D2 Common device name"},
    "device.manufacturer": {"fda_3500a": "D3 Manufacturer name, city and state"},
    "device.identifiers": {"fda_3500a": "D4 Model #, Serial #, other identifying number"},
    "event.date": {"fda_3500a": "B3 Date of event"},
    "event.report_date": {"fda_3500a": "B4 Date of this report"},
    "event.description": {"fda_3500a": "B5 Describe event or problem"},
    "event.tests": {"fda_3500a": "B6 Relevant tests/laboratory data, including dates"},
    "reporter": {"fda_3500a": "E1 Initial reporter: name, address, phone"},
    "facility": {"fda_3500a": "F3 User facility name and address"},
    "facility.aware": {"fda_3500a": "F6 Date user facility became aware of event"},
    "facility.location": {"fda_3500a": "F12 Location where event occurred"},
}
WHERE_TO_FILE = (
    "Italy: Ministero della Salute, serious incident report by the health-care operator through the "
    "national device-vigilance system (art. 10 D.Lgs. 137/2022); field names not confirmed by cmspatch",
    "Germany: BfArM, report of a suspected serious incident by the user/operator (MPAMIV section 3); field "
    "names not confirmed by cmspatch",
    "United States: FDA MedWatch Form 3500A (mandatory, user facility) or 3500 (voluntary)",
)


def incident_draft(identity: Mapping[str, Any], found: Sequence[Ground], *, actions: Sequence[str],
                   reporter: str, facility: str, generated_at: str, journal_head: str,
                   journal_records: int) -> dict[str, Any]:
    """The pre-filled draft: identity, dates, what was observed with its evidence hashes, actions, reporter.
    ``identity`` holds manufacturer, model, serial, asset_tag, firmware, site, ward, bed, name."""
    first = min((g.at for g in found if g.at), default="")
    model = str(identity.get("model") or "")
    serial = str(identity.get("serial") or "")
    description = " ".join(f"{i}. {g.text} ({g.kind}, seen {g.at} in {g.run})." for i, g in
                           enumerate(found, 1))
    tests = "; ".join(f"{p.check} at {p.observed_at} (evidence SHA-256 {p.sha256})" for g in found
                      for p in g.proofs)
    return {
        "draft": True,
        "status": "draft - to be completed, reviewed and filed by the facility",
        "kind": "suspected tampering or compromise of a networked patient monitor (CISA ICSMA-25-030-01)",
        "generated_at": generated_at,
        "device": {
            "brand": model, "common_name": "patient monitor",
            "manufacturer": MANUFACTURER.get(model, "Contec Medical Systems Co., Ltd., Qinhuangdao, China"),
            "model": model, "serial": serial, "asset_tag": identity.get("asset_tag") or "",
            "firmware": identity.get("firmware") or "", "inventory_name": identity.get("name") or "",
        },
        "facility": {"name": facility, "site": identity.get("site") or "", "ward": identity.get("ward") or "",
                     "bed": identity.get("bed") or "", "became_aware": first},
        "event": {"date": first, "report_date": generated_at[:10], "description": description,
                  "tests": tests},
        "observed": [g.to_dict() for g in found],
        "actions_taken": list(actions),
        "reporter": reporter,
        "patient": "not given: cmspatch records no patient data; complete this section from the clinical "
                   "record only if a patient was harmed or put at risk",
        "journal": {"head": journal_head, "records": journal_records},
        "form_fields": FORM_FIELDS,
        "where_to_file": list(WHERE_TO_FILE),
    }
