"""What the Ansible transport promises beyond the shared contract: it leaves nothing behind and keeps
host key checking on (the shared contract is in ``test_transport_conformance.py``)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
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


@pytest.fixture(autouse=True)
def _private_tempdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Count only this test's leftovers: other processes on the machine also make cmsp-* dirs.

    A short path of its own (not tmp_path): SSH control sockets live there and a UNIX socket path is
    limited to 108 bytes."""
    private = tempfile.mkdtemp(prefix="cmsp-t")
    monkeypatch.setattr(tempfile, "tempdir", private)
    yield
    monkeypatch.undo()
    shutil.rmtree(private, ignore_errors=True)


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
