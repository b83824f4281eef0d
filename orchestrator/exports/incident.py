"""Incident report drafts from the journal: every run's view of each monitor, folded into one record.

``monitor_records`` builds the export model (``exports.model.build_model``) of every patch campaign and
survey/verify run once, and gathers per monitor what each saw (``domain.incident.Sighting``), its latest
identity, containment and vitals checks, so the grounds for a report (``domain.incident.grounds``) are
judged over the monitor's whole history: a unit a campaign patched and a later survey caught reaching out
shows only across runs. Everything comes from the models, so the exports' whitelisting already applies:
evidence summaries and hashes, never a payload, and no patient data (a vitals check holds a simulator's
settings).

``render_draft_json`` and ``render_draft_html`` are the two documents; the HTML is printable and
self-contained like the other reports. Deliberately left out: no I/O (``cli/incident.py`` writes files).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.domain.containment import describe
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.incident import MANUFACTURER, Ground, Sighting, grounds, incident_draft
from orchestrator.domain.status import DEVICE_RECORDS, project
from orchestrator.exports.html import escape_html as _e
from orchestrator.exports.html import head
from orchestrator.exports.model import DeviceRow, ExportModel, build_model, verify_chain


@dataclass
class MonitorRecord:
    name: str
    identity: dict[str, Any] = field(default_factory=dict)
    sightings: list[Sighting] = field(default_factory=list)
    patched_in: list[str] = field(default_factory=list)
    containment: dict[str, Any] | None = None
    vitals: list[dict[str, Any]] = field(default_factory=list)

    def grounds(self) -> tuple[Ground, ...]:
        return grounds(self.sightings, self.vitals)


def _runs(records: Sequence[JournalRecord]) -> list[str]:
    """Every campaign and survey/verify run with a header, oldest first."""
    heads = (EventKind.CAMPAIGN_CREATED, EventKind.SURVEY_STARTED)
    return list(dict.fromkeys(r.campaign for r in records
                              if r.kind in heads and r.campaign != DEVICE_RECORDS))


def _sighting(model: ExportModel, row: DeviceRow) -> Sighting:
    c = model.campaign
    standing = row.outcome.value if c.mode == "patch" else row.survey_status
    return Sighting(c.id, c.mode, row.verified_at or c.created_at, standing,
                    row.firmware_after or row.firmware_before, row.findings)


def monitor_records(records: Iterable[JournalRecord], *, generated_at: str | None = None
                    ) -> tuple[dict[str, MonitorRecord], str, int]:
    """Per monitor, everything the journal knows about it; and the chain head and record count."""
    everything = list(records)
    verify_chain(everything)
    found: dict[str, MonitorRecord] = {}
    for run in _runs(everything):
        model = build_model(everything, run, generated_at=generated_at, chain_verified=True)
        for row in model.devices:
            rec = found.setdefault(row.name, MonitorRecord(row.name))
            rec.identity = {"name": row.name, "model": row.model, "serial": row.serial,
                            "asset_tag": row.asset_tag, "site": row.site, "ward": row.ward, "bed": row.bed,
                            "firmware": row.firmware_after or row.firmware_before
                            or rec.identity.get("firmware", "")}
            rec.sightings.append(_sighting(model, row))
            if model.campaign.mode == "patch" and row.outcome.value == "patched":
                rec.patched_in.append(f"{model.campaign.id} (verified {row.verified_at})")
    facts = project(r for r in everything if r.campaign == DEVICE_RECORDS)
    for name, items in facts.facts.items():  # vitals and containment: also of monitors no run holds
        rec = found.setdefault(name, MonitorRecord(name))
        rec.containment = facts.containment(name)
        rec.vitals = facts.vitals(name)
        if not rec.identity:
            first = items[0]
            rec.identity = {"name": name, "model": str(first.get("model") or ""),
                            "serial": str(first.get("serial") or "")}
    head_hash = everything[-1].hash if everything else ""
    return found, head_hash, len(everything)


def _actions(rec: MonitorRecord) -> list[str]:
    out: list[str] = []
    held = rec.containment
    if held is not None:
        out.append(f"containment: {describe(held)}")
    else:
        out.append("containment: none recorded (to do: isolate or disconnect it; `cmspatch contain`)")
    out += [f"patched and verified in campaign {p}" for p in rec.patched_in] or [
        "not patched: no campaign installed and verified the fix on it"]
    out += [f"vitals check against a patient simulator by {v.get('technician')} at {v.get('at')}: "
            f"{v.get('outcome')}" for v in rec.vitals]
    out.append("to do: keep the monitor and its logs as they are for the manufacturer's and the "
               "authority's investigation")
    return out


def draft_for(rec: MonitorRecord, *, reporter: str, facility: str | None, generated_at: str,
              journal_head: str, journal_records: int) -> dict[str, Any]:
    identity = {**rec.identity,
                "manufacturer": MANUFACTURER.get(str(rec.identity.get("model") or ""), "")}
    return incident_draft(identity, rec.grounds(), actions=_actions(rec), reporter=reporter,
                          facility=facility or str(rec.identity.get("site") or ""),
                          generated_at=generated_at, journal_head=journal_head,
                          journal_records=journal_records)


def render_draft_json(draft: dict[str, Any]) -> bytes:
    return (json.dumps(draft, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _dl(pairs: Iterable[tuple[str, object]]) -> str:
    return '<dl class="meta">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in pairs) + "</dl>"


def render_draft_html(draft: dict[str, Any]) -> bytes:
    d, f, ev = draft["device"], draft["facility"], draft["event"]
    fields = draft["form_fields"]

    def label(key: str, plain: str) -> str:
        return f"{plain} [3500A {fields[key]['fda_3500a']}]" if key in fields else plain

    none = {"check": "", "observed_at": "", "sha256": ""}
    observed = "".join(
        f"<tr><td>{_e(g['kind'])}</td><td>{_e(g['text'])}</td><td class=\"mono\">{_e(g['run'])}</td>"
        f"<td>{_e(p['check'])}</td><td>{_e(p['observed_at'] or g['at'])}</td>"
        f"<td class=\"mono\">{_e(p['sha256'])}</td></tr>"
        for g in draft["observed"] for p in g["evidence"] or [none])
    page = f"""{head(f"Incident report draft - {d['model']} serial {d['serial']}")}
<h1>Incident report draft: {_e(d['model'])} serial <span class="mono">{_e(d['serial'])}</span></h1>
<p><strong>{_e(draft['status'])}.</strong> {_e(draft['kind'])}. Generated {_e(draft['generated_at'])}.</p>
<h2>Device</h2>
{_dl([(label("device.brand", "Brand name"), d["brand"]),
      (label("device.common_name", "Common device name"), d["common_name"]),
      (label("device.manufacturer", "Manufacturer"), d["manufacturer"]),
      (label("device.identifiers", "Model / serial / asset tag"),
       f"{d['model']} / {d['serial']} / {d['asset_tag'] or 'none'}"),
      ("Firmware (last read)", d["firmware"] or "not read"), ("Inventory name", d["inventory_name"])])}
<h2>Facility</h2>
{_dl([(label("facility", "Facility"), f["name"]),
      (label("facility.location", "Location where event occurred"),
       f"{f['site']} / {f['ward']} / bed {f['bed']}"),
      (label("facility.aware", "Date the facility became aware"), f["became_aware"])])}
<h2>Event</h2>
{_dl([(label("event.date", "Date of event"), ev["date"]), (label("event.report_date", "Date of this report"),
      ev["report_date"]), (label("event.description", "Describe event or problem"), ev["description"]),
      (label("event.tests", "Relevant tests"), ev["tests"])])}
<h2>What was observed, with its evidence</h2>
<table class="small"><thead><tr><th>Ground</th><th>What</th><th>Run</th><th>Check</th><th>At (UTC)</th>
<th>SHA-256 of the raw material</th></tr></thead><tbody>{observed}</tbody></table>
<h2>Actions taken</h2>
<ul>{"".join(f"<li>{_e(a)}</li>" for a in draft["actions_taken"])}</ul>
<h2>Reporter and patient</h2>
{_dl([(label("reporter", "Reporter"), draft["reporter"]), ("Patient [3500A A]", draft["patient"])])}
<h2>Where to file</h2>
<ul>{"".join(f"<li>{_e(w)}</li>" for w in draft["where_to_file"])}</ul>
<p class="small">Pinned to the journal chain head <span class="mono">{_e(draft['journal']['head'])}</span>
({_e(draft['journal']['records'])} records): each evidence hash above is that of a journalled check.</p>
</body></html>
"""
    return page.encode("utf-8")
