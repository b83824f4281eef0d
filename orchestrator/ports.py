"""The small interfaces the engine talks through. Adapters implement them; tests hand in real ones.

One interface per concern, each a handful of methods (the shape of httpx's ``BaseTransport`` and
python-tuf's ``FetcherInterface``):

- ``DeviceSession``: one open service connection to one monitor (paramiko implements it; so do the
  Ansible and hands-on paths, at the granularity they can).
- ``DeviceTransport``: opens sessions. The engine receives a transport per delivery path.
- ``Journal``: append-only, hash-chained event log.
- ``NetworkObserver``: sinkhole or capture reader; reports what indicator traffic was seen.
- ``Clock``: elapsed time for verification's windows and the reboot's patience, so a test can hand in
  its own.
- ``Prompter``: the technician at the bench station (``bench_session``), shown each step and answering
  it; the terminal (``cli.bench``) and the TUI's bench screen are two of them, over one session.
- ``DeviceProfiles``, ``CampaignClaims``, ``WorkOrders``, ``Verification``, ``PackageFiles``: what the
  engine needs of profile files, the journal's claims file, hands-on work orders, the verification
  engineer's checks and the package's contents. The composition root (``orchestrator.wiring``) hands in
  the adapters behind them, so the engine itself imports no adapter.

Errors: every method raises only ``orchestrator.errors`` types (``TransientTransportError`` for what a
retry can fix, ``PermanentTransportError`` for what it cannot).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from orchestrator.domain.devices import Device
from orchestrator.domain.events import Event, JournalRecord
from orchestrator.domain.indicators import IndicatorMap
from orchestrator.domain.profile import DeviceProfile
from orchestrator.domain.trust.verified import VerifiedPackage


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_status: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


ProgressCallback = Callable[[int, int], None]  # (bytes sent, total bytes)


class DeviceSession(Protocol):
    device: Device

    def run(self, command: str, *, timeout: float = 30.0) -> CommandResult:
        """Run a shell command on the monitor (BusyBox sh; there is no Python on a monitor)."""
        ...

    def put(self, local: Path, remote: str, *, progress: ProgressCallback | None = None) -> None:
        """Upload a file; resumes a partial upload left by an earlier, dropped attempt."""
        ...

    def wait_disconnect(self, timeout: float) -> bool:
        """After ``reboot``: wait until the monitor drops this connection (True) or ``timeout`` passes.

        Reconnecting before the drop would reach the old, still-running system and read its state (and
        miss a silent rollback), so callers wait for the drop before ``reconnect``."""
        ...

    def reconnect(self, *, timeout: float) -> None:
        """Wait for the monitor to come back (after a reboot) and reopen the session."""
        ...

    def close(self) -> None: ...


class DeviceTransport(Protocol):
    name: str  # "ssh" | "ansible" | "manual"

    def open(self, device: Device) -> DeviceSession: ...


class Journal(Protocol):
    def append(self, event: Event) -> JournalRecord: ...

    def records(self, campaign: str | None = None, since_seq: int = 0) -> Iterator[JournalRecord]: ...

    def head(self) -> str:
        """Hash of the newest record (the chain head), or the genesis hash when empty."""
        ...

    def campaigns(self) -> list[str]: ...


@dataclass(frozen=True)
class Observation:
    """One thing a network observer saw: a connection, a datagram, or decoded content."""

    at: str
    source: str  # address:port of the sender (a monitor, or whoever else: see domain.attribution)
    target: str  # indicator address:port it tried to reach (unmapped, e.g. 202.114.4.119:515)
    protocol: str  # "tcp" | "udp"
    kind: str  # "connect" | "cms-telemetry" | "hl7" | "rpc-mount" | "rpc" | "datagram"
    summary: str
    sha256: str  # hash of the raw bytes; the bytes themselves are not kept
    patient_record: bool = False
    field_names: tuple[str, ...] = ()
    mac: str | None = None  # the sender's MAC, when the observer saw the frame (a capture); else None


class NetworkObserver(Protocol):
    """The sinkhole (live: ``recorded`` False, ``wait_for`` blocks) or a capture read from a file
    (``recorded`` True: its traffic predates the run, so it is read whole and never waited on)."""

    @property
    def recorded(self) -> bool: ...

    @property
    def indicator_map(self) -> IndicatorMap | None:
        """The loopback stand-in of 202.114.4.0/24 it watches (emulation), if any."""
        ...

    def wait_for(self, predicate: Callable[[Observation], bool], timeout: float) -> bool:
        """Block until an observation satisfies ``predicate`` (True) or ``timeout`` passes (False)."""
        ...

    def observations(self, *, since: str | None = None, until: str | None = None,
                     source: str | None = None) -> list[Observation]:
        """What was seen with ``since <= at <= until`` (None: no bound), oldest first. ``source`` None
        lists every sender: that is what attribution needs (``domain.attribution``), since a contact from
        an address no monitor is known by must be seen to count. ``source`` matches "address" or
        "address:port"."""
        ...


@dataclass(frozen=True)
class Answer:
    """The technician's answer to one bench step: done, or not (``note`` says why)."""

    done: bool
    note: str = ""


class Prompter(Protocol):
    """The technician at the bench: shown each step with the timings, answers done or could not."""

    def ask(self, step: str, number: int, instructions: str, *, elapsed: float, window: float) -> Answer: ...

    def say(self, message: str) -> None: ...


class Clock(Protocol):
    """Elapsed time for verification's observation windows and the reboot's patience
    (``adapters.clock.SystemClock``; a test hands in its own). Not a date: journal times are UTC."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences mean anything)."""
        ...

    def sleep(self, seconds: float) -> None: ...


class DeviceProfiles(Protocol):
    """Each monitor's device profile, all read when the engine is built (a bad one refuses the run)."""

    def of(self, device: Device) -> DeviceProfile: ...


class StaleClaim(Protocol):
    """A claim left by a process that is gone, taken over by this one (journalled as a warning)."""

    @property
    def devices(self) -> tuple[str, ...]: ...

    def to_dict(self) -> dict[str, Any]: ...

    def describe(self) -> str: ...


class CampaignClaims(Protocol):
    """Who drives which campaign and monitors of one journal file (``adapters.journal_claims``)."""

    def hold(self, campaign: str, devices: Iterable[str], holder: str
             ) -> AbstractContextManager[Iterable[StaleClaim]]:
        """Hold ``campaign`` and ``devices`` for ``holder``; raises ``CampaignLocked`` if another
        live process holds either; yields the stale claims it took over."""
        ...


class WorkOrders(Protocol):
    """Hands-on units: build and hand out the work order a technician follows (``adapters.manual``)."""

    def issue(self, device: Device, *, campaign: str, package: VerifiedPackage, profile: DeviceProfile
              ) -> tuple[dict[str, Any], list[str]]:
        """The order as journalled, and the files it was written to (none when nothing is written);
        how the unit is installed by hand is its device ``profile``'s (``hands_on``)."""
        ...


Trigger = Callable[[str], None]  # exercise one hidden-mount trigger by name


class VerificationResult(Protocol):
    """What the engine reads of one monitor's verification."""

    @property
    def all_fixed(self) -> bool: ...

    @property
    def any_vulnerable(self) -> bool: ...

    def events(self, campaign: str, *, by_trigger: Mapping[str, str]) -> list[Event]:
        """The journal records of this verification (``by_trigger``: who exercised which trigger, when it
        was not cmspatch)."""
        ...


class Verification(Protocol):
    """The verification engineer's checks on one monitor (``orchestrator.verification``)."""

    def service_trigger(self, session: DeviceSession, profile: DeviceProfile) -> Trigger:
        """A trigger by the profile's service command over ``session``."""
        ...

    def verify(self, session: DeviceSession | None, device: Device, *, profile: DeviceProfile,
               expected_version: str, observer: NetworkObserver | None, trigger: Trigger | None,
               no_trigger_reason: str, window: float, expected_files: Mapping[str, str] | None
               ) -> VerificationResult: ...


PackageFiles = Callable[[], Mapping[str, str]]  # {installed path: SHA-256}; raises CmspatchError
