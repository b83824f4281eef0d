"""Incident report drafts: what a person files with the regulator when evidence shows tampering.

A draft is pre-filled from what cmspatch knows (the monitor's manufacturer, model, serial, firmware,
facility, ward; the dates; what was observed, with the journal record's hash as its evidence; the
actions taken; the reporter) and left for a person to complete and file (Italy: Ministero della Salute,
art. 10 D.Lgs. 137/2022; Germany: BfArM; US: FDA MedWatch 3500A). It never holds patient data: a vitals
finding carries the *simulator's* settings and what the monitor displayed for them.

This round writes drafts for vitals findings (``domain.vitals``); the other grounds the issue lists
(patient data seen leaving, a mount of the share, unknown binaries, a fixed unit reaching out) and the
regulators' own field names are left for the record of issue 13.

Deliberately left out: no I/O; the CLI writes the draft (new file) and journals that it did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.domain.devices import Device

MANUFACTURER = {"MN-120": "Epsimed (manufactured by Contec Medical Systems)"}


def vitals_incident_draft(device: Device, check: Mapping[str, Any], *, detected_at: str, reporter: str,
                          simulator: str, evidence: Mapping[str, Any], facility: str | None = None
                          ) -> dict[str, Any]:
    mismatched = [r for r in check["readings"] if r["within"] is False]
    observed = "; ".join(
        f"{r['label']}: simulator set to {r['set_to']:g} {r['unit']}, monitor displayed {r['displayed']:g} "
        f"(tolerance +-{r['tolerance']:g})" for r in mismatched)
    return {
        "draft": True,
        "status": "draft - to be completed, reviewed and filed by the facility",
        "kind": "suspected tampering: displayed vital signs do not match a patient simulator",
        "device": {
            "manufacturer": MANUFACTURER.get(device.model, "Contec Medical Systems"),
            "model": device.model, "serial": device.serial, "asset_tag": device.asset_tag,
            "firmware": device.firmware, "inventory_name": device.name,
        },
        "facility": facility or device.site, "site": device.site, "ward": device.ward, "bed": device.bed,
        "detected_at": detected_at,
        "observed": observed,
        "simulator": simulator,
        "readings": list(check["readings"]),
        "evidence": dict(evidence),
        "actions_taken": ["vitals check recorded in the cmspatch journal",
                          "to do: take the monitor out of clinical use until it is examined"],
        "reporter": reporter,
        "patient_data": "none: the values are a patient simulator's settings",
        "where_to_file": ["Italy: Ministero della Salute, serious incident report (art. 10 D.Lgs. 137/2022)",
                          "Germany: BfArM, incident report (Meldung eines Vorkommnisses)",
                          "United States: FDA MedWatch Form 3500A (or 3500 for voluntary reports)"],
    }
