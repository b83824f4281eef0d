"""The second shipped device profile on real OpenSSH monitors, with no code change (issue 11).

The monitors are sshd in BusyBox chroots whose device side follows ``generic-busybox-no-triggers``: its
status program, installer, reboot, firmware file, binaries and upload directory are BusyBox shell scripts
and links written from the profile's data (``emulator.profiled``), no Python on the monitor, and no
service command for the triggers (a technician presses the keys, played in-process as in
test_second_profile_campaign). These monitors have no network side (see test_openssh_monitors), so only
the device checks tell vulnerable from fixed.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.verdicts import Verdict
from orchestrator.emulator.openssh import OpenSshFleet, missing_tools
from tests.integration.engine_rig import fast_policy, rig, technician

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"needs {', '.join(missing_tools())}")
GENERIC = "generic-busybox-no-triggers"
WINDOW = 0.4


def test_profile_check_on_openssh_monitors_of_the_generic_profile_reports_a_missing_status_program(
        openssh_fleet_factory: Callable[..., OpenSshFleet]) -> None:
    fleet = openssh_fleet_factory(2, profiles=GENERIC)
    good, no_status = (m.name for m in fleet.monitors)
    (fleet.monitor(no_status).root / "usr/bin/devstatus").unlink()

    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "profile", "check", "-i",
                           str(fleet.inventory_path), "--json"], capture_output=True, text=True, timeout=120,
                          check=False)

    assert proc.returncode == 1, proc.stderr
    rows = {r["device"]: r for r in json.loads(proc.stdout)["devices"]}
    assert {r["profile"] for r in rows.values()} == {GENERIC}
    assert all(a["parses"] for a in rows[good]["answers"]), rows[good]
    status = {a["step"]: a for a in rows[no_status]["answers"]}["clinical_status"]
    assert not status["parses"] and "missing" in status["meaning"] and status["exit_status"] == 127
    free = {a["step"]: a for a in rows[good]["answers"]}["free_space"]
    assert free["parses"] and "KiB free on /data" in free["meaning"], free  # its mount
    commands = [a["command"] for a in fleet.monitor(good).activity() if a["kind"] == "exec"]
    assert "/usr/bin/devstatus --clinical" in commands and not any("cms-" in c for c in commands), commands


def test_a_campaign_of_the_generic_profile_on_openssh_monitors_defers_patches_and_proves_per_cve(
        tmp_path: Path) -> None:
    start = functools.partial(OpenSshFleet.start, profiles=GENERIC)
    with rig(tmp_path, monitors=2, start=start) as r, r.journal() as journal:
        patched, patient = (m.name for m in r.fleet.monitors)
        r.fleet.monitor(patient).connect_patient()
        engine = r.engine(journal, fast_policy(waves=("100%",), trigger_timeout=30.0, max_rechecks=1,
                                                 canary_must_pass=False, observation_window=WINDOW))
        asked: list[tuple[str, str]] = []
        threads: list[threading.Thread] = []
        engine.subscribe(technician(r, lambda d, t: engine.answer_trigger(d, t, "Ana Lima"), threads, asked))
        engine.run(auto_approve=True)
        for thread in threads:
            thread.join(timeout=30)
        devices = engine.status.devices

        assert devices[patched].state is DeviceState.PATCHED, devices[patched].reason
        assert devices[patched].verdicts and set(devices[patched].verdicts.values()) == {Verdict.FIXED}
        assert sorted(asked) == [(patched, "boot-key"), (patched, "menu-update")]  # no service command
        assert r.installs(patched) == 1
        commands = [a["command"] for a in r.fleet.monitor(patched).activity() if a["kind"] == "exec"]
        assert any(c.startswith("sysupgrade --no-reboot /overlay/upgrade/") for c in commands), commands
        assert "/sbin/reboot -d 1" in commands and not any("cms-" in c for c in commands), commands
        assert [a["kind"] for a in r.fleet.monitor(patched).activity()].count("boot") == 2

        # Deferred by the profile's grammar (PATIENT_STATE=admitted), never installed.
        assert devices[patient].state is DeviceState.DEFERRED, devices[patient].reason
        assert devices[patient].reason == "patient-connected"
        assert r.installs(patient) == 0
        assert journal.verify().ok
