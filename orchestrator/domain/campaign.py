"""Campaign rules: the policy, when to halt, when a monitor must not be touched, where to resume.

Pure functions over values so that every rule is a fast unit test and the engine only sequences I/O:

- ``CampaignPolicy``: waves, grouping, concurrency, halting thresholds, gates, maintenance windows,
  deferral re-checks, timeouts.
- ``halt_decision``: failure count / percentage rules, per wave and cumulative, plus "the canary must
  pass". A halted campaign starts no new monitor; in-flight ones finish.
- ``clinical_deferral``: ``cms-status`` output and maintenance windows -> a deferral reason or None.
  Anything we cannot read is a deferral too: not knowing is not permission to reboot a monitor.
- ``resume_step``: from a monitor's last journalled state, the step a resumed run must take first.

Deliberately left out: no clock and no I/O; the caller passes the local time of day.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import time
from enum import StrEnum
from typing import Any

# The clinical gate lives in domain.clinical; these names stay importable from here for old callers.
from orchestrator.domain.clinical import (  # noqa: F401
    ClinicalStatus,
    Deferral,
    clinical_deferral,
    parse_cms_status,
)
from orchestrator.domain.devices import Device
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.profile import SAFE_PATH_RE
from orchestrator.domain.waves import DEFAULT_WAVES, parse_waves
from orchestrator.errors import UsageError

UNREACHABLE_REASONS = frozenset({"unreachable", "connection-refused", "timeout", "connection-dropped",
                                 "connection-failed", "reconnect-timeout"})
TRIGGER_BY = ("service", "technician")


@dataclass(frozen=True)
class CampaignPolicy:
    waves: tuple[str, ...] = DEFAULT_WAVES  # Ansible `serial` style; canary first
    group_by: str | None = None  # None | "site" | "ward": waves drawn per group
    per_site_concurrency: int = 10
    max_failures: int | None = None  # halt when failures >= this (cumulative)
    max_failure_pct: float | None = None  # halt when failed/executed*100 >= this ...
    min_executed_for_pct: int = 5  # ... once at least this many were executed
    unreachable_is_failure: bool = True
    require_approval: bool = True  # gate between waves
    # "site" or "site/ward" -> "22:00-06:00" (local time of the orchestrator)
    maintenance_windows: dict[str, str] = field(default_factory=dict)
    exercise_triggers: bool = True
    observation_window: float = 3.0  # seconds watched after reboot and triggers
    # Who exercises the triggers: "service" (a service command on the monitor, as the emulator offers) or
    # "technician" (a person at the bed, asked and waited for). Hands-on units always use a technician.
    trigger_by: str = "service"
    trigger_timeout: float = 300.0  # seconds a technician has to answer one trigger request
    # Additions beyond the lead's contract (all defaulted):
    canary_must_pass: bool = True  # any failure in wave 0 halts the campaign
    wave_max_failures: int | None = None  # the same rules, counted inside the current wave
    wave_max_failure_pct: float | None = None
    max_rechecks: int = 3  # how often a deferred monitor is re-checked before it stays deferred
    recheck_interval: float = 10.0  # seconds between the final re-checks before finishing
    max_workers: int = 64  # threads across all sites
    reboot_timeout: float = 120.0  # seconds for a monitor to come back after reboot
    command_timeout: float = 60.0
    install_timeout: float = 300.0
    upload_dir: str | None = None  # None: each monitor's device profile's (domain.profile)
    retry_attempts: int = 4  # transient transport errors only (orchestrator.retry)
    retry_initial: float = 1.0  # seconds before the second attempt, doubling up to retry_max
    retry_max: float = 30.0

    def __post_init__(self) -> None:
        check_policy_values(self)
        parse_waves(self.waves)
        if self.group_by not in (None, "site", "ward"):
            raise UsageError(f"group_by must be site or ward, not {self.group_by!r}", reason="bad-group-by")
        if self.trigger_by not in TRIGGER_BY:
            raise UsageError(f"trigger_by must be one of {', '.join(TRIGGER_BY)}, not {self.trigger_by!r}",
                             reason="bad-policy")
        for spec in self.maintenance_windows.values():
            parse_window(spec)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["waves"] = list(self.waves)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CampaignPolicy:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "waves" in known:
            known["waves"] = tuple(known["waves"])
        if "maintenance_windows" in known:
            known["maintenance_windows"] = dict(known["maintenance_windows"] or {})
        return cls(**known)


# --- value bounds --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bound:
    """The range of one numeric policy value, with its unit, for a message a person can act on."""

    unit: str
    low: float
    high: float
    low_open: bool = False  # the low end itself is refused ("greater than 0")
    integer: bool = False

    def describe(self) -> str:
        kind = f"a whole number of {self.unit}" if self.integer else f"a number of {self.unit}"
        low = f"greater than {self.low:g}" if self.low_open else f"at least {self.low:g}"
        return f"{kind}, {low} and at most {self.high:g}"

    def admits(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):  # NaN compares false with everything: it must be refused by name
            return False
        return (value > self.low if self.low_open else value >= self.low) and value <= self.high


# Every numeric value of a campaign, from flags and config files alike (both build a CampaignPolicy).
# Why these ranges: a zero or NaN observation window would shrink the network watch to however long the
# commands take and weaken a "fixed" verdict; a timeout of 0 or less fails every monitor; a failure
# limit below 1 halts before anything happened. The upper ends only catch typos (3600 s, not 3600 min).
BOUNDS: dict[str, Bound] = {
    "per_site_concurrency": Bound("monitors", 1, 1000, integer=True),
    "max_workers": Bound("threads", 1, 1024, integer=True),
    "max_failures": Bound("failures", 1, 1_000_000, integer=True),
    "wave_max_failures": Bound("failures", 1, 1_000_000, integer=True),
    "max_failure_pct": Bound("percent", 0, 100, low_open=True),
    "wave_max_failure_pct": Bound("percent", 0, 100, low_open=True),
    "min_executed_for_pct": Bound("monitors", 0, 1_000_000, integer=True),
    "observation_window": Bound("seconds", 0, 3600, low_open=True),
    "trigger_timeout": Bound("seconds", 0, 86400, low_open=True),
    "max_rechecks": Bound("re-checks", 0, 1000, integer=True),
    "recheck_interval": Bound("seconds", 0, 3600),
    "reboot_timeout": Bound("seconds", 0, 3600, low_open=True),
    "command_timeout": Bound("seconds", 0, 3600, low_open=True),
    "install_timeout": Bound("seconds", 0, 7200, low_open=True),
    "retry_attempts": Bound("attempts", 1, 20, integer=True),
    "retry_initial": Bound("seconds", 0, 600),
    "retry_max": Bound("seconds", 0, 3600),
}
FLAGS: tuple[str, ...] = ("unreachable_is_failure", "require_approval", "exercise_triggers",
                          "canary_must_pass")


class CampaignValueError(UsageError):
    """One campaign value out of range or of the wrong kind; ``field`` lets the caller say where it was
    written (a flag, or a config file's line)."""

    reason = "bad-campaign-value"

    def __init__(self, field: str, requirement: str, value: object) -> None:
        self.field, self.requirement, self.value = field, requirement, value
        super().__init__(f"{field} must be {requirement}, not {value!r}")


def check_value(field: str, value: object) -> None:
    """Refuse one value of a campaign policy (None means "not set" for the optional limits)."""
    bound = BOUNDS.get(field)
    if bound is not None and value is not None and not bound.admits(value):
        raise CampaignValueError(field, bound.describe(), value)
    if field in FLAGS and not isinstance(value, bool):
        raise CampaignValueError(field, "true or false", value)


def check_policy_values(policy: CampaignPolicy) -> None:
    for name in (*BOUNDS, *FLAGS):
        check_value(name, getattr(policy, name))
    # The upload directory reaches the monitor's shell (the lease and check scripts paste it in): the same
    # rule as a profile's paths, so a campaign config cannot smuggle a command in.
    if policy.upload_dir is not None and (not isinstance(policy.upload_dir, str)
                                          or not SAFE_PATH_RE.fullmatch(policy.upload_dir)
                                          or "/../" in f"{policy.upload_dir}/"):
        raise CampaignValueError("upload_dir", "an absolute path on the monitor of letters, digits and "
                                 ". _ - / only (no shell metacharacters, no ..)", policy.upload_dir)
    windows = policy.maintenance_windows
    if not isinstance(windows, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in windows.items()):
        raise CampaignValueError("maintenance_windows", "a mapping of site or site/ward to HH:MM-HH:MM",
                                 windows)


# --- halting --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tally:
    """Outcomes counted for the halting rules (executed = reached a final outcome, deferrals excluded)."""

    executed: int = 0
    failed: int = 0


@dataclass(frozen=True)
class HaltDecision:
    rule: str  # "canary-failed" | "max-failures" | "max-failure-pct" | "wave-max-failures" | ...
    reason: str
    failed: int
    executed: int

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "rule": self.rule, "failed": self.failed, "executed": self.executed}


class Ending(StrEnum):
    """How one run of a campaign ended, as the engine says it. A front end turns it into what it shows
    (the CLI alone into an exit code: ``cli.campaign.exit_code_of``)."""

    COMPLETE = "complete"  # every monitor of the campaign patched
    INCOMPLETE = "incomplete"  # finished, some monitors failed, deferred or waiting for a person
    HALTED = "halted"  # a halting rule fired, in this run or an earlier one
    ABORTED = "aborted"  # an operator aborted it
    AT_GATE = "at-gate"  # a headless run stopped at a wave gate nobody approved
    INTERRUPTED = "interrupted"  # Ctrl-C or a signal: stopped at a step boundary

    @property
    def resumable(self) -> bool:
        """``run --resume`` carries on from here (a halted or aborted campaign is over)."""
        return self in (Ending.AT_GATE, Ending.INTERRUPTED)


def counts_as_failure(policy: CampaignPolicy, state: DeviceState, reason: str) -> bool:
    if state is not DeviceState.FAILED:
        return False
    return policy.unreachable_is_failure or reason not in UNREACHABLE_REASONS


def halt_decision(policy: CampaignPolicy, total: Tally, wave: Tally, wave_index: int) -> HaltDecision | None:
    """The first halting rule that fires, or None. Checked after every monitor's outcome."""
    if policy.canary_must_pass and wave_index == 0 and wave.failed > 0:
        return HaltDecision("canary-failed", "the canary wave had a failure", wave.failed, wave.executed)
    for scope, tally, count_limit, pct_limit in (
        ("", total, policy.max_failures, policy.max_failure_pct),
        ("wave-", wave, policy.wave_max_failures, policy.wave_max_failure_pct),
    ):
        where = "in this wave" if scope else "in the campaign"
        if count_limit is not None and tally.failed >= count_limit:
            return HaltDecision(f"{scope}max-failures",
                                f"{tally.failed} failures {where} (limit {count_limit})",
                                tally.failed, tally.executed)
        if (pct_limit is not None and tally.executed >= policy.min_executed_for_pct and tally.executed
                and tally.failed * 100 / tally.executed >= pct_limit):
            pct = tally.failed * 100 / tally.executed
            return HaltDecision(f"{scope}max-failure-pct",
                                f"{pct:.0f}% of {tally.executed} monitors failed {where} "
                                f"(limit {pct_limit:g}%)",
                                tally.failed, tally.executed)
    return None


# --- clinical gating ------------------------------------------------------------------------------

def parse_window(spec: str) -> tuple[time, time]:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", spec)
    if match is None:
        raise UsageError(f"maintenance window {spec!r}: expected HH:MM-HH:MM", reason="bad-window")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59:
        raise UsageError(f"maintenance window {spec!r}: not a time of day", reason="bad-window")
    return time(h1, m1), time(min(h2, 23), 59 if h2 == 24 else m2)


def in_window(spec: str, now: time) -> bool:
    """Whether ``now`` falls in ``HH:MM-HH:MM``; a window whose end is before its start spans midnight."""
    start, end = parse_window(spec)
    if start <= end:
        return start <= now <= end
    return now >= start or now <= end


def window_for(policy: CampaignPolicy, device: Device) -> str | None:
    """The ward's window if one is set, else the site's, else None (no restriction)."""
    windows = policy.maintenance_windows
    return windows.get(f"{device.site}/{device.ward}") or windows.get(device.site)


def window_deferral(policy: CampaignPolicy, device: Device, now: time) -> Deferral | None:
    spec = window_for(policy, device)
    return Deferral.OUTSIDE_WINDOW if spec is not None and not in_window(spec, now) else None


# --- resume ---------------------------------------------------------------------------------------

class Step(StrEnum):
    START = "start"  # clinical check, firmware, upload ...
    UPLOAD = "upload"  # resume the upload (partial file kept on the monitor)
    CHECK_INSTALLED = "check-installed"  # install may have run: look at the monitor before installing
    REBOOT = "reboot"  # reboot again (harmless) and read the version
    VERIFY = "verify"
    AWAIT_TECHNICIAN = "await-technician"
    NONE = "none"  # terminal: nothing to do


def resume_step(state: DeviceState) -> Step:
    """The first step a resumed run takes for a monitor last journalled in ``state``.

    An event is written before the action it describes, so a state means "begun, maybe not done":
    INSTALLING is therefore answered by looking at the monitor, never by installing blindly.
    """
    return {
        DeviceState.PENDING: Step.START,
        DeviceState.DEFERRED: Step.START,
        DeviceState.UPLOADING: Step.UPLOAD,
        DeviceState.UPLOADED: Step.UPLOAD,
        DeviceState.INSTALLING: Step.CHECK_INSTALLED,
        DeviceState.REBOOTING: Step.REBOOT,
        DeviceState.VERIFYING: Step.VERIFY,
        DeviceState.AWAITING_TECHNICIAN: Step.AWAIT_TECHNICIAN,
    }.get(state, Step.NONE)


def all_done(counts: dict[str, int]) -> bool:
    """True when every monitor ended patched or skipped (the campaign did all it was asked)."""
    done = {DeviceState.PATCHED.value, DeviceState.SKIPPED.value}
    return all(n == 0 for state, n in counts.items() if state not in done)


# --- plan -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedDevice:
    name: str
    wave: int
    delivery: str
    action: str  # "push" | "work-order" | "verify-only" | "fail" | "defer"
    reason: str = ""  # why, for fail/defer/verify-only

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CampaignPlan:
    """What a run would do, computed without touching any monitor (``cmspatch plan``)."""

    campaign: str
    waves: tuple[tuple[str, ...], ...]
    devices: tuple[PlannedDevice, ...]
    policy: CampaignPolicy
    target_version: str
    package_name: str

    def by_action(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for d in self.devices:
            out.setdefault(d.action, []).append(d.name)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"campaign": self.campaign, "package_name": self.package_name,
                "target_version": self.target_version, "waves": [list(w) for w in self.waves],
                "devices": [d.to_dict() for d in self.devices], "policy": self.policy.to_dict(),
                "note": "patient and alarm status are checked on each monitor right before it is touched"}


def plan_device(device: Device, wave: int, policy: CampaignPolicy, applies: str | None,
                now: time) -> PlannedDevice:
    """Predict one monitor's fate from what is known without contacting it."""
    delivery = device.delivery.value
    if applies == "wrong-model":
        return PlannedDevice(device.name, wave, delivery, "fail", applies)
    if applies == "already-installed":
        return PlannedDevice(device.name, wave, delivery, "verify-only", "already-patched")
    if applies is not None:
        return PlannedDevice(device.name, wave, delivery, "fail", applies)
    if delivery == "manual":
        return PlannedDevice(device.name, wave, delivery, "work-order")
    deferral = window_deferral(policy, device, now)
    if deferral is not None:
        return PlannedDevice(device.name, wave, delivery, "defer", deferral.value)
    return PlannedDevice(device.name, wave, delivery, "push")
