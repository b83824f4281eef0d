"""Every unattended delivery path obeys the same ``DeviceTransport`` contract.

The same tests run against the paramiko transport and the Ansible transport (real ansible-runner,
real OpenSSH client), both talking to real monitors on loopback: the asyncssh emulator's and real
OpenSSH ``sshd`` ones. A path that passes these
can be handed to the engine; a difference between paths is a bug in one of them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.adapters.ansible import AnsibleTransport
from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.ssh import SshTransport
from orchestrator.domain.devices import Device
from orchestrator.domain.inventory import Inventory
from orchestrator.emulator.fleet import EmulatedFleet
from orchestrator.emulator.monitor import EmulatedMonitor
from orchestrator.errors import PermanentTransportError, TransientTransportError
from orchestrator.ports import DeviceSession, DeviceTransport

PATHS = ("ssh", "ansible")
PACKAGE_BYTES = 3 * 1024 * 1024 + 123  # not a multiple of any chunk size


# Both kinds of test monitor must pass the same contract: the asyncssh emulator and real OpenSSH sshd
# (BusyBox chroots, orchestrator/emulator/openssh; skipped where sshd/unshare/BusyBox/root are missing).
@pytest.fixture(scope="module", params=("emulator", "openssh"))
def fleet(request: pytest.FixtureRequest, module_fleet_factory: Callable[..., EmulatedFleet],
          module_openssh_fleet_factory: Callable[..., EmulatedFleet]) -> EmulatedFleet:
    factory = module_fleet_factory if request.param == "emulator" else module_openssh_fleet_factory
    return factory(8, reboot_seconds=0.5)


@pytest.fixture(scope="module")
def inventory(fleet: EmulatedFleet) -> Inventory:
    return load_inventory(fleet.inventory_path)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("package") / "cms-fix.bin"
    path.write_bytes(os.urandom(PACKAGE_BYTES))
    return path


@pytest.fixture(scope="module")
def transports(fleet: EmulatedFleet) -> Iterator[dict[str, DeviceTransport]]:
    ansible = AnsibleTransport(fleet.inventory_path)
    yield {"ssh": SshTransport(known_hosts=str(fleet.known_hosts_path), connect_timeout=5.0),
           "ansible": ansible}
    ansible.close()


# Each path gets its own monitors, so a fault injected for one path never leaks into the other.
ROLE_INDEX = {"plain": 0, "fault": 1, "reboot": 2, "upload": 3}


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def pick(path: str, fleet: EmulatedFleet,
         inventory: Inventory) -> Callable[[str], tuple[Device, EmulatedMonitor]]:
    def choose(role: str) -> tuple[Device, EmulatedMonitor]:
        monitor = fleet.monitors[ROLE_INDEX[role] * 2 + PATHS.index(path)]
        return inventory.device(monitor.name), monitor
    return choose


@pytest.fixture
def transport(path: str, transports: dict[str, DeviceTransport]) -> DeviceTransport:
    return transports[path]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _put_retrying(transport: DeviceTransport, session: DeviceSession, local: Path,
                  remote: str) -> DeviceSession:
    """What the engine's retry policy does: a transient upload error -> fresh session, put again."""
    for _ in range(3):
        try:
            session.put(local, remote)
            return session
        except TransientTransportError:
            session.close()
            session = transport.open(session.device)
    raise AssertionError("upload did not succeed in 3 attempts")


def test_command_reports_exit_status_stdout_and_stderr(transport: DeviceTransport, pick: Callable) -> None:
    device, _ = pick("plain")
    session = transport.open(device)
    try:
        result = session.run("cat /etc/firmware_version; echo oops >&2; exit 3")
    finally:
        session.close()
    assert result.exit_status == 3
    assert result.text.strip() == device.firmware
    assert result.stderr.strip() == b"oops"


def test_uploaded_file_has_the_same_sha256_on_the_monitor(transport: DeviceTransport, pick: Callable,
                                                          package: Path) -> None:
    device, _ = pick("plain")
    session = transport.open(device)
    try:
        session.put(package, "/data/upgrade/conformance.bin")
        result = session.run("sha256sum /data/upgrade/conformance.bin; rm -f /data/upgrade/conformance.bin")
    finally:
        session.close()
    assert result.text.split()[0] == _sha256(package)


def test_dropped_upload_ends_as_an_intact_file(transport: DeviceTransport, pick: Callable,
                                               package: Path) -> None:
    device, monitor = pick("upload")
    monitor.inject("upload-drop", offset=PACKAGE_BYTES // 2, times=1)
    session = transport.open(device)
    try:
        session = _put_retrying(transport, session, package, "/data/upgrade/dropped.bin")
        result = session.run("sha256sum /data/upgrade/dropped.bin; rm -f /data/upgrade/dropped.bin")
    finally:
        session.close()
        monitor.clear_fault("upload-drop")
    assert any(entry["kind"] == "upload-drop" for entry in monitor.activity())
    assert result.text.split()[0] == _sha256(package)


def test_partial_upload_resumes_where_it_stopped(transport: DeviceTransport, pick: Callable,
                                                 package: Path) -> None:
    device, monitor = pick("upload")
    kept = PACKAGE_BYTES // 3
    partial = monitor.root / "data/upgrade/partial.bin"  # what a clean drop leaves: an exact prefix
    partial.write_bytes(package.read_bytes()[:kept])
    if monitor.owner is not None:
        os.chown(partial, *monitor.owner)
    session = transport.open(device)
    try:
        session.put(package, "/data/upgrade/partial.bin")
        result = session.run("sha256sum /data/upgrade/partial.bin; rm -f /data/upgrade/partial.bin")
    finally:
        session.close()
    assert result.text.split()[0] == _sha256(package)
    uploads = [e for e in monitor.activity() if e["kind"] == "upload" and e["path"].endswith("partial.bin")]
    upload = uploads[-1]
    assert upload["bytes"] == PACKAGE_BYTES - kept  # only the missing part travelled


def test_session_reconnects_after_the_monitor_reboots(transport: DeviceTransport, pick: Callable) -> None:
    device, monitor = pick("reboot")
    session = transport.open(device)
    try:
        session.run("reboot")
        assert session.wait_disconnect(15.0), "the reboot never dropped the connection"
        session.reconnect(timeout=30.0)
        result = session.run("cat /etc/firmware_version")
    finally:
        session.close()
    assert result.ok and result.text.strip() == monitor.version
    assert any(entry["kind"] == "reboot" for entry in monitor.activity())


def test_changed_host_key_is_refused_as_host_key_mismatch(transport: DeviceTransport, pick: Callable) -> None:
    device, monitor = pick("fault")
    monitor.inject("host-key-changed")
    try:
        with pytest.raises(PermanentTransportError) as refused:
            transport.open(device).run("echo must-not-run")
    finally:
        monitor.clear_fault("host-key-changed")
    assert refused.value.reason == "host-key-mismatch"
    assert not any(e["kind"] == "exec" and "must-not-run" in str(e) for e in monitor.activity())


def test_refused_login_is_permanent_auth_refused(transport: DeviceTransport, pick: Callable) -> None:
    device, monitor = pick("fault")
    monitor.inject("auth-refused")
    try:
        with pytest.raises(PermanentTransportError) as refused:
            transport.open(device).run("true")
    finally:
        monitor.clear_fault("auth-refused")
    assert refused.value.reason == "auth-refused"


def test_unreachable_monitor_is_a_transient_error(transport: DeviceTransport, pick: Callable) -> None:
    device, monitor = pick("fault")
    monitor.inject("unreachable")
    try:
        with pytest.raises(TransientTransportError):
            transport.open(device).run("true")
    finally:
        monitor.clear_fault("unreachable")
