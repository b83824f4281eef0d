"""Mapping an AWX / ansible-runner job of patch.yml onto campaign events, from a recorded real job.

``test_awx_import_data/job.jsonl`` is a real ansible-runner job of ``playbooks/patch.yml`` against six
emulated monitors (re-record with ``python -m tests.unit.test_awx_import_data.record_job``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.ansible_events import classify_unreachable, task_result
from orchestrator.adapters.awx_import import import_job
from orchestrator.adapters.awx_mapping import JobInfo, map_job
from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.domain.events import EventKind
from orchestrator.domain.lifecycle import DeviceState, check_transition
from orchestrator.errors import PermanentTransportError, TransientTransportError, UsageError

RECORDED = Path(__file__).parent / "test_awx_import_data" / "job.jsonl"
PATCHED, PATIENT, ALARM = "north-icu-bed01", "south-picu-bed01", "east-er-bed01"
DISK_FULL, INSTALL_FAIL, UNREACHABLE = "north-ccu-bed01", "south-nicu-bed01", "east-med-bed01"


def _recorded() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    header, *events = [json.loads(line) for line in RECORDED.read_text().splitlines()]
    return header, events


def _mapped() -> list[Any]:
    header, events = _recorded()
    return map_job(events, JobInfo(ident="recorded", status=header["status"], rc=header["rc"]), campaign="c1")


def _final_states(mapped: list[Any]) -> dict[str, tuple[str, str]]:
    states: dict[str, tuple[str, str]] = {}
    for event in mapped:
        if event.kind is EventKind.STATE_CHANGED:
            states[event.device] = (event.data["to"], event.data["reason"])
    return states


def _artifact_dir(tmp_path: Path, events: list[dict[str, Any]], status: str = "failed") -> Path:
    job = tmp_path / "artifacts" / "42"
    (job / "job_events").mkdir(parents=True)
    for event in events:
        (job / "job_events" / f"{event['counter']}-{event['uuid']}.json").write_text(json.dumps(event))
    (job / "status").write_text(status)
    (job / "rc").write_text("2")
    return job


def test_each_host_ends_in_the_state_its_playbook_outcome_says() -> None:
    assert _final_states(_mapped()) == {
        PATCHED: ("patched", "version-confirmed"),
        PATIENT: ("deferred", "patient-connected"),
        ALARM: ("deferred", "alarm-active"),
        DISK_FULL: ("failed", "disk-full"),
        INSTALL_FAIL: ("failed", "install-failed"),
        UNREACHABLE: ("failed", "unreachable"),
    }


def test_every_mapped_state_change_is_a_legal_lifecycle_step() -> None:
    current: dict[str, DeviceState] = {}
    for event in _mapped():
        if event.kind is EventKind.STATE_CHANGED:
            before = current.get(event.device, DeviceState.PENDING)
            assert event.data["from"] == before.value
            check_transition(event.device, before, DeviceState(event.data["to"]))
            current[event.device] = DeviceState(event.data["to"])


def test_a_patched_host_passes_through_upload_install_reboot_and_verification() -> None:
    path = [e.data["to"] for e in _mapped() if e.kind is EventKind.STATE_CHANGED and e.device == PATCHED]
    assert path == ["uploading", "uploaded", "installing", "rebooting", "verifying", "patched"]


def test_firmware_is_recorded_before_and_after() -> None:
    reads = [(e.data["when"], e.data["version"]) for e in _mapped()
             if e.kind is EventKind.FIRMWARE_READ and e.device == PATCHED]
    assert reads[0][0] == "before" and reads[-1][0] == "after" and reads[0][1] != reads[-1][1]


def test_campaign_created_carries_the_package_and_target_from_the_job() -> None:
    created = _mapped()[0]
    assert created.kind is EventKind.CAMPAIGN_CREATED
    assert len(created.data["package_sha256"]) == 64
    assert created.data["target_version"]
    assert sorted(created.data["devices"]) == sorted(_recorded()[0]["hosts"])


def test_an_unfinished_job_is_not_marked_finished() -> None:
    _, events = _recorded()
    mapped = map_job(events[: len(events) // 2], JobInfo(ident="recorded", status="running"), campaign="c1")
    assert not any(e.kind is EventKind.CAMPAIGN_FINISHED for e in mapped)


def test_every_mapped_event_names_a_distinct_source() -> None:
    sources = [e.data["source"] for e in _mapped()]
    assert len(sources) == len(set(sources))


def test_import_is_idempotent_and_adds_only_what_a_grown_job_adds(tmp_path: Path) -> None:
    _, events = _recorded()
    half = _artifact_dir(tmp_path / "half", events[: len(events) // 2], status="running")
    full = _artifact_dir(tmp_path / "full", events)
    with SqliteJournal(tmp_path / "j.db") as journal:
        first = import_job(half, journal, campaign="awx-42")
        second = import_job(full, journal, campaign="awx-42")
        third = import_job(full, journal, campaign="awx-42")
        total = len(list(journal.records("awx-42")))
        assert journal.verify().ok
    assert first.added > 0 and second.added > 0 and third.added == 0
    assert total == second.mapped


def test_import_refuses_to_write_into_a_campaign_another_job_created(tmp_path: Path) -> None:
    _, events = _recorded()
    job_42 = _artifact_dir(tmp_path / "a", events)
    job_43 = _artifact_dir(tmp_path / "b", events).rename(tmp_path / "b" / "artifacts" / "43")
    with SqliteJournal(tmp_path / "j.db") as journal:
        import_job(job_42, journal, campaign="shared")
        with pytest.raises(UsageError) as refused:
            import_job(job_43, journal, campaign="shared")
    assert refused.value.reason == "import-campaign-exists"


def test_a_directory_without_job_events_is_a_usage_error(tmp_path: Path) -> None:
    with SqliteJournal(tmp_path / "j.db") as journal, pytest.raises(UsageError) as refused:
        import_job(tmp_path, journal)
    assert refused.value.reason == "import-not-a-job"


@pytest.mark.parametrize(("message", "kind", "reason"), [
    ("Failed to connect to the host via ssh: Host key verification failed.", PermanentTransportError,
     "host-key-mismatch"),
    ("Failed to connect to the host via ssh: service@127.0.0.1: Permission denied (publickey).",
     PermanentTransportError, "auth-refused"),
    ("Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 2222: Connection refused",
     TransientTransportError, "connection-refused"),
    ("Data could not be sent to remote host. No space left on device", PermanentTransportError, "disk-full"),
])
def test_unreachable_messages_map_to_typed_transport_errors(message: str, kind: type, reason: str) -> None:
    error = classify_unreachable(message, host="m1")
    assert isinstance(error, kind) and error.reason == reason


def test_events_that_are_not_task_results_are_ignored() -> None:
    assert task_result({"event": "playbook_on_task_start", "event_data": {"task": "x"}}) is None
    assert task_result({"event": "runner_on_ok", "event_data": {}}) is None
