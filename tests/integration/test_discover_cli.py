"""`cmspatch discover --pcap`: a real loopback capture of the emulated fleet, two monitors left out of the
inventory, and discover names exactly those two as unknown units with their addresses."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from orchestrator.adapters.sinkhole import Sinkhole
from orchestrator.cli.main import main
from orchestrator.emulator import EmulatedFleet
from orchestrator.emulator.backdoor import SYNTHETIC_PATIENT_NAME
from tests.integration.test_pcap_capture import TSHARK, capture

pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark (Debian package tshark) is not installed")


def _without(inventory: Path, names: set[str], out: Path) -> None:
    doc = yaml.safe_load(inventory.read_text(encoding="utf-8"))

    def prune(group: dict) -> None:  # type: ignore[type-arg]
        for name in names & set(group.get("hosts") or {}):
            del group["hosts"][name]
        for child in (group.get("children") or {}).values():
            prune(child)

    prune(doc["all"])
    out.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def test_capture_of_the_fleet_finds_the_two_units_missing_from_the_inventory(
        fleet_factory: Callable[..., EmulatedFleet], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    fleet = fleet_factory(4, states={"vulnerable": 4})
    prefix = fleet.indicator_map.loopback_prefix
    path = tmp_path / "mirror.pcapng"
    marker = fleet.monitors[0].address
    with Sinkhole(fleet.indicator_map) as hole, capture(path, f"net {prefix}.0/24", marker):
        for m in fleet.monitors:
            m.connect_patient()
        for m in fleet.monitors:
            assert hole.wait_for(lambda o, a=m.address: o.kind == "hl7" and o.source.startswith(a + ":"), 20)
    missing = {fleet.monitors[1].name, fleet.monitors[3].name}
    inventory = tmp_path / "inventory.yml"
    _without(fleet.inventory_path, missing, inventory)
    (tmp_path / "known_hosts").write_bytes((fleet.inventory_path.parent / "known_hosts").read_bytes())
    draft = tmp_path / "unknown.yml"
    code = main(["discover", "--pcap", str(path), "-i", str(inventory), "--indicator-prefix", prefix,
                 "--draft", str(draft), "--json"])
    found = json.loads(capsys.readouterr().out)
    assert code == 1
    assert sorted(h["address"] for h in found["unknown"]) == sorted(
        m.address for m in fleet.monitors if m.name in missing)
    assert {h["device"] for h in found["hosts"] if h["device"]} == {
        m.name for m in fleet.monitors if m.name not in missing}
    assert all("hl7" in h["kinds"] and h["patient_data"] for h in found["hosts"])
    text = draft.read_text(encoding="utf-8")
    assert all(f"ansible_host: {m.address}" in text for m in fleet.monitors if m.name in missing)
    # Field names are reported, never their values: the synthetic patient's name appears nowhere.
    assert all("patient_name" in h["field_names"] for h in found["hosts"])
    assert SYNTHETIC_PATIENT_NAME not in json.dumps(found) and SYNTHETIC_PATIENT_NAME not in text


def test_discover_refuses_a_file_that_is_not_a_capture(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "x.pcap"
    bogus.write_bytes(b"not a capture at all")
    assert main(["discover", "--pcap", str(bogus)]) == 2
    assert "not a pcap" in capsys.readouterr().err
