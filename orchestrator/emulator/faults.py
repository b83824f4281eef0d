"""Faults an emulated monitor can be told to show, and the ``--faults`` spec that names them.

Spec: comma-separated ``SELECTOR=FAULT[@ARG]`` entries; repeat a selector for several faults.
SELECTOR is a host name, or a suffix of host names after a dash (``bed07`` matches every
``*-bed07``), or ``*`` for every monitor. ARG sizes accept k/M (KiB/MiB).

    unreachable             connection refused (the listener is closed) until cleared
    auth-refused            the fleet key is refused
    host-key-changed        the monitor presents a different host key
    upload-drop@OFFSET[*N]  the connection drops when an upload passes byte OFFSET (N uploads, default 1;
                            *0 = every upload)
    slow-link@RATE          SFTP/SCP writes capped at RATE bytes/s (cleared: a held write goes at once)
    disk-full               the data partition has no free space
    install-fail            cms-install fails (exit 5, "flash write error")
    reboot-hang             a reboot never comes back (until the fault is cleared)
    reboot-rollback         the next reboot comes back with the previous build (silent rollback)
    slow-drop@SECONDS       after `reboot` the old system keeps running, sessions and logins included,
                            for SECONDS (default 20) before it goes down and reboots
    fake-reboot             `reboot` exits 0 and nothing restarts (the old system keeps running)
    no-boot-id              the kernel has no /proc/sys/kernel/random/boot_id (older kernels)
    patient                 a (synthetic) patient is connected
    alarm                   an alarm is active
    status-garbage          cms-status prints no patient/alarm line a parser could trust ("patient=?")
    status-duplicate        cms-status says "patient=" twice, with two values
    status-fail             cms-status exits 1 with an error on stderr
    default-password        the legacy default password login is accepted
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from orchestrator.errors import EmulatorError

FAULTS: tuple[str, ...] = (
    "unreachable", "auth-refused", "host-key-changed", "upload-drop", "slow-link", "disk-full",
    "install-fail", "reboot-hang", "reboot-rollback", "slow-drop", "fake-reboot", "no-boot-id", "patient",
    "alarm", "default-password",
    "status-garbage", "status-duplicate", "status-fail",
)
_ARG_PARAM = {"upload-drop": "offset", "slow-link": "rate", "slow-drop": "seconds"}
SLOW_DROP_SECONDS = 20
_SIZE = re.compile(r"^(\d+)([kKmM]?)$")


@dataclass(frozen=True)
class FaultSpec:
    selector: str
    fault: str
    params: dict[str, int] = field(default_factory=dict, hash=False, compare=False)


def parse_size(text: str, *, what: str) -> int:
    match = _SIZE.match(text.strip())
    if not match:
        raise EmulatorError(f"{what}: {text!r} is not a size (e.g. 100000, 64k, 2M)", reason="bad-fault-spec")
    number, unit = int(match.group(1)), match.group(2).lower()
    return number * {"": 1, "k": 1024, "m": 1024 * 1024}[unit]


def check_fault(fault: str, params: Mapping[str, object]) -> dict[str, int]:
    if fault not in FAULTS:
        raise EmulatorError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})", reason="unknown-fault")
    out: dict[str, int] = {}
    for key, value in params.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise EmulatorError(f"fault {fault}: {key} must be a non-negative integer",
                                reason="bad-fault-spec")
        out[key] = value
    if fault == "upload-drop":
        if "offset" not in out:
            raise EmulatorError("fault upload-drop needs an offset (upload-drop@BYTES)",
                                reason="bad-fault-spec")
        out.setdefault("times", 1)
    if fault == "slow-drop":
        out.setdefault("seconds", SLOW_DROP_SECONDS)
    if fault == "slow-link" and out.get("rate", 0) <= 0:
        raise EmulatorError("fault slow-link needs a rate in bytes/s (slow-link@RATE)",
                            reason="bad-fault-spec")
    return out


def parse_fault(text: str) -> tuple[str, dict[str, int]]:
    """``upload-drop@100000*2`` -> ("upload-drop", {"offset": 100000, "times": 2})."""
    name, _, arg = text.strip().partition("@")
    params: dict[str, int] = {}
    if arg:
        if name not in _ARG_PARAM:
            raise EmulatorError(f"fault {name!r} takes no @argument", reason="bad-fault-spec")
        value, _, times = arg.partition("*")
        params[_ARG_PARAM[name]] = parse_size(value, what=name)
        if times:
            params["times"] = parse_size(times, what=name)
    return name, check_fault(name, params)


def parse_faults(spec: str | Mapping[str, str | Iterable[str]] | None) -> list[FaultSpec]:
    """Parse ``--faults`` (string) or the Python form ``{"bed07": "upload-drop@100000"}``."""
    if not spec:
        return []
    items: list[tuple[str, str]] = []
    if isinstance(spec, str):
        for entry in filter(None, (e.strip() for e in spec.split(","))):
            selector, sep, fault = entry.partition("=")
            if not sep or not selector.strip() or not fault.strip():
                raise EmulatorError(f"fault spec entry {entry!r} is not SELECTOR=FAULT[@ARG]",
                                    reason="bad-fault-spec")
            items.append((selector.strip(), fault))
    else:
        for selector, faults in spec.items():
            for fault in [faults] if isinstance(faults, str) else list(faults):
                items.append((selector, fault))
    result = []
    for selector, fault in items:
        name, params = parse_fault(fault)
        result.append(FaultSpec(selector, name, params))
    return result


def parse_faults_for(spec: str | Mapping[str, str | Iterable[str]] | None,
                     names: Iterable[str]) -> list[FaultSpec]:
    """``parse_faults``, refusing a selector that matches none of ``names`` (a fleet's monitors)."""
    names = list(names)
    specs = parse_faults(spec)
    for item in specs:
        if not select(item.selector, names):
            raise EmulatorError(f"fault selector {item.selector!r} matches no monitor",
                                reason="bad-fault-spec")
    return specs


def select(selector: str, names: Iterable[str]) -> list[str]:
    names = list(names)
    if selector == "*":
        return names
    if selector in names:
        return [selector]
    return [n for n in names if n.endswith("-" + selector)]
