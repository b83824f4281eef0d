"""Reading mirror-port captures: indicators flagged and decoded, clean captures clean, junk refused."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import dpkt
import pytest

from orchestrator.adapters.pcap import CaptureError, CaptureObserver, read_capture
from orchestrator.domain import oncrpc
from orchestrator.domain.indicators import IndicatorMap

NAME = b"DOE^JANE"
DEVICE = "10.20.30.40"


def frame(src: str, dst: str, sport: int, dport: int, payload: bytes = b"", *, udp: bool = False,
          seq: int = 1000, flags: int = dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH) -> bytes:
    l4: dpkt.Packet
    if udp:
        l4 = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
        l4.ulen = len(l4)
        proto = dpkt.ip.IP_PROTO_UDP
    else:
        l4 = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, flags=flags, data=payload)
        proto = dpkt.ip.IP_PROTO_TCP
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=proto, data=l4)
    ip.len = len(ip)
    return bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=dpkt.ethernet.ETH_TYPE_IP,
                                        data=ip))


def write_pcap(path: Path, frames: list[bytes], *, ng: bool = False) -> Path:
    with path.open("wb") as fh:
        writer = dpkt.pcapng.Writer(fh) if ng else dpkt.pcap.Writer(fh)
        for i, f in enumerate(frames):
            writer.writepkt(f, ts=1_735_689_600 + i)
    return path


def backdoor_frames(cms: str = "202.114.4.119", hl7_server: str = "202.114.4.120", *,
                    device: str = DEVICE) -> list[bytes]:
    patient = b"\x00".join([b"ICU", b"07", NAME, b"P-1"])
    block = struct.pack("<H", 4 + len(patient)) + b"\x05\x3e" + patient
    hl7 = b"\x0bMSH|^~\\&|CMS|B7|||x||ORU^R01|1|P|2.3\rPID|||P-1||DOE^JANE\r\x1c\x0d"
    mnt = oncrpc.encode_call(7, oncrpc.MOUNT_PROG, 3, oncrpc.MOUNT_MNT, oncrpc.encode_string(b"/pm"))
    return [
        frame(device, cms, 40000, 515, flags=dpkt.tcp.TH_SYN, seq=999),
        frame(device, cms, 40000, 515, block[:10], seq=1000),
        frame(device, cms, 40000, 515, block[10:], seq=1010),
        frame(device, cms, 40000, 515, block[:10], seq=1000),  # retransmission
        frame(cms, device, 515, 40000, b""),
        frame(device, hl7_server, 40001, 511, hl7),
        frame(device, cms, 900, 2049, mnt, udp=True),
        frame(device, "10.0.0.1", 40002, 443, b"\x16\x03\x01"),
    ]


def test_capture_with_indicator_traffic_is_flagged(tmp_path: Path) -> None:
    report = read_capture(write_pcap(tmp_path / "dirty.pcap", backdoor_frames()))
    assert not report.clean and report.indicator_packets == 7 and report.packets == 8


def test_ports_are_classified(tmp_path: Path) -> None:
    report = read_capture(write_pcap(tmp_path / "dirty.pcap", backdoor_frames()))
    assert {f.port_class for f in report.flows} == {"cms", "hl7", "nfs-udp"}


def test_reassembled_stream_reveals_the_patient_record_but_not_the_patient(tmp_path: Path) -> None:
    report = read_capture(write_pcap(tmp_path / "dirty.pcap", backdoor_frames()))
    kinds = {o.kind for o in report.observations}
    assert {"cms-telemetry", "hl7", "rpc-mount", "connect"} <= kinds
    assert report.patient_data_seen
    assert b"DOE" not in repr(report.to_dict()).encode()


def test_capture_without_indicators_is_clean(tmp_path: Path) -> None:
    frames = [frame(DEVICE, "10.0.0.1", 40002, 443, b"hello"), frame("10.0.0.1", DEVICE, 443, 40002, b"hi")]
    report = read_capture(write_pcap(tmp_path / "clean.pcap", frames))
    assert report.clean and report.observations == () and report.packets == 2


def test_loopback_stand_in_is_flagged_only_when_the_mapping_is_given(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "lo.pcap", backdoor_frames("127.114.9.119", "127.114.9.120"))
    assert read_capture(path).clean
    report = read_capture(path, indicator_map=IndicatorMap("127.114.9"))
    assert not report.clean and all(f.indicator.startswith("202.114.4.") for f in report.flows)


def test_pcapng_is_read_too(tmp_path: Path) -> None:
    report = read_capture(write_pcap(tmp_path / "dirty.pcapng", backdoor_frames(), ng=True))
    assert not report.clean and report.patient_data_seen


def test_a_file_that_is_no_capture_is_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a capture")
    with pytest.raises(CaptureError) as info:
        read_capture(path)
    assert info.value.reason == "pcap-unreadable"


def test_a_missing_file_is_refused_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(CaptureError):
        read_capture(tmp_path / "absent.pcap")


def test_truncated_capture_keeps_what_was_read_and_says_so(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "cut.pcap", backdoor_frames())
    path.write_bytes(path.read_bytes()[:-20])
    report = read_capture(path)
    assert not report.clean


def test_capture_serves_as_a_network_observer_filtered_by_device(tmp_path: Path) -> None:
    observer = CaptureObserver(read_capture(write_pcap(tmp_path / "d.pcap", backdoor_frames())))
    assert observer.observations(source=DEVICE)
    assert observer.observations(source="10.9.9.9") == []


def test_capture_alone_proves_the_leak_without_any_device_access(tmp_path: Path) -> None:
    from orchestrator.domain.devices import CredentialRef, DeliveryPath, Device
    from orchestrator.domain.indicators import Cve
    from orchestrator.domain.verdicts import Verdict
    from orchestrator.verification import verify_device

    device = Device("bed07", "CMS8000", "S-1", "North", "ICU", "07", DEVICE, 22, "service",
                    CredentialRef(key_file="k"), "SHA256:x", DeliveryPath.SSH)
    observer = CaptureObserver(read_capture(write_pcap(tmp_path / "d.pcap", backdoor_frames())))
    result = verify_device(None, device, expected_version=None, observer=observer, trigger=None, window=5.0,
                           udp_probe_ports=None)
    verdicts = {v.cve: v.verdict for v in result.verdicts}
    assert verdicts[Cve.PHI_LEAK] is Verdict.VULNERABLE
    assert verdicts[Cve.MONITOR_NFS] is Verdict.VULNERABLE  # the MNT "/pm" in the capture
    assert verdicts[Cve.UDP_RCE] is Verdict.INCONCLUSIVE


def test_pcap_command_exits_1_on_indicators_and_never_prints_the_patient(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.cli.main import main

    path = write_pcap(tmp_path / "dirty.pcap", backdoor_frames())
    assert main(["pcap", str(path)]) == 1
    assert main(["pcap", str(path), "--json"]) == 1
    out = capsys.readouterr().out
    assert "FLAGGED" in out and "PATIENT DATA" in out and "DOE" not in out


def test_pcap_command_exits_0_on_a_clean_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.cli.main import main

    path = write_pcap(tmp_path / "clean.pcap", [frame(DEVICE, "10.0.0.1", 40002, 443, b"hello")])
    assert main(["pcap", str(path)]) == 0
    assert "CLEAN" in capsys.readouterr().out


def test_pcap_command_refuses_a_non_capture_with_exit_2(tmp_path: Path) -> None:
    from orchestrator.cli.main import main

    path = tmp_path / "x.pcap"
    path.write_bytes(b"garbage")
    assert main(["pcap", str(path)]) == 2


INVENTORY = """\
all:
  vars:
    ansible_user: service
    ansible_ssh_private_key_file: keys/fleet_ed25519
    cmspatch_known_hosts: known_hosts
  children:
    site_north:
      vars: { site: "North General" }
      children:
        north_icu:
          vars: { ward: "ICU" }
          hosts:
            north-icu-bed07:
              ansible_host: 127.88.1.5
              ansible_port: 9
              model: CMS8000
              serial: "CMS8K-2301-00017"
              bed: "07"
              host_key: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
              delivery: ssh
"""


def test_survey_reads_a_capture_for_a_monitor_it_cannot_log_in_to(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from orchestrator.cli.main import main

    inventory = tmp_path / "inventory.yml"
    inventory.write_text(INVENTORY)
    pcap = write_pcap(tmp_path / "mirror.pcap", backdoor_frames(device="127.88.1.5"))
    code = main(["survey", "-i", str(inventory), "--pcap", str(pcap), "--json", "--no-udp-probe",
                 "--window", "0.1"])  # a recorded capture is read at once: the window costs nothing
    row = json.loads(capsys.readouterr().out)["devices"][0]
    verdicts = {v["cve"]: v["verdict"] for v in row["verdicts"]}
    assert code == 1 and not row["reachable"] and row["status"] == "vulnerable"
    assert verdicts["CVE-2025-0683"] == "vulnerable" and verdicts["CVE-2024-12248"] == "inconclusive"


def test_a_loopback_captures_all_zero_mac_ties_no_sender_to_another(tmp_path: Path) -> None:
    # lo's Ethernet header carries 00:00:00:00:00:00 for everyone: it is no identity, so packets of
    # other senders are never counted as the unit's, and the export names no MAC for them.
    zero = dpkt.ethernet.Ethernet(frame("127.0.0.1", "127.88.1.10", 40000, 51999, b"m", udp=True))
    zero.src = zero.dst = b"\x00" * 6
    path = write_pcap(tmp_path / "lo.pcap", [bytes(zero), frame(DEVICE, "10.0.0.1", 5000, 53, b"q",
                                                                 udp=True)])
    report = read_capture(path)
    assert report.senders == {"127.0.0.1": 1, DEVICE: 1}
    assert report.sender_macs == {DEVICE: "02:02:02:02:02:02"}
    assert report.sent_by("127.88.1.10", "00:00:00:00:00:00") == 0
    assert report.sent_by(DEVICE) == 1 and report.sent_by(None, "02:02:02:02:02:02") == 1
    data = report.to_dict()
    assert data["senders"] == {"127.0.0.1": 1, DEVICE: 1}
    assert data["sender_macs"] == {DEVICE: "02:02:02:02:02:02"}
