"""The demo: an emulated hospital fleet, a signed fix, and everything needed to build an Engine on it.

Shared by ``cmspatch demo`` (TUI or ``--headless``) and the TUI's tests, so the demo people see is the
one the tests drive. ``start_demo`` starts an ``EmulatedFleet`` in a work directory and arranges every
case worth showing:

- most monitors healthy and vulnerable (the campaign patches them);
- a few on the January-2025 "insufficient" firmware (eth0 off, backdoor still there);
- patients connected and an alarm (deferred, never touched while watching a patient);
- faults: an installer that fails, a monitor that does not answer, an upload that drops once
  (retried), a reboot that silently rolls back (verification catches the backdoor still present);
- one hands-on unit without service access (a USB work order a named technician confirms), then proven
  at its bench: an emulated bench unit (``emulator.bench_units``, the July 2025 fix with networking
  removed) answers on a loopback bench address the inventory names (``bench_address``), watched by
  ``cmspatch bench`` through a bench indicator map of its own (the bench is an isolated switch, so its
  sinkhole never shares the campaign's); ``Demo.bench_hands`` are the technician's hands there.

It also builds a second, refused package (the "insufficient" variant whose binaries still carry the
mount string), so the Package screen can show a refusal in plain words.

Only the front ends (``cli``) and tests import this module: it imports the emulator, which product
modules never do. Deliberately left out: any persistence between runs; ``Demo.close()`` stops the fleet
and the sinkhole, and the work directory is the caller's to keep or delete.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from orchestrator import wiring
from orchestrator.adapters.demo_trust import DemoTrust, make_demo_trust
from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.adapters.package_attest import attest_package, sign_manifest
from orchestrator.adapters.package_verify import VerificationReport, verify_package
from orchestrator.adapters.trust_files import load_signing_key
from orchestrator.domain.campaign import CampaignPolicy
from orchestrator.domain.devices import DeliveryPath
from orchestrator.domain.indicators import ALL_CVES, MODELS, IndicatorMap
from orchestrator.domain.inventory import Inventory
from orchestrator.domain.trust.verified import VerifiedPackage
from orchestrator.emulator.bench_units import BenchCase, BenchUnit
from orchestrator.emulator.catalog import DEFAULT_VULNERABLE_VERSION, INSUFFICIENT_VERSION
from orchestrator.emulator.firmware import build_package
from orchestrator.emulator.fleet import EmulatedFleet
from orchestrator.engine import Engine
from orchestrator.errors import EmulatorError

DEMO_OPERATOR = "demo-operator"
# index in the fleet -> fault(s); chosen so every case lands in a different wave of the default plan
DEMO_FAULTS: dict[int, tuple[str, ...]] = {
    3: ("patient",), 11: ("patient",), 17: ("alarm",), 29: ("patient",),
    7: ("install-fail",), 23: ("unreachable",), 13: ("upload-drop@4096",), 37: ("reboot-rollback",),
}
_FAULT_ARG = {"upload-drop": "offset", "slow-link": "rate"}
DEMO_STATES = {"vulnerable": 46, "insufficient": 3, "fixed": 1}


def demo_policy(*, fast: bool = False, **overrides: Any) -> CampaignPolicy:
    """Canary, then 5, then a quarter, then the rest; each gate waits for the operator."""
    base: dict[str, Any] = {
        "waves": ("1", "5", "25%", "100%"), "require_approval": True, "max_failures": 6,
        "observation_window": 0.5 if fast else 1.0, "reboot_timeout": 15.0, "recheck_interval": 2.0,
        "max_rechecks": 2, "command_timeout": 15.0, "per_site_concurrency": 6,
    }
    if fast:
        base.update({"retry_attempts": 3, "retry_initial": 0.05, "retry_max": 0.2})
    base.update(overrides)
    known = CampaignPolicy.__dataclass_fields__
    return CampaignPolicy(**{k: v for k, v in base.items() if k in known})


@dataclass
class Demo:
    workdir: Path
    fleet: EmulatedFleet
    inventory_path: Path
    package_path: Path
    refused_package_path: Path
    trust: DemoTrust
    indicator_map: IndicatorMap
    journal_path: Path
    policy: CampaignPolicy
    observer: Any = None  # the Sinkhole, when started
    manual_units: tuple[str, ...] = ()
    bench_units: dict[str, BenchUnit] = field(default_factory=dict)  # hands-on unit -> its bench twin
    bench_map: IndicatorMap | None = None  # the bench's own loopback stand-in for 202.114.4.0/24
    _stack: ExitStack = field(default_factory=ExitStack, repr=False)
    _owned_workdir: bool = False

    def inventory(self) -> Inventory:
        return load_inventory(self.inventory_path)

    def transports(self, inventory: Inventory | None = None) -> dict[DeliveryPath, Any]:
        return wiring.transports(inventory or self.inventory(), self.workdir / "work-orders", self._stack)

    def verify(self, *, refused: bool = False) -> VerificationReport:
        """The trust report of the demo package (or of the refused one), against the demo policy."""
        package = self.refused_package_path if refused else self.package_path
        manifest = self.refused_manifest if refused else self.trust.manifest
        return verify_package(package, manifest, self.trust.policy, state=self.trust.state, record=False)

    @property
    def refused_manifest(self) -> Path:
        return refused_manifest_path(self.refused_package_path)

    def engine(self, package: VerifiedPackage, journal: SqliteJournal, *, operator: str = DEMO_OPERATOR,
               policy: CampaignPolicy | None = None, campaign_id: str | None = None,
               **kwargs: Any) -> Engine:
        inventory = self.inventory()
        return wiring.new_engine(inventory=inventory, package=package, journal=journal,
                      transports=self.transports(inventory), policy=policy or self.policy,
                      operator=operator, observer=self.observer, campaign_id=campaign_id, **kwargs)

    def resume(self, package: VerifiedPackage, journal: SqliteJournal, campaign_id: str, *,
               operator: str = DEMO_OPERATOR, **kwargs: Any) -> Engine:
        inventory = self.inventory()
        return wiring.resume_engine(journal=journal, campaign_id=campaign_id, inventory=inventory,
                                    package=package, transports=self.transports(inventory),
                                    operator=operator, observer=self.observer, **kwargs)

    def press_trigger(self, device: str, trigger: str) -> None:
        """The technician's hands in emulation: press ``trigger`` on the emulated monitor (the hands-on
        unit has no emulated device: nothing to press there)."""
        if any(m.name == device for m in self.fleet.monitors):
            self.fleet.monitor(device).trigger(trigger)

    def bench_hands(self, device: str) -> dict[str, Callable[[], None]]:
        """The technician's hands at the bench in emulation: what each bench step does to the unit."""
        unit = self.bench_units[device]
        return {"on-bench": unit.power_on, "patient-simulator": unit.attach_simulator,
                "menu-update": lambda: unit.press("menu-update"), "boot-key": lambda: unit.press("boot-key")}

    @property
    def kept(self) -> bool:
        """The work directory, journal included, stays after ``close`` (given, or kept on request)."""
        return not self._owned_workdir

    def close(self) -> None:
        """Stop the sinkhole and the fleet; remove the work directory if ``start_demo`` made it."""
        self._stack.close()
        self.fleet.stop()
        if self._owned_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Demo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def add_manual_unit(inventory_path: Path, out: Path, *, name_suffix: str = "usb01",
                    bench_address: str | None = None) -> str:
    """Copy the fleet's inventory with one hands-on unit (no service access) in the first ward;
    ``bench_address``: where it answers on the bench switch once installed (``cmspatch bench``)."""
    from orchestrator.adapters.strict_files import load_yaml_file
    from orchestrator.domain.strict_load import INVENTORY

    doc = load_yaml_file(inventory_path, INVENTORY)  # the one strict loader, even for a file we wrote
    sites = doc["all"]["children"]
    site_group = next(iter(sites))
    wards = sites[site_group]["children"]
    ward_group = next(iter(wards))
    hosts = wards[ward_group].setdefault("hosts", {})
    name = f"{ward_group.replace('_', '-')}-{name_suffix}"
    hosts[name] = {"model": "CMS6000", "serial_number": "CMS6K-2301-09901", "bed": "99", "delivery": "manual",
                   "asset_tag": "BME-009901", "firmware": DEFAULT_VULNERABLE_VERSION["CMS6000"]}
    if bench_address:
        hosts[name]["bench_address"] = bench_address
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("# Demo inventory: the emulated fleet plus one hands-on unit.\n"
                   + yaml.safe_dump(doc, sort_keys=False, width=200), encoding="utf-8")
    os.replace(tmp, out)
    return name


def start_demo(workdir: str | os.PathLike[str] | None = None, *, monitors: int = 50,
               faults: dict[int, tuple[str, ...]] | None = None, states: dict[str, int] | None = None,
               manual_unit: bool = True, reboot_seconds: float = 1.0, fast: bool = False,
               address_prefix: str = "127.77", port: int | None = None,
               indicator_map: IndicatorMap | None = None, sinkhole: bool = True,
               policy: CampaignPolicy | None = None, bench_map: IndicatorMap | None = None,
               progress: Callable[[str], None] | None = None, keep: bool = False) -> Demo:
    """Start the demo fleet and its trust material; ``Demo.close()`` undoes it (also on error here).
    ``keep``: a work directory made here outlives the demo (its journal is for exporting afterwards)."""
    say = progress or (lambda _msg: None)
    owned = workdir is None and not keep
    root = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="cmspatch-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    indicator_map = indicator_map or IndicatorMap()
    stack = ExitStack()
    try:
        say(f"starting {monitors} emulated monitors on {address_prefix}.x ...")
        fleet = stack.enter_context(EmulatedFleet.start(
            root / "fleet", monitors=monitors, address_prefix=address_prefix,
            port=port if port is not None else 2222, indicator_map=indicator_map,
            reboot_seconds=reboot_seconds, states=_scaled(states or DEMO_STATES, monitors),
            telemetry_interval=0.5))
        for index, names in (faults if faults is not None else DEMO_FAULTS).items():
            if index < len(fleet.monitors):
                for spec in names:
                    fault, _, arg = spec.partition("@")
                    params = {_FAULT_ARG[fault]: int(arg)} if arg else {}
                    fleet.monitors[index].inject(fault, **params)
        say("building and signing the demo packages ...")
        package_path = build_package(root / "cms-fix-2.1.0.tar.gz", variant="fixed")
        trust = make_demo_trust(root, package_path)
        refused = _refused_package(root, trust)
        inventory_path = fleet.inventory_path
        manual: tuple[str, ...] = ()
        benches: dict[str, BenchUnit] = {}
        bench_map = bench_map or _bench_map(indicator_map)
        if manual_unit:
            inventory_path = root / "inventory.yml"
            address = f"{address_prefix}.250.10"  # the bench switch's port, on loopback
            manual = (add_manual_unit(fleet.inventory_path, inventory_path, bench_address=address),)
            benches[manual[0]] = stack.enter_context(BenchUnit(
                BenchCase.FIXED_NO_NETWORK, address=address, indicator_map=bench_map, name=manual[0],
                telemetry_interval=0.2))
        observer = wiring.sinkhole(indicator_map, stack) if sinkhole else None
        demo = Demo(workdir=root, fleet=fleet, inventory_path=inventory_path, package_path=package_path,
                    refused_package_path=refused, trust=trust, indicator_map=indicator_map,
                    journal_path=root / "journal.db", policy=policy or demo_policy(fast=fast),
                    observer=observer, manual_units=manual, bench_units=benches, bench_map=bench_map,
                    _owned_workdir=owned)
        demo._stack = stack.pop_all()
        return demo
    except BaseException:
        stack.close()
        if workdir is None:  # made here and never used: nothing in it to keep
            shutil.rmtree(root, ignore_errors=True)
        raise


def _bench_map(campaign: IndicatorMap) -> IndicatorMap:
    """The bench's indicator stand-in: the campaign's /24 with the third octet moved, never the same one."""
    a, b, c = campaign.loopback_prefix.split(".")
    return IndicatorMap(f"{a}.{b}.{(int(c) + 1) % 256}")


def refused_manifest_path(package: Path) -> Path:
    return package.with_name(package.name + ".manifest.json")


def _refused_package(root: Path, trust: DemoTrust) -> Path:
    """A January-2025-style "fix" properly signed by both demo keys: refused by the content scan alone
    (its binaries still carry the mount string), which is the refusal worth showing."""
    (root / "refused").mkdir(exist_ok=True)
    package = build_package(root / "refused" / "cms-jan2025.tar.gz", variant="insufficient",
                            version=INSUFFICIENT_VERSION)
    manifest = refused_manifest_path(package)
    manifest.unlink(missing_ok=True)
    biomed, security = (load_signing_key(path) for path in trust.keys.values())
    attest_package(package, biomed, version=INSUFFICIENT_VERSION, models=MODELS, from_versions=("*",),
                   release=1, cves=tuple(c.value for c in ALL_CVES),
                   expires=datetime.now(UTC) + timedelta(days=365), out=manifest, scan=False,
                   note="demo: the January 2025 build, signed in good faith")
    sign_manifest(manifest, security, check_package=False)  # the point: signed in good faith, unexamined
    return package


def _scaled(states: dict[str, int], monitors: int) -> dict[str, int]:
    """Keep a few insufficient/fixed monitors in small fleets too (weights, not exact counts)."""
    if monitors >= sum(states.values()):
        return states
    return {k: max(1, round(v * monitors / sum(states.values()))) for k, v in states.items()}


def pick_prefix(preferred: str = "127.77", *, port: int = 2222) -> str:
    """The demo's address prefix, or a free alternative when another demo already listens there."""
    for octet in (int(preferred.split(".")[1]), *range(100, 120)):
        prefix = f"127.{octet}"
        with socket.socket() as s:
            try:
                s.bind((f"{prefix}.0.1", port))
            except OSError:
                continue
        return prefix
    raise EmulatorError("no free loopback prefix for the demo fleet", reason="address-in-use")

