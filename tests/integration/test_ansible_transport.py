"""What the Ansible transport promises beyond the shared contract: it leaves nothing behind and keeps
host key checking on (the shared contract is in ``test_transport_conformance.py``)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.adapters.ansible import AnsibleRunner, AnsibleTransport
from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.emulator import EmulatedFleet


@pytest.fixture(scope="module")
def fleet(module_fleet_factory: Callable[..., EmulatedFleet]) -> EmulatedFleet:
    return module_fleet_factory(1)


def _leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("cmsp-*")}


def test_runner_artifacts_and_control_sockets_are_removed(fleet: EmulatedFleet,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMSPATCH_TEST_SECRET", "do-not-keep-me")  # ansible-runner dumps the env
    before = _leftovers()
    transport = AnsibleTransport(fleet.inventory_path)
    device = load_inventory(fleet.inventory_path).devices[0]
    session = transport.open(device)
    assert session.run("echo ok").text.strip() == "ok"
    session.close()
    transport.close()
    assert _leftovers() == before


def test_host_key_checking_stays_on_and_ssh_compression_off(fleet: EmulatedFleet) -> None:
    runner = AnsibleRunner(fleet.inventory_path)
    try:
        env = runner.envvars()
    finally:
        runner.close()
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert "Compression=no" in env["ANSIBLE_SSH_ARGS"] and "-C" not in env["ANSIBLE_SSH_ARGS"].split()
    assert "ControlPersist" in env["ANSIBLE_SSH_ARGS"]
