"""Engine rules of one monitor's steps, on scripted monitors: installer outcomes by the profile's own exit
codes, reboot proof, upload integrity, retries, and verdicts that need agreeing evidence."""

from __future__ import annotations

from dataclasses import replace

import pytest

from orchestrator.adapters.profile_file import load_profile
from orchestrator.adapters.scripted import now_iso
from orchestrator.domain.campaign import Ending
from orchestrator.domain.events import EventKind
from orchestrator.domain.lifecycle import TERMINAL
from orchestrator.ports import Observation
from tests.trust_helpers import FIXED_ELF, FIXED_VERSION
from tests.unit import engine_rules_rig as rig
from tests.unit.engine_rules_rig import Worlds, device, moves, policy, records, states

package = pytest.fixture(scope="module")(rig.package_fixture)
world = pytest.fixture(rig.world_fixture)

SHIPPED = ("emulated-cms-service-shell", "generic-busybox-no-triggers")


def _exit_codes() -> list[tuple[str, int, str]]:
    """Every exit code each shipped profile names, and one it does not (its ``other_exit``)."""
    cases: list[tuple[str, int, str]] = []
    for name in SHIPPED:
        installer = load_profile(name).installer
        cases += [(name, code, reason) for code, reason in installer.exit_codes.items()]
        cases.append((name, 99, installer.other_exit))
    return cases


@pytest.mark.parametrize(("profile", "code", "reason"), _exit_codes())
def test_the_installers_exit_code_means_what_the_profile_says(world: Worlds, profile: str, code: int,
                                                              reason: str) -> None:
    rules = world(device(1, profile=profile))
    m = rules.monitor(1)
    m.install_exit = code
    engine, _ = rules.run(policy(exercise_triggers=False))
    state, why = states(engine)["bed01"]
    if reason == "ok":  # installed: on to the reboot and the verification (inconclusive without triggers)
        assert m.count("reboot") == 1 and (state, why) == ("failed", "verification-inconclusive")
    else:
        assert (state, why) == ("failed", reason)
        assert m.count("install-run") == 1 and m.count("reboot") == 0  # never retried, never rebooted


def test_a_word_in_the_installers_message_names_the_reason_whatever_the_code(world: Worlds) -> None:
    rules = world(1)
    m = rules.monitor(1)
    m.install_exit, m.install_message = 1, "write error: No space left on device\n"
    engine, _ = rules.run()
    assert states(engine)["bed01"] == ("failed", "disk-full")


def test_a_full_disk_is_reported_by_its_profiles_code(world: Worlds) -> None:
    rules = world(device(1, profile="generic-busybox-no-triggers"))
    rules.monitor(1).disk_full()
    engine, _ = rules.run()
    assert states(engine)["bed01"] == ("failed", "disk-full")
    assert rules.monitor(1).install_exit == 28  # the generic profile's, not the shipped one's 6


def test_a_monitor_that_never_comes_back_from_its_reboot_fails_reboot_timeout(world: Worlds) -> None:
    rules = world(1)
    rules.monitor(1).reboot_returns = False
    engine, outcome = rules.run()
    assert states(engine)["bed01"] == ("failed", "reboot-timeout")
    assert outcome.halted is not None and outcome.halted.rule == "canary-failed"


def test_a_reboot_that_leaves_the_old_system_running_is_not_taken_for_one(world: Worlds) -> None:
    rules = world(1)
    rules.monitor(1).reboot_ignored = True
    engine, _ = rules.run(policy(reboot_timeout=0.05))
    assert states(engine)["bed01"] == ("failed", "reboot-not-observed")
    decisions = [r.data["decision"]["reason"] for r in records(engine, EventKind.BOOT_IDENTITY, "bed01")
                 if "decision" in r.data]
    assert decisions and set(decisions) == {"boot-id-unchanged"}


def test_a_silent_rollback_at_boot_fails_the_monitor_before_any_verdict(world: Worlds) -> None:
    rules = world(1)
    rules.monitor(1).rollback = True
    engine, _ = rules.run()
    assert states(engine)["bed01"] == ("failed", "silent-rollback")
    assert records(engine, EventKind.VERDICT, "bed01") == []


def test_a_corrupted_upload_is_deleted_and_sent_again_once(world: Worlds) -> None:
    rules = world(1)
    rules.monitor(1).corrupt_uploads = 1
    engine, _ = rules.run()
    assert ("uploading", "hash-mismatch-reupload") in moves(engine, "bed01")
    assert states(engine)["bed01"] == ("patched", "verified")
    assert rules.monitor(1).count("upload") == 2


def test_an_upload_corrupted_twice_fails_hash_mismatch_and_is_never_installed(world: Worlds) -> None:
    rules = world(1)
    rules.monitor(1).corrupt_uploads = 2
    engine, _ = rules.run()
    assert states(engine)["bed01"] == ("failed", "hash-mismatch")
    assert rules.monitor(1).count("install-run") == 0


def test_a_dropped_connection_is_retried_and_each_attempt_journalled(world: Worlds) -> None:
    rules = world(1)
    rules.monitor(1).flaky_runs = 1
    engine, _ = rules.run()
    assert states(engine)["bed01"] == ("patched", "verified")
    attempts = [(r.data["step"], r.data["attempt"], r.data["outcome"])
                for r in records(engine, EventKind.ATTEMPT, "bed01")]
    retried = next(i for i, (_, _, outcome) in enumerate(attempts) if outcome == "retry")
    step = attempts[retried][0]
    assert attempts[retried:retried + 2] == [(step, 1, "retry"), (step, 2, "ok")]


def test_an_unreachable_monitor_fails_unreachable_after_the_retry_policys_attempts(world: Worlds) -> None:
    rules = world(1)
    rules.monitor(1).unreachable = True
    engine, _ = rules.run()
    assert states(engine)["bed01"] == ("failed", "unreachable")
    connects = [r for r in records(engine, EventKind.ATTEMPT, "bed01") if r.data["step"] == "connect"]
    assert len(connects) == 3  # RETRY.attempts


def test_a_monitor_of_a_model_the_package_is_not_for_is_failed_before_the_upload(world: Worlds) -> None:
    rules = world(device(1, model="CMS6000"))  # the package names CMS8000 only
    engine, _ = rules.run()
    assert states(engine)["bed01"] == ("failed", "wrong-model")
    assert rules.monitor(1).count("upload") == 0


def test_already_patched_is_skipped_only_when_the_evidence_agrees(world: Worlds) -> None:
    rules = world(1)
    m = rules.monitor(1)
    m.flash(FIXED_VERSION, FIXED_ELF, FIXED_ELF)
    engine, outcome = rules.run()
    assert states(engine)["bed01"] == ("skipped", "already-patched")
    assert outcome.ending is Ending.COMPLETE and m.count("upload") == 0


def test_a_version_string_alone_does_not_make_a_monitor_already_patched(world: Worlds) -> None:
    rules = world(1)
    rules.monitor(1).version = FIXED_VERSION  # says the target; the backdoored binaries still run
    engine, _ = rules.run()
    assert states(engine)["bed01"] == ("failed", "backdoor-still-present")
    verdicts = {r.data["cve"]: r.data["verdict"] for r in records(engine, EventKind.VERDICT, "bed01")}
    assert set(verdicts.values()) == {"vulnerable"}
    assert rules.monitor(1).count("upload") == 0


def test_a_leak_seen_from_the_monitor_makes_it_vulnerable_whatever_its_files_say(world: Worlds) -> None:
    rules = world(1)
    m = rules.monitor(1)
    m.on("trigger", lambda mon: mon.leak("cms-telemetry", 515, patient_record=True))
    engine, _ = rules.run()
    assert states(engine)["bed01"] == ("failed", "backdoor-still-present")
    verdicts = {r.data["cve"]: r.data["verdict"] for r in records(engine, EventKind.VERDICT, "bed01")}
    assert verdicts["CVE-2025-0683"] == "vulnerable"


def test_a_contact_nobody_can_be_tied_to_makes_the_verdict_inconclusive_not_fixed(world: Worlds) -> None:
    rules = world(1)
    stranger = Observation(at="", source="127.99.0.7:40001", target="202.114.4.119:111", protocol="udp",
                           kind="rpc", summary="portmapper GETPORT", sha256="0" * 64)

    def contact(_: object) -> None:  # in the trigger's window, from an address no monitor is known by
        rules.fleet.observer.record(replace(stranger, at=now_iso()))

    rules.monitor(1).on("trigger", contact)
    engine, _ = rules.run()
    assert states(engine)["bed01"] == ("failed", "verification-inconclusive")
    assert records(engine, EventKind.UNATTRIBUTED_CONTACT)


def test_every_monitor_ends_in_a_final_state_or_a_deferral(world: Worlds) -> None:
    rules = world(4)
    rules.monitor(2).patient = True
    rules.monitor(3).install_exit = 6
    rules.monitor(4).reboot_returns = False
    engine, outcome = rules.run(policy(waves=("100%",), canary_must_pass=False, max_rechecks=0))
    assert all(d.state in TERMINAL or d.state.value == "deferred" for d in engine.status.devices.values())
    assert outcome.counts["patched"] == 1 and outcome.ending is Ending.INCOMPLETE
