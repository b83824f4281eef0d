"""CSAF 2.0 VEX (profile ``csaf_vex``): the hospital, as a user of the monitors, states per monitor and
per CVE whether the vulnerability is fixed -- the document a regulator or a CERT can read by machine.

Products are the monitors themselves, one leaf per unit in the product tree: vendor ``Contec`` ->
product name (the model) -> host name (serial and asset tag), each with the serial number as its
identification helper. A monitor is listed as ``fixed`` for a CVE ONLY where the post-patch verdict for
that CVE is ``fixed``; everything else -- vulnerable, inconclusive, deferred, failed, not yet done -- is
``known_affected``, with the action statement VEX requires: a ``mitigation`` (deferred because a patient
was connected: keep it isolated from the network) and/or a ``vendor_fix`` that is still pending.
"Inconclusive" is deliberately not ``under_investigation``: a hospital cannot claim a fix it could not
show, and regulators expect unproven units to be treated as affected.

The document is checked before it is returned: against the official OASIS schema (vendored, offline)
and the mandatory tests of ``csaf_checks``. An export that would not validate is refused, never written.
Deliberately left out: CVSS scores (they are CISA's statement, not ours) and product groups.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

from orchestrator import __version__
from orchestrator.domain.evidence import DESCRIPTION, STRENGTH, EvidenceLevel
from orchestrator.errors import ExportError
from orchestrator.exports.csaf_checks import check_mandatory
from orchestrator.exports.model import CVE_IDS, DeviceRow, ExportModel, Outcome
from orchestrator.exports.schemas import csaf_validator
from orchestrator.exports.survey import KNOWN_AFFECTED, KNOWN_NOT_AFFECTED, statement

VENDOR = "Contec"
ADVISORY_URL = "https://www.cisa.gov/news-events/ics-medical-advisories/icsma-25-030-01"
CVE_TEXT: dict[str, tuple[str, str]] = {
    "CVE-2024-12248": (
        "Out-of-bounds write from UDP requests",
        "Specially formatted UDP requests cause an out-of-bounds write that allows remote code execution.",
    ),
    "CVE-2025-0626": (
        "Hidden functionality in the monitor binary",
        "Starting an update from the menu brings eth0 up, mounts an NFS share from a hard-coded "
        "address and runs files from it.",
    ),
    "CVE-2025-0683": (
        "Patient data sent to hard-coded addresses",
        "With a patient connected, plain-text patient data is sent to hard-coded public addresses.",
    ),
    "CVE-2025-1204": (
        "Hidden functionality in the update binary",
        "Pressing C during boot triggers the same hidden NFS mount from the update binary.",
    ),
}
ISOLATE = (
    "Keep the monitor isolated from the network, or block 202.114.4.0/24 at the network edge, "
    "until the verified fix is installed (CISA ICSMA-25-030-01)."
)


def product_id(row: DeviceRow) -> str:
    return "CMSPATCH-" + re.sub(r"[^A-Za-z0-9._-]", "_", row.serial or row.name)


def _product_ids(model: ExportModel) -> dict[str, str]:
    ids: dict[str, str] = {}
    used: set[str] = set()
    for row in model.devices:
        pid = product_id(row)
        if pid in used:  # two units share a serial in the inventory: keep both, distinctly
            pid = f"{pid}-{re.sub(r'[^A-Za-z0-9._-]', '_', row.name)}"
        used.add(pid)
        ids[row.name] = pid
    return ids


def _product(row: DeviceRow, pid: str) -> dict[str, Any]:
    firmware = row.firmware_after or row.firmware_before or "unknown"
    name = (
        f"{VENDOR} {row.model} serial {row.serial} asset {row.asset_tag or 'none'} at {row.site} / "
        f"{row.ward} / bed {row.bed}, firmware {firmware}"
    )
    product: dict[str, Any] = {"name": name, "product_id": pid}
    if row.serial:
        product["product_identification_helper"] = {"serial_numbers": [row.serial]}
    return product


def _tree(model: ExportModel, ids: dict[str, str]) -> dict[str, Any]:
    by_model: dict[str, list[DeviceRow]] = defaultdict(list)
    for row in model.devices:
        by_model[row.model or "unknown model"].append(row)
    models = []
    for name in sorted(by_model):
        leaves = [
            {
                "category": "host_name",
                "name": f"{row.serial or row.name} ({row.asset_tag or row.name})",
                "product": _product(row, ids[row.name]),
            }
            for row in by_model[name]
        ]
        models.append({"category": "product_name", "name": name, "branches": leaves})
    return {"branches": [{"category": "vendor", "name": VENDOR, "branches": models}]}


def _action(model: ExportModel, row: DeviceRow, verdict: str) -> tuple[str, str]:
    """The remediation category and text for a monitor still affected by one CVE."""
    target = model.campaign.target_version or "the fixed firmware"
    if row.outcome is Outcome.DEFERRED:
        why = row.reason or "patient connected"
        return "mitigation", (
            f"Deferred: {why}; not patched during campaign {model.campaign.id}. "
            f"{ISOLATE} Vendor fix {target} pending."
        )
    if verdict == "vulnerable":
        return "vendor_fix", (
            f"Vendor fix pending: after installing the campaign package the CVE was still "
            f"verified present (firmware {row.firmware_after or 'unknown'}); obtain and install "
            f"the manufacturer's complete fix {target}."
        )
    if verdict == "inconclusive":
        return "vendor_fix", (
            f"Vendor fix {target} installed but the fix could not be verified for this CVE "
            "(inconclusive evidence); re-verify before treating the monitor as fixed."
        )
    if row.outcome is Outcome.FAILED:
        return "vendor_fix", (
            f"Vendor fix {target} pending: installation failed "
            f"({row.reason or 'see the campaign journal'}); retry the installation."
        )
    return "vendor_fix", f"Vendor fix {target} pending: not yet installed and verified (state {row.state})."


def _containment_text(held: dict[str, Any]) -> str:
    """What was done for a monitor still affected, as the person who confirmed it recorded it."""
    state, how, who, at = (str(held.get(k) or "") for k in ("state", "how", "by", "at"))
    if state == "clinical-use":
        return (f"Kept in clinical use by decision of {held.get('physician') or 'the treating physician'}, "
                f"recorded by {who} at {at}; watch it as the advisory recommends.")
    return f"Contained: {state}{' (' + how + ')' if how else ''}, confirmed by {who} at {at}."


def _vulnerability(model: ExportModel, cve: str, ids: dict[str, str]) -> dict[str, Any]:
    fixed: list[str] = []
    affected: list[str] = []
    actions: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in model.devices:
        pid = ids[row.name]
        verdict = row.verdict(cve)
        if verdict == "fixed":  # the post-patch verdict, and nothing else, makes a product fixed
            fixed.append(pid)
            continue
        affected.append(pid)
        actions[_action(model, row, verdict)].append(pid)
    title, text = CVE_TEXT[cve]
    counts = f"{len(fixed)} of {len(model.devices)} monitors verified fixed in campaign {model.campaign.id}."
    vuln: dict[str, Any] = {
        "cve": cve,
        "title": title,
        "notes": [
            {"category": "description", "title": "Vulnerability", "text": text},
            {"category": "details", "title": "Verification", "text": counts},
            *_level_notes(model, cve, ids),
        ],
        "product_status": {},
        "references": [{"category": "external", "summary": "CISA ICSMA-25-030-01", "url": ADVISORY_URL}],
    }
    if fixed:
        vuln["product_status"]["fixed"] = fixed
    if affected:
        vuln["product_status"]["known_affected"] = affected
        remediations = [
            {"category": cat, "details": details, "product_ids": pids}
            for (cat, details), pids in sorted(actions.items())
        ]
        contained: dict[str, list[str]] = defaultdict(list)
        for row in model.devices:
            if ids[row.name] in affected and row.containment and row.containment.get("state") not in (
                    None, "", "networked"):  # recorded as still networked: no remediation to state
                contained[_containment_text(row.containment)].append(ids[row.name])
        remediations += [{"category": "workaround" if "kept in clinical use" not in text else "mitigation",
                          "details": text, "product_ids": pids} for text, pids in sorted(contained.items())]
        remediations.append({"category": "mitigation", "details": ISOLATE, "product_ids": affected})
        vuln["remediations"] = remediations
    return vuln


def _level_notes(model: ExportModel, cve: str, ids: dict[str, str]) -> list[dict[str, Any]]:
    """One note per evidence level this CVE's verdicts were established at: what the level means and
    which monitors it holds for, so a bench silence is never read as a proof made on the device."""
    by_level: dict[str, list[str]] = defaultdict(list)
    for row in model.devices:
        if row.verdict(cve) and row.level(cve):
            by_level[row.level(cve)].append(f"{ids[row.name]} ({row.verdict(cve)})")
    return [{"category": "details", "title": f"Evidence level: {level}",
             "text": f"{DESCRIPTION[EvidenceLevel(level)]}. Monitors: {', '.join(by_level[level])}."}
            for level in (lv.value for lv in STRENGTH) if level in by_level]


def _survey_vulnerability(model: ExportModel, cve: str, ids: dict[str, str]) -> dict[str, Any]:
    """A read-only run's statement per CVE (``exports.survey``): never ``fixed``: it installed nothing."""
    status: dict[str, list[str]] = defaultdict(list)
    texts: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in model.devices:
        said = statement(model, row, cve)
        status[said.status].append(ids[row.name])
        texts[(said.status, said.text)].append(ids[row.name])
    title, text = CVE_TEXT[cve]
    counts = ", ".join(f"{len(status[s])} {s.replace('_', ' ')}" for s in sorted(status))
    vuln: dict[str, Any] = {
        "cve": cve,
        "title": title,
        "notes": [
            {"category": "description", "title": "Vulnerability", "text": text},
            {"category": "details", "title": "Survey",
             "text": f"{counts} of {len(model.devices)} monitors in read-only {model.campaign.mode} "
                     f"{model.campaign.id}; nothing was installed, so no monitor is stated fixed from it."},
        ],
        "product_status": {s: pids for s, pids in sorted(status.items())},
        "references": [{"category": "external", "summary": "CISA ICSMA-25-030-01", "url": ADVISORY_URL}],
    }
    remediations: list[dict[str, Any]] = []
    threats: list[dict[str, Any]] = []
    for (said_status, details), pids in sorted(texts.items()):
        if said_status == KNOWN_NOT_AFFECTED:
            threats.append({"category": "impact", "details": details, "product_ids": pids})
        else:
            remediations.append({"category": "mitigation" if said_status != KNOWN_AFFECTED else "vendor_fix",
                                 "details": details, "product_ids": pids})
    open_ = [ids[r.name] for r in model.devices if statement(model, r, cve).status != KNOWN_NOT_AFFECTED]
    contained: dict[str, list[str]] = defaultdict(list)
    for row in model.devices:
        if ids[row.name] in open_ and row.containment and row.containment.get("state") not in (
                None, "", "networked"):
            contained[_containment_text(row.containment)].append(ids[row.name])
    remediations += [{"category": "workaround" if "kept in clinical use" not in t else "mitigation",
                      "details": t, "product_ids": pids} for t, pids in sorted(contained.items())]
    if open_:
        remediations.append({"category": "mitigation", "details": ISOLATE, "product_ids": open_})
    if remediations:
        vuln["remediations"] = remediations
    if threats:
        vuln["threats"] = threats
    return vuln


def _summary_note(model: ExportModel) -> dict[str, str]:
    c = model.campaign
    if c.mode != "patch":
        counts = ", ".join(f"{n} {s}" for s, n in model.survey_totals().items() if n)
        seen: dict[str, int] = defaultdict(int)
        for row in model.devices:
            for f in row.findings:
                seen[f.text] += 1
        behaviour = "; ".join(f"{n} monitor(s): {t}" for t, n in seen.items()) or "no behaviour observed"
        return {"category": "summary", "title": "Survey outcome",
                "text": f"Read-only {c.mode} {c.id} ({c.status}) of {len(model.devices)} monitors, nothing "
                        f"installed: {counts}. Observed: {behaviour}."}
    totals = ", ".join(f"{n} {o.value}" for o, n in model.totals().items() if n)
    return {"category": "summary", "title": "Campaign outcome",
            "text": f"Campaign {c.id} ({c.status}) installing {c.target_version or 'the fix'} "
                    f"(package SHA-256 {c.package_sha256}): {totals}."}


TLP_LABELS = ("RED", "AMBER", "GREEN", "WHITE")  # CSAF 2.0 uses TLP 1.0 labels
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$")


def csaf_document(model: ExportModel, *, namespace: str | None = None, tlp: str = "AMBER") -> dict[str, Any]:
    c = model.campaign
    ids = _product_ids(model)
    when = model.generated_at
    slug = re.sub(r"[^a-z0-9]+", "-", model.publisher.lower()).strip("-") or "hospital"
    status = "final" if c.status in ("finished", "halted", "aborted") else "interim"
    what = "fix status" if c.mode == "patch" else f"{c.mode} findings"
    vulnerability = _vulnerability if c.mode == "patch" else _survey_vulnerability
    return {
        "document": {
            "category": "csaf_vex",
            "csaf_version": "2.0",
            "lang": "en",
            "title": f"Contec CMS8000-family backdoor: {what} of {len(model.devices)} monitors "
            f"({'campaign' if c.mode == 'patch' else c.mode} {c.id})",
            "publisher": {
                "category": "user",
                "name": model.publisher,
                "namespace": namespace or f"urn:cmspatch:publisher:{slug}",
            },
            "distribution": {
                "tlp": {"label": tlp},
                "text": "Internal to the hospital, its regulator and its manufacturer contacts.",
            },
            "notes": [
                _summary_note(model),
                {
                    "category": "details",
                    "title": "Provenance",
                    "text": f"Generated by cmspatch from the hash-chained campaign journal; chain head "
                    f"{model.chain_head} over {model.chain_records} records. Package manifest signed by "
                    f"{'; '.join(c.signer_names()) or 'nobody recorded'}. A product is fixed only "
                    "where the post-patch verdict for that CVE is fixed.",
                },
            ],
            "references": [{"category": "external", "summary": "CISA ICSMA-25-030-01", "url": ADVISORY_URL}],
            "tracking": {
                "id": f"cmspatch-{c.id}-{model.chain_head[:12]}",
                "status": status,
                "version": "1",
                "revision_history": [
                    {
                        "date": when,
                        "number": "1",
                        "summary": f"Generated from journal chain head {model.chain_head}",
                    }
                ],
                "initial_release_date": when,
                "current_release_date": when,
                "generator": {"date": when, "engine": {"name": "cmspatch", "version": __version__}},
            },
        },
        "product_tree": _tree(model, ids),
        "vulnerabilities": [vulnerability(model, cve, ids) for cve in CVE_IDS],
    }


def validate_csaf(doc: dict[str, Any]) -> list[str]:
    """Problems against the official schema and the mandatory tests; [] for a valid document."""
    found = [
        f"schema at /{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in csaf_validator().iter_errors(doc)
    ]
    return found + [str(p) for p in check_mandatory(doc)]


def render_csaf(model: ExportModel, *, namespace: str | None = None, tlp: str = "AMBER") -> bytes:
    if not model.devices:
        raise ExportError("the campaign has no monitors: a VEX document would state nothing", reason="empty")
    if namespace is not None and not _URI.match(namespace):
        raise ExportError(
            f"the publisher namespace must be a URI (e.g. https://hospital.example), not {namespace!r}",
            reason="namespace-invalid",
        )
    if tlp not in TLP_LABELS:
        raise ExportError(f"TLP label must be one of {', '.join(TLP_LABELS)}", reason="tlp-invalid")
    doc = csaf_document(model, namespace=namespace, tlp=tlp)
    problems = validate_csaf(doc)
    if problems:
        raise ExportError(
            "the CSAF document would not validate: " + "; ".join(problems[:5]), reason="csaf-invalid"
        )
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
