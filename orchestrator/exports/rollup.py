"""The regional status as documents: HTML for people, CSV for the Region's spreadsheet, one CSAF VEX.

Rendered from ``domain.rollup.Rollup`` (verified exports only). The CSAF document covers every facility's
monitors, one product per facility and serial, and states per CVE what that facility's newest verified
export states: ``fixed`` only where a patch campaign verified the CVE fixed; a read-only run never says
fixed (``known_not_affected`` with an impact statement where every check passed, ``under_investigation``
where nothing could be checked, as ``exports.survey``); everything else ``known_affected`` with its action.
The document passes the same validators as a facility's own (schema and mandatory tests) or is refused.

Deliberately left out: no I/O; monitors of exports that failed verification (they are listed as failed
exports, never counted).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from typing import Any

from orchestrator import __version__
from orchestrator.domain.checks import CATALOGUE
from orchestrator.domain.rollup import STATUSES, MonitorStanding, Rollup
from orchestrator.errors import ExportError
from orchestrator.exports.csaf import ADVISORY_URL, CVE_TEXT, ISOLATE, VENDOR, validate_csaf
from orchestrator.exports.csv import guard
from orchestrator.exports.html import escape_html as _e
from orchestrator.exports.html import head
from orchestrator.exports.model import CVE_IDS


def _levels(table: dict[str, dict[str, dict[str, int]]], facility: str, model: str) -> str:
    return "; ".join(f"{k}: {n}" for k, n in sorted(table.get(facility, {}).get(model, {}).items()))


def render_rollup_csv(rollup: Rollup) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    levels = rollup.patched_by_level()
    stale = dict(rollup.not_reported)
    writer.writerow(["region", "facility", "model", *STATUSES, "patched_by_level", "last_report",
                     "not_reported_since"])
    for facility, models in sorted(rollup.counts().items()):
        last = max((m.reported_at for m in rollup.monitors if m.facility == facility), default="")
        for model, counts in sorted(models.items()):
            by_level = _levels(levels, facility, model)
            writer.writerow([guard(str(v)) for v in (
                rollup.region, facility, model, *(counts[s] for s in STATUSES), by_level, last,
                rollup.since if facility in stale else "")])
    for facility, last in rollup.not_reported:
        if facility not in rollup.counts():
            writer.writerow([guard(str(v)) for v in (rollup.region, facility, "", *("" for _ in STATUSES), "",
                                                     last, rollup.since or "never reported")])
    return buffer.getvalue().encode("utf-8")


def render_rollup_html(rollup: Rollup) -> bytes:
    counts = rollup.counts()
    levels = rollup.patched_by_level()
    rows = "".join(
        f"<tr><td>{_e(f)}</td><td>{_e(model)}</td>" + "".join(f'<td class="n">{c[s]}</td>' for s in STATUSES)
        + f"<td>{_e(_levels(levels, f, model))}</td></tr>"
        for f, models in sorted(counts.items()) for model, c in sorted(models.items()))
    totals = rollup.totals()
    failed = [c for c in rollup.checks if not c.valid]
    failed_rows = "".join(f"<tr><td class=\"mono\">{_e(c.file)}</td><td>{_e(c.reason)}</td>"
                          f"<td>{_e(c.message)}</td></tr>" for c in failed)
    failed_rows = failed_rows or '<tr><td colspan="3">none</td></tr>'
    stale_rows = "".join(f"<tr><td>{_e(f)}</td><td>{_e(last)}</td></tr>" for f, last in rollup.not_reported
                         ) or '<tr><td colspan="2">none</td></tr>'
    dup_rows = "".join(f"<tr><td class=\"mono\">{_e(s)}</td><td>{_e(', '.join(fs))}</td></tr>"
                       for s, fs in rollup.duplicates) or '<tr><td colspan="2">none</td></tr>'
    used = "".join(
        f"<tr><td>{_e(c.facility)}</td><td class=\"mono\">{_e(c.file)}</td><td>{_e(c.mode)} "
        f"{_e(c.campaign)}</td><td>{_e(c.signed_by)} (key held by {_e(c.key_owner or 'unnamed')})</td>"
        f"<td>{_e(c.reported_at)}</td><td class=\"mono\">{_e(c.chain_head)}</td></tr>"
        for c in rollup.checks if c.valid)
    heads = "".join(f"<th>{_e(s)}</th>" for s in STATUSES)
    page = f"""{head(f"Regional status - {rollup.region}")}
<h1>Contec CMS8000-family backdoor: regional status{": " + _e(rollup.region) if rollup.region else ""}</h1>
<p>{len(rollup.monitors)} monitors in {len(counts)} facilities from verified exports:
{_e(", ".join(f"{n} {s}" for s, n in totals.items()))}. {len(failed)} export(s) failed verification;
{len(rollup.not_reported)} facility(ies) not reported{" since " + _e(rollup.since) if rollup.since else ""};
{len(rollup.duplicates)} serial number(s) reported by two facilities.</p>
<p class="small">Patched = the facility's export shows it patched and verified (or a read-only run saw it
fixed, said so in the level). Contained = isolated or disconnected, confirmed by a named person. Deferred =
not touched (patient connected...). Vulnerable = a CVE verified present, or the install failed. Unknown =
not shown either way. Each serial counts once per facility, from that facility's newest verified export.</p>
<h2>By facility and model</h2>
<table><thead><tr><th>Facility</th><th>Model</th>{heads}<th>Patched, by evidence level</th></tr></thead>
<tbody>{rows}</tbody></table>
<h2>Facilities not reported{" since " + _e(rollup.since) if rollup.since else ""}</h2>
<table><thead><tr><th>Facility</th><th>Newest verified report</th></tr></thead>
<tbody>{stale_rows}</tbody></table>
<h2>Exports that failed verification (not counted)</h2>
<table><thead><tr><th>File</th><th>Reason</th><th>Why</th></tr></thead><tbody>{failed_rows}</tbody></table>
<h2>One serial number, two facilities</h2>
<table><thead><tr><th>Serial</th><th>Reported by</th></tr></thead><tbody>{dup_rows}</tbody></table>
<h2>Verified exports used</h2>
<table class="small"><thead><tr><th>Facility</th><th>File</th><th>Run</th><th>Signed by</th><th>Reported</th>
<th>Chain head</th></tr></thead><tbody>{used}</tbody></table>
</body></html>
"""
    return page.encode("utf-8")


# --- one CSAF VEX over every facility ----------------------------------------------------------------

def _pid(m: MonitorStanding) -> str:
    return "CMSPATCH-" + re.sub(r"[^A-Za-z0-9._-]", "_", f"{m.facility}-{m.serial or m.name}")


def _speaks_to(item: dict[str, Any], cve: str) -> bool:
    spec = CATALOGUE.get(str(item.get("check")))
    return cve in (item.get("cves") or ()) or (spec is not None and any(c.value == cve for c in spec.cves))


def _checked(m: MonitorStanding, cve: str) -> bool:
    """Some check for ``cve`` looked and saw something (the rule of ``exports.survey``, on the JSON)."""
    return any(isinstance(e, dict) and e.get("outcome") in ("pass", "fail") and _speaks_to(e, cve)
               for e in m.device.get("evidence") or ())


def _statement(m: MonitorStanding, cve: str) -> tuple[str, str]:
    raw = (m.device.get("verdicts") or {}).get(cve)
    verdict = str(raw.get("verdict")) if isinstance(raw, dict) else ""
    where = f"{m.facility}, {m.mode} {m.campaign} ({m.reported_at})"
    if m.mode == "patch":
        if verdict == "fixed":
            return "fixed", f"verified fixed in {where}"
        if m.status == "contained":
            held = m.device.get("containment") or {}
            return "known_affected", (f"Not fixed; contained ({held.get('state')}, confirmed by "
                                      f"{held.get('by')}) per {where}. {ISOLATE}")
        if m.status == "deferred":
            return "known_affected", f"Deferred per {where}: keep it isolated. {ISOLATE}"
        return "known_affected", (f"Not verified fixed per {where} (status {m.status}): install the "
                                  "vendor fix.")
    if verdict == "fixed":
        return "known_not_affected", (f"Every required check passed during read-only {where}; nothing was "
                                      "installed: an observation, not a fix.")
    if verdict == "vulnerable":
        return "known_affected", f"Observed present during {where}. {ISOLATE}"
    if not _checked(m, cve):
        return "under_investigation", f"Nothing could be checked for {cve} during {where}."
    return "known_affected", f"Not shown free of {cve} during {where}; treated as affected. {ISOLATE}"


def rollup_csaf(rollup: Rollup, *, generated_at: str, namespace: str = "urn:cmspatch:region"
                ) -> dict[str, Any]:
    by_model: dict[str, list[MonitorStanding]] = defaultdict(list)
    for m in rollup.monitors:
        by_model[m.model or "unknown model"].append(m)
    tree = {"branches": [{"category": "vendor", "name": VENDOR, "branches": [
        {"category": "product_name", "name": model, "branches": [
            {"category": "host_name", "name": f"{m.facility} / {m.serial or m.name}",
             "product": {"name": f"{VENDOR} {model} serial {m.serial} at {m.facility}", "product_id": _pid(m),
                         **({"product_identification_helper": {"serial_numbers": [m.serial]}} if m.serial
                            else {})}} for m in ms]} for model, ms in sorted(by_model.items())]}]}
    vulns = []
    for cve in CVE_IDS:
        status: dict[str, list[str]] = defaultdict(list)
        texts: dict[tuple[str, str], list[str]] = defaultdict(list)
        for m in rollup.monitors:
            said, text = _statement(m, cve)
            status[said].append(_pid(m))
            texts[(said, text)].append(_pid(m))
        title, description = CVE_TEXT[cve]
        counts = ", ".join(f"{len(v)} {k.replace('_', ' ')}" for k, v in sorted(status.items()))
        vuln: dict[str, Any] = {
            "cve": cve, "title": title,
            "notes": [{"category": "description", "title": "Vulnerability", "text": description},
                      {"category": "details", "title": "Region", "text": f"{counts} across "
                       f"{len(rollup.counts())} facilities (verified exports only)."}],
            "product_status": dict(sorted(status.items())),
            "references": [{"category": "external", "summary": "CISA ICSMA-25-030-01", "url": ADVISORY_URL}],
        }
        remediations = [{"category": "vendor_fix" if "install" in t else "mitigation", "details": t,
                         "product_ids": p} for (s, t), p in sorted(texts.items())
                        if s in ("known_affected", "under_investigation")]
        threats = [{"category": "impact", "details": t, "product_ids": p}
                   for (s, t), p in sorted(texts.items()) if s == "known_not_affected"]
        if remediations:
            vuln["remediations"] = remediations
        if threats:
            vuln["threats"] = threats
        vulns.append(vuln)
    slug = re.sub(r"[^a-z0-9]+", "-", (rollup.region or "region").lower()).strip("-") or "region"
    failed = sum(not c.valid for c in rollup.checks)
    summary = (", ".join(f"{n} {s}" for s, n in rollup.totals().items())
               + f"; {failed} export(s) failed verification and are not counted.")
    return {
        "document": {
            "category": "csaf_vex", "csaf_version": "2.0", "lang": "en",
            "title": f"Contec CMS8000-family backdoor: regional status of {len(rollup.monitors)} monitors"
                     + (f" ({rollup.region})" if rollup.region else ""),
            "publisher": {"category": "coordinator", "name": rollup.region or "region",
                          "namespace": f"{namespace}:{slug}"},
            "distribution": {"tlp": {"label": "AMBER"}},
            "notes": [{"category": "summary", "title": "Regional status", "text": summary}],
            "references": [{"category": "external", "summary": "CISA ICSMA-25-030-01", "url": ADVISORY_URL}],
            "tracking": {"id": f"cmspatch-region-{slug}-{generated_at[:10]}", "status": "final",
                         "version": "1",
                         "revision_history": [{"date": generated_at, "number": "1",
                                               "summary": "Regional roll-up of verified facility exports"}],
                         "initial_release_date": generated_at, "current_release_date": generated_at,
                         "generator": {"date": generated_at,
                                       "engine": {"name": "cmspatch", "version": __version__}}},
        },
        "product_tree": tree,
        "vulnerabilities": vulns,
    }


def render_rollup_csaf(rollup: Rollup, *, generated_at: str) -> bytes:
    if not rollup.monitors:
        raise ExportError("no verified export holds a monitor: a VEX document would state nothing",
                          reason="empty")
    doc = rollup_csaf(rollup, generated_at=generated_at)
    problems = validate_csaf(doc)
    if problems:
        raise ExportError("the regional CSAF document would not validate: " + "; ".join(problems[:5]),
                          reason="csaf-invalid")
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
