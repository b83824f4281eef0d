"""Engine rules of interruption and resume, of who may drive a monitor (journal claims, the monitor's
lease) and of the hands-on path, on scripted monitors with the journal in a file (``durable``)."""

from __future__ import annotations

import time

import pytest

from orchestrator import wiring
from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.adapters.scripted import Hook, ScriptedMonitor
from orchestrator.domain.campaign import Ending
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.lease import HELD_ELSEWHERE, Lease
from orchestrator.engine import Engine
from orchestrator.errors import CampaignLocked, UsageError
from tests.trust_helpers import FIXED_ELF
from tests.unit import engine_rules_rig as rig
from tests.unit.engine_rules_rig import Rules, Worlds, device, moves, policy, records, states

package = pytest.fixture(scope="module")(rig.package_fixture)
world = pytest.fixture(rig.world_fixture)


class Crash(Exception):
    """The controller dies here (a hook raising it stands for kill -9 right after the monitor acted)."""


def _crash(_: ScriptedMonitor) -> None:
    raise Crash


def _resumed(rules: Rules, engine: Engine) -> Engine:
    """The campaign again, from the journal file as another process would open it."""
    journal = engine.journal
    assert isinstance(journal, SqliteJournal)
    journal.close()
    return rules.resume(engine.campaign_id, journal=rules.journal())


def _crashed(world: Worlds, event: str) -> tuple[Rules, ScriptedMonitor, Engine]:
    """A one-monitor campaign whose controller dies at ``event``, the first time it happens."""
    rules = world(1, durable=True)
    m = rules.monitor(1)
    m.on(event, _once(_crash))
    engine = rules.engine()
    with pytest.raises(Crash):
        engine.run()
    return rules, m, engine


def _lease(m: ScriptedMonitor, campaign: str, expires_in: float) -> None:
    """Another controller's lease, left on the monitor."""
    lease = Lease(campaign, "laptop-2:4242", int(time.time() + expires_in))
    m.files[m.lease_path] = (lease.text() + "\n").encode()


def _once(hook: Hook) -> Hook:
    fired: list[bool] = []

    def run(m: ScriptedMonitor) -> None:
        if not fired:
            fired.append(True)
            hook(m)
    return run


def test_an_interrupted_campaign_resumes_with_exactly_one_install_and_one_reboot(world: Worlds) -> None:
    rules = world(1, durable=True)
    m = rules.monitor(1)
    engine = rules.engine()
    m.on("install", _once(lambda mon: engine.interrupt("ctrl-c")))
    assert engine.run().ending is Ending.INTERRUPTED
    assert states(engine)["bed01"][0] == "rebooting"
    outcome = _resumed(rules, engine).run()
    assert outcome.ending is Ending.COMPLETE
    assert (m.count("install"), m.count("reboot")) == (1, 1)


def test_a_crash_after_the_install_ran_is_answered_by_looking_not_by_installing_again(world: Worlds) -> None:
    rules, m, engine = _crashed(world, "install")
    assert states(engine)["bed01"][0] == "installing"  # journalled before the action, not after
    again = _resumed(rules, engine)
    assert again.run().ending is Ending.COMPLETE
    assert m.count("install") == 1
    logs = [str(r.data["message"]) for r in records(again, EventKind.LOG, "bed01")]
    assert "install already applied before the interruption" in logs


def test_a_crash_after_the_reboot_goes_on_to_verify_without_rebooting_again(world: Worlds) -> None:
    rules, m, engine = _crashed(world, "reboot")
    again = _resumed(rules, engine)
    assert again.run().ending is Ending.COMPLETE
    assert m.count("reboot") == 1
    assert ("verifying", "rebooted-before-interruption") in moves(again, "bed01")


def test_a_resumed_upload_asks_the_clinical_gate_again(world: Worlds) -> None:
    rules, m, engine = _crashed(world, "upload")
    m.patient = True  # connected while the controller was down
    again = _resumed(rules, engine)
    again.run()
    # Nothing irreversible happened yet: deferred, and re-checked like any deferral (start's gate again).
    assert states(again)["bed01"] == ("deferred", "patient-connected")
    assert moves(again, "bed01")[-3:] == [("deferred", "patient-connected")] * 3  # the gate, 2 re-checks
    assert (m.count("upload"), m.count("install-run")) == (0, 0)  # the crashed upload never landed
    m.patient = False
    last = _resumed(rules, again)
    assert last.run().ending is Ending.COMPLETE
    assert states(last)["bed01"] == ("patched", "verified")
    assert (m.count("upload"), m.count("install-run")) == (1, 1)


def test_a_campaign_resumes_only_with_the_package_it_pushes(world: Worlds) -> None:
    rules = world(1)
    engine = rules.engine(policy(require_approval=True))
    engine.stop_at_gate()
    engine.run()
    (rules.directory / "other").mkdir()
    # Another build of the fix (one more byte in its updater): the bytes differ, the version does not.
    other = rig.signed_package(rules.directory / "other", update=FIXED_ELF + b"\0")
    with pytest.raises(UsageError) as refused:
        wiring.resume_engine(journal=engine.journal, campaign_id=engine.campaign_id,
                             inventory=rules.inventory, package=other, transports={}, operator="rule-test")
    assert refused.value.reason == "package-differs"


def test_another_campaigns_live_lease_on_the_monitor_defers_it_untouched(world: Worlds) -> None:
    rules = world(1)
    m = rules.monitor(1)
    _lease(m, "c-other-ward", expires_in=3600)
    engine, _ = rules.run(policy(max_rechecks=0))
    assert states(engine)["bed01"] == ("deferred", HELD_ELSEWHERE)
    deferral = records(engine, EventKind.STATE_CHANGED, "bed01")[-1]
    assert deferral.data["held_by"]["holder"] == "laptop-2:4242"
    assert m.count("upload") == 0


def test_an_expired_lease_is_taken_over_and_the_takeover_journalled(world: Worlds) -> None:
    rules = world(1)
    m = rules.monitor(1)
    _lease(m, "c-crashed", expires_in=-60)
    engine, outcome = rules.run()
    assert outcome.ending is Ending.COMPLETE
    taken = [r.data["lease"] for r in records(engine, EventKind.LOG, "bed01") if "lease" in r.data]
    assert [t["action"] for t in taken] == ["taken-over"]
    assert m.lease_path not in m.files  # given back once the monitor was settled


def test_a_second_controller_is_refused_by_the_lease_the_first_one_holds(world: Worlds) -> None:
    first = world(1)
    m = first.monitor(1)
    engine_a = first.engine()
    m.on("install", _once(lambda mon: engine_a.interrupt()))
    engine_a.run()  # interrupted mid-flight: the lease stays on the monitor
    # Another engineer, another journal, the same monitor (the scripted fleet is shared).
    engine_b = first.engine(policy(max_rechecks=0), journal=first.journal(), campaign_id="c-b")
    engine_b.run()
    assert states(engine_b)["bed01"] == ("deferred", HELD_ELSEWHERE)
    assert m.count("install") == 1  # B did nothing to it
    assert first.resume(engine_a.campaign_id, journal=engine_a.journal).run().ending is Ending.COMPLETE
    assert m.count("install") == 1


def test_a_second_process_on_the_same_journal_is_refused_by_the_claims(world: Worlds) -> None:
    rules = world(2, durable=True)
    engine_a = rules.engine()
    engine_b = rules.engine(journal=rules.journal())
    with engine_a.hold(), pytest.raises(CampaignLocked):
        engine_b.run()
    assert [m.count("connect") for m in rules.monitors] == [0, 0]


def test_a_hands_on_unit_gets_a_work_order_and_waits_for_its_technician(world: Worlds) -> None:
    rules = world(device(1, manual=True))
    engine, outcome = rules.run()
    assert states(engine)["bed01"] == ("awaiting-technician", "work-order-issued")
    assert outcome.ending is Ending.INCOMPLETE
    order = records(engine, EventKind.WORK_ORDER, "bed01")[0].data
    assert order["order"]["sha256"] == rules.package.sha256
    assert sorted(p.rsplit(".", 1)[1] for p in order["files"]) == ["json", "txt"]


def test_a_technicians_word_alone_never_makes_a_hands_on_unit_patched(world: Worlds) -> None:
    rules = world(device(1, manual=True))
    engine, _ = rules.run()
    engine.confirm_manual("bed01", "tech ana", version=rules.package.target_version)
    # It awaits its bench session (issue 12): not patched on their word, and not failed either.
    assert states(engine)["bed01"] == ("awaiting-bench", "technician-confirmed")
    assert not records(engine, EventKind.VERDICT, "bed01")


def test_a_trigger_the_profile_has_no_command_for_is_asked_of_a_technician(world: Worlds) -> None:
    rules = world(device(1, profile="generic-busybox-no-triggers"))
    engine = rules.engine()
    m = rules.monitor(1)

    def technician(record: JournalRecord) -> None:
        if record.kind is EventKind.TRIGGER_REQUESTED and record.device == "bed01":
            m.press(str(record.data["trigger"]))  # the technician's hands at the bed
            engine.answer_trigger("bed01", str(record.data["trigger"]), "tech ana")

    engine.subscribe(technician)
    outcome = engine.run()
    assert outcome.ending is Ending.COMPLETE, states(engine)
    asked = [r.data["trigger"] for r in records(engine, EventKind.TRIGGER_REQUESTED, "bed01")]
    assert asked == ["menu-update", "boot-key"]
    by = {r.data["trigger"]: r.data["by"] for r in records(engine, EventKind.TRIGGER_EXERCISED, "bed01")}
    assert by == {"menu-update": "technician tech ana", "boot-key": "technician tech ana"}


def test_the_scripted_monitors_were_only_sent_what_their_profiles_describe(world: Worlds) -> None:
    rules = world(device(1), device(2, profile="generic-busybox-no-triggers"))
    rules.run(policy(waves=("100%",), canary_must_pass=False, exercise_triggers=False))
    assert [m.unknown_commands for m in rules.monitors] == [[], []]
    assert all(m.count("install") == 1 for m in rules.monitors)
