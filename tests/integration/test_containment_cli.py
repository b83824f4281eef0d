"""`cmspatch contain record` and `cmspatch vitals`: facts about a monitor that every run holding it shows.

A survey of an emulated fleet is journalled; three monitors are then recorded contained (one with a
capture as evidence) and one gets a vitals check; `cmspatch status` of the survey shows all of it, and
the pseudo-run holding the facts is never taken for a campaign (status, resume)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.adapters.sinkhole import Sinkhole
from orchestrator.cli.main import main
from orchestrator.emulator import EmulatedFleet
from tests.integration.test_pcap_capture import TSHARK, capture


@pytest.fixture
def surveyed(fleet_factory: Callable[..., EmulatedFleet], tmp_path: Path,
             capsys: pytest.CaptureFixture[str]) -> tuple[EmulatedFleet, Path]:
    fleet = fleet_factory(4, states={"fixed": 4})
    journal = tmp_path / "journal.db"
    assert main(["survey", "-i", str(fleet.inventory_path), "--journal", str(journal), "--window", "0.3",
                 "--no-udp-probe", "--sinkhole-prefix", fleet.indicator_map.loopback_prefix]) in (0, 1)
    capsys.readouterr()
    return fleet, journal


def test_containment_of_three_monitors_shows_in_status(surveyed: tuple[EmulatedFleet, Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    fleet, journal = surveyed
    names = [m.name for m in fleet.monitors]
    inv = str(fleet.inventory_path)
    assert main(["contain", "record", names[0], names[1], "-i", inv, "--state", "isolated",
                 "--how", "VLAN 666, ACL CMSPATCH-BLOCK-CONTEC", "--by", "M. Bianchi (network)",
                 "--journal", str(journal)]) == 0
    assert main(["contain", "record", names[2], "-i", inv, "--state", "clinical-use", "--by", "M. Bianchi",
                 "--physician", "Dr. L. Verdi", "--journal", str(journal)]) == 0
    capsys.readouterr()
    assert main(["status", "--journal", str(journal), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    devices = status["devices"]
    assert devices[names[0]]["containment"]["state"] == "isolated"
    assert devices[names[0]]["containment"]["by"] == "M. Bianchi (network)"
    assert devices[names[2]]["containment"]["physician"] == "Dr. L. Verdi"
    assert devices[names[3]]["containment"] is None
    main(["status", "--journal", str(journal)])
    text = capsys.readouterr().out
    assert f"{names[0]}: isolated (VLAN 666, ACL CMSPATCH-BLOCK-CONTEC) confirmed by M. Bianchi" in text


def test_clinical_use_without_the_physician_is_refused(surveyed: tuple[EmulatedFleet, Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    fleet, journal = surveyed
    assert main(["contain", "record", fleet.monitors[0].name, "-i", str(fleet.inventory_path),
                 "--state", "clinical-use", "--by", "M. Bianchi", "--journal", str(journal)]) == 2
    assert "physician" in capsys.readouterr().err


def test_a_vitals_check_is_shown_by_the_run_that_holds_the_monitor_and_is_not_a_campaign(
        surveyed: tuple[EmulatedFleet, Path], capsys: pytest.CaptureFixture[str]) -> None:
    fleet, journal = surveyed
    name = fleet.monitors[1].name
    assert main(["vitals", name, "-i", str(fleet.inventory_path), "--simulator", "hr=60,spo2=98",
                 "--displayed", "hr=60,spo2=98", "--technician", "A. Rossi", "--journal", str(journal)]) == 0
    capsys.readouterr()
    main(["status", "--journal", str(journal), "--json"])  # the newest record is the fact, not a run
    status = json.loads(capsys.readouterr().out)
    assert status["campaign"].startswith("survey-")
    assert status["devices"][name]["vitals_checks"][0]["outcome"] == "within-tolerance"
    # the facts' pseudo-run is no run of its own: not shown as one, and (READ_ONLY_PREFIXES) never resumed
    assert main(["status", "--journal", str(journal), "--campaign", "device-records"]) == 2
    assert "no campaign device-records" in capsys.readouterr().err


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_a_capture_showing_the_monitor_leak_refuses_the_isolated_record(
        fleet_factory: Callable[..., EmulatedFleet], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    fleet = fleet_factory(2, states={"vulnerable": 2})
    leaking, quiet = fleet.monitors
    prefix = fleet.indicator_map.loopback_prefix
    path = tmp_path / "uplink.pcapng"
    with Sinkhole(fleet.indicator_map) as hole, capture(path, f"net {prefix}.0/24", leaking.address):
        leaking.connect_patient()
        assert hole.wait_for(lambda o: o.kind == "hl7" and o.source.startswith(leaking.address + ":"), 20)
    journal = tmp_path / "j.db"
    common = ["-i", str(fleet.inventory_path), "--state", "isolated", "--how", "VLAN 666",
              "--by", "M. Bianchi", "--pcap", str(path), "--indicator-prefix", prefix,
              "--journal", str(journal)]
    assert main(["contain", "record", leaking.name, *common]) == 1
    assert "not contained" in capsys.readouterr().err and not journal.exists()
    assert main(["contain", "record", quiet.name, *common, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["capture"]["indicator_contacts_from_monitors"] == 0 and out["capture"]["packets"] > 0


def test_containment_and_vitals_show_in_every_export(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.adapters.journal_sqlite import SqliteJournal
    from orchestrator.domain.events import Event
    from orchestrator.exports.schemas import csaf_validator
    from tests.unit.test_export_journal import build_campaign

    journal = tmp_path / "journal.db"
    with SqliteJournal(journal) as j:
        records = build_campaign()
        for r in records:
            j.append(Event(campaign=r.campaign, kind=r.kind, data=r.data, device=r.device, at=r.at))
    inventory = Path(__file__).parents[2] / "inventory.example.yml"
    assert main(["contain", "record", "north-icu-bed02", "-i", str(inventory), "--state", "isolated",
                 "--how", "VLAN 666", "--by", "M. Bianchi", "--note", "bed of patient Z", "--journal",
                 str(journal)]) == 0
    assert main(["vitals", "north-icu-bed02", "-i", str(inventory), "--simulator", "hr=80",
                 "--displayed", "hr=99", "--technician", "A. Rossi", "--journal", str(journal),
                 "--incident-dir", str(tmp_path / "inc")]) == 1
    capsys.readouterr()
    out = {}
    for fmt in ("json", "csv", "html", "csaf", "cyclonedx"):
        path = tmp_path / f"export.{fmt}"
        assert main(["export", "--format", fmt, "--out", str(path), "--journal", str(journal)]) in (0, 1)
        out[fmt] = path.read_text(encoding="utf-8")
    doc = json.loads(out["json"])
    row = next(d for d in doc["devices"] if d["device"] == "north-icu-bed02")
    assert row["containment"]["state"] == "isolated" and row["containment"]["by"] == "M. Bianchi"
    assert row["vitals_checks"][0]["outcome"] == "tampering-suspected"
    assert "isolated,M. Bianchi,tampering-suspected" in out["csv"]
    assert "Containment</dt><dd>isolated (VLAN 666), confirmed by M. Bianchi" in out["html"]
    assert "Contained: isolated (VLAN 666), confirmed by M. Bianchi" in out["csaf"]
    assert "cmspatch:containment" in out["cyclonedx"] and "Contained: isolated" in out["cyclonedx"]
    assert not list(csaf_validator().iter_errors(json.loads(out["csaf"])))
    assert all("patient Z" not in text for text in out.values())  # a free-text note is never exported
