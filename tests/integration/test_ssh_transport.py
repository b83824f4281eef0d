"""The paramiko transport against emulated monitors: pinning, tuning, one connection, resumable upload."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from orchestrator.adapters.ssh import SshTransport, fingerprint, record_known_hosts
from orchestrator.errors import PermanentTransportError, TransientTransportError
from tests.integration.engine_rig import fast_policy, rig


def test_a_session_sets_tcp_nodelay_and_prefers_aes128_gcm(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, sinkhole=False) as r:
        device = r.inventory.devices[0]
        session = SshTransport(known_hosts=r.inventory.known_hosts).open(device)
        try:
            transport = session._transport
            assert transport is not None
            assert transport.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)  # type: ignore[union-attr]
            assert transport.local_cipher == "aes128-gcm@openssh.com"
            assert session.run("cat /etc/firmware_version").text.strip() == device.firmware
        finally:
            session.close()


def test_the_inventory_fingerprint_alone_pins_the_key(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, sinkhole=False) as r:
        device = r.inventory.devices[0]
        session = SshTransport(known_hosts=None).open(device)
        session.close()


def test_a_known_hosts_entry_alone_pins_the_key(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, sinkhole=False) as r:
        device = dataclasses.replace(r.inventory.devices[0], host_key=None)
        SshTransport(known_hosts=r.inventory.known_hosts).open(device).close()


def test_a_monitor_with_no_pinned_key_is_refused_not_learnt(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, sinkhole=False) as r:
        device = dataclasses.replace(r.inventory.devices[0], host_key=None)
        known = tmp_path / "empty_known_hosts"
        with pytest.raises(PermanentTransportError) as info:
            SshTransport(known_hosts=str(known)).open(device)
        assert info.value.reason == "host-key-unknown"
        assert not known.exists()


def test_a_wrong_inventory_fingerprint_is_refused(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, sinkhole=False) as r:
        device = dataclasses.replace(r.inventory.devices[0], host_key="SHA256:" + "A" * 43)
        with pytest.raises(PermanentTransportError) as info:
            SshTransport(known_hosts=None).open(device)
        assert info.value.reason == "host-key-mismatch"


def test_a_changed_key_is_refused_even_if_known_hosts_is_stale(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, sinkhole=False) as r:
        device = dataclasses.replace(r.inventory.devices[0], host_key=None)
        r.fleet.monitors[0].inject("host-key-changed")
        with pytest.raises(PermanentTransportError) as info:
            SshTransport(known_hosts=r.inventory.known_hosts).open(device)
        assert info.value.reason == "host-key-mismatch"


def test_a_closed_port_is_a_transient_error(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, sinkhole=False) as r:
        r.fleet.monitors[0].inject("unreachable")
        with pytest.raises(TransientTransportError):
            SshTransport(known_hosts=r.inventory.known_hosts).open(r.inventory.devices[0])


def test_an_upload_continues_from_the_partial_file_left_on_the_monitor(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, sinkhole=False) as r:
        device = r.inventory.devices[0]
        session = SshTransport(known_hosts=r.inventory.known_hosts).open(device)
        try:
            remote = "/data/upgrade/partial.tar.gz"
            head = r.package_path.read_bytes()[:100]
            partial = tmp_path / "head.bin"
            partial.write_bytes(head)
            session.put(partial, remote)
            session.put(r.package_path, remote)
            seen = session.run(f"sha256sum {remote}").text.split()[0]
            assert seen == r.package.sha256
            uploads = [a for a in r.fleet.monitors[0].activity() if a.get("kind") == "upload"]
            assert uploads[-1]["bytes"] == r.package.size - 100
        finally:
            session.close()


def test_a_campaign_uses_one_connection_per_monitor_plus_one_after_reboot(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        r.engine(journal, policy=fast_policy(waves=("1",))).run(auto_approve=True)
        connects = [a for a in r.fleet.monitors[0].activity() if a.get("kind") == "connect"]
        assert len(connects) == 2


def test_reconnect_gives_up_after_its_timeout(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, sinkhole=False) as r:
        session = SshTransport(known_hosts=r.inventory.known_hosts, reconnect_interval=0.05).open(
            r.inventory.devices[0])
        r.fleet.monitors[0].inject("unreachable")
        with pytest.raises(TransientTransportError) as info:
            session.reconnect(timeout=0.5)
        assert info.value.reason == "reconnect-timeout"


def test_reconnect_sees_a_monitor_back_within_a_short_pause_not_the_longest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first refused probe is followed by 50 ms pauses doubling up to reconnect_interval: a monitor
    back right after it is logged into long before one whole (here 5 s) interval has passed."""
    import threading
    import time

    from orchestrator.adapters import ssh

    with rig(tmp_path, monitors=1, sinkhole=False) as r:
        monitor = r.fleet.monitors[0]
        session = SshTransport(known_hosts=r.inventory.known_hosts, reconnect_interval=5.0).open(
            r.inventory.devices[0])
        monitor.inject("unreachable")
        refused = threading.Event()
        real = ssh.connect_checked

        def probe(*args: object, **kwargs: object) -> socket.socket:
            try:
                return real(*args, **kwargs)  # type: ignore[arg-type]
            except OSError:
                refused.set()
                raise

        monkeypatch.setattr(ssh, "connect_checked", probe)
        back = threading.Thread(target=lambda: refused.wait(10) and monitor.clear_fault("unreachable"))
        back.start()
        began = time.monotonic()
        try:
            session.reconnect(timeout=30.0)
            took = time.monotonic() - began
            assert session.run("cat /etc/firmware_version").ok
        finally:
            back.join()
            session.close()
        assert refused.is_set() and took < 2.5, f"reconnect took {took:.2f} s after the monitor came back"


def test_enrolled_keys_are_appended_and_a_different_key_is_never_replaced(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, sinkhole=False) as r:
        from orchestrator.adapters.ssh import fetch_host_key

        device = r.inventory.devices[0]
        key = fetch_host_key(device)
        assert fingerprint(key) == device.host_key
        known = tmp_path / "kh"
        assert record_known_hosts(known, [(device, key)]) == (1, [])
        assert record_known_hosts(known, [(device, key)]) == (0, [])
        r.fleet.monitors[0].inject("host-key-changed")
        other = fetch_host_key(device)
        assert record_known_hosts(known, [(device, other)]) == (0, [device.name])
