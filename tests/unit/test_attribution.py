"""The attribution rule (domain.attribution): which monitor a contact belongs to, or none; and what a
contact that fits no monitor does to a network check and to a verdict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.domain import checks
from orchestrator.domain.attribution import FleetIdentities, Identity, host_of, normalise_mac, parse_ifconfig
from orchestrator.domain.indicators import Cve
from orchestrator.domain.verdict_rules import decide
from orchestrator.domain.verdicts import Verdict

MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


def fleet() -> FleetIdentities:
    return FleetIdentities.of([Identity("icu-1", "10.0.0.1", MAC_A), Identity("icu-2", "10.0.0.2"),
                               Identity("ward-3", "10.0.0.3", MAC_B)])


@pytest.mark.parametrize(("source", "mac", "device"), [
    ("10.0.0.1:40000", None, "icu-1"),  # the inventory address, port dropped
    ("10.0.0.2", None, "icu-2"),
    ("10.0.0.99:40000", None, None),  # nobody there: NAT, a new DHCP lease, a laptop
    ("10.0.0.99:40000", MAC_A.upper().replace(":", "-"), "icu-1"),  # a capture's MAC, any spelling
    ("10.0.0.3:40000", MAC_A, None),  # icu-1's MAC from ward-3's address: identities disagree
    ("10.0.0.1:40000", "02:00:00:00:00:99", None),  # icu-1's address, but not icu-1's MAC
    ("10.0.0.2:40000", "02:00:00:00:00:99", "icu-2"),  # icu-2's MAC is unknown: its address decides
])
def test_a_contact_is_attributed_by_address_and_mac_or_to_nobody(source: str, mac: str | None,
                                                                 device: str | None) -> None:
    assert fleet().attribute(source, mac).device == device


def test_an_address_the_monitor_reported_attributes_its_contacts() -> None:
    identities = fleet()
    assert not identities.attribute("10.0.7.7:1111").attributed
    identities.report("icu-2", ["10.0.7.7"], None)
    assert identities.attribute("10.0.7.7:1111").device == "icu-2"
    assert identities.attribute("10.0.0.2:1111").device == "icu-2"  # the inventory's still counts


def test_a_reported_mac_replaces_the_inventorys() -> None:
    identities = fleet()
    identities.report("icu-1", [], "02:00:00:00:00:77")
    assert identities.attribute("10.9.9.9:1", "02:00:00:00:00:77").device == "icu-1"
    assert not identities.attribute("10.9.9.9:1", MAC_A).attributed


def test_several_monitors_behind_one_address_are_nobody() -> None:
    identities = FleetIdentities.of([Identity("a", "192.168.1.1"), Identity("b", "192.168.1.1")])
    who = identities.attribute("192.168.1.1:5000")
    assert who.device is None and "several monitors" in who.why


def test_a_mac_claimed_by_two_monitors_is_nobody() -> None:
    identities = FleetIdentities.of([Identity("a", "10.0.0.1", MAC_A), Identity("b", "10.0.0.2", MAC_A)])
    assert not identities.attribute("10.0.0.1:1", MAC_A).attributed


def test_mac_and_address_spellings() -> None:
    assert host_of("127.88.0.5:4242") == "127.88.0.5" and host_of("127.88.0.5") == "127.88.0.5"
    assert normalise_mac("0200.0000.000A") == MAC_A
    assert normalise_mac("00:00:00:00:00:00") is None and normalise_mac("zz") is None


def test_ifconfig_gives_the_monitors_own_addresses_and_mac_but_not_loopback() -> None:
    busybox = ("eth0      Link encap:Ethernet  HWaddr 02:00:00:00:00:0A\n"
               "          inet addr:10.0.7.7  Bcast:10.0.7.255  Mask:255.255.255.0\n\n"
               "lo        Link encap:Local Loopback\n          inet addr:127.0.0.1  Mask:255.0.0.0\n")
    assert parse_ifconfig(busybox) == (("10.0.7.7",), MAC_A)
    newer = ("wlan0: flags=4163<UP>  mtu 1500\n        inet 10.1.1.4  netmask 255.255.255.0\n"
             "        ether 02:00:00:00:00:0b  txqueuelen 1000\n")
    assert parse_ifconfig(newer) == (("10.1.1.4",), MAC_B)
    evidence, reported = checks.interface_identity(busybox.encode(), "t")
    assert reported == (("10.0.7.7",), MAC_A) and evidence.outcome == "pass"
    # It speaks to the CVEs with network checks, but never decides one (not required, never "fail").
    assert Cve.UDP_RCE not in checks.cves_of(evidence) and not checks.CATALOGUE[evidence.check].decisive


@dataclass(frozen=True)
class Seen:
    source: str
    target: str
    kind: str
    at: str = "2026-01-01T00:00:01+00:00"
    sha256: str = "0" * 64
    patient_record: bool = False
    field_names: tuple[str, ...] = ()


GETPORT = Seen("127.88.0.5:40000", "202.114.4.119:111", "rpc")


@pytest.mark.parametrize("check", ["sinkhole-window", "sinkhole-nfs", "sinkhole-after-menu-update"])
def test_an_unattributed_contact_makes_every_network_check_of_the_window_inconclusive(check: str) -> None:
    ev = checks.network_window(check, [], "t", since="a", until="b", source="10.0.0.1", watched=5.0,
                               unattributed=[GETPORT])
    assert ev.outcome == "inconclusive"
    assert ev.details["error"] == ("an unattributed contact to the indicator range was seen in this window "
                                   "from 127.88.0.5")


def test_an_attributed_contact_still_fails_beside_an_unattributed_one() -> None:
    own = Seen("10.0.0.1:4000", "202.114.4.119:111", "rpc-mount")
    ev = checks.network_window("sinkhole-nfs", [own], "t", since="a", until="b", source="10.0.0.1",
                               watched=5.0, unattributed=[GETPORT])
    assert ev.outcome == "fail"
    assert decide(Cve.MONITOR_NFS, [ev]).verdict is Verdict.VULNERABLE


def test_an_inconclusive_window_never_lets_a_cve_be_fixed() -> None:
    window = checks.network_window("sinkhole-after-menu-update", [], "t", since="a", until="b",
                                   source="10.0.0.1", watched=5.0, unattributed=[GETPORT])
    passed = [checks._evidence(c, "t", "pass", "ok", b"") for c in
              ("monitor-mount-string", "nfs-mount", "indicator-socket")]
    verdict = decide(Cve.MONITOR_NFS, [*passed, window])
    assert verdict.verdict is Verdict.INCONCLUSIVE and "unattributed contact" in verdict.reason
    clean = checks.network_window("sinkhole-after-menu-update", [], "t", since="a", until="b",
                                  source="10.0.0.1", watched=5.0)
    assert decide(Cve.MONITOR_NFS, [*passed, clean]).verdict is Verdict.FIXED  # the control


def test_an_outcome_the_rule_does_not_know_never_passes() -> None:
    passed = [checks._evidence(c, "t", "pass", "ok", b"") for c in
              ("udp-listener",)]
    odd = checks._evidence("udp-probe", "t", "maybe", "?", b"")
    assert decide(Cve.UDP_RCE, [*passed, odd]).verdict is Verdict.INCONCLUSIVE


def test_a_capture_ties_a_contact_from_a_new_address_to_its_monitor_by_mac_and_only_by_mac(
        tmp_path: Path) -> None:
    """The monitor's inventory address is 10.20.30.40, but it sends from a new DHCP lease; the mirror-port
    capture has its MAC (02:02:02:02:02:02, the frames' sender). Known MAC: its own leak, vulnerable.
    MAC not in the inventory: nobody's, so inconclusive, never fixed, and recorded as unattributed."""
    from orchestrator.adapters.pcap import CaptureObserver, read_capture
    from orchestrator.domain.devices import CredentialRef, DeliveryPath, Device
    from orchestrator.verification import Identities, verify_device
    from tests.unit.test_pcap import backdoor_frames, write_pcap

    capture = write_pcap(tmp_path / "d.pcap", backdoor_frames(device="10.20.30.99"))
    observer = CaptureObserver(read_capture(capture))
    assert {o.mac for o in observer.observations()} == {"02:02:02:02:02:02"}

    def verify(**inventory_vars: object) -> Any:
        device = Device("bed07", "CMS8000", "S-1", "North", "ICU", "07", "10.20.30.40", 22, "service",
                        CredentialRef(key_file="k"), "SHA256:x", DeliveryPath.SSH, vars=dict(inventory_vars))
        return verify_device(None, device, expected_version=None, observer=observer, trigger=None,
                             window=5.0, udp_probe_ports=None, fleet=Identities([device]))

    known = verify(mac_address="02:02:02:02:02:02")
    assert known.verdict_for(Cve.PHI_LEAK.value) is Verdict.VULNERABLE and not known.unattributed
    unknown = verify()
    assert unknown.verdict_for(Cve.PHI_LEAK.value) is Verdict.INCONCLUSIVE
    assert {host_of(c["source"]) for c in unknown.unattributed} == {"10.20.30.99"}


def test_status_counts_each_unattributed_contact_once_with_every_monitor_it_made_inconclusive() -> None:
    from orchestrator.domain.events import GENESIS_HASH, EventKind, JournalRecord
    from orchestrator.domain.status import project

    contact = {"at": "t1", "source": "127.88.0.5:4000", "target": "202.114.4.119:111", "kind": "rpc",
               "sha256": "a" * 64, "why": "no monitor is known at 127.88.0.5"}
    later = {**contact, "at": "t2", "sha256": "b" * 64}

    def record(seq: int, data: dict[str, Any],
               kind: EventKind = EventKind.UNATTRIBUTED_CONTACT) -> JournalRecord:
        return JournalRecord(seq, "survey-1", kind, None, f"t{seq}", data, GENESIS_HASH, "h")

    fleet = project([record(1, {"mode": "survey", "devices": {}}, EventKind.SURVEY_STARTED),
                     record(2, {"watched": "icu-1", "total": 1, "contacts": [contact]}),
                     record(3, {"watched": "icu-2", "total": 3, "contacts": [contact, later]})], "survey-1")
    shown = fleet.unattributed_contacts()
    assert [(c["at"], c["watched"]) for c in shown] == [("t1", ["icu-1", "icu-2"]), ("t2", ["icu-2"])]
    assert fleet.unattributed_unlisted  # icu-2's record saw 3 and listed 2
