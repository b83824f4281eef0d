"""``cmspatch profile check`` over real SSH on the emulated fleet: each monitor's read-only profile
commands are run and judged; a monitor whose status command is missing, or whose profile names a
command the unit does not have, is reported; nothing that disturbs a monitor runs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.adapters.profile_file import SHIPPED
from orchestrator.domain.profile import DEFAULT_PROFILE
from orchestrator.emulator import EmulatedFleet
from tests.integration.test_profile_paths import inventory_with


def _cli(inventory: Path, *args: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "profile", "check", "-i",
                           str(inventory), "--json", *args], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.stderr == "" or proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_profile_check_reports_a_missing_status_command_and_a_wrong_profile(
        fleet_factory: Callable[..., EmulatedFleet], tmp_path: Path) -> None:
    fleet = fleet_factory(3)
    good, no_status, wrong = (m.name for m in fleet.monitors)
    (fleet.monitor(no_status).root / "usr/sbin/cms-status").unlink()
    variant = tmp_path / "wrong.yml"
    variant.write_text((SHIPPED / f"{DEFAULT_PROFILE}.yml").read_text()
                       .replace("name: emulated-cms-service-shell", "name: wrong-vendor")
                       .replace("firmware_read: cat /etc/firmware_version", "firmware_read: fwinfo"))
    inventory = inventory_with(fleet.inventory_path, wrong, "cmspatch_profile", str(variant))
    before = {m.name: len(m.activity()) for m in fleet.monitors}

    code, report = _cli(inventory)

    assert code == 1 and report["all_parse"] is False
    rows = {r["device"]: r for r in report["devices"]}
    steps = ["clinical_status", "firmware_read", "free_space", "boot_identity"]
    assert [a["step"] for a in rows[good]["answers"]] == steps
    assert all(a["parses"] for a in rows[good]["answers"])
    status = {a["step"]: a for a in rows[no_status]["answers"]}["clinical_status"]
    assert not status["parses"] and "missing" in status["meaning"] and status["exit_status"] == 127
    firmware = {a["step"]: a for a in rows[wrong]["answers"]}["firmware_read"]
    assert rows[wrong]["profile"] == "wrong-vendor"
    assert not firmware["parses"] and "missing" in firmware["meaning"]
    assert {a["step"]: a for a in rows[wrong]["answers"]}["clinical_status"]["parses"]
    # read-only: nothing installed, rebooted or triggered on any monitor
    for m in fleet.monitors:
        kinds = {a.get("kind") for a in m.activity()[before[m.name]:]}
        assert not kinds & {"install", "reboot", "boot", "trigger", "upload", "udp"}, (m.name, kinds)


def test_profile_check_exits_0_when_every_answer_parses(fleet_factory: Callable[..., EmulatedFleet]) -> None:
    fleet = fleet_factory(2)
    code, report = _cli(fleet.inventory_path, "--limit", fleet.monitors[0].name)
    assert code == 0 and report["all_parse"] is True
    assert [r["device"] for r in report["devices"]] == [fleet.monitors[0].name]
    free = {a["step"]: a for a in report["devices"][0]["answers"]}["free_space"]
    assert "KiB free on /data" in free["meaning"]


def test_a_bad_profile_is_refused_with_file_and_line_before_any_monitor_is_asked(
        fleet_factory: Callable[..., EmulatedFleet], tmp_path: Path) -> None:
    fleet = fleet_factory(1)
    monitor = fleet.monitors[0]
    bad = tmp_path / "bad.yml"
    bad.write_text((SHIPPED / f"{DEFAULT_PROFILE}.yml").read_text().replace("sha256sum {path}",
                                                                           "sha256sum {file}"))
    inventory = inventory_with(fleet.inventory_path, monitor.name, "cmspatch_profile", str(bad))
    logins = len([a for a in monitor.activity() if a.get("kind") == "login"])
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "profile", "check", "-i",
                           str(inventory)], capture_output=True, text=True, timeout=120, check=False)
    line = next(n for n, t in enumerate(bad.read_text().splitlines(), 1) if "{file}" in t)
    assert proc.returncode == 2 and f"{bad}:{line}" in proc.stderr and "[bad-profile]" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len([a for a in monitor.activity() if a.get("kind") == "login"]) == logins
