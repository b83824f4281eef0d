"""The sinkhole: real sockets on loopback stand-ins for 202.114.4.119/.120. It listens, never calls out."""

from __future__ import annotations

import inspect
import io
import socket
import struct
import threading
import token
import tokenize
from collections.abc import Iterator

import pytest

from orchestrator.adapters import sinkhole as sinkhole_module
from orchestrator.adapters.sinkhole import Sinkhole, SinkholeError
from orchestrator.domain import oncrpc
from orchestrator.domain.indicators import IndicatorMap, UnsafeMapping

MONITOR = "127.77.200.5"
@pytest.fixture
def hole() -> Iterator[Sinkhole]:
    with Sinkhole(IndicatorMap("127.114.201")) as sh:
        yield sh


def client(address: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(5)
    sock.bind((MONITOR, 0))
    sock.connect((address, port))
    return sock


def test_connection_is_recorded_with_the_monitor_as_source_and_the_real_indicator_as_target(hole: Sinkhole
                                                                                            ) -> None:
    client("127.114.201.119", 517).close()
    assert hole.wait_for(lambda o: o.kind == "connect", 5)
    obs = hole.observations(source=MONITOR)[0]
    assert obs.target == "202.114.4.119:517" and obs.source.startswith(MONITOR + ":")


def test_patient_record_is_seen_hashed_and_never_kept(hole: Sinkhole) -> None:
    payload = b"ICU\x00DOE^JANE\x00P-1"
    with client("127.114.201.119", 515) as sock:
        sock.sendall(struct.pack("<H", 4 + len(payload)) + b"\x05\x3e" + payload)
    assert hole.wait_for(lambda o: o.patient_record, 5)
    assert "DOE" not in repr(hole.observations())


def test_hl7_pid_is_seen_on_511_of_the_hl7_server(hole: Sinkhole) -> None:
    with client("127.114.201.120", 511) as sock:
        sock.sendall(b"\x0bMSH|^~\\&|CMS|B|||x||ORU^R01|1|P|2.3\rPID|||P-1||DOE^JANE\r\x1c\x0d")
    assert hole.wait_for(lambda o: o.kind == "hl7" and o.patient_record, 5)


def test_rpc_over_tcp_gets_a_getport_answer_and_a_refused_mount(hole: Sinkhole) -> None:
    with client("127.114.201.119", 111) as sock:
        sock.sendall(oncrpc.record_mark(oncrpc.encode_call(
            1, oncrpc.PMAP_PROG, 2, oncrpc.PMAP_GETPORT, struct.pack(">IIII", oncrpc.MOUNT_PROG, 3, 6, 0))))
        assert struct.unpack(">I", sock.recv(64)[-4:])[0] == 2049
        sock.sendall(oncrpc.record_mark(oncrpc.encode_call(
            2, oncrpc.MOUNT_PROG, 3, oncrpc.MOUNT_MNT, oncrpc.encode_string(b"/pm"))))
        assert struct.unpack(">I", sock.recv(64)[-4:])[0] == 13
    assert hole.wait_for(lambda o: o.kind == "rpc-mount" and "/pm" in o.summary, 5)


def test_rpc_over_udp_is_answered_to_the_sender_only(hole: Sinkhole) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.bind((MONITOR, 0))
        call = oncrpc.encode_call(3, oncrpc.MOUNT_PROG, 3, oncrpc.MOUNT_MNT, oncrpc.encode_string(b"/pm"))
        sock.sendto(call, ("127.114.201.119", 2049))
        reply, peer = sock.recvfrom(128)
    assert peer == ("127.114.201.119", 2049) and struct.unpack(">I", reply[:4])[0] == 3


def test_sinkhole_never_connects_out_during_a_full_exchange(monkeypatch: pytest.MonkeyPatch) -> None:
    connects: list[tuple[str, object]] = []
    real_connect = socket.socket.connect

    def spy(self: socket.socket, address: object) -> None:
        connects.append((threading.current_thread().name, address))
        real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", spy)
    with Sinkhole(IndicatorMap("127.114.202")) as hole, client("127.114.202.119", 111) as sock:
        sock.sendall(oncrpc.record_mark(oncrpc.encode_call(
            2, oncrpc.MOUNT_PROG, 3, oncrpc.MOUNT_MNT, oncrpc.encode_string(b"/pm"))))
        sock.recv(64)
        assert hole.wait_for(lambda o: o.kind == "rpc-mount", 5)
    assert connects == [("MainThread", ("127.114.202.119", 111))]  # the test's own client, nothing else


def test_sinkhole_source_has_no_code_path_that_opens_a_connection() -> None:
    # Tokens, not the AST: every call that could open a connection has one of these names.
    source = inspect.getsource(sinkhole_module)
    names = {t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == token.NAME}
    assert not names & {"connect", "connect_ex", "create_connection", "open_connection", "sock_connect",
                        "remote_addr", "create_unix_connection"}


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.0.10", "202.114.4.120", "0.0.0.0"])
def test_sinkhole_refuses_to_listen_on_a_non_loopback_non_indicator_address(address: str) -> None:
    with pytest.raises(UnsafeMapping):
        Sinkhole(listen={"202.114.4.119": address})


def test_bench_mode_listens_on_the_indicator_addresses_themselves() -> None:
    hole = Sinkhole.on_bench()
    assert hole.listen == {"202.114.4.119": "202.114.4.119", "202.114.4.120": "202.114.4.120"}


def test_a_port_already_taken_is_a_clear_error() -> None:
    with Sinkhole(IndicatorMap("127.114.203"), tcp_ports=(515,), udp_ports=()), pytest.raises(SinkholeError):
        Sinkhole(IndicatorMap("127.114.203"), tcp_ports=(515,), udp_ports=()).start()


def test_stopping_releases_every_port() -> None:
    for _ in range(2):
        with Sinkhole(IndicatorMap("127.114.204")):
            pass


def test_a_streaming_monitor_does_not_flood_the_record(hole: Sinkhole) -> None:
    vitals = struct.pack("<H", 7) + b"\x05\x46\x01\x48\x00"
    with client("127.114.201.119", 516) as sock:
        sock.sendall(vitals * 2000)
    assert hole.wait_for(lambda o: o.kind == "cms-telemetry", 5)
    client("127.114.201.119", 516).close()  # a later connection, recorded after the first one's data
    assert hole.wait_for(lambda o: o.target.endswith(":516") and o.kind == "connect"
                         and len(hole.observations(source=MONITOR)) >= 3, 5)
    assert len([o for o in hole.observations() if o.kind == "cms-telemetry"]) == 1


def test_when_full_the_oldest_observations_go_and_new_ones_are_still_seen(monkeypatch: pytest.MonkeyPatch
                                                                         ) -> None:
    monkeypatch.setattr(sinkhole_module, "MAX_OBSERVATIONS", 3)
    with Sinkhole(IndicatorMap("127.114.205")) as hole:
        for port in (515, 516, 517, 518, 519):
            client("127.114.205.119", port).close()
            assert hole.wait_for(lambda o, p=port: o.target.endswith(f":{p}"), 5)
        assert [o.target[-3:] for o in hole.observations()] == ["517", "518", "519"]


@pytest.mark.parametrize("port", [515, 511, 111, 2049])
def test_junk_on_any_port_is_recorded_as_undecodable_and_the_sinkhole_keeps_listening(hole: Sinkhole,
                                                                                      port: int) -> None:
    junk = bytes(range(256)) * 3
    with client("127.114.201.119", port) as sock:
        sock.sendall(junk)
    assert hole.wait_for(lambda o: o.kind == "undecodable" and o.target.endswith(f":{port}"), 15)
    client("127.114.201.119", port).close()
    assert hole.wait_for(lambda o: len([x for x in hole.observations() if x.kind == "connect"]) == 2, 5)
