"""Discovery from the wire: grouping by sender, matching by address or MAC, the draft fragment."""

from __future__ import annotations

from orchestrator.domain.devices import CredentialRef, DeliveryPath, Device
from orchestrator.domain.discovery import compare, discover, draft_fragment, vendor_of
from orchestrator.ports import Observation


def _obs(source: str, at: str, kind: str = "connect", mac: str | None = None) -> Observation:
    return Observation(at=at, source=source, target="202.114.4.119:515", protocol="tcp", kind=kind,
                       summary="", sha256="0" * 64, mac=mac,
                       field_names=("bed",) if kind != "connect" else ())


def _device(name: str, address: str, mac: str | None = None) -> Device:
    return Device(name=name, model="CMS8000", serial=name, site="S", ward="W", bed="1", address=address,
                  port=22, user="service", credential=CredentialRef(agent=True), host_key=None,
                  delivery=DeliveryPath.SSH, vars={"mac_address": mac} if mac else {})


def test_one_host_per_sender_with_first_and_last_seen() -> None:
    hosts = discover([_obs("10.9.0.5:4000", "2026-01-01T00:00:02"),
                      _obs("10.9.0.5:4001", "2026-01-01T00:00:01", "cms-telemetry")])
    assert len(hosts) == 1
    h = hosts[0]
    assert (h.address, h.first_seen, h.last_seen, h.kinds) == (
        "10.9.0.5", "2026-01-01T00:00:01", "2026-01-01T00:00:02", ("cms-telemetry", "connect"))


def test_a_known_unit_at_a_new_address_is_matched_by_its_mac_and_reported_as_moved() -> None:
    hosts = discover([_obs("10.9.0.77:4000", "t1", mac="00:80:4C:01:02:03")])
    found = compare(hosts, [_device("bed01", "10.9.0.5", mac="00-80-4c-01-02-03")])
    assert found.unknown == () and [h.device for h in found.moved] == ["bed01"]


def test_unknown_units_and_never_seen_monitors() -> None:
    hosts = discover([_obs("10.9.0.9:1", "t1")])
    found = compare(hosts, [_device("bed01", "10.9.0.5")])
    assert [h.address for h in found.unknown] == ["10.9.0.9"] and found.never_seen == ("bed01",)
    assert "ansible_host: 10.9.0.9" in draft_fragment(found.unknown, "cap.pcap")


def test_loopback_zero_macs_identify_nobody() -> None:
    assert discover([_obs("127.0.0.5:1", "t", mac="00:00:00:00:00:00")])[0].macs == ()


def test_vendor_is_the_longest_matching_prefix() -> None:
    table = {"00:50:C2": "IEEE block", "00:50:C2:36:1": "Contec"}
    assert vendor_of("00:50:c2:36:1f:00", table) == "Contec"
    assert vendor_of("00:50:c2:99:00:00", table) == "IEEE block"
    assert vendor_of("aa:bb:cc:00:00:00", table) is None
