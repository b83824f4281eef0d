"""The batched checks on a real (emulated) monitor: one round trip, the same output as one command each."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from orchestrator.adapters.ansible import AnsibleTransport
from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.ssh import SshTransport
from orchestrator.domain.check_batch import batch_script, split_batch
from orchestrator.domain.checks import CATALOGUE
from orchestrator.emulator import EmulatedFleet
from orchestrator.ports import DeviceTransport

# Files and binaries: what they say does not change between two reads (unlike /proc/net).
STABLE = ("firmware-version", "monitor-mount-string", "update-mount-string", "monitor-indicator-address",
          "update-indicator-address", "binary-hashes", "eth0-state", "patient-status")


@pytest.mark.parametrize("path", ["ssh", "ansible"])
def test_batched_checks_see_exactly_what_each_command_sees_alone(
        fleet_factory: Callable[..., EmulatedFleet], path: str) -> None:
    fleet = fleet_factory(1, states={"vulnerable": 1})
    inventory = load_inventory(fleet.inventory_path)
    transport: DeviceTransport = (SshTransport(known_hosts=inventory.known_hosts) if path == "ssh"
                                  else AnsibleTransport(fleet.inventory_path))
    session = transport.open(inventory.devices[0])
    try:
        nonce = secrets.token_hex(16)
        names = [*STABLE, "nfs-mount", "indicator-route", "udp-listener"]
        batch = session.run(batch_script(names, nonce), timeout=60)
        parts = split_batch(batch.stdout, nonce, names)
        assert set(parts) == set(names)
        for name in STABLE:
            alone = session.run(CATALOGUE[name].command or "", timeout=20)
            assert (parts[name].stdout, parts[name].stderr, parts[name].exit_status) == (
                alone.stdout, alone.stderr, alone.exit_status), name
        assert parts["monitor-mount-string"].exit_status == 0  # the vulnerable binary: grep found it
        assert all(parts[name].exit_status == 0 for name in ("nfs-mount", "indicator-route", "udp-listener"))
    finally:
        session.close()
        if isinstance(transport, AnsibleTransport):
            transport.close()


def test_a_check_that_fails_on_the_device_keeps_its_stderr_and_exit_status(
        fleet_factory: Callable[..., EmulatedFleet]) -> None:
    fleet = fleet_factory(1, states={"fixed": 1})
    inventory = load_inventory(fleet.inventory_path)
    session = SshTransport(known_hosts=inventory.known_hosts).open(inventory.devices[0])
    try:
        session.run("rm -f /etc/firmware_version", timeout=20)
        nonce = secrets.token_hex(16)
        batch = session.run(batch_script(["firmware-version", "eth0-state"], nonce), timeout=60)
        parts = split_batch(batch.stdout, nonce, ["firmware-version", "eth0-state"])
        alone = session.run(CATALOGUE["firmware-version"].command or "", timeout=20)
        assert alone.exit_status != 0 and alone.stderr
        assert (parts["firmware-version"].stderr, parts["firmware-version"].exit_status) == (
            alone.stderr, alone.exit_status)
        assert parts["eth0-state"].exit_status == 0
    finally:
        session.close()
