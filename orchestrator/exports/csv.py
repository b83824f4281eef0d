"""CSV for the hospital's maintenance system (CMMS): one row per monitor, keyed on asset tag and serial.

Every row repeats the campaign id and the journal's chain head, so a row pasted into another system
still says where it came from. Column names and order come from ``columns.ColumnMap``.

Formula injection: a spreadsheet runs a cell that starts with ``= + - @`` (or a tab / carriage return
followed by one) as a formula, and every value here ultimately comes from an inventory or a device that
someone else controls. Such cells are prefixed with an apostrophe (OWASP's advice), which spreadsheets
show as plain text; a CMMS importing the raw file sees the apostrophe and the original text.

Deliberately left out: evidence and timelines (the JSON and HTML exports carry them); a CMMS row is a
status record, not a proof. It does say how strong the proof is: ``evidence_level`` is the weakest level
among the monitor's verdicts (``domain.evidence``), and ``firmware_after_by`` names the technician when the
version is what a person read on the About screen rather than what cmspatch read on the monitor.
"""

from __future__ import annotations

import csv
import io

from orchestrator.domain.findings import words
from orchestrator.exports.columns import DEFAULT_COLUMNS, ColumnMap
from orchestrator.exports.model import CVE_IDS, DeviceRow, ExportModel

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def guard(cell: str) -> str:
    """Neutralise a cell a spreadsheet would evaluate as a formula."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _values(model: ExportModel, row: DeviceRow) -> dict[str, str]:
    values = {
        "asset_tag": row.asset_tag,
        "serial": row.serial,
        "device": row.name,
        "site": row.site,
        "ward": row.ward,
        "bed": row.bed,
        "model": row.model,
        "firmware_before": row.firmware_before,
        "firmware_after": row.firmware_after,
        "firmware_after_by": row.firmware_after_by,
        "evidence_level": row.evidence_level,
        "package_sha256": model.campaign.package_sha256,
        "signers": "; ".join(model.campaign.signer_names()),
        "campaign": model.campaign.id,
        "wave": "" if row.wave is None else str(row.wave + 1),
        "state": row.state,
        "outcome": row.outcome.value,
        "reason": row.reason,
        "verified_at": row.verified_at,
        "operator": model.campaign.operator,
        "approver": row.approver,
        "technician": row.technician,
        "delivery": row.delivery,
        "chain_head": model.chain_head,
        "containment": (row.containment or {}).get("state", ""),
        "contained_by": (row.containment or {}).get("by", ""),
        "vitals": row.vitals[-1].get("outcome", "") if row.vitals else "",
        "survey_status": row.survey_status,
        "observed": words(row.findings),
    }
    for cve in CVE_IDS:
        values[cve] = row.verdict(cve) or "not verified"
    return values


def render_csv(model: ExportModel, columns: ColumnMap | None = None) -> bytes:
    """The CSV bytes (UTF-8, CRLF line ends as RFC 4180 says). Waves are numbered from 1 for people."""
    mapping = columns or ColumnMap(DEFAULT_COLUMNS)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=mapping.delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([guard(header) for _, header in mapping.columns])
    for row in model.devices:
        values = _values(model, row)
        writer.writerow([guard(values[cid]) for cid, _ in mapping.columns])
    return buffer.getvalue().encode(mapping.encoding)
