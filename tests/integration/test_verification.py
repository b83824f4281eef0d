"""verify_device against the emulated fleet: real SSH, real sinkhole, real triggers. Evidence decides."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.sinkhole import Sinkhole
from orchestrator.adapters.ssh import SshTransport
from orchestrator.domain.checks import KNOWN_AFFECTED_VERSIONS
from orchestrator.domain.devices import Device
from orchestrator.domain.events import EventKind
from orchestrator.domain.indicators import Cve
from orchestrator.domain.inventory import Inventory
from orchestrator.domain.verdicts import Verdict
from orchestrator.emulator import EmulatedFleet
from orchestrator.emulator.catalog import FIXED_VERSION
from orchestrator.errors import TransportError
from orchestrator.verification import (
    DeviceVerification,
    Identities,
    session_trigger,
    verification_events,
    verify_device,
)
from tests.integration.conftest import wait_until

WINDOW = 1.5


class Bench:
    """One fleet (vulnerable, vulnerable + patient, January-style, fixed) and a sinkhole watching it."""

    def __init__(self, fleet: EmulatedFleet, sinkhole: Sinkhole) -> None:
        self.fleet, self.sinkhole = fleet, sinkhole
        self.inventory: Inventory = load_inventory(fleet.inventory_path)
        self.transport = SshTransport(known_hosts=self.inventory.known_hosts)
        self._cache: dict[str, DeviceVerification] = {}

    def device(self, state: str, *, patient: bool = False) -> Device:
        for m in self.fleet.monitors:
            if m.firmware_state == state and m.has_fault("patient") == patient:
                return next(d for d in self.inventory.devices if d.name == m.name)
        raise AssertionError(f"no {state} monitor (patient={patient})")

    def verify(self, device: Device, **kwargs: Any) -> DeviceVerification:
        if device.name not in self._cache:
            session = self.transport.open(device)
            try:
                self._cache[device.name] = verify_device(
                    session, device, observer=self.sinkhole, trigger=session_trigger(session), window=WINDOW,
                    fleet=Identities(self.inventory.devices), **{"expected_version": None, **kwargs})
            finally:
                session.close()
        return self._cache[device.name]


@pytest.fixture(scope="module")
def bench(module_fleet_factory: Callable[..., EmulatedFleet]) -> Iterator[Bench]:
    fleet = module_fleet_factory(4, states={"vulnerable": 2, "insufficient": 1, "fixed": 1})
    vulnerable = [m for m in fleet.monitors if m.firmware_state == "vulnerable"]
    vulnerable[1].connect_patient()
    with Sinkhole(fleet.indicator_map) as sinkhole:
        yield Bench(fleet, sinkhole)


def verdicts(result: DeviceVerification) -> dict[Cve, Verdict]:
    return {v.cve: v.verdict for v in result.verdicts}


def test_vulnerable_monitor_is_still_vulnerable_on_all_four_cves(bench: Bench) -> None:
    result = bench.verify(bench.device("vulnerable"))
    assert set(verdicts(result).values()) == {Verdict.VULNERABLE}


def test_fixed_monitor_is_fixed_on_all_four_cves(bench: Bench) -> None:
    result = bench.verify(bench.device("fixed"), expected_version=FIXED_VERSION)
    assert result.all_fixed, [v.reason for v in result.verdicts]
    assert result.triggers == ("menu-update", "boot-key")


def test_january_style_fix_is_caught_on_the_hidden_mount_cves_despite_its_new_version(bench: Bench) -> None:
    device = bench.device("insufficient")
    result = bench.verify(device)
    assert result.firmware is not None and result.firmware not in KNOWN_AFFECTED_VERSIONS  # a new version
    v = verdicts(result)
    assert v[Cve.MONITOR_NFS] is Verdict.VULNERABLE and v[Cve.UPDATE_NFS] is Verdict.VULNERABLE
    decided = {e.check: e.outcome for e in result.evidence}
    assert decided["eth0-after-menu-update"] == "fail"  # eth0 was off and the hidden code turned it on


def test_hidden_mount_after_the_trigger_is_seen_by_the_sinkhole(bench: Bench) -> None:
    result = bench.verify(bench.device("vulnerable"))
    after = next(e for e in result.evidence if e.check == "sinkhole-after-menu-update")
    assert after.outcome == "fail" and after.details["kinds"].get("rpc-mount")


def test_patient_connected_vulnerable_monitor_is_caught_leaking_by_the_sinkhole(bench: Bench) -> None:
    device = bench.device("vulnerable", patient=True)
    source = device.address
    assert bench.sinkhole.wait_for(lambda o: o.source.startswith(source + ":") and o.kind == "cms-telemetry"
                                   and o.patient_record, 10), "no 0x3E patient record reached the sinkhole"
    assert bench.sinkhole.wait_for(lambda o: o.source.startswith(source + ":") and o.kind == "hl7"
                                   and o.patient_record, 10), "no HL7 PID reached the sinkhole"
    result = bench.verify(device)
    leak = next(e for e in result.evidence if e.check == "sinkhole-window")
    assert verdicts(result)[Cve.PHI_LEAK] is Verdict.VULNERABLE
    assert leak.outcome == "fail" and leak.details["patient_record_seen"] is True
    assert {"name", "patient_name"} & set(leak.details["patient_field_names"])  # CMS 0x3E or HL7 PID names


def test_verification_becomes_check_result_and_verdict_events(bench: Bench) -> None:
    result = bench.verify(bench.device("fixed"), expected_version=FIXED_VERSION)
    events = verification_events("c-1", result)
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.CHECK_RESULT) == len(result.evidence)
    assert kinds.count(EventKind.VERDICT) == 4 and kinds.count(EventKind.TRIGGER_EXERCISED) == 2
    assert all(e.device == result.device for e in events)


def test_unreachable_monitor_is_inconclusive_never_fixed(fleet_factory: Callable[..., EmulatedFleet]) -> None:
    fleet = fleet_factory(1, states={"fixed": 1})
    inventory = load_inventory(fleet.inventory_path)
    device = inventory.devices[0]
    fleet.monitors[0].inject("unreachable")
    with pytest.raises(TransportError) as info:
        SshTransport(known_hosts=inventory.known_hosts, connect_timeout=2).open(device)
    result = verify_device(None, device, expected_version=FIXED_VERSION, observer=None, trigger=None,
                           window=0.0, no_session_reason=f"unreachable ({info.value.reason})")
    assert set(verdicts(result).values()) == {Verdict.INCONCLUSIVE}
    assert not result.reachable and not result.all_fixed


def test_monitor_lost_mid_verification_is_inconclusive(fleet_factory: Callable[..., EmulatedFleet]) -> None:
    fleet = fleet_factory(1, states={"fixed": 1})
    inventory = load_inventory(fleet.inventory_path)
    device = inventory.devices[0]
    session = SshTransport(known_hosts=inventory.known_hosts).open(device)
    try:
        session.run("reboot", timeout=5)
    except TransportError:
        pass
    wait_until(lambda: not fleet.monitors[0].online, 5, "the monitor to go down")
    result = verify_device(session, device, expected_version=FIXED_VERSION, observer=None, trigger=None,
                           window=0.0)
    session.close()
    assert not result.all_fixed and Verdict.FIXED not in set(verdicts(result).values())


def test_a_zero_window_cannot_prove_the_hidden_mount_gone(bench: Bench) -> None:
    device = bench.device("fixed")
    session = bench.transport.open(device)
    try:
        result = verify_device(session, device, expected_version=FIXED_VERSION, observer=bench.sinkhole,
                               trigger=session_trigger(session), window=0.0)
    finally:
        session.close()
    assert verdicts(result)[Cve.MONITOR_NFS] is Verdict.INCONCLUSIVE
    assert verdicts(result)[Cve.UPDATE_NFS] is Verdict.INCONCLUSIVE
