"""Parsers of device output: what BusyBox and /proc say, turned into evidence."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.domain import checks
from orchestrator.domain.indicators import MOUNT_STRING

AT = "2026-01-01T00:00:00.000000+00:00"


def hexaddr(address: str, port: int) -> str:
    return f"{ipaddress.IPv4Address(address).packed[::-1].hex().upper()}:{port:04X}"


def proc_row(i: int, local: str, lport: int, remote: str, rport: int, state: int) -> str:
    rest = "00000000:00000000 00:0 0 0 0 1"
    return f"{i:4d}: {hexaddr(local, lport)} {hexaddr(remote, rport)} {state:02X} {rest}"


HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def test_mount_string_in_grep_output_fails_the_binary() -> None:
    ev = checks.binary_pattern("monitor-mount-string", MOUNT_STRING + b"\n", 0, AT)
    assert ev.outcome == "fail" and ev.details["matches"] == [MOUNT_STRING.decode()]


def test_grep_finding_nothing_passes_the_binary() -> None:
    assert checks.binary_pattern("update-mount-string", b"", 1, AT).outcome == "pass"


def test_unreadable_binary_is_an_error_not_a_pass() -> None:
    ev = checks.binary_pattern("update-mount-string", b"grep: /opt/cms/bin/update: No such file", 2, AT)
    assert ev.outcome == "error"


def test_indicator_address_is_reported_by_value() -> None:
    ev = checks.binary_pattern("monitor-indicator-address", b"\x00202.114.4.120\n", 0, AT)
    assert ev.outcome == "fail" and ev.details["matches"] == ["202.114.4.120"]


def test_version_other_than_the_target_fails_without_being_decisive() -> None:
    ev = checks.firmware_version(b"CMS7.820.075.08/0.74(0.75)\n", AT, "CMS7.820.200.05/1.10(1.10)")
    assert ev.outcome == "fail" and not checks.CATALOGUE[ev.check].decisive
    assert ev.details["known_affected"] is True


def test_nfs_mount_of_pm_fails() -> None:
    out = b"rootfs / rootfs rw 0 0\n202.114.4.119:/pm /mnt nfs rw,nolock 0 0\n"
    assert checks.nfs_mounts("nfs-mount", out, AT, None).outcome == "fail"


def test_ordinary_mounts_pass() -> None:
    out = b"rootfs / rootfs rw 0 0\nproc /proc proc rw 0 0\n/dev/mtdblock3 /data jffs2 rw 0 0\n"
    assert checks.nfs_mounts("nfs-mount", out, AT, None).outcome == "pass"


def test_socket_to_indicator_address_is_found_in_little_endian_hex() -> None:
    out = (HEADER + proc_row(0, "0.0.0.0", 22, "0.0.0.0", 0, 0x0A) + "\n"
           + proc_row(1, "10.0.0.5", 40000, "202.114.4.119", 515, 0x01) + "\n").encode()
    ev = checks.indicator_sockets(out, AT, None)
    assert ev.outcome == "fail" and "202.114.4.119:515" in ev.summary


def test_socket_to_the_loopback_stand_in_counts_in_emulation() -> None:
    out = (HEADER + proc_row(1, "127.77.0.1", 40000, "127.114.4.120", 511, 0x01) + "\n").encode()
    assert checks.indicator_sockets(out, AT, "127.114.4").outcome == "fail"
    assert checks.indicator_sockets(out, AT, None).outcome == "pass"


def test_default_route_is_not_a_route_to_the_indicators() -> None:
    out = (b"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
           b"eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
           b"eth0\t00000000\tFE00000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n")
    assert checks.routes(out, AT, None).outcome == "pass"


def test_host_route_to_the_indicator_network_fails() -> None:
    dest = hexaddr("202.114.4.0", 0)[:8]
    out = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
           f"eth0\t{dest}\t00000000\t0001\t0\t0\t0\t00FFFFFF\n").encode()
    assert checks.routes(out, AT, None).outcome == "fail"


def test_udp_listener_is_found_and_dhcp_client_is_not_one() -> None:
    out = (HEADER + proc_row(0, "0.0.0.0", 51000, "0.0.0.0", 0, 7) + "\n"
           + proc_row(1, "0.0.0.0", 68, "0.0.0.0", 0, 7) + "\n").encode()
    ev, ports = checks.udp_listeners(out, AT)
    assert ev.outcome == "fail" and ports == [51000]


def test_eth0_up_after_a_trigger_without_a_baseline_proves_nothing() -> None:
    assert checks.eth0_after("boot-key", "unknown", b"up\n", AT).outcome == "pass"


def test_eth0_brought_up_by_a_trigger_is_the_hidden_code() -> None:
    assert checks.eth0_after("menu-update", "down", b"up\n", AT).outcome == "fail"
    assert checks.eth0_after("menu-update", "up", b"up\n", AT).outcome == "pass"


def test_known_vulnerable_hash_fails_the_binaries() -> None:
    out = f"{checks.KNOWN_VULNERABLE_MONITOR_SHA256}  /opt/cms/bin/monitor\n".encode()
    assert checks.binary_hashes(out, 0, AT, None).outcome == "fail"


def test_hash_different_from_the_manifest_fails() -> None:
    out = ("a" * 64 + "  /opt/cms/bin/monitor\n").encode()
    assert checks.binary_hashes(out, 0, AT, {"/opt/cms/bin/monitor": "b" * 64}).outcome == "fail"
    assert checks.binary_hashes(out, 0, AT, {"/opt/cms/bin/monitor": "a" * 64}).outcome == "pass"


def test_answer_to_the_udp_probe_fails_and_an_unrun_probe_is_an_error() -> None:
    assert checks.udp_probe([checks.ProbeResult(51000, "answered")], AT, "127.0.0.1").outcome == "fail"
    assert checks.udp_probe([checks.ProbeResult(51000, "refused")], AT, "127.0.0.1").outcome == "pass"
    assert checks.udp_probe([checks.ProbeResult(51000, "not-run", "x")], AT, "10.0.0.1").outcome == "error"


def test_every_check_in_the_catalogue_names_its_cves() -> None:
    assert all(spec.cves for spec in checks.CATALOGUE.values())


def test_evidence_hash_covers_the_raw_output() -> None:
    a = checks.nfs_mounts("nfs-mount", b"proc /proc proc rw 0 0\n", AT, None)
    b = checks.nfs_mounts("nfs-mount", b"sysfs /sys sysfs rw 0 0\n", AT, None)
    assert a.outcome == b.outcome == "pass" and a.sha256 != b.sha256


_text = st.text(alphabet=st.sampled_from("0123456789ABCDEFabcdef:. \t\n=/xyzpm-"), max_size=400)


@settings(max_examples=200, deadline=None)
@given(_text)
def test_proc_and_status_parsers_never_raise_on_garbage(text: str) -> None:
    out = text.encode()
    parsers = (
        lambda: checks.routes(out, AT, "127.114.4"), lambda: checks.indicator_sockets(out, AT, None),
        lambda: checks.udp_listeners(out, AT), lambda: checks.nfs_mounts("nfs-mount", out, AT, None),
        lambda: checks.patient_status(out, AT), lambda: checks.firmware_version(out, AT, "v"),
        lambda: checks.binary_hashes(out, 0, AT, None), lambda: checks.eth0_state(out, AT),
    )
    for parse in parsers:
        parse()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=255))
def test_binary_scan_parser_never_raises(out: bytes, status: int) -> None:
    for check in ("monitor-mount-string", "update-indicator-address"):
        assert checks.binary_pattern(check, out, status, AT).outcome in ("pass", "fail", "error")


def test_oversized_hex_addresses_are_skipped_not_fatal() -> None:
    row = b"   1: 1234567890:0016 0100007F:0203 01 0:0 0:0 0 0 0 1\n"
    route = (b"Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
             b"eth0\t1FFFFFFFF\t0\t1\t0\t0\t0\tFFFFFFFFF\n")
    assert checks.indicator_sockets(HEADER.encode() + row, AT, None).outcome == "pass"
    assert checks.routes(route, AT, None).outcome == "pass"


def test_silence_over_a_too_short_watch_proves_nothing() -> None:
    ev = checks.network_window("sinkhole-after-boot-key", [], AT, since=AT, until=AT, source="x", watched=0.0)
    assert ev.outcome == "error"
    ev = checks.network_window("sinkhole-after-boot-key", [], AT, since=AT, until=AT, source="x", watched=1.0)
    assert ev.outcome == "pass"
