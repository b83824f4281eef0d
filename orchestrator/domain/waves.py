"""Wave planning, the way Ansible's ``serial`` batches a play: canary first, then widening waves.

``serial: [1, 5, "20%", "100%"]`` means: the first wave holds one monitor, the second five, the third
20 % of the whole fleet, the fourth the rest. As in Ansible, a percentage is of the whole selection
(rounded down, at least one), every wave holds at least one monitor, and the last size repeats until
every monitor is in a wave.

With ``group_by`` ("site" or "ward"), the pattern is applied inside each group and the waves of the same
index are merged: every site gets its own canary in wave 0, so a fault that only shows at one site
(its network, its firmware mix) is caught before that site is widely touched.

Deliberately left out: no ordering by risk or by model; monitors keep inventory order, which the
hospital controls (put the lab bench first in the file to make it the canary).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from orchestrator.domain.devices import Device
from orchestrator.errors import UsageError

DEFAULT_WAVES: tuple[str, ...] = ("1", "5", "20%", "100%")
_SIZE = re.compile(r"^\s*(\d+)\s*(%?)\s*$")


def parse_waves(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"1,5,20%,100%"`` (or a list of the same) -> validated tuple; raises ``UsageError``."""
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    if not items or any(not s for s in items):
        raise UsageError(f"wave sizes {spec!r}: expected a comma-separated list like 1,5,20%,100%",
                         reason="bad-waves")
    for item in items:
        match = _SIZE.match(item)
        if match is None:
            raise UsageError(f"wave size {item!r} is neither a count nor a percentage", reason="bad-waves")
        number, percent = int(match.group(1)), bool(match.group(2))
        if number < 1 or (percent and number > 100):
            raise UsageError(f"wave size {item!r} must be at least 1 (and at most 100%)", reason="bad-waves")
    return tuple(items)


def batch_sizes(total: int, waves: Sequence[str]) -> list[int]:
    """Sizes of consecutive batches covering ``total`` monitors (Ansible ``serial`` semantics)."""
    if total <= 0:
        return []
    sizes: list[int] = []
    for item in parse_waves(waves):
        match = _SIZE.match(item)
        assert match is not None  # parse_waves checked it
        number = int(match.group(1))
        sizes.append(max(1, total * number // 100) if match.group(2) else number)
    result: list[int] = []
    left, index = total, 0
    while left > 0:
        size = min(sizes[min(index, len(sizes) - 1)], left)
        result.append(size)
        left -= size
        index += 1
    return result


def _chunk(names: Sequence[str], waves: Sequence[str]) -> list[list[str]]:
    out, start = [], 0
    for size in batch_sizes(len(names), waves):
        out.append(list(names[start:start + size]))
        start += size
    return out


def group_key(device: Device, group_by: str | None) -> str:
    if group_by is None:
        return ""
    if group_by == "site":
        return device.site
    if group_by == "ward":
        return f"{device.site}/{device.ward}"
    raise UsageError(f"cannot group waves by {group_by!r}: use site or ward", reason="bad-group-by")


def plan_waves(devices: Sequence[Device], waves: Sequence[str] = DEFAULT_WAVES,
               group_by: str | None = None) -> tuple[tuple[str, ...], ...]:
    """Device names per wave, in inventory order; every device appears exactly once."""
    groups: dict[str, list[str]] = {}
    for device in devices:
        groups.setdefault(group_key(device, group_by), []).append(device.name)
    merged: list[list[str]] = []
    for names in groups.values():
        for index, batch in enumerate(_chunk(names, waves)):
            if index == len(merged):
                merged.append([])
            merged[index].extend(batch)
    return tuple(tuple(w) for w in merged)
