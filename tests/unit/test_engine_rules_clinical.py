"""Engine rules of the clinical gate, on scripted monitors: a monitor in clinical use is never disturbed.

Each rule runs the real Engine, device flow, lease, journal and verification; only the monitor is
scripted (``orchestrator.adapters.scripted``), answering its own device profile.
"""

from __future__ import annotations

from datetime import time

import pytest

from orchestrator.adapters.scripted import ScriptedMonitor
from orchestrator.domain.campaign import Ending
from orchestrator.domain.events import EventKind
from tests.unit import engine_rules_rig as rig
from tests.unit.engine_rules_rig import Rules, Worlds, moves, policy, records, states

package = pytest.fixture(scope="module")(rig.package_fixture)
world = pytest.fixture(rig.world_fixture)


@pytest.fixture
def rules(world: Worlds) -> Rules:
    return world(1)


def _touched(m: ScriptedMonitor) -> list[str]:
    """What changed the monitor: uploads, installer runs, reboots, triggers, probes."""
    changes = ("upload", "install-run", "reboot", "trigger", "udp-probe")
    return [kind for kind, _ in m.activity if kind in changes]


def test_a_monitor_with_a_patient_connected_is_deferred_and_left_untouched(rules: Rules) -> None:
    rules.monitor(1).patient = True
    engine, outcome = rules.run()
    assert states(engine)["bed01"] == ("deferred", "patient-connected")
    assert _touched(rules.monitor(1)) == []
    assert outcome.ending is Ending.INCOMPLETE


def test_an_active_alarm_defers_the_monitor(rules: Rules) -> None:
    rules.monitor(1).alarm = True
    engine, _ = rules.run()
    assert states(engine)["bed01"] == ("deferred", "alarm-active")
    assert _touched(rules.monitor(1)) == []


@pytest.mark.parametrize("text", ["garbage\n", "", "patient=none\n", "patient=none\nalarm=maybe\n",
                                  "patient=none\npatient=connected\nalarm=none\n"])
def test_a_status_that_does_not_read_as_clear_is_do_not_disturb(rules: Rules, text: str) -> None:
    rules.monitor(1).status_text = text
    engine, _ = rules.run()
    assert states(engine)["bed01"][0] == "deferred"
    assert _touched(rules.monitor(1)) == []


def test_a_status_command_that_fails_is_an_unknown_status(rules: Rules) -> None:
    m = rules.monitor(1)
    m.status_exit = 1
    engine, _ = rules.run()
    assert states(engine)["bed01"] == ("deferred", "clinical-status-unknown")
    assert _touched(m) == []


def test_a_deferred_monitor_is_rechecked_and_patched_once_the_patient_is_gone(rules: Rules) -> None:
    m = rules.monitor(1)
    m.patient = True
    m.on("connect", lambda mon: setattr(mon, "patient", mon.count("connect") < 1))  # gone by the 2nd visit
    engine, outcome = rules.run()
    assert moves(engine, "bed01")[0] == ("deferred", "patient-connected")
    assert states(engine)["bed01"] == ("patched", "verified")
    assert outcome.ending is Ending.COMPLETE
    assert m.count("install") == 1


def test_a_monitor_still_in_use_after_every_recheck_stays_deferred(rules: Rules) -> None:
    rules.monitor(1).patient = True
    engine, outcome = rules.run(policy(max_rechecks=2))
    assert moves(engine, "bed01") == [("deferred", "patient-connected")] * 3  # the first, then 2 re-checks
    assert engine.status.devices["bed01"].rechecks == 2
    assert outcome.ending is Ending.INCOMPLETE
    assert _touched(rules.monitor(1)) == []


def test_a_patient_connected_during_the_upload_defers_before_the_install(rules: Rules) -> None:
    m = rules.monitor(1)
    m.on("upload", lambda mon: setattr(mon, "patient", True))
    engine, _ = rules.run(policy(max_rechecks=0))
    assert states(engine)["bed01"] == ("deferred", "patient-connected")
    assert m.count("upload") == 1 and m.count("install-run") == 0 and m.count("reboot") == 0


def test_after_a_mid_upload_deferral_the_recheck_installs_exactly_once(rules: Rules) -> None:
    m = rules.monitor(1)
    m.on("upload", lambda mon: setattr(mon, "patient", mon.count("upload") == 0))  # the first upload only
    m.on("connect", lambda mon: setattr(mon, "patient", False))  # gone by the re-check
    engine, _ = rules.run()
    assert ("deferred", "patient-connected") in moves(engine, "bed01")
    assert states(engine)["bed01"] == ("patched", "verified")
    assert (m.count("install"), m.count("reboot")) == (1, 1)


def test_a_patient_connected_after_the_install_postpones_the_reboot(rules: Rules) -> None:
    m = rules.monitor(1)
    m.on("install", lambda mon: setattr(mon, "patient", True))
    engine, _ = rules.run()
    assert states(engine)["bed01"][0] == "rebooting"  # installed, not rebooted: kept for `run --resume`
    assert m.count("reboot") == 0
    logs = [str(r.data["message"]) for r in records(engine, EventKind.LOG, "bed01")]
    assert any(message.startswith("reboot postponed: patient-connected") for message in logs)


def test_outside_its_maintenance_window_a_monitor_is_deferred_without_a_connection(rules: Rules) -> None:
    engine, _ = rules.run(policy(maintenance_windows={"North": "22:00-06:00"}), clock=lambda: time(12, 0))
    assert states(engine)["bed01"] == ("deferred", "outside-maintenance-window")
    assert rules.monitor(1).count("connect") == 0


def test_a_patient_connected_at_verification_holds_the_triggers_and_the_probe(rules: Rules) -> None:
    m = rules.monitor(1)
    m.on("reboot", lambda mon: setattr(mon, "patient", True))
    engine, _ = rules.run()
    assert m.count("trigger") == 0 and m.count("udp-probe") == 0
    assert states(engine)["bed01"] == ("failed", "verification-inconclusive")  # held is not proven
