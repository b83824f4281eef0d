"""Every path reads the monitor's device profile: the engine's clinical gate (status command and
grammar), the installer's exit codes, and the triggers (null: a technician is asked, no service command
runs). Each monitor with a custom profile sits next to one on the shipped profile in the same campaign,
so a profile that was ignored, or applied to every monitor, fails here.

Real parts: emulated monitors over SSH on loopback, SQLite, the sinkhole. The custom profiles are the
shipped one with one thing changed, so the emulator (which serves today's procedure) still answers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import yaml

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.adapters.profile_file import SHIPPED
from orchestrator.domain.devices import DeliveryPath
from orchestrator.domain.events import EventKind
from orchestrator.domain.inventory import Inventory
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.profile import DEFAULT_PROFILE
from orchestrator.domain.verdicts import Verdict
from orchestrator.emulator import EmulatedFleet
from orchestrator.engine import Engine
from tests.integration.engine_rig import Rig, fast_policy, rig

SHIPPED_TEXT = (SHIPPED / f"{DEFAULT_PROFILE}.yml").read_text()
# Another status command, in another grammar, saying a patient is admitted (the emulator's says none).
ADMITTED = (("clinical_status: cms-status",
             "clinical_status: echo PATIENT_STATE=admitted; echo ALARM_STATE=quiet"),
            ("patient: {key: patient, clear: none, busy: [connected]}",
             "patient: {key: PATIENT_STATE, clear: discharged, busy: [admitted]}"),
            ("alarm: {key: alarm, clear: none, busy: [active]}",
             "alarm: {key: ALARM_STATE, clear: quiet, busy: [sounding]}"))


def _profile(tmp_path: Path, *changes: tuple[str, str]) -> str:
    text = SHIPPED_TEXT.replace("name: emulated-cms-service-shell", "name: test-variant")
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "variant.yml"
    path.write_text(text)
    return str(path)


def inventory_with(inventory: Path, host: str, key: str, value: str) -> Path:
    """A copy of an emulated fleet's inventory (beside it: relative paths still hold) with one host var."""
    data = yaml.safe_load(inventory.read_text())
    todo = [data]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if host in (node.get("hosts") or {}):
                node["hosts"][host] = {**(node["hosts"][host] or {}), key: value}
            todo.extend(node.values())
    out = inventory.with_name(f"inventory-{host}-{key}.yml")
    out.write_text(yaml.safe_dump(data))
    return out


def _with_profile(r: Rig, name: str, profile: str) -> Inventory:
    inv = r.inventory
    devices = tuple(replace(d, profile=profile) if d.name == name else d for d in inv.devices)
    return replace(inv, devices=devices)


def _campaign(r: Rig, journal: SqliteJournal, name: str, profile: str) -> Engine:
    """One campaign, every monitor at once, no recheck, with monitor ``name`` on ``profile``."""
    engine = r.engine(journal, policy=fast_policy(max_rechecks=0, canary_must_pass=False),
                      inventory=_with_profile(r, name, profile))
    engine.run(auto_approve=True)
    return engine


def test_engine_gates_on_the_profiles_status_command_and_grammar(tmp_path: Path) -> None:
    # The emulator's cms-status says no patient; this unit's profile reads another command, in another
    # grammar, that says a patient is admitted: the campaign defers it and patches its neighbour.
    variant = _profile(tmp_path, *ADMITTED)
    with rig(tmp_path, monitors=2) as r, r.journal() as journal:
        held, clear = (m.name for m in r.fleet.monitors)
        devices = _campaign(r, journal, held, variant).status.devices
        assert (devices[held].state, devices[held].reason) == (DeviceState.DEFERRED, "patient-connected")
        assert devices[clear].state is DeviceState.PATCHED
        assert r.installs(held) == 0


def test_installer_exit_codes_come_from_the_profile(tmp_path: Path) -> None:
    # The emulated installer's flash-write failure exits 5: installer-failed on the shipped profile. A
    # profile whose vendor says 5 means "no room on the partition" records it as disk-full (never retried).
    variant = _profile(tmp_path, ("exit_codes: {0: ok, 6: disk-full}", "exit_codes: {0: ok, 5: disk-full}"))
    with rig(tmp_path, monitors=2) as r, r.journal() as journal:
        custom, shipped = r.fleet.monitors
        custom.inject("install-fail")
        shipped.inject("install-fail")
        engine = r.engine(journal, policy=fast_policy(canary_must_pass=False, max_failures=None),
                          inventory=_with_profile(r, custom.name, variant))
        engine.run(auto_approve=True)
        devices = engine.status.devices
        assert (devices[custom.name].state, devices[custom.name].reason) == (DeviceState.FAILED,
                                                                             "disk-full")
        assert (devices[shipped.name].state, devices[shipped.name].reason) == (DeviceState.FAILED,
                                                                               "installer-failed")


def test_a_trigger_without_service_command_asks_the_technician(tmp_path: Path) -> None:
    variant = _profile(tmp_path, ("menu-update: cms-service trigger menu-update", "menu-update: null"),
                       ("boot-key: cms-service trigger boot-key", "boot-key: null"))
    with rig(tmp_path, monitors=2) as r, r.journal() as journal:
        by_hand, by_service = (m.name for m in r.fleet.monitors)
        engine = r.engine(journal, policy=fast_policy(canary_must_pass=False, trigger_timeout=0.5),
                          inventory=_with_profile(r, by_hand, variant))
        engine.run(auto_approve=True)
        requested = {(rec.device, rec.data.get("trigger")) for rec in journal.records(engine.campaign_id)
                     if rec.kind is EventKind.TRIGGER_REQUESTED}
        assert requested == {(by_hand, "menu-update"), (by_hand, "boot-key")}
        shell = [a for a in r.fleet.monitor(by_hand).activity() if a.get("kind") == "trigger"]
        assert shell == []  # no service command ran on the unit whose profile has none
        assert any(a.get("kind") == "trigger" for a in r.fleet.monitor(by_service).activity())
        assert engine.status.devices[by_service].state is DeviceState.PATCHED


def test_survey_reads_each_monitors_profile_for_its_clinical_gate(
        fleet_factory: Callable[..., EmulatedFleet], tmp_path: Path) -> None:
    # The same profile change as the campaign test, through `cmspatch survey --exercise-triggers`: the
    # unit whose profile says a patient is admitted is read, never triggered; its neighbour is triggered.
    variant = _profile(tmp_path, *ADMITTED)
    fleet = fleet_factory(2)
    held, clear = (m.name for m in fleet.monitors)
    inventory = inventory_with(fleet.inventory_path, held, "cmspatch_profile", variant)
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "survey", "-i", str(inventory),
                           "--exercise-triggers", "--json", "--window", "0.4", "--sinkhole-prefix",
                           fleet.indicator_map.loopback_prefix],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)
    rows = {d["device"]: d for d in json.loads(proc.stdout)["devices"]}
    assert rows[held]["clinical_hold"] == "patient-connected" and rows[held]["triggers"] == []
    assert rows[clear]["triggers"] == ["menu-update", "boot-key"]
    assert not any(a.get("kind") == "trigger" for a in fleet.monitor(held).activity())


def test_a_device_check_the_profile_does_not_declare_is_not_run_and_its_cve_stays_inconclusive(
        tmp_path: Path) -> None:
    # The unit's profile cannot read /proc/net/udp for listeners: the check is never sent to the monitor,
    # and CVE-2024-12248 (which needs it) is inconclusive with that reason, never fixed, while the other
    # CVEs and the neighbour on the shipped profile are proven as usual.
    variant = _profile(tmp_path, ("  - udp-listener                 # /proc/net/udp\n", ""))
    with rig(tmp_path, monitors=2) as r, r.journal() as journal:
        limited, full = (m.name for m in r.fleet.monitors)
        engine = _campaign(r, journal, limited, variant)
        devices = engine.status.devices
        assert devices[full].state is DeviceState.PATCHED, devices[full].reason
        assert devices[limited].state is not DeviceState.PATCHED
        verdicts = {v: k for k, v in devices[limited].verdicts.items()}
        assert devices[limited].verdicts == {**{c: Verdict.FIXED for c in devices[limited].verdicts},
                                             "CVE-2024-12248": Verdict.INCONCLUSIVE}, verdicts
        reasons = [rec.data["reason"] for rec in journal.records(engine.campaign_id)
                   if rec.kind is EventKind.VERDICT and rec.device == limited
                   and rec.data["cve"] == "CVE-2024-12248"]
        assert reasons and all("the device profile test-variant does not declare it" in x and "udp-listener"
                               in x for x in reasons), reasons
        def batched(name: str, check: str) -> bool:  # the batch's marker line for the check (check_batch)
            return any(re.search(rf"' [0-9a-f]{{32}} {check}\n", a.get("command", ""))
                       for a in r.fleet.monitor(name).activity() if a["kind"] == "command")
        assert batched(limited, "indicator-socket") and not batched(limited, "udp-listener")
        assert batched(full, "udp-listener")


def test_a_hands_on_units_work_order_follows_its_profile(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=2, sinkhole=False) as r, r.journal() as journal:
        generic, shipped = (m.name for m in r.fleet.monitors)
        devices = tuple(replace(d, delivery=DeliveryPath.MANUAL, profile="generic-busybox-no-triggers"
                                if d.name == generic else d.profile) for d in r.inventory.devices)
        engine = r.engine(journal, policy=fast_policy(waves=("100%",), canary_must_pass=False),
                          inventory=replace(r.inventory, devices=devices))
        engine.run(auto_approve=True)
        orders = {rec.device: rec.data["order"] for rec in journal.records(engine.campaign_id)
                  if rec.kind is EventKind.WORK_ORDER}
        assert orders[generic]["profile"] == "generic-busybox-no-triggers"
        assert orders[generic]["usb_path"] == f"sysupgrade/{r.package.package_name}"
        steps = orders[generic]["steps"]
        assert any(s.startswith("Run `sysupgrade --no-reboot /overlay/upgrade/") for s in steps), steps
        assert orders[shipped]["profile"] == DEFAULT_PROFILE
        assert any("from the monitor's service menu" in s for s in orders[shipped]["steps"])
        printed = (r.workdir / "work-orders" / f"work-order-{generic}.txt").read_text()
        assert "Settings > About this device" in printed
        assert not [a for m in r.fleet.monitors for a in m.activity() if a["kind"] == "login"]
