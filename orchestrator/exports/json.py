"""JSON with everything an auditor may ask for: campaign, waves, every monitor with its verdicts, the
evidence of each check (what was looked at, when, outcome, SHA-256 of the raw material), a per-monitor
event timeline (each entry with the journal record's seq and hash, so it can be found in the journal),
and the chain head.

Stable shape: ``format`` and ``format_version`` name it, and the versioned JSON Schema
``schemas/cmspatch-export-2.json`` states it; every document is validated against it before it is
returned (refused otherwise, like the CSAF export). Within a version keys are only ever added; version 2
numbers waves from 1 like every other view (version 1 numbered them from 0). Output is
deterministic (sorted keys, the model's own generation time), so two exports of the same journal are
byte-identical and a signature over one is a signature over the other.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.errors import ExportError
from orchestrator.exports.model import DeviceRow, ExportModel, Outcome

FORMAT = "cmspatch-compliance-export"
FORMAT_VERSION = 2


def _device(row: DeviceRow) -> dict[str, Any]:
    return {
        "device": row.name,
        "asset_tag": row.asset_tag,
        "serial": row.serial,
        "site": row.site,
        "ward": row.ward,
        "bed": row.bed,
        "model": row.model,
        "delivery": row.delivery,
        "wave": None if row.wave is None else row.wave + 1,  # numbered from 1, as people count them
        "state": row.state,
        "reason": row.reason,
        "outcome": row.outcome.value,
        "firmware_before": row.firmware_before,
        "firmware_after": row.firmware_after,
        "firmware_after_by": row.firmware_after_by or None,  # "technician NAME": read on the About screen
        "evidence_level": row.evidence_level or None,  # the weakest level among its verdicts
        "attempts": row.attempts,
        "verified_at": row.verified_at,
        "approver": row.approver,
        "technician": row.technician,
        "verdicts": {
            c.cve: {"verdict": c.verdict or "not-verified", "reason": c.reason, "at": c.at,
                    "level": c.level or None} for c in row.cves
        },
        "evidence": [e.to_dict() for e in row.evidence],
        "timeline": [t.to_dict() for t in row.timeline],
        "containment": row.containment,  # who confirmed how it is kept from 202.114.4.0/24, or None
        "vitals_checks": list(row.vitals),  # against a patient simulator: simulator values, not patient data
        # what the failed checks show the monitor doing, each with the evidence (check, time, hash)
        "observed": [f.to_dict() for f in row.findings],
        "survey_status": row.survey_status or None,  # read-only runs: vulnerable | unproven | fixed | unknown
        "reachable": row.reachable,
    }


def _counts(counts: dict[Outcome, int]) -> dict[str, int]:
    return {o.value: n for o, n in counts.items()}


def export_document(model: ExportModel) -> dict[str, Any]:
    c = model.campaign
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generated_at": model.generated_at,
        "publisher": model.publisher,
        "chain": {
            "head": model.chain_head,
            "records": model.chain_records,
            "campaign_head": model.campaign_head,
        },
        "campaign": {
            "id": c.id,
            "mode": c.mode,  # "patch", or "survey" / "verify": a read-only run that installed nothing
            "survey": c.survey,
            "created_at": c.created_at,
            "operator": c.operator,
            "status": c.status,
            "ended_at": c.ended_at,
            "end_reason": c.end_reason,
            "package": {
                "name": c.package_name,
                "sha256": c.package_sha256,
                "manifest_sha256": c.manifest_sha256,
                "target_version": c.target_version,
                "signers": list(c.signers),  # key ids
                "signed_by": [dict(s) for s in c.signed_by],  # keyid, role, owner (as the policy named them)
            },
            "policy": c.policy,
        },
        "waves": [
            {
                "wave": w.index + 1,
                "devices": list(w.devices),
                "started_at": w.started_at,
                "finished_at": w.finished_at,
                "approver": w.approver,
                "approved_at": w.approved_at,
            }
            for w in model.waves
        ],
        "summary": {
            "total": _counts(model.totals()),
            "by_site": {k: _counts(v) for k, v in model.summary("site").items()},
            "by_model": {k: _counts(v) for k, v in model.summary("model").items()},
            "survey": model.survey_totals() if c.mode != "patch" else None,
        },
        "devices": [_device(row) for row in model.devices],
        # contacts with 202.114.4.0/24 that fit no monitor: units on the wire no inventory names
        "unattributed_contacts": list(model.unattributed),
    }


def validate_json_export(doc: dict[str, Any]) -> list[str]:
    """Problems against the export's JSON Schema; [] for a valid document."""
    from orchestrator.exports.schemas import export_validator

    validator = export_validator()
    if validator.is_valid(doc):  # the common case, ~40% cheaper than collecting errors (jsonschema is slow)
        return []
    return [f"schema at /{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(doc)]


def render_json(model: ExportModel) -> bytes:
    doc = export_document(model)
    problems = validate_json_export(doc)
    if problems:
        raise ExportError("the JSON export would not match its schema: " + "; ".join(problems[:5]),
                          reason="json-invalid")
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
