"""Decoders of what a backdoored monitor sends: recognise it, never keep it, never crash on junk."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.domain import oncrpc, telemetry

SYNTHETIC_NAME = b"DOE^JANE"


def cms_block(block_type: int, payload: bytes, *, framing: int = 0) -> bytes:
    """framing: 0 = length counts the whole block, 2 = after the length field, 4 = payload only."""
    return struct.pack("<H", 4 + len(payload) - framing) + bytes([0x05, block_type]) + payload


def patient_payload() -> bytes:
    return b"\x00".join([b"ICU", b"07", SYNTHETIC_NAME, b"P-000123", b"20250101", b"170", b"70",
                         b"19800101", b"A+", b"DR^WHO"])


def hl7(*segments: str) -> bytes:
    return b"\x0b" + "\r".join(segments).encode() + b"\r\x1c\x0d"


def test_patient_record_block_is_recognised_without_keeping_its_content() -> None:
    decoded, used = telemetry.decode_cms_stream(cms_block(0x3E, patient_payload()))
    assert used == len(cms_block(0x3E, patient_payload()))
    assert [d.patient_record for d in decoded] == [True]
    assert "name" in decoded[0].field_names
    assert SYNTHETIC_NAME.decode() not in repr(decoded[0])


def test_every_plausible_length_framing_is_understood() -> None:
    for framing in (0, 2, 4):
        stream = cms_block(0x46, b"\x01\x02\x03\x04", framing=framing) + cms_block(0x47, b"", framing=framing)
        decoded, used = telemetry.decode_cms_stream(stream)
        assert used == len(stream), framing
        assert [d.details["block"] for d in decoded] == ["vitals", "frame-end"]


def test_incomplete_block_is_left_for_the_next_read() -> None:
    block = cms_block(0x3E, patient_payload())
    decoded, used = telemetry.decode_cms_stream(block[:-3])
    assert decoded == [] and used == 0


def test_hl7_pid_segment_counts_as_patient_data_and_names_only_fields() -> None:
    message = hl7("MSH|^~\\&|CMS|BED07|||20250101||ORU^R01|42|P|2.3",
                  "PID|||P-000123||DOE^JANE||19800101|F", "OBX|1|NM|HR||72|bpm")
    decoded, used = telemetry.decode_hl7_stream(message)
    assert used == len(message)
    assert decoded[0].patient_record
    assert decoded[0].field_names == ("patient_identifier", "patient_name", "birth_date", "sex")
    assert "DOE" not in repr(decoded[0]) and "P-000123" not in repr(decoded[0])


def test_hl7_without_pid_is_not_patient_data() -> None:
    message = hl7("MSH|^~\\&|CMS|BED07|||x||ORU^R01|1|P|2.3", "OBX|1|NM|HR||72")
    decoded, _ = telemetry.decode_hl7_stream(message)
    assert decoded[0].kind == "hl7" and not decoded[0].patient_record


def test_mount_request_for_pm_is_recognised() -> None:
    call = oncrpc.encode_call(1, oncrpc.MOUNT_PROG, 3, oncrpc.MOUNT_MNT, oncrpc.encode_string(b"/pm"))
    decoded, parsed = telemetry.decode_rpc(call)
    assert decoded.kind == "rpc-mount" and parsed is not None and parsed.mount_path == "/pm"


def test_portmapper_lookup_of_mount_is_a_mount_request() -> None:
    args = struct.pack(">IIII", oncrpc.MOUNT_PROG, 3, 6, 0)
    decoded, _ = telemetry.decode_rpc(oncrpc.encode_call(2, oncrpc.PMAP_PROG, 2, oncrpc.PMAP_GETPORT, args))
    assert decoded.kind == "rpc-mount"


def test_record_marked_rpc_over_tcp_is_split_into_calls() -> None:
    call = oncrpc.encode_call(3, oncrpc.MOUNT_PROG, 3, oncrpc.MOUNT_MNT, oncrpc.encode_string(b"/pm"))
    stream = oncrpc.record_mark(call) + oncrpc.record_mark(call)[:5]
    messages, rest = oncrpc.split_records(stream)
    assert messages == [call] and rest == oncrpc.record_mark(call)[:5]


def test_mount_is_refused_so_the_device_never_gets_files_to_run() -> None:
    call = oncrpc.decode_call(oncrpc.encode_call(4, oncrpc.MOUNT_PROG, 3, oncrpc.MOUNT_MNT,
                                                 oncrpc.encode_string(b"/pm")))
    reply = oncrpc.reply_for(call)
    assert struct.unpack(">I", reply[-4:])[0] == 13  # MNT3ERR_ACCES


def test_getport_points_the_device_at_the_sinkhole_nfs_port() -> None:
    args = struct.pack(">IIII", oncrpc.MOUNT_PROG, 3, 6, 0)
    call = oncrpc.decode_call(oncrpc.encode_call(5, oncrpc.PMAP_PROG, 2, oncrpc.PMAP_GETPORT, args))
    assert struct.unpack(">I", oncrpc.reply_for(call)[-4:])[0] == 2049


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["cms", "hl7", "nfs-tcp", "nfs-udp", "other"]), st.binary(max_size=600))
def test_arbitrary_bytes_never_raise_and_are_fully_accounted_for(port_class: str, data: bytes) -> None:
    decoded = telemetry.decode_payload(port_class, data)
    assert all(d.kind in {"cms-telemetry", "hl7", "rpc-mount", "rpc", "undecodable"} for d in decoded)
    assert all(len(d.sha256) == 64 for d in decoded)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_rpc_decoder_raises_only_its_typed_error(data: bytes) -> None:
    try:
        oncrpc.decode_call(data)
    except oncrpc.RpcDecodeError:
        pass
