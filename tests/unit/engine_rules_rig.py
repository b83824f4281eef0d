"""The rig of the engine-rule unit tests: the real Engine, journal (SQLite in tmp_path), profiles,
package trust and verification, on scripted monitors (``orchestrator.adapters.scripted``) instead of SSH.

Only the wire is scripted, so each rule test runs in milliseconds; a test that verifies a monitor
waits the observation window (``WINDOW``, the shortest that can show silence) once per monitor. The
journal is SQLite in memory unless a test asks for the file (``durable``): a commit with
``synchronous=FULL`` costs milliseconds on a disk, and most rules are not about durability; the resume,
claims and lease rules use the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from orchestrator import wiring
from orchestrator.adapters.demo_trust import make_demo_trust
from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.adapters.manual import ManualTransport
from orchestrator.adapters.package_verify import verify_package
from orchestrator.adapters.profile_file import ProfileBook
from orchestrator.adapters.scripted import ScriptedFleet, ScriptedMonitor
from orchestrator.domain.campaign import CampaignPolicy
from orchestrator.domain.checks import MIN_WATCH_SECONDS
from orchestrator.domain.devices import CredentialRef, DeliveryPath, Device
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.inventory import Inventory
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.profile import DEFAULT_PROFILE
from orchestrator.domain.trust.verified import VerifiedPackage
from orchestrator.engine import CampaignOutcome, Engine
from orchestrator.ports import Journal
from orchestrator.retry import RetryPolicy
from orchestrator.verification import verify_device
from tests.trust_helpers import FIXED_VERSION, write_package

WINDOW = 2 * MIN_WATCH_SECONDS + 0.02  # each trigger's share must be long enough to show silence
RETRY = RetryPolicy(attempts=3, initial=0.001, maximum=0.002, jitter=0.0)
S = DeviceState


def policy(**overrides: Any) -> CampaignPolicy:
    base: dict[str, Any] = {"waves": ("1", "100%"), "require_approval": False, "observation_window": WINDOW,
                            "reboot_timeout": 2.0, "recheck_interval": 0.0, "max_rechecks": 2,
                            "command_timeout": 5.0, "retry_attempts": 3, "retry_initial": 0.001,
                            "retry_max": 0.002, "max_workers": 4}
    base.update(overrides)
    return CampaignPolicy(**base)


def signed_package(directory: Path, **members: bytes) -> VerifiedPackage:
    """A fixed vendor package for CMS8000 monitors (clean binaries, target FIXED_VERSION) attested by two
    hospital keys; ``members`` replaces binaries (``update=...``) to make another package."""
    path = write_package(directory, version=FIXED_VERSION, **members)
    trust = make_demo_trust(directory, path, models=("CMS8000",))
    return verify_package(path, trust.manifest, trust.policy, state=trust.state).require()


def device(index: int, *, profile: str = DEFAULT_PROFILE, site: str = "North", ward: str = "ICU",
           model: str = "CMS8000", manual: bool = False) -> Device:
    return Device(name=f"bed{index:02d}", model=model, serial=f"SN{index:04d}", site=site, ward=ward,
                  bed=str(index), address="" if manual else f"127.88.0.{index}", port=0 if manual else 22,
                  user="" if manual else "service",
                  credential=CredentialRef() if manual else CredentialRef(key_file="unused"),
                  host_key=None if manual else "SHA256:scripted",
                  delivery=DeliveryPath.MANUAL if manual else DeliveryPath.SSH, profile=profile)


@dataclass
class Rules:
    """One campaign's world: scripted monitors, a journal file, the package; engines made on demand."""

    directory: Path
    package: VerifiedPackage
    devices: tuple[Device, ...]
    durable: bool = False
    profiles: ProfileBook = field(init=False)
    fleet: ScriptedFleet = field(init=False)
    journal_path: Path = field(init=False)
    _journals: list[SqliteJournal] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.profiles = ProfileBook(self.devices)
        self.fleet = ScriptedFleet(self.devices, self.profiles.of)
        self.journal_path = self.directory / "journal.db"

    @property
    def inventory(self) -> Inventory:
        return Inventory(devices=self.devices, path=str(self.directory / "inventory.yml"))

    def monitor(self, index: int) -> ScriptedMonitor:
        return self.fleet.monitor(f"bed{index:02d}")

    @property
    def monitors(self) -> list[ScriptedMonitor]:
        return list(self.fleet.monitors.values())

    def journal(self, path: Path | None = None) -> SqliteJournal:
        journal = SqliteJournal(path or (self.journal_path if self.durable else ":memory:"))
        self._journals.append(journal)
        return journal

    def _kwargs(self, journal: Journal | None) -> dict[str, Any]:
        return {"inventory": self.inventory, "package": self.package, "journal": journal or self.journal(),
                "transports": {DeliveryPath.SSH: self.fleet.transport,
                               DeliveryPath.MANUAL: ManualTransport(self.directory / "work-orders")},
                "operator": "rule-test", "observer": self.fleet.observer,
                "verify": partial(verify_device, prober=self.fleet.prober), "retry": RETRY}

    def engine(self, campaign_policy: CampaignPolicy | None = None, *, journal: Journal | None = None,
               **kwargs: Any) -> Engine:
        return wiring.new_engine(policy=campaign_policy or policy(), **self._kwargs(journal), **kwargs)

    def resume(self, campaign_id: str, *, journal: Journal | None = None, **kwargs: Any) -> Engine:
        args = self._kwargs(journal)
        args.pop("inventory")
        return wiring.resume_engine(campaign_id=campaign_id, inventory=self.inventory, **args, **kwargs)

    def run(self, campaign_policy: CampaignPolicy | None = None, *, auto_approve: bool = False,
            **kwargs: Any) -> tuple[Engine, CampaignOutcome]:
        engine = self.engine(campaign_policy, **kwargs)
        return engine, engine.run(auto_approve=auto_approve)

    def close(self) -> None:
        for journal in self._journals:
            journal.close()


def states(engine: Engine) -> dict[str, tuple[str, str]]:
    """{monitor: (state, reason)} as the engine's projection of the journal has it."""
    return {n: (d.state.value, d.reason) for n, d in engine.status.devices.items()}


def records(engine: Engine, kind: EventKind, device: str | None = None) -> list[JournalRecord]:
    return [r for r in engine.journal.records(engine.campaign_id)
            if r.kind is kind and (device is None or r.device == device)]


def moves(engine: Engine, device: str) -> list[tuple[str, str]]:
    """(to, reason) of each state change of ``device``, oldest first."""
    return [(str(r.data["to"]), str(r.data.get("reason", "")))
            for r in records(engine, EventKind.STATE_CHANGED, device)]


class Worlds:
    """Makes ``Rules`` for one test (``worlds(3)``: bed01..bed03; ``worlds(device(1), ...)``: those) and
    closes their journals at the end (``with``)."""

    def __init__(self, directory: Path, package: VerifiedPackage) -> None:
        self.directory, self.package = directory, package
        self.made: list[Rules] = []

    def __call__(self, first: int | Device = 1, *more: Device, durable: bool = False) -> Rules:
        if isinstance(first, Device):
            devices: tuple[Device, ...] = (first, *more)
        else:
            devices = tuple(device(i) for i in range(1, first + 1))
        home = self.directory / f"world{len(self.made)}"
        home.mkdir()
        self.made.append(Rules(home, self.package, devices, durable))
        return self.made[-1]

    def __enter__(self) -> Worlds:
        return self

    def __exit__(self, *exc: object) -> None:
        for rules in self.made:
            rules.close()


# The rule tests' fixtures, as plain functions each module names as its own fixture
# (``package = pytest.fixture(scope="module")(package_fixture)``): one copy, no conftest to share.
def package_fixture(tmp_path_factory: pytest.TempPathFactory) -> VerifiedPackage:
    return signed_package(tmp_path_factory.mktemp("package"))


def world_fixture(tmp_path: Path, package: VerifiedPackage) -> Iterator[Worlds]:
    with Worlds(tmp_path, package) as worlds:
        yield worlds
