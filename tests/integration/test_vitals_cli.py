"""`cmspatch vitals`: a wrong displayed value is journalled and opens an incident draft without patient
data; a matching check opens none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.cli.main import main

INVENTORY = Path(__file__).parents[2] / "inventory.example.yml"


def _run(tmp_path: Path, displayed: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(["vitals", "north-icu-bed01", "-i", str(INVENTORY), "--simulator",
                 "hr=80,spo2=97,nibp=120/80,temp=37.0,resp=15", "--displayed", displayed,
                 "--technician", "A. Rossi (biomedical engineering)", "--simulator-id", "ProSim 8 SN 4411",
                 "--journal", str(tmp_path / "j.db"), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_one_wrong_value_opens_an_incident_draft_with_the_evidence_hash(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(tmp_path, "hr=80,spo2=88,nibp=120/80,temp=37.0,resp=15", capsys)
    assert code == 1 and out["outcome"] == "tampering-suspected" and out["mismatches"] == ["spo2"]
    draft = json.loads(Path(out["incident_draft"]).read_text())
    assert draft["draft"] is True and draft["device"]["serial"] == "CMS8K-2301-00017"
    assert draft["reporter"] == "A. Rossi (biomedical engineering)"
    observed = json.dumps(draft["observed"])
    assert "SpO2: simulator set to 97 %, monitor displayed 88" in observed and "vitals-mismatch" in observed
    assert draft["facility"]["ward"] and draft["device"]["model"] == "CMS8000"  # the inventory's identity
    with SqliteJournal(tmp_path / "j.db") as journal:
        records = list(journal.records())
    assert len(records) == 1 and records[0].kind.value == "vitals-check"
    assert draft["observed"][0]["evidence"][0]["sha256"] == records[0].hash
    assert "ProSim 8 SN 4411" in observed
    assert Path(out["incident_draft"]).with_suffix(".html").exists()  # the same draft, printable


def test_a_matching_check_is_journalled_and_opens_no_draft(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(tmp_path, "hr=81,spo2=97,nibp=121/80,temp=37.1,resp=15", capsys)
    assert code == 0 and out["outcome"] == "within-tolerance" and out["incident_draft"] is None
    assert not (tmp_path / "incidents").exists()


def test_bad_values_are_exit_2_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["vitals", "north-icu-bed01", "-i", str(INVENTORY), "--simulator", "hr=80",
                 "--displayed", "hr=eighty", "--technician", "A. Rossi", "--journal", str(tmp_path / "j.db")])
    assert code == 2 and not (tmp_path / "j.db").exists()


def test_the_monitors_device_profile_states_the_tolerance(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    inventory = tmp_path / "inv.yml"
    inventory.write_text(INVENTORY.read_text().replace(
        "            north-icu-bed01:\n",
        "            north-icu-bed01:\n              cmspatch_profile: generic-busybox-no-triggers\n", 1))
    code = main(["vitals", "north-icu-bed01", "-i", str(inventory), "--simulator", "temp=37.0",
                 "--displayed", "temp=37.15", "--technician", "A. Rossi", "--journal", str(tmp_path / "j.db"),
                 "--incident-dir", str(tmp_path / "inc"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["outcome"] == "tampering-suspected"  # the profile's +-0.1, not the default 0.2
    assert out["tolerances_from"] == "device profile generic-busybox-no-triggers"
