"""Each emulated fault ends in the right state after the right number of attempts."""

from __future__ import annotations

from pathlib import Path

from orchestrator.domain.events import EventKind
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.status import DeviceStatus
from orchestrator.engine import Engine
from tests.integration.engine_rig import Rig, fast_policy, rig

Result = tuple[Rig, Engine, DeviceStatus, dict[str, int]]


def _one(tmp_path: Path, fault: str | None, **policy: object) -> Result:
    """Run a one-monitor campaign with ``fault`` injected; return its final status and attempts per step."""
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        monitor = r.fleet.monitors[0]
        if fault:
            name, _, arg = fault.partition("@")
            monitor.inject(name, **({"offset": int(arg)} if arg else {}))
        engine = r.engine(journal, policy=fast_policy(waves=("1",), canary_must_pass=False, **policy))
        engine.run(auto_approve=True)
        attempts: dict[str, int] = {}
        for rec in journal.records(engine.campaign_id):
            if rec.kind is EventKind.ATTEMPT:
                attempts[rec.data["step"]] = attempts.get(rec.data["step"], 0) + 1
        return r, engine, engine.status.devices[monitor.name], attempts


def test_a_dropped_upload_is_retried_and_resumed_then_patched(tmp_path: Path) -> None:
    r, _, status, attempts = _one(tmp_path, "upload-drop@200")
    assert status.state is DeviceState.PATCHED
    assert attempts["upload"] == 2
    uploads = [a for a in r.fleet.monitors[0].activity() if a.get("kind") == "upload"]
    assert uploads[-1]["bytes"] == r.package.size - 200  # the second attempt sent only the rest


def test_an_unreachable_monitor_fails_after_every_attempt(tmp_path: Path) -> None:
    _, _, status, attempts = _one(tmp_path, "unreachable")
    assert (status.state, status.reason) == (DeviceState.FAILED, "unreachable")
    assert attempts == {"connect": 3}


def test_a_refused_login_fails_after_one_attempt(tmp_path: Path) -> None:
    _, _, status, attempts = _one(tmp_path, "auth-refused")
    assert (status.state, status.reason) == (DeviceState.FAILED, "auth-refused")
    assert attempts == {"connect": 1}


def test_a_changed_host_key_is_refused_after_one_attempt(tmp_path: Path) -> None:
    _, _, status, attempts = _one(tmp_path, "host-key-changed")
    assert (status.state, status.reason) == (DeviceState.FAILED, "host-key-mismatch")
    assert attempts == {"connect": 1}


def test_a_full_disk_fails_after_one_upload_attempt(tmp_path: Path) -> None:
    _, _, status, attempts = _one(tmp_path, "disk-full")
    assert (status.state, status.reason) == (DeviceState.FAILED, "disk-full")
    assert attempts["upload"] == 1


def test_a_failing_installer_fails_the_monitor_without_retry(tmp_path: Path) -> None:
    _, _, status, attempts = _one(tmp_path, "install-fail")
    assert (status.state, status.reason) == (DeviceState.FAILED, "installer-failed")
    assert attempts["install"] == 1


def test_a_reboot_that_never_returns_fails_after_the_timeout(tmp_path: Path) -> None:
    _, _, status, attempts = _one(tmp_path, "reboot-hang", reboot_timeout=1.5)
    assert (status.state, status.reason) == (DeviceState.FAILED, "reboot-timeout")
    assert attempts["reconnect"] == 1


def test_a_silent_rollback_is_caught_by_the_version_after_reboot(tmp_path: Path) -> None:
    _, _, status, _ = _one(tmp_path, "reboot-rollback")
    assert (status.state, status.reason) == (DeviceState.FAILED, "silent-rollback")
    assert status.firmware_after == status.firmware_before
