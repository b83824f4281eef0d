"""Did the monitor really reboot? The answer from two readings of its boot identity.

Neither a dropped session, nor a login that works again, nor ``reboot`` exiting 0 proves a restart: a
monitor that keeps its sessions for 20 s after ``reboot`` still runs the old system, and verifying it
then reads the old build (a false "backdoor still present", or the other way round a false "fixed").
Only the identity of the running boot answers it, read before the reboot and again after:

- the kernel's boot id (``/proc/sys/kernel/random/boot_id``), a random UUID drawn at every boot:
  another one is a reboot, the same one is the same boot;
- on a unit without one, its uptime plus a marker file cmspatch writes into a tmpfs (``/tmp``) right
  before the reboot: the marker gone *and* the uptime lower than before is a reboot; the marker still
  there is the same boot.

Anything else (nothing read before or after, a marker gone while the uptime kept counting, a marker
that could not be written) proves nothing: ``UNPROVEN``, which the caller treats as "not rebooted".

Pure: the caller runs ``identity_command`` on the monitor, draws the marker, and passes the output in.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
UPTIME_PATH = "/proc/uptime"
MARKER_PATH = "/tmp/.cmspatch-boot-marker"  # /tmp is a tmpfs on the monitor: a reboot empties it

_BOOT_ID = re.compile(r"^[0-9a-fA-F][0-9a-fA-F-]{7,63}$")
_MARKER = re.compile(r"^[0-9a-f]{8,64}$")
_KEYS = ("boot_id", "uptime", "marker")


class BootOutcome(StrEnum):
    REBOOTED = "rebooted"
    SAME_BOOT = "same-boot"  # the old system still runs
    UNPROVEN = "unproven"  # nothing to tell either way: never taken for a reboot


@dataclass(frozen=True)
class BootIdentity:
    """What a monitor says about its running boot; empty fields were not readable."""

    boot_id: str = ""
    uptime: float | None = None  # seconds since this boot
    marker: str = ""  # the marker file's content, "" when there is none

    @property
    def readable(self) -> bool:
        return bool(self.boot_id) or self.uptime is not None

    def to_dict(self) -> dict[str, Any]:
        return {"boot_id": self.boot_id, "uptime": self.uptime, "marker": self.marker}

    @classmethod
    def from_dict(cls, data: Any) -> BootIdentity | None:
        """Back from a journal record; None for anything that is not one (an old or foreign record)."""
        if not isinstance(data, dict):
            return None
        uptime = data.get("uptime")
        return cls(boot_id=_clean(data.get("boot_id"), _BOOT_ID), uptime=_seconds(uptime),
                   marker=_clean(data.get("marker"), _MARKER))


@dataclass(frozen=True)
class BootDecision:
    outcome: BootOutcome
    reason: str  # stable code, e.g. "boot-id-changed", "boot-id-unchanged", "no-identity-after"
    why: str  # plain words for the journal and the operator

    @property
    def rebooted(self) -> bool:
        return self.outcome is BootOutcome.REBOOTED

    def to_dict(self) -> dict[str, str]:
        return {"outcome": self.outcome.value, "reason": self.reason, "why": self.why}


def identity_command(marker: str = "", *, boot_id: str = BOOT_ID_PATH, uptime: str = UPTIME_PATH,
                     marker_path: str = MARKER_PATH) -> str:
    """One BusyBox command that prints the identity; with ``marker``, writes the marker file first. The
    paths are the device profile's (``domain.profile.BootPaths``, checked there to be plain paths)."""
    if marker and not _MARKER.match(marker):
        raise ValueError(f"a boot marker is 8-64 lowercase hex digits, not {marker!r}")
    write = f"echo {marker} > {marker_path} 2>/dev/null; " if marker else ""
    return (f"{write}echo boot_id=$(cat {boot_id} 2>/dev/null); "
            f"echo uptime=$(cut -d' ' -f1 {uptime} 2>/dev/null); "
            f"echo marker=$(cat {marker_path} 2>/dev/null); true")


def parse_identity(text: str | None) -> BootIdentity:
    """The output of ``identity_command``; a key given twice or a malformed value reads as absent."""
    seen: dict[str, list[str]] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() in _KEYS:
            seen.setdefault(key.strip(), []).append(value.strip())
    one = {k: v[0] for k, v in seen.items() if len(v) == 1}
    return BootIdentity(boot_id=_clean(one.get("boot_id"), _BOOT_ID), uptime=_seconds(one.get("uptime")),
                        marker=_clean(one.get("marker"), _MARKER))


def decide_reboot(before: BootIdentity | None, after: BootIdentity | None, marker: str) -> BootDecision:
    """Given the identity read before the reboot (having written ``marker``) and the one read after."""
    if before is None or not before.readable:
        return _unproven("no-identity-before", "the boot identity could not be read before the reboot")
    if after is None or not after.readable:
        return _unproven("no-identity-after", "the boot identity could not be read after the reboot")
    if before.boot_id and after.boot_id:
        if before.boot_id != after.boot_id:
            return BootDecision(BootOutcome.REBOOTED, "boot-id-changed",
                                f"boot id {before.boot_id} became {after.boot_id}")
        return BootDecision(BootOutcome.SAME_BOOT, "boot-id-unchanged",
                            f"boot id {after.boot_id} is the one from before the reboot: the old system "
                            "still runs")
    if not marker or before.marker != marker:
        return _unproven("marker-not-written", "no boot id, and the boot marker could not be written")
    if after.marker == marker:
        return BootDecision(BootOutcome.SAME_BOOT, "marker-present",
                            f"the boot marker in {MARKER_PATH} is still there: the old system still runs")
    if before.uptime is not None and after.uptime is not None and after.uptime < before.uptime:
        return BootDecision(BootOutcome.REBOOTED, "uptime-reset",
                            f"the boot marker is gone and the uptime went from {before.uptime:g} s "
                            f"to {after.uptime:g} s")
    return _unproven("uptime-not-reset",
                     "the boot marker is gone but the uptime did not start again: not proof of a reboot")


def _unproven(reason: str, why: str) -> BootDecision:
    return BootDecision(BootOutcome.UNPROVEN, reason, why)


def _clean(value: Any, pattern: re.Pattern[str]) -> str:
    return value if isinstance(value, str) and pattern.match(value) else ""


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
