"""Campaign rules: halting thresholds, clinical gating, maintenance windows, resume decisions."""

from __future__ import annotations

from datetime import time

import pytest

from orchestrator.domain.campaign import (
    CampaignPolicy,
    ClinicalStatus,
    Deferral,
    Step,
    Tally,
    clinical_deferral,
    counts_as_failure,
    halt_decision,
    in_window,
    parse_cms_status,
    plan_device,
    resume_step,
    window_deferral,
)
from orchestrator.domain.devices import CredentialRef, DeliveryPath, Device
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.errors import UsageError

QUIET = CampaignPolicy(canary_must_pass=False)


def _device(site: str = "North", ward: str = "ICU", delivery: DeliveryPath = DeliveryPath.SSH) -> Device:
    return Device(name="bed1", model="CMS8000", serial="S1", site=site, ward=ward, bed="1",
                  address="127.0.0.1", port=22, user="service", credential=CredentialRef(key_file="k"),
                  host_key="SHA256:x",
                  delivery=delivery)


def test_a_canary_failure_halts_the_campaign() -> None:
    decision = halt_decision(CampaignPolicy(), Tally(1, 1), Tally(1, 1), wave_index=0)
    assert decision is not None and decision.rule == "canary-failed"


def test_a_failure_after_the_canary_alone_does_not_halt_by_default() -> None:
    assert halt_decision(CampaignPolicy(), Tally(5, 1), Tally(4, 1), wave_index=1) is None


def test_the_cumulative_failure_count_halts_when_reached() -> None:
    policy = CampaignPolicy(max_failures=2, canary_must_pass=False)
    assert halt_decision(policy, Tally(9, 1), Tally(3, 1), 2) is None
    decision = halt_decision(policy, Tally(10, 2), Tally(4, 1), 2)
    assert decision is not None
    assert (decision.rule, decision.failed, decision.executed) == ("max-failures", 2, 10)


def test_the_failure_percentage_waits_for_the_minimum_executed() -> None:
    policy = CampaignPolicy(max_failure_pct=50, min_executed_for_pct=4, canary_must_pass=False)
    assert halt_decision(policy, Tally(3, 3), Tally(3, 3), 1) is None
    decision = halt_decision(policy, Tally(4, 2), Tally(4, 2), 1)
    assert decision is not None and decision.rule == "max-failure-pct"


def test_the_per_wave_count_is_checked_inside_the_wave() -> None:
    policy = CampaignPolicy(wave_max_failures=2, canary_must_pass=False)
    decision = halt_decision(policy, Tally(20, 3), Tally(5, 2), 3)
    assert decision is not None and decision.rule == "wave-max-failures"


def test_unreachable_counts_as_failure_unless_configured_otherwise() -> None:
    assert counts_as_failure(CampaignPolicy(), DeviceState.FAILED, "unreachable")
    assert not counts_as_failure(CampaignPolicy(unreachable_is_failure=False), DeviceState.FAILED, "timeout")
    assert counts_as_failure(CampaignPolicy(unreachable_is_failure=False), DeviceState.FAILED, "disk-full")


def test_a_deferral_is_never_a_failure() -> None:
    assert not counts_as_failure(QUIET, DeviceState.DEFERRED, "patient-connected")


def test_cms_status_is_parsed_from_key_value_lines() -> None:
    assert parse_cms_status("patient=connected\nalarm=none\n") == ClinicalStatus(patient=True, alarm=False)


def test_unreadable_cms_status_defers_the_monitor() -> None:
    assert clinical_deferral(parse_cms_status("garbage")) is Deferral.STATUS_UNKNOWN


def test_a_connected_patient_defers_the_monitor() -> None:
    assert clinical_deferral(ClinicalStatus(patient=True, alarm=False)) is Deferral.PATIENT_CONNECTED


def test_an_active_alarm_defers_the_monitor() -> None:
    assert clinical_deferral(ClinicalStatus(patient=False, alarm=True)) is Deferral.ALARM_ACTIVE


def test_an_idle_monitor_may_be_touched() -> None:
    assert clinical_deferral(ClinicalStatus(patient=False, alarm=False)) is None


def test_a_window_across_midnight_contains_the_small_hours() -> None:
    assert in_window("22:00-06:00", time(2, 30))
    assert not in_window("22:00-06:00", time(12, 0))
    assert in_window("08:00-17:00", time(12, 0))


def test_outside_the_site_window_the_monitor_is_deferred() -> None:
    policy = CampaignPolicy(maintenance_windows={"North": "22:00-06:00"})
    assert window_deferral(policy, _device(), time(12, 0)) is Deferral.OUTSIDE_WINDOW
    assert window_deferral(policy, _device(site="South"), time(12, 0)) is None


def test_a_ward_window_overrides_its_site_window() -> None:
    policy = CampaignPolicy(maintenance_windows={"North": "22:00-06:00", "North/ICU": "10:00-14:00"})
    assert window_deferral(policy, _device(), time(12, 0)) is None


@pytest.mark.parametrize("spec", ["22-06", "25:00-06:00", "aa:bb-cc:dd"])
def test_a_malformed_maintenance_window_is_refused(spec: str) -> None:
    with pytest.raises(UsageError):
        CampaignPolicy(maintenance_windows={"North": spec})


def test_a_resumed_install_looks_at_the_monitor_before_installing() -> None:
    assert resume_step(DeviceState.INSTALLING) is Step.CHECK_INSTALLED


def test_a_resumed_upload_continues_the_upload() -> None:
    assert resume_step(DeviceState.UPLOADING) is Step.UPLOAD
    assert resume_step(DeviceState.UPLOADED) is Step.UPLOAD


def test_terminal_monitors_are_left_alone_on_resume() -> None:
    for state in (DeviceState.PATCHED, DeviceState.FAILED, DeviceState.SKIPPED):
        assert resume_step(state) is Step.NONE


def test_the_policy_round_trips_through_its_journal_form() -> None:
    policy = CampaignPolicy(waves=("1", "50%"), max_failures=3, maintenance_windows={"N": "01:00-02:00"})
    assert CampaignPolicy.from_dict(policy.to_dict()) == policy


def test_an_invalid_policy_is_refused() -> None:
    with pytest.raises(UsageError):
        CampaignPolicy(max_failure_pct=0)
    with pytest.raises(UsageError):
        CampaignPolicy(per_site_concurrency=0)


def test_the_plan_predicts_a_wrong_model_as_a_failure() -> None:
    assert plan_device(_device(), 0, QUIET, "wrong-model", time(12)).action == "fail"


def test_the_plan_sends_manual_units_a_work_order() -> None:
    assert plan_device(_device(delivery=DeliveryPath.MANUAL), 0, QUIET, None, time(12)).action == "work-order"


@pytest.mark.parametrize("upload_dir", ["/data/up;reboot", "/data/$(id)", "/data/`id`", "data/upgrade",
                                        "/data/../etc", "/data/up grade"])
def test_an_upload_dir_that_could_inject_a_command_into_the_shell_is_refused(upload_dir: str) -> None:
    with pytest.raises(UsageError) as err:
        CampaignPolicy(upload_dir=upload_dir)
    assert err.value.reason == "bad-campaign-value"
