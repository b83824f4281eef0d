"""The backdoor's behaviours, observed from outside: loopback listeners on the mapped indicator addresses
see the telemetry, the HL7 and the NFS mount's RPC calls; the UDP listener answers; /proc tells the story."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Any

import paramiko
import pytest

from orchestrator.domain.indicators import BLOCK_FRAME_END, BLOCK_PATIENT_RECORD, BLOCK_VITALS, MOUNT_STRING
from orchestrator.emulator import SYNTHETIC_PATIENT_NAME, EmulatedFleet, EmulatedMonitor
from tests.integration.conftest import Listener, wait_until

Factory = Callable[..., Any]


def run(fleet: EmulatedFleet, monitor: EmulatedMonitor, command: str) -> tuple[int, str, str]:
    client = paramiko.SSHClient()
    client.load_host_keys(str(fleet.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(monitor.address, port=monitor.port, username="service", key_filename=str(fleet.key_path),
                   look_for_keys=False, allow_agent=False, timeout=5)
    with client:
        _, out, err = client.exec_command(command, timeout=20)
        status = out.channel.recv_exit_status()
        return status, out.read().decode(), err.read().decode()


def blocks(stream: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i + 4 <= len(stream):
        length, magic, kind = struct.unpack_from("<HBB", stream, i)
        assert magic == 0x05 and length >= 4
        if i + length > len(stream):
            break
        out.append((kind, stream[i + 4:i + length]))
        i += length
    return out


def udp_probe(address: str, port: int) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.sendto(b"\x00probe", (address, port))
        try:
            return sock.recv(512)
        except TimeoutError:
            return None


def test_connected_patient_streams_cms_blocks_with_the_patient_record_to_mapped_119_515(
        fleet_factory: Factory, listener_factory: Callable[..., Listener]) -> None:
    fleet = fleet_factory(2)
    cms = listener_factory(fleet.indicator_map.cms_server, 515)
    m = fleet.monitors[0]
    m.connect_patient()
    wait_until(lambda: cms.received(m.address).count(bytes([BLOCK_FRAME_END])) and
               len(blocks(cms.received(m.address))) >= 7, what="a full telemetry frame")
    parsed = blocks(cms.received(m.address))
    kinds = [k for k, _ in parsed]
    assert kinds[0] == BLOCK_PATIENT_RECORD and BLOCK_VITALS in kinds and BLOCK_FRAME_END in kinds
    assert SYNTHETIC_PATIENT_NAME.encode() in parsed[0][1]
    assert {p[0] for p in cms.peers()} == {m.address}  # the other monitor has no patient
    assert any(a["kind"] == "telemetry-frame" for a in m.activity())


def test_hl7_with_pid_and_obx_goes_over_mllp_to_mapped_120_511(
        fleet_factory: Factory, listener_factory: Callable[..., Listener]) -> None:
    fleet = fleet_factory(1, faults={"*": "patient"})
    hl7 = listener_factory(fleet.indicator_map.hl7_server, 511)
    m = fleet.monitors[0]
    data = wait_until(lambda: (d := hl7.received(m.address)).count(b"\x1c\x0d") and d, what="an HL7 message")
    message = data[: data.index(b"\x1c\x0d")]
    assert message.startswith(b"\x0bMSH|")
    segments = message[1:].split(b"\r")
    assert any(s.startswith(b"PID|") and SYNTHETIC_PATIENT_NAME.encode() in s for s in segments)
    assert any(s.startswith(b"OBX|") for s in segments)


def test_telemetry_reconnects_after_refusal_and_stops_when_the_patient_disconnects(
        fleet_factory: Factory, listener_factory: Callable[..., Listener]) -> None:
    fleet = fleet_factory(1)
    m = fleet.monitors[0]
    m.connect_patient()
    wait_until(lambda: any(a["kind"] == "telemetry-refused" for a in m.activity()), what="a refused connect")
    cms = listener_factory(fleet.indicator_map.cms_server, 515)
    wait_until(lambda: cms.received(m.address), what="telemetry after the listener came up")
    _status, out, _ = run(fleet, m, "cat /proc/net/tcp")
    assert "770472CA:0203" in out  # 202.114.4.119:515 established, as a real monitor would show it
    m.disconnect_patient()
    wait_until(lambda: not cms.open_peers(), what="the stream to close")
    size = len(cms.received())
    _, status_out, _ = run(fleet, m, "cms-status")
    assert "patient=none" in status_out
    assert len(cms.received()) == size


def test_menu_update_trigger_sends_portmapper_and_mount_calls_and_mounts_pm(
        fleet_factory: Factory, listener_factory: Callable[..., Listener]) -> None:
    fleet = fleet_factory(1)
    server = fleet.indicator_map.cms_server
    mountd = listener_factory(server, 0)

    def portmap_reply(data: bytes) -> bytes | None:
        if len(data) < 8:
            return None
        xid = data[4:8]
        body = xid + struct.pack(">IIIIII", 1, 0, 0, 0, 0, mountd.port)  # REPLY, ACCEPTED, AUTH_NONE, OK
        return struct.pack(">I", 0x80000000 | len(body)) + body

    portmap = listener_factory(server, 111, respond=portmap_reply)
    m = fleet.monitors[0]
    m.trigger("menu-update")
    wait_until(lambda: b"/pm" in mountd.received(m.address), what="the MOUNT MNT call for /pm")
    call = portmap.received(m.address)
    assert struct.unpack(">I", call[:4])[0] & 0x80000000  # RPC record marker
    prog, vers, proc = struct.unpack(">III", call[16:28])
    assert (prog, vers, proc) == (100000, 2, 3)  # portmapper GETPORT
    assert struct.unpack(">I", mountd.received()[16:20])[0] == 100005  # MOUNT program
    _, out, _ = run(fleet, m, "cat /proc/mounts; cat /sys/class/net/eth0/operstate")
    assert "202.114.4.119:/pm /mnt nfs" in out
    assert out.strip().endswith("up")


def test_boot_key_from_the_device_shell_attempts_the_mount_on_2049(
        fleet_factory: Factory, listener_factory: Callable[..., Listener]) -> None:
    fleet = fleet_factory(1)
    nfs = listener_factory(fleet.indicator_map.cms_server, 2049)
    m = fleet.monitors[0]
    status, _out, _ = run(fleet, m, "cms-service trigger boot-key")
    assert status == 0
    wait_until(lambda: b"/pm" in nfs.received(m.address), what="MNT /pm on 2049 (no portmapper answered)")
    assert any(a["kind"] == "trigger" and a["which"] == "boot-key" and a["source"] == "shell"
               for a in m.activity())


def test_insufficient_firmware_keeps_eth0_down_until_the_hidden_mount_reenables_it(
        fleet_factory: Factory, listener_factory: Callable[..., Listener]) -> None:
    fleet = fleet_factory(1, states="insufficient=1")
    m = fleet.monitors[0]
    assert m.firmware_state == "insufficient"
    cms = listener_factory(fleet.indicator_map.cms_server, 515)
    m.connect_patient()
    _, out, _ = run(fleet, m, "cat /sys/class/net/eth0/operstate; "
                              "grep -c 'nolock -t nfs' /opt/cms/bin/monitor")
    assert out.split() == ["down", "1"]
    assert not cms.received()
    m.trigger("menu-update")
    wait_until(lambda: cms.received(m.address), what="the leak to resume once eth0 is re-enabled")


def test_udp_listener_answers_on_its_port_and_is_listed_in_proc_net_udp(fleet_factory: Factory) -> None:
    fleet = fleet_factory(1)
    m = fleet.monitors[0]
    assert udp_probe(m.address, fleet.udp_port)
    _, out, _ = run(fleet, m, "cat /proc/net/udp")
    assert f":{fleet.udp_port:04X} " in out
    assert any(a["kind"] == "udp" for a in m.activity())


def test_fixed_firmware_has_no_udp_listener_no_leak_and_ignores_triggers(
        fleet_factory: Factory, listener_factory: Callable[..., Listener]) -> None:
    fleet = fleet_factory(1, states="fixed=1", faults="*=patient")
    m = fleet.monitors[0]
    cms = listener_factory(fleet.indicator_map.cms_server, 515)
    nfs = listener_factory(fleet.indicator_map.cms_server, 2049)
    assert m.firmware_state == "fixed"
    assert udp_probe(m.address, fleet.udp_port) is None
    m.trigger("menu-update")
    m.trigger("boot-key")
    _status, out, _ = run(fleet, m, "cat /proc/mounts /proc/net/udp; grep -c 'nolock' /opt/cms/bin/* || true")
    assert "nfs" not in out and ":C738" not in out
    assert MOUNT_STRING not in (m.root / "opt/cms/bin/monitor").read_bytes()
    triggers = [a for a in m.activity() if a["kind"] == "trigger"]
    assert len(triggers) == 2 and not any(t["hidden_mount"] for t in triggers)
    assert not cms.received() and not nfs.received()


def test_unsafe_configurations_are_refused(tmp_path: Any) -> None:
    from orchestrator.domain.indicators import IndicatorMap
    from orchestrator.errors import CmspatchError, EmulatorError

    with pytest.raises(EmulatorError) as excinfo:
        EmulatedFleet.start(tmp_path / "a", monitors=1, address_prefix="10.1")
    assert excinfo.value.reason == "not-loopback"
    with pytest.raises(CmspatchError):
        EmulatedFleet.start(tmp_path / "b", monitors=1, indicator_map=IndicatorMap("10.114.4"))
    with pytest.raises(EmulatorError) as excinfo:
        EmulatedFleet.start(tmp_path / "c", monitors=1, address_prefix="127.114",
                            indicator_map=IndicatorMap("127.114.0"))
    assert excinfo.value.reason == "address-overlap"
