"""`cmspatch incident`: a real survey catches a monitor sending patient data; the draft names it, carries
the evidence hashes and the containment, and holds none of the emulated patient's values."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.domain.events import EventKind
from orchestrator.emulator import EmulatedFleet
from orchestrator.emulator.backdoor import Patient


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120, check=False)


def test_incident_draft_for_the_monitor_caught_leaking(fleet_factory: Callable[..., EmulatedFleet],
                                                       tmp_path: Path) -> None:
    fleet = fleet_factory(2, states={"vulnerable": 2})
    leaking, quiet = fleet.monitors
    leaking.connect_patient()
    journal = tmp_path / "journal.db"
    survey = _cli(tmp_path, "survey", "-i", str(fleet.inventory_path), "--journal", str(journal),
                  "--window", "8", "--limit", leaking.name, "--no-udp-probe", "--operator", "Ada Tech",
                  "--sinkhole-prefix", fleet.indicator_map.loopback_prefix)
    assert survey.returncode == 1, survey.stderr
    held = _cli(tmp_path, "contain", "record", leaking.name, "-i", str(fleet.inventory_path), "--journal",
                str(journal), "--state", "disconnected", "--by", "Ada Tech")
    assert held.returncode == 0, held.stderr
    with SqliteJournal(journal) as j:
        leak = next(r.data["evidence"] for r in j.records() if r.kind is EventKind.CHECK_RESULT
                    and r.data["evidence"]["check"] == "sinkhole-window")
    assert leak["outcome"] == "fail"

    done = _cli(tmp_path, "incident", leaking.name, "--journal", str(journal), "--reporter",
                "Dr. Maria Rossi", "--facility", "Ospedale Nord", "--json")
    assert done.returncode == 0, done.stderr
    drafts = json.loads(done.stdout)["drafts"]
    assert [d["device"] for d in drafts] == [leaking.name] and "patient-data-leaving" in drafts[0]["grounds"]
    draft = json.loads(Path(drafts[0]["json"]).read_text())
    assert draft["device"]["serial"] == leaking.serial and draft["reporter"] == "Dr. Maria Rossi"
    assert leak["sha256"] in json.dumps(draft["observed"])
    assert any("disconnected" in a and "Ada Tech" in a for a in draft["actions_taken"])
    patient = Patient(department="", bed="")
    # the values no hash or timestamp can hold by chance (two-digit weights could)
    values = [patient.name, patient.number, patient.doctor, patient.birth_date]
    for path in (Path(drafts[0]["json"]), Path(drafts[0]["html"])):
        text = path.read_text()
        assert leak["sha256"] in text
        assert [v for v in values if v in text] == [], path  # no patient value reaches a draft

    none = _cli(tmp_path, "incident", quiet.name, "--journal", str(journal))
    assert none.returncode == 2 and "[unknown-device]" in none.stderr  # never surveyed: no record of it
    every = _cli(tmp_path, "incident", "--all", "--journal", str(journal), "--out", str(tmp_path / "all"),
                 "--reporter", "Dr. Maria Rossi")
    assert every.returncode == 0, every.stderr
    assert len(list((tmp_path / "all").glob("incident-*.html"))) == 1
