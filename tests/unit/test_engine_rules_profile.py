"""Engine rules that follow the monitor's device profile, on scripted monitors answering that profile:
its status grammar gates, its paths receive the upload and the lease, its declared checks are all that
is run, and a check it cannot run leaves its CVEs inconclusive, never fixed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.adapters.profile_file import load_profile, profile_path
from orchestrator.domain.events import EventKind
from orchestrator.domain.lease import LEASE_NAME
from tests.unit import engine_rules_rig as rig
from tests.unit.engine_rules_rig import Worlds, device, policy, records, states

package = pytest.fixture(scope="module")(rig.package_fixture)
world = pytest.fixture(rig.world_fixture)
SHIPPED = ("emulated-cms-service-shell", "generic-busybox-no-triggers")


def _busy_values() -> list[tuple[str, str, str, str]]:
    """(profile, role, busy value, the deferral it means) for every busy value each shipped grammar names."""
    deferral = {"patient": "patient-connected", "alarm": "alarm-active"}
    cases: list[tuple[str, str, str, str]] = []
    for name in SHIPPED:
        grammar = load_profile(name).status
        for role, key in (("patient", grammar.patient), ("alarm", grammar.alarm)):
            cases += [(name, role, value, deferral[role]) for value in key.busy]
    return cases


@pytest.mark.parametrize(("profile", "role", "value", "reason"), _busy_values())
def test_every_busy_value_of_the_profiles_grammar_defers_the_monitor(world: Worlds, profile: str, role: str,
                                                                     value: str, reason: str) -> None:
    rules = world(device(1, profile=profile))
    m = rules.monitor(1)
    grammar = m.profile.status
    status = {"patient": grammar.patient.clear, "alarm": grammar.alarm.clear, role: value}
    m.status_text = f"{grammar.patient.key}={status['patient']}\n{grammar.alarm.key}={status['alarm']}\n"
    engine, _ = rules.run()
    assert states(engine)["bed01"] == ("deferred", reason)
    assert m.count("upload") == 0


def test_another_profiles_clear_words_are_not_clear_for_this_one(world: Worlds) -> None:
    rules = world(device(1, profile="generic-busybox-no-triggers"))
    rules.monitor(1).status_text = "patient=none\nalarm=none\n"  # the shipped grammar's clear
    engine, _ = rules.run()
    assert states(engine)["bed01"] == ("deferred", "clinical-status-unknown")


def test_the_upload_and_the_lease_go_where_the_profile_says(world: Worlds) -> None:
    rules = world(device(1, profile="generic-busybox-no-triggers"))
    m = rules.monitor(1)
    seen: list[str] = []
    m.on("install", lambda mon: seen.extend(mon.files))
    rules.run(policy(exercise_triggers=False))
    upload_dir = m.profile.upload_dir
    assert upload_dir == "/overlay/upgrade"
    assert sorted(seen) == [f"{upload_dir}/{LEASE_NAME}", f"{upload_dir}/{rules.package.package_name}"]


def test_a_campaigns_upload_dir_overrides_the_profiles(world: Worlds) -> None:
    rules = world(1)
    m = rules.monitor(1)
    seen: list[str] = []
    m.on("install", lambda mon: seen.extend(mon.files))
    engine, _ = rules.run(policy(upload_dir="/data/cmspatch"))
    assert states(engine)["bed01"] == ("patched", "verified")
    assert sorted(seen) == [f"/data/cmspatch/{LEASE_NAME}", f"/data/cmspatch/{rules.package.package_name}"]


def _without(directory: Path, check: str) -> str:
    """A copy of the shipped profile that does not declare ``check`` (its unit cannot run it)."""
    text = profile_path(SHIPPED[0]).read_text()
    text, dropped = re.subn(rf"^\s*- {re.escape(check)}(\s+#.*)?\n", "", text, flags=re.M)
    assert dropped == 1
    text = text.replace(f"name: {SHIPPED[0]}", "name: no-udp-listener-check")
    path = directory / "no-udp-listener-check.yml"
    path.write_text(text)
    assert check not in load_profile(str(path)).device_checks
    return str(path)


def test_a_check_the_profile_does_not_declare_is_never_sent_and_its_cve_stays_open(world: Worlds,
                                                                                   tmp_path: Path) -> None:
    rules = world(device(1, profile=_without(tmp_path, "udp-listener")))
    m = rules.monitor(1)
    engine, _ = rules.run()
    assert m.unknown_commands == []  # nothing was sent that the unit has no answer for
    verdicts = {r.data["cve"]: r.data["verdict"] for r in records(engine, EventKind.VERDICT, "bed01")}
    assert verdicts["CVE-2024-12248"] == "inconclusive"
    assert {v for cve, v in verdicts.items() if cve != "CVE-2024-12248"} == {"fixed"}
    assert states(engine)["bed01"] == ("failed", "verification-inconclusive")
