"""Test rig for the engine's integration tests: an emulated fleet, a signed package, a sinkhole.

Everything is real: SSH servers on loopback, SQLite, signatures, sockets. Each rig picks its own
address prefix, SSH port and indicator prefix so rigs (and other engineers' tests) never collide.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import wiring
from orchestrator.adapters.demo_trust import DemoTrust, make_demo_trust
from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.adapters.manual import ManualTransport
from orchestrator.adapters.package_verify import verify_package
from orchestrator.adapters.sinkhole import Sinkhole
from orchestrator.adapters.ssh import SshTransport
from orchestrator.domain.campaign import CampaignPolicy
from orchestrator.domain.devices import DeliveryPath
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.indicators import IndicatorMap
from orchestrator.domain.inventory import Inventory
from orchestrator.domain.trust.verified import VerifiedPackage
from orchestrator.emulator.firmware import build_package
from orchestrator.emulator.fleet import EmulatedFleet
from orchestrator.engine import Engine
from orchestrator.errors import EmulatorError
from orchestrator.retry import RetryPolicy

FAST_RETRY = RetryPolicy(attempts=3, initial=0.05, maximum=0.2, jitter=0.05)


def technician(rig_: Rig, answer: Callable[[str, str], None], threads: list[threading.Thread] | None = None,
               asked: list[tuple[str, str]] | None = None) -> Callable[[JournalRecord], None]:
    """A subscriber that, like a person at the bed, presses the requested key and then answers (in a
    thread of its own: never block the engine's emit); ``asked`` collects (device, trigger)."""
    def on_record(record: JournalRecord) -> None:
        if record.kind is not EventKind.TRIGGER_REQUESTED or record.device is None:
            return
        device, trigger = record.device, str(record.data["trigger"])
        if asked is not None:
            asked.append((device, trigger))

        def act() -> None:
            rig_.fleet.monitor(device).trigger(trigger)
            answer(device, trigger)
        thread = threading.Thread(target=act, daemon=True)
        thread.start()
        if threads is not None:
            threads.append(thread)
    return on_record


def fast_policy(**overrides: Any) -> CampaignPolicy:
    base: dict[str, Any] = {"waves": ("1", "100%"), "require_approval": False, "observation_window": 0.4,
                            "reboot_timeout": 8.0, "recheck_interval": 0.2, "max_rechecks": 3,
                            "command_timeout": 10.0, "retry_attempts": 3, "retry_initial": 0.05,
                            "retry_max": 0.2}
    base.update(overrides)
    return CampaignPolicy(**base)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Rig:
    workdir: Path
    fleet: EmulatedFleet
    trust: DemoTrust
    package_path: Path
    package: VerifiedPackage
    indicator_map: IndicatorMap
    sinkhole: Sinkhole | None
    journal_path: Path

    @property
    def inventory(self) -> Inventory:
        return load_inventory(self.fleet.inventory_path)

    def journal(self) -> SqliteJournal:
        return SqliteJournal(self.journal_path)

    def engine(self, journal: SqliteJournal, policy: CampaignPolicy | None = None, **kwargs: Any) -> Engine:
        inventory = kwargs.pop("inventory", None) or self.inventory
        transports = {DeliveryPath.SSH: SshTransport(known_hosts=inventory.known_hosts),
                      DeliveryPath.MANUAL: ManualTransport(self.workdir / "work-orders")}
        return wiring.new_engine(inventory=inventory, package=self.package, journal=journal,
                                 transports=transports, policy=policy or fast_policy(), operator="test",
                                 observer=self.sinkhole, retry=FAST_RETRY, **kwargs)

    def installs(self, name: str) -> int:
        activity = self.fleet.monitor(name).activity()
        return sum(1 for a in activity if a.get("kind") == "install" and a.get("ok"))

    def cli_args(self) -> list[str]:
        return ["-i", str(self.fleet.inventory_path), "--package", str(self.package_path),
                "--manifest", str(self.trust.manifest), "--policy", str(self.trust.policy),
                "--state", str(self.workdir / "cli-state.json"),
                "--indicator-prefix", self.indicator_map.loopback_prefix, "--journal", str(self.journal_path)]


def _start_fleet(tmp_path: Path, monitors: int, faults: str | None, reboot_seconds: float,
                 indicator_map: IndicatorMap, start: Callable[..., Any]) -> EmulatedFleet:
    """Random addresses and ports; another rig (or engineer) may hold the ones drawn: draw again."""
    for attempt in range(5):
        try:
            return start(
                tmp_path / f"fleet{attempt or ''}", monitors=monitors, faults=faults,
                reboot_seconds=reboot_seconds, address_prefix=f"127.{random.randint(60, 119)}",
                port=_free_port(), udp_port=_free_port(), indicator_map=indicator_map)
        except EmulatorError as exc:
            if exc.reason != "address-in-use":
                raise
    raise AssertionError("no free address for an emulated fleet after 5 draws")


@contextmanager
def rig(tmp_path: Path, *, monitors: int = 3, faults: str | None = None, sinkhole: bool = True,
        reboot_seconds: float = 0.3, start: Callable[..., Any] = EmulatedFleet.start) -> Iterator[Rig]:
    """``start``: ``EmulatedFleet.start`` or ``OpenSshFleet.start`` (real sshd monitors)."""
    indicator_map = IndicatorMap(f"127.{random.randint(120, 250)}.{random.randint(1, 250)}")
    with ExitStack() as stack:
        fleet = stack.enter_context(_start_fleet(tmp_path, monitors, faults, reboot_seconds, indicator_map,
                                                      start))
        package_path = build_package(tmp_path / "fix.tar.gz", variant="fixed")
        trust = make_demo_trust(tmp_path, package_path)
        package = verify_package(package_path, trust.manifest, trust.policy, state=trust.state).require()
        sink = stack.enter_context(Sinkhole(indicator_map)) if sinkhole else None
        yield Rig(tmp_path, fleet, trust, package_path, package, indicator_map, sink, tmp_path / "journal.db")
