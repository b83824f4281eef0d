"""A read-only survey exported as VEX and reports: honest statuses, behaviour observed, valid documents."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from orchestrator.cli.export import render
from orchestrator.domain.events import EventKind
from orchestrator.exports.csaf import validate_csaf
from orchestrator.exports.cyclonedx import validate_cyclonedx
from orchestrator.exports.model import ExportModel, Outcome, build_model
from tests.unit.test_status_survey import CVES, OLD_FW, SURVEY, _Chain

PATIENT = "Jane Synthetic-Patient"  # planted in a free-text field: no document may carry it
LEAK_SHA = "ab" * 32


def _check(chain: _Chain, device: str, check: str, outcome: str, summary: str, sha: str,
           details: dict[str, Any] | None = None) -> None:
    chain.add(SURVEY, EventKind.CHECK_RESULT, {"evidence": {
        "check": check, "source": "network" if check.startswith(("sinkhole", "udp-probe")) else "device",
        "observed_at": "2026-11-30T10:16:00Z", "outcome": outcome, "summary": summary, "sha256": sha,
        "details": {**(details or {}), "patient_name": PATIENT}}, "cves": []}, device)


def _survey_chain() -> _Chain:
    chain = _Chain()
    chain.header()
    _check(chain, "bed1", "sinkhole-window", "fail", "2 contact(s) from bed1 to 202.114.4.60: hl7 x2; "
           "patient data seen in clear (fields: PID)", LEAK_SHA, {"patient_record_seen": True, "contacts": 2})
    _check(chain, "bed1", "monitor-mount-string", "fail", "mount command found", "cd" * 32)
    chain.monitor("bed1", dict.fromkeys(CVES, "vulnerable"), "vulnerable", OLD_FW)
    for check in ("udp-listener", "monitor-mount-string", "nfs-mount"):
        _check(chain, "bed2", check, "pass", "clean", "ef" * 32)
    chain.monitor("bed2", dict.fromkeys(CVES, "fixed"), "fixed", OLD_FW)
    chain.monitor("bed3", dict.fromkeys(CVES, "inconclusive"), "unproven", None)  # unreachable: nothing seen
    chain.add(SURVEY, EventKind.CAMPAIGN_FINISHED, {"counts": {"vulnerable": 1, "fixed": 1, "unproven": 1}})
    return chain


def _survey() -> ExportModel:
    return build_model(_survey_chain().records, SURVEY)


def _ids(doc: dict[str, Any], status: str) -> set[str]:
    return {pid for v in doc["vulnerabilities"] for pid in v["product_status"].get(status, [])}


def test_a_survey_exports_to_csaf_vex_that_passes_the_schema_and_mandatory_tests() -> None:
    doc = json.loads(render(_survey(), "csaf"))
    assert validate_csaf(doc) == []
    assert doc["document"]["category"] == "csaf_vex" and "survey findings" in doc["document"]["title"]


def test_a_survey_states_known_affected_where_the_backdoor_was_seen_and_never_fixed() -> None:
    doc = json.loads(render(_survey(), "csaf"))
    assert _ids(doc, "known_affected") == {"CMSPATCH-BED1"}
    assert _ids(doc, "under_investigation") == {"CMSPATCH-BED3"}  # unreachable: nothing could be checked
    assert _ids(doc, "fixed") == set()  # a run that patched nothing never says fixed
    assert _ids(doc, "known_not_affected") == {"CMSPATCH-BED2"}
    impact = doc["vulnerabilities"][0]["threats"][0]
    assert impact["category"] == "impact" and "installed nothing" in impact["details"]
    leak = " ".join(r["details"] for v in doc["vulnerabilities"] for r in v.get("remediations", []))
    assert "patient data seen leaving" in leak


def test_cyclonedx_says_the_same_as_csaf_for_a_survey() -> None:
    text = render(_survey(), "cyclonedx").decode()
    assert validate_cyclonedx(text) == []
    bom = json.loads(text)
    states = {(v["id"], a["ref"].split(":")[2], v["analysis"]["state"]) for v in bom["vulnerabilities"]
              for a in v["affects"]}
    for cve in CVES:
        assert (cve, "bed1", "exploitable") in states and (cve, "bed3", "in_triage") in states
        assert (cve, "bed2", "not_affected") in states
    assert not any(v["analysis"]["state"] == "resolved" for v in bom["vulnerabilities"])
    assert all(v["analysis"].get("justification") == "code_not_present" for v in bom["vulnerabilities"]
               if v["analysis"]["state"] == "not_affected")


def test_the_reports_carry_the_behaviour_observed_per_monitor_with_its_evidence_hash() -> None:
    model = _survey()
    doc = json.loads(render(model, "json"))
    bed1 = next(d for d in doc["devices"] if d["device"] == "bed1")
    kinds = {f["kind"]: f for f in bed1["observed"]}
    assert {"patient-data-leaving", "indicator-contact", "backdoor-in-binaries"} <= set(kinds)
    assert kinds["patient-data-leaving"]["evidence"][0]["sha256"] == LEAK_SHA
    assert doc["campaign"]["mode"] == "survey" and doc["summary"]["survey"]["vulnerable"] == 1
    rows = {r["device"]: r for r in csv.DictReader(io.StringIO(render(model, "csv").decode()))}
    assert "patient data seen leaving" in rows["bed1"]["observed"]
    assert rows["bed2"]["observed"] == "none observed"
    assert rows["bed3"]["survey_status"] == "unproven"
    html = render(model, "html").decode()
    assert "survey report" in html and LEAK_SHA[:16] in html and "installed nothing" in html
    assert "<dt>Survey</dt><dd>? unproven (did not answer)</dd>" in html and "not done" not in html


def test_a_survey_counts_as_nothing_installed_and_no_document_carries_free_text() -> None:
    model = _survey()
    assert {r.outcome for r in model.devices} == {Outcome.NOT_DONE}
    for fmt in ("csv", "json", "html", "csaf", "cyclonedx"):
        assert PATIENT not in render(model, fmt).decode(), fmt


def test_a_journal_holding_only_a_survey_exports_that_survey_by_default() -> None:
    model = build_model(_survey_chain().records)
    assert model.campaign.id == SURVEY and model.campaign.mode == "survey"
