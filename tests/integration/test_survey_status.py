"""`cmspatch survey` / `verify` then `cmspatch status` and `export`: real CLI processes, emulated fleet.

One module-scoped fleet (two vulnerable monitors, one fixed, one unreachable) is surveyed once and
verified once into one journal; the tests read that journal back through the CLI as an engineer would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.domain.events import EventKind
from orchestrator.emulator import EmulatedFleet


@dataclass
class Done:
    code: int
    out: str
    err: str


@dataclass
class Site:
    fleet: EmulatedFleet
    journal: Path
    survey: str  # campaign ids
    verify: str
    unreachable: str

    def cli(self, *args: str) -> Done:
        proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args],
                              capture_output=True, text=True, cwd=self.journal.parent, timeout=120,
                              check=False)
        return Done(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def site(module_fleet_factory: Callable[..., EmulatedFleet],
         tmp_path_factory: pytest.TempPathFactory) -> Site:
    fleet = module_fleet_factory(4, states={"vulnerable": 2, "fixed": 2})
    unreachable = [m for m in fleet.monitors if m.firmware_state == "fixed"][1]
    unreachable.inject("unreachable")
    journal = tmp_path_factory.mktemp("survey-status") / "journal.db"
    ids = []
    for mode in ("survey", "verify"):
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli.main", mode, "-i", str(fleet.inventory_path),
             "--journal", str(journal), "--window", "1", "--no-udp-probe",
             "--sinkhole-prefix", fleet.indicator_map.loopback_prefix],
            capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 1, proc.stderr  # some monitors are vulnerable: exit 1 by contract
        ids.append(proc.stderr.split("recorded as campaign ")[1].split()[0])
    return Site(fleet, journal, ids[0], ids[1], unreachable.name)


def test_survey_writes_a_header_an_auditor_can_read(site: Site) -> None:
    with SqliteJournal(site.journal) as journal:
        records = list(journal.records(site.survey))
    assert records[0].kind is EventKind.SURVEY_STARTED
    header = records[0].data
    assert header["mode"] == "survey" and header["window"] == 1.0 and header["exercise_triggers"] is False
    assert set(header["devices"]) == {m.name for m in site.fleet.monitors}
    assert header["network"] == f"sinkhole {site.fleet.indicator_map.loopback_prefix}"
    assert records[-1].kind is EventKind.CAMPAIGN_FINISHED
    assert sum(records[-1].data["counts"].values()) == 4
    assert site.cli("audit", "verify", "--journal", str(site.journal)).code == 0


def test_status_of_a_survey_shows_each_monitor_its_class_firmware_and_verdicts(site: Site) -> None:
    done = site.cli("status", "--journal", str(site.journal), "--campaign", site.survey)
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[0] == f"survey {site.survey}: finished, 4 monitor(s)"
    for m in site.fleet.monitors:
        row = next(line for line in lines if f" {m.name} " in line)
        if m.name == site.unreachable:
            assert row.startswith("[? ] unproven") and "(inventory; not read)" in row
            assert row.endswith("(unreachable)")
        elif m.firmware_state == "vulnerable":
            assert row.startswith("[!!] vulnerable") and m.version in row and "VULNERABLE" in row
        else:  # fixed firmware, triggers not pressed: the two hidden-mount CVEs stay unproven by rule
            assert row.startswith("[? ] unproven") and m.version in row
    assert "4 monitor(s): 2 vulnerable, 2 unproven, 0 fixed, 0 unknown; 4 affected; 1 unreachable" in lines
    assert "per CVE:" in lines


def test_status_defaults_to_the_newest_run_and_shows_verify_runs_too(site: Site) -> None:
    done = site.cli("status", "--journal", str(site.journal), "--json")
    assert done.code == 0, done.err
    doc = json.loads(done.out)
    assert doc["campaign"] == site.verify and doc["mode"] == "verify" and doc["header"] is True
    assert doc["counts"] == {"vulnerable": 2, "unproven": 2, "fixed": 0, "unknown": 0}
    vulnerable = [m.name for m in site.fleet.monitors if m.firmware_state == "vulnerable"]
    for name in vulnerable:
        assert "vulnerable" in doc["devices"][name]["verdicts"].values()
        assert len(doc["devices"][name]["verdicts"]) == 4


def test_a_survey_exports_as_valid_vex_with_known_affected_monitors_and_nothing_fixed(site: Site) -> None:
    from orchestrator.exports.csaf import validate_csaf
    from orchestrator.exports.cyclonedx import validate_cyclonedx

    out = site.journal.parent / "survey.csaf.json"
    done = site.cli("export", "--journal", str(site.journal), "--campaign", site.survey,
                    "--format", "csaf", "--out", str(out))
    assert done.code == 0, done.err
    assert "survey: 2 vulnerable, 2 unproven" in done.out
    doc = json.loads(out.read_text())
    assert validate_csaf(doc) == []
    status = {s: {p for v in doc["vulnerabilities"] for p in v["product_status"].get(s, [])}
              for s in ("fixed", "known_affected", "under_investigation")}
    serial = {m.name: f"CMSPATCH-{m.serial}" for m in site.fleet.monitors}
    vulnerable = {serial[m.name] for m in site.fleet.monitors if m.firmware_state == "vulnerable"}
    assert vulnerable <= status["known_affected"] and not status["fixed"]
    assert serial[site.unreachable] in status["under_investigation"]
    bom = site.journal.parent / "survey.cdx.json"
    assert site.cli("export", "--journal", str(site.journal), "--campaign", site.survey,
                    "--format", "cyclonedx", "--out", str(bom)).code == 0
    assert validate_cyclonedx(bom.read_text()) == []
    report = site.journal.parent / "survey.json"
    assert site.cli("export", "--journal", str(site.journal), "--campaign", site.survey,
                    "--format", "json", "--out", str(report)).code == 0
    rows = {d["device"]: d for d in json.loads(report.read_text())["devices"]}
    for m in site.fleet.monitors:
        if m.firmware_state == "vulnerable":
            assert "backdoor-in-binaries" in {f["kind"] for f in rows[m.name]["observed"]}
