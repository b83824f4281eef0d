"""The lease on the monitor: a live one held by another campaign keeps us off, an expired one is taken
over and journalled, ours lasts through the reboot and is given back at the end. Real SSH, emulated
monitors, real BusyBox shell writing the lease file in the monitor's upload directory."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.lease import HELD_ELSEWHERE, LEASE_NAME, new_lease, parse_lease
from orchestrator.domain.status import project
from orchestrator.emulator import EmulatedFleet
from tests.integration.engine_rig import Rig, rig


def lease_file(r: Rig, index: int) -> Path:
    return r.fleet.monitors[index].root / "data" / "upgrade" / LEASE_NAME


def plant(r: Rig, index: int, campaign: str, expires_in: float) -> None:
    lease = new_lease(campaign, "other-laptop:4242", now=time.time() + expires_in, ttl=0)
    lease_file(r, index).write_text(lease.text() + "\n")


def test_a_live_lease_of_another_campaign_keeps_the_monitor_untouched_and_names_the_holder(
        tmp_path: Path) -> None:
    with rig(tmp_path, monitors=2, ) as r:
        plant(r, 0, "c-elsewhere", expires_in=3600)
        held, free = (m.name for m in r.fleet.monitors)
        with r.journal() as journal:
            r.engine(journal).run()
            fleet = project(journal.records())
            records = list(journal.records())
        assert (fleet.devices[held].state.value, fleet.devices[held].reason) == ("deferred", HELD_ELSEWHERE)
        named = [rec.data["held_by"] for rec in records
                 if rec.device == held and rec.data.get("reason") == HELD_ELSEWHERE]
        assert named and named[0]["campaign"] == "c-elsewhere" and named[0]["holder"] == "other-laptop:4242"
        assert r.installs(held) == 0 and r.installs(free) == 1
        assert fleet.devices[free].state.value == "patched"
        still = parse_lease(lease_file(r, 0).read_text())
        assert still is not None and still.campaign == "c-elsewhere"  # someone else's: not ours to remove
        assert not lease_file(r, 1).exists()  # ours, given back once the monitor was patched


def test_an_expired_lease_is_taken_over_and_the_journal_says_whose_it_was(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, ) as r:
        plant(r, 0, "c-crashed", expires_in=-5)
        name = r.fleet.monitors[0].name
        with r.journal() as journal:
            r.engine(journal).run()
            fleet = project(journal.records())
            taken = [rec.data["lease"] for rec in journal.records()
                     if rec.kind is EventKind.LOG and rec.data.get("lease", {}).get("action") == "taken-over"]
        assert fleet.devices[name].state.value == "patched" and r.installs(name) == 1
        assert len(taken) == 1 and taken[0]["previous"]["campaign"] == "c-crashed"
        assert not lease_file(r, 0).exists()


def test_our_lease_is_on_the_monitor_through_the_reboot_and_given_back_after_verification(
        tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, ) as r:
        seen: dict[str, str | None] = {}

        def look(record: JournalRecord) -> None:
            to = record.data.get("to")
            if record.kind is EventKind.STATE_CHANGED and to in ("installing", "verifying"):
                lease = parse_lease(lease_file(r, 0).read_text()) if lease_file(r, 0).exists() else None
                seen[record.data["to"]] = lease.campaign if lease else None

        with r.journal() as journal:
            engine = r.engine(journal)
            engine.subscribe(look)
            engine.run()
        assert seen == {"installing": engine.campaign_id, "verifying": engine.campaign_id}
        assert not lease_file(r, 0).exists()


def test_a_lease_lost_between_steps_stops_this_campaign_before_the_install(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r:
        name = r.fleet.monitors[0].name

        def steal(record: JournalRecord) -> None:  # another controller takes over while we upload
            if record.kind is EventKind.STATE_CHANGED and record.data.get("to") == "uploaded":
                plant(r, 0, "c-thief", expires_in=3600)

        with r.journal() as journal:
            engine = r.engine(journal)
            engine.subscribe(steal)
            engine.run()
            fleet = project(journal.records())
            lost = [rec.data for rec in journal.records()
                    if rec.kind is EventKind.LOG and rec.data.get("lease", {}).get("action") == "lost"]
        assert r.installs(name) == 0
        assert (fleet.devices[name].state.value, fleet.devices[name].reason) == ("deferred", HELD_ELSEWHERE)
        assert len(lost) == 1 and lost[0]["lease"]["now"]["campaign"] == "c-thief"
        still = parse_lease(lease_file(r, 0).read_text())
        assert still is not None and still.campaign == "c-thief"


def test_a_survey_presses_no_trigger_on_a_monitor_another_campaign_drives_and_gives_its_lease_back(
        fleet_factory: Callable[..., EmulatedFleet], capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from orchestrator.cli.main import main

    fleet = fleet_factory(2, states={"fixed": 2})
    driven, free = fleet.monitors
    held = driven.root / "data" / "upgrade" / LEASE_NAME
    held.parent.mkdir(parents=True, exist_ok=True)
    held.write_text(new_lease("c-other", "other-laptop:4242", now=time.time(), ttl=600).text() + "\n")
    assert main(["survey", "-i", str(fleet.inventory_path), "--exercise-triggers", "--window", "0.5",
                 "--no-udp-probe", "--sinkhole-prefix", fleet.indicator_map.loopback_prefix,
                 "--json"]) in (0, 1)
    rows = {r["device"]: r for r in json.loads(capsys.readouterr().out)["devices"]}
    assert rows[driven.name]["triggers"] == [] and rows[free.name]["triggers"] == ["menu-update", "boot-key"]
    why = [e["summary"] for e in rows[driven.name]["evidence"] if e["check"] == "sinkhole-after-boot-key"]
    assert why and "driven by campaign c-other on other-laptop:4242" in why[0]
    assert [a for a in driven.activity() if a.get("kind") == "trigger"] == []
    assert len([a for a in free.activity() if a.get("kind") == "trigger"]) == 2
    still = parse_lease(held.read_text())
    assert still is not None and still.campaign == "c-other"  # the other campaign's lease is untouched
    assert not (free.root / "data" / "upgrade" / LEASE_NAME).exists()  # ours given back after the survey
