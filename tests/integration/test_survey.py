"""`cmspatch survey` / `verify` end to end: real CLI process, emulated fleet, sinkhole, SQLite journal."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.domain.events import EventKind
from orchestrator.emulator import EmulatedFleet
from orchestrator.emulator.backdoor import SYNTHETIC_PATIENT_NAME


@dataclass
class Run:
    code: int
    doc: dict[str, Any]
    stderr: str


@dataclass
class Site:
    fleet: EmulatedFleet
    out: Path
    patient: str  # name of the vulnerable monitor with a patient connected
    unreachable: str
    runs: dict[str, Run]

    def reachable_fixed(self) -> list[str]:
        fixed = [m.name for m in self.fleet.monitors if m.firmware_state == "fixed"]
        return [name for name in fixed if name != self.unreachable]

    def cli(self, *args: str) -> Run:
        args = args if "--window" in args else (*args, "--window", "1")
        key = " ".join(args)
        if key not in self.runs:
            tag = f"run{len(self.runs)}"
            stdout, stderr = self.out / f"{tag}.json", self.out / f"{tag}.log"
            with stdout.open("wb") as out, stderr.open("wb") as err:
                proc = subprocess.run(
                    [sys.executable, "-m", "orchestrator.cli.main", *args,
                     "-i", str(self.fleet.inventory_path),
                     "--journal", str(self.out / "journal.db"), "--json",
                     "--sinkhole-prefix", self.fleet.indicator_map.loopback_prefix],
                    stdout=out, stderr=err, cwd=self.out, timeout=120, check=False)
            text = stdout.read_text()
            if not text.strip():
                pytest.fail(f"cmspatch {key} printed no JSON (exit {proc.returncode}): {stderr.read_text()}")
            self.runs[key] = Run(proc.returncode, json.loads(text), stderr.read_text())
        return self.runs[key]


@pytest.fixture(scope="module")
def site(module_fleet_factory: Callable[..., EmulatedFleet],
         tmp_path_factory: pytest.TempPathFactory) -> Site:
    fleet = module_fleet_factory(4, states={"vulnerable": 2, "fixed": 2})
    vulnerable = [m for m in fleet.monitors if m.firmware_state == "vulnerable"]
    fixed = [m for m in fleet.monitors if m.firmware_state == "fixed"]
    vulnerable[0].connect_patient()
    fixed[1].inject("unreachable")
    return Site(fleet, tmp_path_factory.mktemp("survey-out"), vulnerable[0].name, fixed[1].name, {})


def by_name(run: Run) -> dict[str, dict[str, Any]]:
    return {d["device"]: d for d in run.doc["devices"]}


def test_survey_finds_every_vulnerable_monitor(site: Site) -> None:
    run = site.cli("survey")
    rows = by_name(run)
    for m in site.fleet.monitors:
        if m.firmware_state == "vulnerable":
            assert rows[m.name]["status"] == "vulnerable" and rows[m.name]["affected"]
    assert run.code == 1


def test_survey_changes_nothing_and_presses_no_trigger(site: Site) -> None:
    before = {m.name: m.installed_version for m in site.fleet.monitors}
    site.cli("survey")
    assert {m.name: m.installed_version for m in site.fleet.monitors} == before
    kinds = {entry["kind"] for m in site.fleet.monitors for entry in m.activity()}
    assert "trigger" not in kinds and "nfs-mount" not in kinds


def test_survey_without_triggers_cannot_prove_the_hidden_mount_fixed(site: Site) -> None:
    fixed = site.reachable_fixed()[0]
    row = by_name(site.cli("survey"))[fixed]
    assert row["status"] == "unproven"
    assert {v["cve"]: v["verdict"] for v in row["verdicts"]}["CVE-2025-0626"] == "inconclusive"


def test_survey_summarises_the_fleet_by_model_and_firmware(site: Site) -> None:
    summary = site.cli("survey").doc["summary"]
    assert summary["monitors"] == 4 and summary["unreachable"] == 1
    assert sum(sum(c.values()) for c in summary["by_firmware"].values()) == 4


def test_unreachable_monitor_is_inconclusive_in_the_survey(site: Site) -> None:
    row = by_name(site.cli("survey"))[site.unreachable]
    assert not row["reachable"] and row["status"] == "unproven"
    assert "fixed" not in {v["verdict"] for v in row["verdicts"]}


def test_verify_with_triggers_proves_the_fixed_monitor_fixed(site: Site) -> None:
    rows = by_name(site.cli("verify", "--exercise-triggers"))
    fixed = site.reachable_fixed()
    assert all(rows[name]["all_fixed"] for name in fixed)


def test_survey_records_survey_and_verdict_events_in_the_journal(site: Site) -> None:
    campaign = site.cli("survey").doc["campaign"]
    assert campaign.startswith("survey-")
    with SqliteJournal(site.out / "journal.db") as journal:
        kinds = [r.kind for r in journal.records(campaign)]
    assert kinds.count(EventKind.SURVEY) == 4 and kinds.count(EventKind.VERDICT) == 16
    assert EventKind.TRIGGER_EXERCISED not in kinds


def test_patient_data_is_seen_but_no_file_the_runs_wrote_holds_the_patient(site: Site) -> None:
    site.cli("verify", "--exercise-triggers")
    # The emulated monitor retries a refused stream with back-off (up to 5 s): a long window on that one
    # monitor, which ends as soon as its telemetry arrives.
    survey = site.cli("survey", "--limit", site.patient, "--window", "8")
    leak = next(e for e in by_name(survey)[site.patient]["evidence"] if e["check"] == "sinkhole-window")
    assert leak["details"]["patient_record_seen"]  # the positive control: patient data did flow
    assert survey.doc["summary"]["observed"]["patient_data_in_clear"] == 1
    written = [p for p in site.out.rglob("*") if p.is_file()]
    assert any(p.name.startswith("journal.db") for p in written)
    needle = SYNTHETIC_PATIENT_NAME.encode()
    assert [p.name for p in written if needle in p.read_bytes()] == []


def test_verify_against_the_package_compares_installed_binaries(site: Site) -> None:
    from orchestrator.emulator.firmware import build_package

    package = build_package(site.out.parent / "fixed.tar.gz", variant="fixed")
    rows = by_name(site.cli("verify", "--exercise-triggers", "--package", str(package)))
    fixed = rows[site.reachable_fixed()[0]]
    hashes = next(e for e in fixed["evidence"] if e["check"] == "binary-hashes")
    assert hashes["outcome"] == "pass" and hashes["details"]["compared_with_manifest"] == 2
    assert fixed["all_fixed"]
    vulnerable = next(r for r in rows.values() if r["status"] == "vulnerable" and r["reachable"])
    assert next(e for e in vulnerable["evidence"] if e["check"] == "binary-hashes")["outcome"] == "fail"
