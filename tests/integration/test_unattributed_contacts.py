"""Contacts that fit no monitor (domain.attribution), end to end: real `cmspatch survey` process, emulated
fleet over real SSH, the real sinkhole it starts, and a stranger on loopback that talks NFS to the
sinkhole from an address the inventory does not have (as a monitor behind NAT or on a new DHCP lease
would). Every monitor watched meanwhile is inconclusive on its network checks, never "pass"; a monitor
whose own contacts are seen is still vulnerable; the summary and `cmspatch status` count the stranger.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.domain import oncrpc
from orchestrator.domain.events import EventKind
from orchestrator.emulator import EmulatedFleet

# Not in any emulated inventory: fleets use 127.20-127.99, indicator maps 127.150-127.249.
STRANGER = "127.123.0.5"
NETWORK_CHECKS = ("sinkhole-window", "sinkhole-nfs", "sinkhole-after-menu-update", "sinkhole-after-boot-key")
GETPORT = oncrpc.record_mark(oncrpc.encode_call(
    1, oncrpc.PMAP_PROG, 2, oncrpc.PMAP_GETPORT, struct.pack(">IIII", oncrpc.MOUNT_PROG, 3, 6, 0)))


@contextmanager
def stranger(cms_server: str, source: str = STRANGER) -> Iterator[threading.Event]:
    """From ``source``, an RPC GETPORT to portmapper 111 and a connection to NFS 2049, again and again (as
    the backdoor retries) until the test is done. The event is set once the sinkhole answered one."""
    answered, stop = threading.Event(), threading.Event()

    def contact(port: int, payload: bytes) -> None:
        with socket.socket() as sock:
            sock.settimeout(2)
            sock.bind((source, 0))
            sock.connect((cms_server, port))
            if payload:
                sock.sendall(payload)
                if sock.recv(64):
                    answered.set()

    def run() -> None:
        while not stop.is_set():
            for port, payload in ((111, GETPORT), (2049, b"")):
                try:
                    contact(port, payload)
                except OSError:
                    pass  # the survey's sinkhole is not listening yet, or already stopped
            stop.wait(0.05)  # the stranger's retry cadence

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield answered
    finally:
        stop.set()
        thread.join(5)


def cmspatch(*args: str, cwd: Path) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def survey(fleet: EmulatedFleet, journal: Path, *limit: str) -> dict[str, Any]:
    code, out, err = cmspatch("survey", "--exercise-triggers", "--window", "1.5", "--no-udp-probe", *limit,
                              "-i", str(fleet.inventory_path), "--journal", str(journal), "--json",
                              "--sinkhole-prefix", fleet.indicator_map.loopback_prefix, cwd=journal.parent)
    assert out.strip(), f"survey printed no JSON (exit {code}): {err}"
    doc: dict[str, Any] = json.loads(out)
    return doc


def network_outcomes(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {d["device"]: {e["check"]: e["outcome"] for e in d["evidence"] if e["check"] in NETWORK_CHECKS}
            for d in doc["devices"]}


def verdicts(doc: dict[str, Any], device: str) -> dict[str, str]:
    row = next(d for d in doc["devices"] if d["device"] == device)
    return {v["cve"]: v["verdict"] for v in row["verdicts"]}


def test_a_contact_from_an_address_no_monitor_has_leaves_every_watched_monitor_inconclusive(
        fleet_factory: Callable[..., EmulatedFleet], tmp_path: Path) -> None:
    fleet = fleet_factory(3, states={"fixed": 2, "vulnerable": 1})
    fixed = [m.name for m in fleet.monitors if m.firmware_state == "fixed"]
    vulnerable = next(m.name for m in fleet.monitors if m.firmware_state == "vulnerable")
    cms_server = fleet.indicator_map.map("202.114.4.119")

    clean = survey(fleet, tmp_path / "clean.db")  # the control: without the stranger, the fixed pass
    assert all(set(network_outcomes(clean)[name].values()) == {"pass"} for name in fixed)
    assert clean["summary"]["observed"]["unattributed_contact"] == 0

    journal = tmp_path / "journal.db"
    with stranger(cms_server) as answered:
        doc = survey(fleet, journal)
    assert answered.is_set(), "the sinkhole never answered the stranger's GETPORT"

    outcomes = network_outcomes(doc)
    for name in fixed:
        assert outcomes[name] == dict.fromkeys(NETWORK_CHECKS, "inconclusive"), (name, outcomes[name])
        row = next(d for d in doc["devices"] if d["device"] == name)
        reasons = [e["details"]["error"] for e in row["evidence"] if e["check"] in NETWORK_CHECKS]
        assert all(r == "an unattributed contact to the indicator range was seen in this window from "
                   f"{STRANGER}" for r in reasons)
        assert "fixed" not in {verdicts(doc, name)[c] for c in ("CVE-2025-0626", "CVE-2025-1204",
                                                                "CVE-2025-0683")}
        assert not row["all_fixed"]
    # A contact the vulnerable monitor made itself is still its own: vulnerable, not merely inconclusive.
    assert verdicts(doc, vulnerable)["CVE-2025-0626"] == "vulnerable"
    assert verdicts(doc, vulnerable)["CVE-2025-1204"] == "vulnerable"
    assert outcomes[vulnerable]["sinkhole-after-menu-update"] == "fail"

    summary = doc["summary"]
    assert summary["observed"]["unattributed_contact"] == len(summary["unattributed_contacts"]) > 0
    assert {c["source"].rsplit(":", 1)[0] for c in summary["unattributed_contacts"]} == {STRANGER}
    assert {c["target"] for c in summary["unattributed_contacts"]} >= {"202.114.4.119:111",
                                                                       "202.114.4.119:2049"}
    assert set(fixed) <= {n for c in summary["unattributed_contacts"] for n in c["watched"]}

    with SqliteJournal(journal) as j:
        strays = [r for r in j.records(doc["campaign"]) if r.kind is EventKind.UNATTRIBUTED_CONTACT]
    assert strays and all(r.device is None for r in strays)

    code, text, err = cmspatch("status", "--journal", str(journal), "--campaign", doc["campaign"], "--json",
                               cwd=tmp_path)
    assert code == 0, err
    shown = json.loads(text)["unattributed_contacts"]  # the journal lists up to 100 per monitor watched
    assert 0 < len(shown) <= summary["observed"]["unattributed_contact"]
    assert {c["source"] for c in shown} <= {c["source"] for c in summary["unattributed_contacts"]}
    code, text, err = cmspatch("status", "--journal", str(journal), "--campaign", doc["campaign"],
                               cwd=tmp_path)
    assert code == 0, err
    assert f"{len(shown)} contact(s) with 202.114.4.0/24 fit no monitor (unattributed)" in text
    assert f"  {STRANGER}: " in text and "no monitor is known at " + STRANGER in text


def test_a_campaign_never_calls_a_monitor_patched_while_a_contact_fits_no_monitor(tmp_path: Path) -> None:
    """The same rule on the campaign path (the engine verifies after the reboot with verify_device): a
    healthy monitor, patched without the stranger (test_engine_campaign), fails verification-inconclusive
    with it, and the journal records the stranger fleet-wide."""
    from tests.integration.engine_rig import rig

    with rig(tmp_path, monitors=1) as r, r.journal() as journal:
        with stranger(r.indicator_map.map("202.114.4.119")) as answered:
            engine = r.engine(journal)
            engine.run(auto_approve=True)
        assert answered.is_set()
        name = r.fleet.monitors[0].name
        assert engine.status.devices[name].state.value == "failed"
        assert engine.status.devices[name].reason == "verification-inconclusive"
        records = list(journal.records(engine.campaign_id))
    strays = [rec for rec in records if rec.kind is EventKind.UNATTRIBUTED_CONTACT]
    assert strays and strays[0].device is None and strays[0].data["watched"] == name
    assert {c["source"].rsplit(":", 1)[0] for c in strays[0].data["contacts"]} == {STRANGER}
    outcomes = {rec.data["evidence"]["check"]: rec.data["evidence"]["outcome"] for rec in records
                if rec.kind is EventKind.CHECK_RESULT and rec.data["evidence"]["check"] in NETWORK_CHECKS}
    assert outcomes == dict.fromkeys(NETWORK_CHECKS, "inconclusive")
    # the exports name the stranger too: a unit on the wire that no inventory lists
    from orchestrator.exports.html import render_html
    from orchestrator.exports.json import export_document
    from orchestrator.exports.model import build_model

    model = build_model(records, engine.campaign_id)
    contacts = export_document(model)["unattributed_contacts"]
    assert contacts and {c["source"].rsplit(":", 1)[0] for c in contacts} == {STRANGER}
    assert contacts[0]["watched"] == [name]
    assert STRANGER in render_html(model).decode().split("Contacts that fit no monitor", 1)[1]


def test_a_contact_from_a_monitor_outside_the_selection_is_that_monitors_not_a_stranger(
        fleet_factory: Callable[..., EmulatedFleet], tmp_path: Path) -> None:
    """`survey --limit A` knows the whole inventory: B's contacts (from B's inventory address) are B's, so
    A's network checks still pass and nothing is counted as unattributed."""
    fleet = fleet_factory(2, states={"fixed": 2})
    selected, neighbour = fleet.monitors
    with stranger(fleet.indicator_map.map("202.114.4.119"), source=neighbour.address) as answered:
        doc = survey(fleet, tmp_path / "journal.db", "--limit", selected.name)
    assert answered.is_set()
    assert network_outcomes(doc) == {selected.name: dict.fromkeys(NETWORK_CHECKS, "pass")}
    assert doc["summary"]["observed"]["unattributed_contact"] == 0


def test_an_address_the_monitor_reports_for_itself_makes_its_contacts_its_own(
        fleet_factory: Callable[..., EmulatedFleet], tmp_path: Path) -> None:
    """A's `ifconfig -a` says 127.123.0.5 (a lease the inventory does not know yet). Contacts from there
    are A's: A's network checks fail, B's still pass, nothing is unattributed."""
    fleet = fleet_factory(2, states={"fixed": 2})
    moved, other = fleet.monitors
    conf = moved.root / "etc/device.conf"
    conf.write_text(conf.read_text().replace(f"IPADDR={moved.address}\n", f"IPADDR={STRANGER}\n"))
    with stranger(fleet.indicator_map.map("202.114.4.119")) as answered:
        # One at a time, A first: B is then watched only after A has reported its address. (Run side by
        # side, a window of B's that ended before A's report would rightly be inconclusive.)
        doc = survey(fleet, tmp_path / "journal.db", "--workers", "1")
    assert answered.is_set()
    outcomes = network_outcomes(doc)
    # Both trigger windows caught A's own contacts. sinkhole-nfs counts only contacts *outside* the trigger
    # windows, which the stranger's retry cadence usually but not always puts there (a starved thread on a
    # loaded machine may only get to run inside them): either it caught them too, or it saw none of A's;
    # what it never is is inconclusive, since nothing fits no monitor.
    triggers = NETWORK_CHECKS[2:]
    assert {k: outcomes[moved.name][k] for k in triggers} == dict.fromkeys(triggers, "fail")
    assert outcomes[moved.name]["sinkhole-window"] == "pass"
    assert outcomes[moved.name]["sinkhole-nfs"] in ("fail", "pass")
    assert outcomes[other.name] == dict.fromkeys(NETWORK_CHECKS, "pass")
    assert doc["summary"]["observed"]["unattributed_contact"] == 0
    identity = next(e for e in next(d for d in doc["devices"] if d["device"] == moved.name)["evidence"]
                    if e["check"] == "interface-identity")
    assert identity["details"]["addresses"] == [STRANGER]
