"""A self-contained, printable HTML report for people: the summary a manager signs, the proof an
auditor checks.

Self-contained on purpose: the report is read on isolated clinical networks and archived for years, so
it references nothing outside itself -- no fonts, scripts, images or style sheets from anywhere (a
system font stack and inline CSS only). A print style sheet lays it out on A4 landscape with each
monitor's evidence kept on one page where it fits.

Status is never shown by colour alone: every outcome and verdict is a word with a symbol
(``\u2714 patched``, ``\u2718 failed`` ...); the tints only repeat what the words say. Every value from
the journal is HTML-escaped (including quotes), since inventory names and device output are input that
somebody else controls.

Deliberately left out: JavaScript (sorting, filtering) -- a printed page cannot run it and an archive
should not need it.
"""

from __future__ import annotations

import re
from html import escape

from orchestrator.domain.evidence import DESCRIPTION, EvidenceLevel
from orchestrator.domain.findings import words
from orchestrator.exports.model import CVE_IDS, OUTCOME_SYMBOL, DeviceRow, ExportModel, Outcome

VERDICT_SYMBOL = {
    "fixed": "\u2714 fixed",
    "vulnerable": "\u2718 vulnerable",
    "inconclusive": "? inconclusive",
    "": "\u2026 not verified",
}
OUTCOME_LABEL = {o: f"{OUTCOME_SYMBOL[o]} {o.value.replace('-', ' ')}" for o in Outcome}
# a read-only run's words (domain.status.SURVEY_STATUSES), with the symbols `cmspatch survey` prints
SURVEY_LABEL = {"vulnerable": "!! vulnerable", "unproven": "? unproven", "fixed": "ok fixed (observed)",
                "unknown": "-- unknown"}

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 1.5rem; color: #111; background: #fff; font-size: 14px; line-height: 1.35; }
h1 { font-size: 1.5rem; margin: 0 0 .3rem; } h2 { font-size: 1.2rem; margin: 1.6rem 0 .5rem;
     border-bottom: 2px solid #333; } h3 { font-size: 1rem; margin: 1rem 0 .3rem; }
table { border-collapse: collapse; margin: .3rem 0 1rem; width: 100%; }
th, td { border: 1px solid #999; padding: .2rem .4rem; text-align: left; vertical-align: top; }
th { background: #eee; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: .5rem 0; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
.mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .85em;
        word-break: break-all; }
.o-patched, .v-fixed { background: #e3f4e3; } .o-failed, .v-vulnerable { background: #fbe0e0; }
.o-deferred { background: #fff3d6; } .o-inconclusive, .v-inconclusive { background: #ece6f7; }
.o-not-done, .v- { background: #f1f1f1; }
section.device { border: 1px solid #bbb; padding: .3rem .8rem; margin: .8rem 0; break-inside: avoid; }
.small { font-size: .85em; color: #333; }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { margin: 0; font-size: 9.5pt; }
  h2 { break-after: avoid; } tr, section.device { break-inside: avoid; }
  .o-patched, .v-fixed, .o-failed, .v-vulnerable, .o-deferred, .o-inconclusive, .v-inconclusive,
  .o-not-done, .v-, th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def escape_html(value: object) -> str:
    """Every value from the journal, escaped (quotes too): the one escaping rule of every HTML document."""
    return escape("" if value is None else str(value), quote=True)


_e = escape_html


def _t(value: str) -> str:
    """An ISO-8601 UTC time as people read it (the JSON export keeps the exact value)."""
    return _e(re.sub(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|\+00:00)$", r"\1 \2Z", value))


def _summary_table(title: str, table: dict[str, dict[Outcome, int]], label: str) -> str:
    head = "".join(f"<th>{_e(OUTCOME_LABEL[o])}</th>" for o in Outcome)
    rows = []
    for group, counts in table.items():
        cells = "".join(f'<td class="n">{counts[o]}</td>' for o in Outcome)
        rows.append(
            f'<tr><th scope="row">{_e(group)}</th>{cells}<td class="n">{sum(counts.values())}</td></tr>'
        )
    return (
        f"<h3>{_e(title)}</h3><table><thead><tr><th>{_e(label)}</th>{head}<th>Total</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def head(title: str) -> str:
    """A self-contained page's start, up to and including ``<body>`` (every cmspatch HTML document)."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_CSS}</style></head>
<body>"""


def _verdict_cell(verdict: str) -> str:
    return f'<td class="v-{_e(verdict)}">{_e(VERDICT_SYMBOL.get(verdict, verdict))}</td>'


def _overview(model: ExportModel) -> str:
    cve_heads = "".join(f"<th>{_e(cve)}</th>" for cve in CVE_IDS)
    rows = []
    for d in model.devices:
        wave = "" if d.wave is None else d.wave + 1
        rows.append(
            f'<tr><td>{_e(d.asset_tag)}</td><td class="mono">{_e(d.serial)}</td>'
            f"<td>{_e(d.site)} / {_e(d.ward)} / "
            f'bed {_e(d.bed)}</td><td>{_e(d.model)}</td><td class="n">{_e(wave)}</td>'
            + (f'<td class="o-{_e(d.outcome.value)}">{_e(OUTCOME_LABEL[d.outcome])}</td>'
               if model.campaign.mode == "patch"
               else f"<td>{_e(SURVEY_LABEL.get(d.survey_status, '-'))}</td>")
            + "".join(_verdict_cell(d.verdict(cve)) for cve in CVE_IDS)
            + f"<td>{_e(d.evidence_level) or '-'}</td>"
            + f"<td>{_e((d.containment or {}).get('state', '')) or 'not recorded'}</td>"
            + f"<td>{_e(words(d.findings))}</td></tr>"
        )
    first = "Survey" if model.campaign.mode != "patch" else "Outcome"
    return (
        "<table><thead><tr><th>Asset tag</th><th>Serial</th><th>Location</th><th>Model</th><th>Wave</th>"
        f"<th>{first}</th>{cve_heads}<th>Evidence level</th><th>Containment</th><th>Observed behaviour</th>"
        "</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _unattributed(model: ExportModel) -> str:
    """Contacts with the indicator range that fit no monitor: a unit on the wire that no inventory names."""
    if not model.unattributed:
        return ""
    rows = "".join(
        f"<tr><td>{_t(str(c.get('at', '')))}</td><td class=\"mono\">{_e(c.get('source', ''))}</td>"
        f"<td class=\"mono\">{_e(c.get('mac', '') or '')}</td><td>{_e(c.get('kind', ''))}</td>"
        f"<td class=\"mono\">{_e(c.get('target', ''))}</td>"
        f"<td>{_e(', '.join(c.get('watched') or []))}</td></tr>"
        for c in model.unattributed)
    return ("<h2>Contacts that fit no monitor</h2><p class=\"small\">Seen contacting 202.114.4.0/24 from an "
            "address or MAC no monitor in the inventory has: a unit nobody listed, or a listed one at an "
            "unknown address. The network checks of the monitors watched meanwhile are inconclusive.</p>"
            "<table><thead><tr><th>At (UTC)</th><th>From</th><th>MAC</th><th>What</th><th>To</th>"
            f"<th>Monitors watched meanwhile</th></tr></thead><tbody>{rows}</tbody></table>")


def _facts(d: DeviceRow) -> str:
    """Behaviour observed (with the evidence hashes), containment and vitals checks, as recorded."""
    out = "".join(
        f"<dt>Observed</dt><dd>{_e(f.text)}: " + ", ".join(
            f'{_e(p.check)} at {_t(p.observed_at)} (<span class="mono">{_e(p.sha256[:16])}</span>&hellip;)'
            for p in f.proofs) + "</dd>" for f in d.findings)
    if (held := d.containment) is not None:
        how = f" ({_e(held.get('how'))})" if held.get("how") else ""
        who = f"; physician {_e(held.get('physician'))}" if held.get("physician") else ""
        digest = _e((held.get("capture") or {}).get("sha256", ""))[:16]
        proof = f"; capture {digest}&hellip; showed no contact" if held.get("capture") else ""
        out += (f"<dt>Containment</dt><dd>{_e(held.get('state'))}{how}, confirmed by {_e(held.get('by'))} "
                f"at {_t(str(held.get('at', '')))}{who}{proof}</dd>")
    for check in d.vitals:
        out += (f"<dt>Vitals check</dt><dd>{_e(check.get('outcome'))} by {_e(check.get('technician'))} at "
                f"{_t(str(check.get('at', '')))}"
                + (f" (differs: {_e(', '.join(check.get('mismatches') or []))})" if check.get("mismatches")
                   else "") + "</dd>")
    return out


def _waves(model: ExportModel) -> str:
    by_name = {d.name: d for d in model.devices}
    rows = []
    for w in model.waves:
        tally = {o: 0 for o in Outcome}
        for name in w.devices:
            if name in by_name:
                tally[by_name[name].outcome] += 1
        result = ", ".join(f"{n} {OUTCOME_LABEL[o]}" for o, n in tally.items() if n)
        approval = (
            f"{_e(w.approver)} at {_t(w.approved_at)}"
            if w.approver
            else "no gate (first wave)"
            if w.index == 0
            else "not approved"
        )
        rows.append(
            f'<tr><td class="n">{w.index + 1}</td><td class="n">{len(w.devices)}</td><td>{approval}</td>'
            f"<td>{_t(w.started_at) or 'not started'}</td><td>{_t(w.finished_at) or 'not finished'}</td>"
            f"<td>{_e(result)}</td></tr>"
        )
    return (
        "<table><thead><tr><th>Wave</th><th>Monitors</th><th>Approved by</th><th>Started (UTC)</th>"
        f"<th>Finished (UTC)</th><th>Result</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _standing(model: ExportModel, d: DeviceRow) -> str:
    """A campaign's outcome for the monitor, or a read-only run's word for it (it installed nothing)."""
    if model.campaign.mode != "patch":
        seen = "" if d.reachable is not False else " (did not answer)"
        return f"<dt>Survey</dt><dd>{_e(SURVEY_LABEL.get(d.survey_status, '-- unknown'))}{seen}</dd>"
    return (f'<dt>Outcome</dt><dd class="o-{_e(d.outcome.value)}">{_e(OUTCOME_LABEL[d.outcome])}'
            f' (state {_e(d.state)}{"; " + _e(d.reason) if d.reason else ""})</dd>')


def _level_text(level: str) -> str:
    """A monitor's evidence level with what it means (domain.evidence), or that nothing was verified."""
    if not level:
        return "not verified"
    return f"<strong>{_e(level)}</strong>: {_e(DESCRIPTION[EvidenceLevel(level)])}"


def _device(model: ExportModel, d: DeviceRow) -> str:
    verdicts = "".join(
        f"<tr><td>{_e(c.cve)}</td>{_verdict_cell(c.verdict)}<td>{_e(c.level) or '-'}</td>"
        f"<td>{_e(c.reason)}</td><td>{_t(c.at)}</td></tr>"
        for c in d.cves
    )
    evidence = (
        "".join(
            f"<tr><td>{_e(ev.check)}</td><td>{_e(ev.source)}</td><td>{_e(ev.outcome)}</td><td>{_e(ev.summary)}</td>"
            f"<td>{_e(', '.join(ev.cves))}</td><td>{_t(ev.observed_at)}</td>"
            f'<td class="mono">{_e(ev.sha256)}</td></tr>'
            for ev in d.evidence
        )
        or '<tr><td colspan="7">no evidence recorded</td></tr>'
    )
    timeline = "".join(
        f'<tr><td class="n">{t.seq}</td><td>{_t(t.at)}</td><td>{_e(t.kind)}</td><td>{_e(t.summary)}</td></tr>'
        for t in d.timeline
    )
    read_by = f" (read by {_e(d.firmware_after_by)})" if d.firmware_after_by else ""
    return f"""<section class="device" id="dev-{_e(d.name)}">
<h3>{_e(d.asset_tag or d.name)} &middot; {_e(d.model)} &middot;
serial <span class="mono">{_e(d.serial)}</span></h3>
<dl class="meta">{_standing(model, d)}
<dt>Location</dt><dd>{_e(d.site)} / {_e(d.ward)} / bed {_e(d.bed)} (inventory name {_e(d.name)})</dd>
<dt>Firmware</dt><dd class="mono">{_e(d.firmware_before) or "unknown"} &rarr;
 {_e(d.firmware_after) or "not read"}{read_by}</dd>
<dt>Evidence level</dt><dd>{_level_text(d.evidence_level)}</dd>
<dt>Delivery</dt><dd>{_e(d.delivery)}{", technician " + _e(d.technician) if d.technician else ""}</dd>
<dt>Verified at</dt><dd>{_t(d.verified_at) or "not verified"}</dd>{_facts(d)}</dl>
<table><thead><tr><th>CVE</th><th>Verdict</th><th>Evidence level</th><th>Why</th><th>At (UTC)</th></tr>
</thead>
<tbody>{verdicts}</tbody></table>
<table class="small"><thead><tr><th>Check</th><th>Source</th><th>Outcome</th><th>Observed</th><th>CVEs</th>
<th>At (UTC)</th><th>SHA-256 of raw material</th></tr></thead><tbody>{evidence}</tbody></table>
<table class="small"><thead><tr><th>Seq</th><th>At (UTC)</th><th>Event</th><th>What happened</th></tr></thead>
<tbody>{timeline}</tbody></table></section>"""


def render_html(model: ExportModel) -> bytes:
    c = model.campaign
    if c.mode != "patch":
        return _survey_page(model)
    totals = model.totals()
    total_line = ", ".join(f"{n} {OUTCOME_LABEL[o]}" for o, n in totals.items())
    signers = "<br>".join(
        f'{_e(name)} <span class="mono small">{_e(k)}</span>' for name, k in zip(c.signer_names(), c.signers,
                                                                                 strict=False)
    ) or "none recorded"
    page = f"""{head(f"Patch report {c.id} - Contec CMS8000-family backdoor")}
<h1>Contec CMS8000-family backdoor: patch report</h1>
<p>Campaign <strong class="mono">{_e(c.id)}</strong> for {_e(model.publisher)}.
Status: <strong>{_e(c.status)}</strong>{(" (" + _e(c.end_reason) + ")") if c.end_reason else ""}.
{len(model.devices)} monitors: {_e(total_line)}.</p>
<dl class="meta">
<dt>Package</dt><dd>{_e(c.package_name)} installing {_e(c.target_version)}</dd>
<dt>Package SHA-256</dt><dd class="mono">{_e(c.package_sha256)}</dd>
<dt>Manifest SHA-256</dt><dd class="mono">{_e(c.manifest_sha256)}</dd>
<dt>Manifest signed by</dt><dd>{signers}</dd>
<dt>Operator</dt><dd>{_e(c.operator)}</dd>
<dt>Started / ended (UTC)</dt><dd>{_t(c.created_at)} / {_t(c.ended_at) or "not ended"}</dd>
<dt>Journal chain head</dt><dd class="mono">{_e(model.chain_head)} ({model.chain_records} records)</dd>
<dt>Report generated (UTC)</dt><dd>{_t(model.generated_at)}</dd>
</dl>
<h2>Summary</h2>
<p class="small">Patched = installed and all four CVEs verified fixed.
Inconclusive = installed but at least one
CVE could not be shown fixed. Failed = installation failed or a CVE is still present. Deferred = not touched
(patient connected, alarm, or outside the maintenance window). Not done = pending, skipped or in progress.</p>
{_summary_table("By site", model.summary("site"), "Site")}
{_summary_table("By model", model.summary("model"), "Model")}
<h2>Wave timeline</h2>
{_waves(model)}
<h2>Monitors</h2>
{_overview(model)}
{_unattributed(model)}
<h2>Evidence per monitor</h2>
{"".join(_device(model, d) for d in model.devices)}
<p class="small">Every row above comes from the hash-chained campaign journal;
the seq numbers locate each event
in it and the chain head above pins this report to the journal it was generated from.</p>
</body></html>
"""
    return page.encode("utf-8")


def _survey_page(model: ExportModel) -> bytes:
    """A read-only survey/verify run: what was seen per monitor; it installed nothing, so no outcome."""
    c = model.campaign
    counts = ", ".join(f"{n} {SURVEY_LABEL[s]}" for s, n in model.survey_totals().items())
    how = c.survey
    triggers = "exercised" if how.get("exercise_triggers") else "not exercised"
    page = f"""{head(f"Survey report {c.id} - Contec CMS8000-family backdoor")}
<h1>Contec CMS8000-family backdoor: {_e(c.mode)} report</h1>
<p>Read-only {_e(c.mode)} <strong class="mono">{_e(c.id)}</strong> for {_e(model.publisher)}: nothing was
installed or changed on any monitor. Status: <strong>{_e(c.status)}</strong>.
{len(model.devices)} monitors: {_e(counts)}.</p>
<dl class="meta">
<dt>Operator</dt><dd>{_e(c.operator)}</dd>
<dt>Network observation</dt><dd>{_e(how.get("network", "not recorded"))},
 window {_e(how.get("window", "?"))} s,
 UDP probe {"sent" if how.get("udp_probe") else "not sent"}, triggers {triggers}</dd>
<dt>Started (UTC)</dt><dd>{_t(c.created_at)}</dd>
<dt>Journal chain head</dt><dd class="mono">{_e(model.chain_head)} ({model.chain_records} records)</dd>
<dt>Report generated (UTC)</dt><dd>{_t(model.generated_at)}</dd>
</dl>
<p class="small">Vulnerable = behaviour or binaries show the backdoor. Unproven = in the FSCA scope and not
shown free of it (unreachable monitors included). Fixed (observed) = every required check passed; this run
installed nothing. Unknown = not in scope and nothing shown.</p>
<h2>Monitors</h2>
{_overview(model)}
{_unattributed(model)}
<h2>Evidence per monitor</h2>
{"".join(_device(model, d) for d in model.devices)}
<p class="small">Every row above comes from the hash-chained journal; the seq numbers locate each event in it
and the chain head above pins this report to the journal it was generated from.</p>
</body></html>
"""
    return page.encode("utf-8")
