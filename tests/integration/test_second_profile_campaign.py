"""The second shipped device profile runs a campaign end to end, with no code change (issue 11).

One fleet, one monitor on the shipped profile (the emulated CMS service shell) and three on
``generic-busybox-no-triggers`` (``/usr/bin/devstatus``, ``sysupgrade``, ``/sbin/reboot -d 1``, binaries
in ``/usr/lib/cms``, uploads in ``/overlay/upgrade``, no service command for the triggers), the
inventory naming each monitor's profile as ``cmspatch_profile``. The emulator serves the generic monitors
from the profile's data (``orchestrator.emulator.profiled``); the engine reads the profile. Real SSH on
loopback, real SQLite, the sinkhole; the technician is played in-process, as in test_technician_trigger.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from orchestrator.adapters.profile_file import load_profile, shipped_profile
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.verdicts import Verdict
from orchestrator.emulator.fleet import EmulatedFleet
from tests.integration.engine_rig import fast_policy, rig, technician

GENERIC = "generic-busybox-no-triggers"
UDP_CVE = "CVE-2024-12248"  # the UDP service check
SHIPPED, PATCHED, PATIENT, FULL = "north-icu-bed01", "south-picu-bed01", "east-er-bed01", "north-ccu-bed01"


def test_the_generic_profile_patches_asks_the_technician_defers_and_maps_its_exit_code(tmp_path: Path
                                                                                       ) -> None:
    start = functools.partial(EmulatedFleet.start, profiles={PATCHED: GENERIC, PATIENT: GENERIC,
                                                             FULL: GENERIC})
    with rig(tmp_path, monitors=4, faults=f"{PATIENT}=patient", start=start) as r, r.journal() as journal:
        profiles = {d.name: d.profile for d in r.inventory.devices}
        assert profiles == {SHIPPED: "emulated-cms-service-shell", PATCHED: GENERIC, PATIENT: GENERIC,
                            FULL: GENERIC}
        engine = r.engine(journal, fast_policy(waves=("100%",), trigger_timeout=30.0, max_rechecks=2,
                                                 canary_must_pass=False))
        asked: list[tuple[str, str]] = []
        threads: list[threading.Thread] = []
        press_and_answer = technician(r, lambda d, t: engine.answer_trigger(d, t, "Ana Lima"), threads, asked)

        def on_record(record: JournalRecord) -> None:
            if record.device == FULL and record.kind is EventKind.STATE_CHANGED \
                    and record.data["to"] == "installing":  # uploaded; the partition fills before install
                r.fleet.monitor(FULL).inject("disk-full")
            press_and_answer(record)

        engine.subscribe(on_record)
        engine.run(auto_approve=True)
        for thread in threads:
            thread.join(timeout=30)
        devices = engine.status.devices

        shipped, generic = devices[SHIPPED], devices[PATCHED]
        assert shipped.state is DeviceState.PATCHED, shipped.reason
        assert set(shipped.verdicts.values()) == {Verdict.FIXED}
        # Installed with its own command, rebooted, and proven per CVE like the shipped one.
        assert r.installs(SHIPPED) == 1 and r.installs(PATCHED) == 1
        assert set(generic.verdicts.values()) == {Verdict.FIXED}, generic.verdicts
        assert generic.state is DeviceState.PATCHED, generic.reason
        assert sorted(asked) == [(PATCHED, "boot-key"), (PATCHED, "menu-update")]  # no service command
        commands = [a.get("command", "") for a in r.fleet.monitor(PATCHED).activity()
                    if a["kind"] == "command"]
        assert any(c.startswith("sysupgrade --no-reboot /overlay/upgrade/") for c in commands), commands
        assert "/sbin/reboot -d 1" in commands and not any("cms-" in c for c in commands), commands
        reboots = [a for a in r.fleet.monitor(PATCHED).activity() if a["kind"] == "boot"]
        assert len(reboots) == 2  # the fleet's start and the campaign's reboot

        # Deferred by the profile's grammar: PATIENT_STATE=admitted is its "patient" value (the shipped
        # grammar would not know the key, and could only say "unknown").
        assert devices[PATIENT].state is DeviceState.DEFERRED, devices[PATIENT].reason
        assert devices[PATIENT].reason == "patient-connected"
        assert r.installs(PATIENT) == 0

        # Disk full through the profile's exit code alone: the message names none of its words, and the
        # shipped installer table would call exit 28 a plain installer failure.
        assert (devices[FULL].state, devices[FULL].reason) == (DeviceState.FAILED, "disk-full")
        errors = [rec.data["message"] for rec in journal.records(engine.campaign_id)
                  if rec.kind is EventKind.LOG and rec.device == FULL and rec.data.get("level") == "error"]
        assert errors and errors[-1].startswith("sysupgrade: "), errors
        assert load_profile(GENERIC).installer.outcome(28, errors[-1]) == "disk-full"
        assert shipped_profile().installer.outcome(28, errors[-1]) == "installer-failed"
        assert journal.verify().ok
