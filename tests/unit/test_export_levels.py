"""Every export says how each verdict was established (domain.evidence), and status counts by level.

One campaign journal (real SQLite) holds a monitor proven on the network path and a hands-on unit proven
at its bench: three CVEs fixed at bench level, the UDP one inconclusive (its profile names no port), and
the version the technician read. The documents are the CLI's own.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.cli.main import main
from orchestrator.domain.events import Event, EventKind
from orchestrator.domain.evidence import DESCRIPTION, EvidenceLevel

C = "c-levels"
NET, USB = "north-icu-bed01", "north-icu-usb01"
UDP = "CVE-2024-12248"
BENCH_FIXED = ("CVE-2025-0626", "CVE-2025-1204", "CVE-2025-0683")


def _verdict(cve: str, verdict: str, level: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"cve": cve, "verdict": verdict, "reason": f"{verdict} by rule", "evidence": []}
    if level:
        data["level"] = level
    return data


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("levels") / "journal.db"
    header = {"model": "CMS8000", "site": "North", "ward": "ICU", "firmware": "old"}
    events = [
        Event(C, EventKind.CAMPAIGN_CREATED, {
            "waves": [[NET, USB]], "target_version": "CMS7.820.200.05", "devices": {
                NET: {**header, "serial": "S1", "bed": "01", "delivery": "ssh"},
                USB: {**header, "serial": "S9", "bed": "99", "delivery": "manual"}}}),
        *(Event(C, EventKind.VERDICT, _verdict(cve, "fixed", None), NET) for cve in (*BENCH_FIXED, UDP)),
        Event(C, EventKind.STATE_CHANGED, {"from": "verifying", "to": "patched", "reason": "verified"}, NET),
        Event(C, EventKind.STATE_CHANGED, {"from": "pending", "to": "awaiting-technician"}, USB),
        Event(C, EventKind.TECHNICIAN_CONFIRMED, {"technician": "L. Bianchi", "note": "",
                                                  "version": "CMS7.820.200.05"}, USB),
        Event(C, EventKind.STATE_CHANGED, {"from": "awaiting-technician", "to": "awaiting-bench",
                                           "reason": "technician-confirmed"}, USB),
        *(Event(C, EventKind.VERDICT, _verdict(cve, "fixed", "bench"), USB) for cve in BENCH_FIXED),
        Event(C, EventKind.VERDICT, _verdict(UDP, "inconclusive", "bench"), USB),
        Event(C, EventKind.STATE_CHANGED, {"from": "awaiting-bench", "to": "patched",
                                           "reason": "verified-at-bench"}, USB),
    ]
    with SqliteJournal(path) as j:
        for event in events:
            j.append(event)
    return path


def _export(journal: Path, fmt: str, out: Path) -> str:
    assert main(["export", "--journal", str(journal), "--format", fmt, "--out", str(out)]) == 0
    return out.read_text(encoding="utf-8")


def test_status_counts_patched_monitors_and_verdicts_by_level(journal: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--journal", str(journal), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["patched_by_level"] == {"device+network": 1, "bench": 1}
    assert status["verdicts_by_level"] == {"device+network": {"fixed": 4},
                                           "bench": {"fixed": 3, "inconclusive": 1}}
    assert status["devices"][USB]["verdict_levels"] == dict.fromkeys((*BENCH_FIXED, UDP), "bench")
    assert main(["status", "--journal", str(journal)]) == 0
    text = capsys.readouterr().out
    assert "patched by evidence level: 1 device+network, 1 bench" in text
    assert "bench: 3 fixed, 1 inconclusive" in text


def test_the_csv_has_an_evidence_level_column(journal: Path, tmp_path: Path) -> None:
    rows = {r["device"]: r for r in csv.DictReader(io.StringIO(_export(journal, "csv", tmp_path / "e.csv")))}
    assert (rows[NET]["evidence_level"], rows[USB]["evidence_level"]) == ("device+network", "bench")
    assert rows[USB]["firmware_after"] == "CMS7.820.200.05"
    assert rows[USB]["firmware_after_by"] == "technician L. Bianchi" and rows[NET]["firmware_after_by"] == ""


def test_the_json_gives_each_verdict_its_level(journal: Path, tmp_path: Path) -> None:
    doc = json.loads(_export(journal, "json", tmp_path / "e.json"))
    usb = next(d for d in doc["devices"] if d["device"] == USB)
    assert usb["evidence_level"] == "bench" and usb["firmware_after_by"] == "technician L. Bianchi"
    assert {c: v["level"] for c, v in usb["verdicts"].items()} == dict.fromkeys((*BENCH_FIXED, UDP), "bench")
    assert usb["verdicts"][UDP]["verdict"] == "inconclusive"


def test_csaf_notes_say_which_monitors_each_level_holds_for(journal: Path, tmp_path: Path) -> None:
    doc = json.loads(_export(journal, "csaf", tmp_path / "e.csaf.json"))
    for vuln in doc["vulnerabilities"]:
        notes = {n["title"]: n["text"] for n in vuln["notes"]}
        assert DESCRIPTION[EvidenceLevel.BENCH] in notes["Evidence level: bench"]
        assert "S9" in notes["Evidence level: bench"] and "S1" in notes["Evidence level: device+network"]
    udp = next(v for v in doc["vulnerabilities"] if v["cve"] == UDP)
    assert "(inconclusive)" in next(n["text"] for n in udp["notes"] if n["title"] == "Evidence level: bench")


def test_cyclonedx_analysis_detail_names_the_level(journal: Path, tmp_path: Path) -> None:
    doc = json.loads(_export(journal, "cyclonedx", tmp_path / "e.cdx.json"))
    details = [v["analysis"]["detail"] for v in doc["vulnerabilities"]]
    assert sum("Evidence level bench:" in d for d in details) == 4  # one statement per CVE for the unit
    assert any("Evidence level device+network:" in d for d in details)
    props = {p["name"]: p["value"] for c in doc["components"] for p in c.get("properties", [])
             if any(q["value"] == USB for q in c.get("properties", []))}
    assert props["cmspatch:evidence_level"] == "bench"


def test_html_shows_the_level_per_monitor_and_per_verdict(journal: Path, tmp_path: Path) -> None:
    html = _export(journal, "html", tmp_path / "e.html")
    assert "<th>Evidence level</th>" in html
    assert "<strong>bench</strong>: " + DESCRIPTION[EvidenceLevel.BENCH] in html
    assert "(read by technician L. Bianchi)" in html
