"""Hands-on work orders say where, what (file, hash, size), how, and how to confirm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.adapters.manual import ManualTransport, WorkOrder, build_work_order
from orchestrator.adapters.profile_file import load_profile
from orchestrator.domain.devices import CredentialRef, DeliveryPath, Device
from orchestrator.errors import PermanentTransportError

DEVICE = Device(name="south-ward-bed05", model="CMS8000", serial="CMS8K-2302-00099", site="South Hospital",
                ward="Cardiology", bed="05", address="", port=0, user="", credential=CredentialRef(),
                host_key=None, delivery=DeliveryPath.MANUAL, asset_tag="BME-009005")


def _order(profile: str = "emulated-cms-service-shell", package: str = "fix.tar.gz") -> WorkOrder:
    return build_work_order(DEVICE, profile=load_profile(profile), campaign="c1", package_name=package,
                            sha256="ab" * 32, size=1234, target_version="CMS7.820.200.05",
                            issued_at="2026-11-24T20:00:00+00:00")


def test_the_printable_order_locates_the_monitor_and_names_the_file_and_hash() -> None:
    text = _order().text()
    for needle in ("South Hospital", "Cardiology", "bed 05", "CMS8K-2302-00099", "BME-009005", "fix.tar.gz",
                   "ab" * 32, "1234 bytes", "cmspatch confirm south-ward-bed05"):
        assert needle in text


def test_the_order_asks_for_the_clinical_check_first() -> None:
    steps = _order().steps
    assert "no patient is connected" in steps[0]


def test_orders_are_written_as_text_and_json(tmp_path: Path) -> None:
    paths = ManualTransport(tmp_path).issue(_order())
    assert sorted(p.suffix for p in paths) == [".json", ".txt"]
    data = json.loads((tmp_path / "work-order-south-ward-bed05.json").read_text())
    assert data["sha256"] == "ab" * 32 and data["steps"]


def test_the_hands_on_path_never_opens_a_connection() -> None:
    with pytest.raises(PermanentTransportError) as info:
        ManualTransport().open(DEVICE)
    assert info.value.reason == "no-service-access"


def test_the_shipped_profile_gives_the_orders_words_of_before_profiles() -> None:
    order = _order()
    assert order.profile == "emulated-cms-service-shell" and order.usb_path == "fix.tar.gz"
    assert order.steps[3] == ("Copy the file to a clean USB stick as fix.tar.gz and install it from the "
                              "monitor's service menu.")
    assert order.steps[4] == ("After the monitor restarts, check the version in the system information "
                              "screen reads CMS7.820.200.05.")


def test_another_profile_gives_its_usb_path_commands_and_about_screen() -> None:
    order = _order("generic-busybox-no-triggers", package="fix 2.tar.gz")
    text = order.text()
    assert order.usb_path == "sysupgrade/fix 2.tar.gz" and "On USB    sysupgrade/fix 2.tar.gz" in text
    assert "it lands in /overlay/upgrade" in text
    # The profile's own commands, for the file in its upload directory, quoted as the engine would run them.
    assert "run `sha256sum '/overlay/upgrade/fix 2.tar.gz'`" in text
    assert "Run `sysupgrade --no-reboot '/overlay/upgrade/fix 2.tar.gz'`" in text
    assert "check the Firmware line in Settings > About this device reads CMS7.820.200.05" in text
    assert order.about_screen == "Settings > About this device"
    assert not any("service menu" in step or "cms-" in step for step in order.steps)
    assert "no patient is connected" in order.steps[0] and order.steps[-1].startswith("Record completion")
