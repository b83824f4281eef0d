"""How far a package may expand while it is read: the decompression-bomb limits, as one value.

Reading a package means opening its compressed streams and archives to scan every byte for the backdoor.
A few kilobytes of gzip, bzip2 or xz can stand for gigabytes (a 4 GiB zero-filled tar.gz is 4 MB; a
68 KB bzip2 expands to 40 GiB), and archives nested in archives multiply it. ``ArchiveLimits`` bounds the
work, and the adapter that walks the archive (``package_reader``) stops at the first limit crossed:

- **expanded size**: all bytes that come out of every decompressor, at every level, together, may not
  exceed ``expansion_factor`` times the package's declared size, nor ``max_expanded`` in any case. The
  package size is known (the manifest declares it; attest reads it from the file), so a legitimate
  package's expansion is bounded by what it is: firmware (binaries, already-compressed filesystem
  images) expands 2-10 times; 64 leaves a wide margin. The 2 GiB cap keeps the worst case (reading
  a 2 GiB stream on a monitor-management laptop) near ten seconds. Below ``floor`` (64 MiB) neither the
  factor nor the ratio refuses: expanding that much costs a fraction of a second, and tiny packages with
  a zero-padded member legitimately expand hundreds of times.
- **expansion ratio**: one compressed stream's output over the compressed bytes it read, judged once it
  has produced ``floor`` bytes. A member that expands 200 times is not firmware; the ratio stops a bomb
  hidden as one member of a large legitimate package long before the total is reached.
- **nesting depth**: archives (tar, zip, each with its compression) opened inside the package's own
  archive. The default 1 opens ``payload/rootfs.tar.gz`` inside the package, not an archive inside that;
  a stream compressed more than ``MAX_LAYERS`` times over is refused too.
- **member count**: entries of every archive, at every level, together (each costs a header parse and a
  path check, and the archive libraries keep one record per entry in memory).

Each limit has its own reason code. The rules are decided here, as values; counting the bytes is the
adapter's. Left out: a limit on time (a slow disk is not hostile) and on uncompressed tar members (their
bytes are the package's own bytes, already bounded by its declared size).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.domain.trust.reasons import Reason

MIB = 1 << 20
MAX_LAYERS = 2  # compression layers stacked on one stream (tar.gz.xz is odd already)


class LimitsInvalid(ValueError):
    """A limit outside its sane range (a caller turns it into a usage error naming the flag)."""

    def __init__(self, name: str, minimum: int, value: object) -> None:
        super().__init__(f"{name}: must be a whole number of at least {minimum}, not {value!r}")
        self.name = name
        self.minimum = minimum


@dataclass(frozen=True)
class ArchiveLimits:
    expansion_factor: int = 64  # expanded bytes per byte of the declared package size
    max_expanded: int = 2048 * MIB  # absolute cap on expanded bytes, whatever the package size
    max_ratio: int = 200  # one compressed stream's output per compressed byte it read
    max_depth: int = 1  # archives opened inside the package's own archive
    max_members: int = 10_000  # archive entries at every level together
    floor: int = 64 * MIB  # expansion below this is never refused for the factor or the ratio

    def __post_init__(self) -> None:
        for name, low in (("expansion_factor", 1), ("max_expanded", MIB), ("max_ratio", 1),
                          ("max_depth", 0), ("max_members", 1), ("floor", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise LimitsInvalid(name, low, value)

    def budget(self, package_size: int) -> int:
        """Expanded bytes allowed for a package of ``package_size`` bytes."""
        return min(self.max_expanded, max(self.floor, self.expansion_factor * max(package_size, 0)))

    def expanded_breach(self, expanded: int, budget: int, where: str) -> LimitBreach | None:
        if expanded <= budget:
            return None
        return LimitBreach(Reason.EXPANDED_TOO_LARGE,
                           f"{where}: more than {_size(budget)} expanded (this package's limit: "
                           f"{self._rule()}); reading stopped")

    def ratio_breach(self, produced: int, consumed: int, where: str) -> LimitBreach | None:
        if produced < max(self.floor, 1) or produced <= self.max_ratio * max(consumed, 1):
            return None
        return LimitBreach(Reason.EXPANSION_RATIO_TOO_HIGH,
                           f"{where}: {_size(max(consumed, 1))} of compressed data expanded to more than "
                           f"{_size(produced)} (over {self.max_ratio}:1); reading stopped")

    def depth_breach(self, depth: int, where: str) -> LimitBreach | None:
        if depth <= self.max_depth:
            return None
        return LimitBreach(Reason.NESTING_TOO_DEEP,
                           f"{where}: an archive nested {depth} levels inside the package (at most "
                           f"{self.max_depth}); not opened")

    def members_breach(self, members: int, where: str) -> LimitBreach | None:
        if members <= self.max_members:
            return None
        return LimitBreach(Reason.TOO_MANY_MEMBERS,
                           f"{where}: more than {self.max_members} archive members; reading stopped")

    def to_dict(self) -> dict[str, Any]:
        return {"expansion_factor": self.expansion_factor, "max_expanded_bytes": self.max_expanded,
                "max_ratio": self.max_ratio, "max_depth": self.max_depth, "max_members": self.max_members,
                "floor_bytes": self.floor}

    def describe(self, budget: int | None = None) -> str:
        """One line for the human report."""
        size = f"{_size(budget)} for this package " if budget is not None else ""
        return (f"expands to at most {size}({self._rule()}); ratio {self.max_ratio}:1 per stream; "
                f"nesting {self.max_depth}; {self.max_members} members")

    def _rule(self) -> str:
        floor = f"at least {_size(self.floor)}, " if self.floor < self.max_expanded else ""
        return f"{self.expansion_factor}x its size, {floor}at most {_size(self.max_expanded)}"


def layers_breach(layers: int, where: str) -> LimitBreach | None:
    if layers <= MAX_LAYERS:
        return None
    return LimitBreach(Reason.NESTING_TOO_DEEP,
                       f"{where}: compressed {layers} times over (at most {MAX_LAYERS}); not opened")


@dataclass(frozen=True)
class LimitBreach:
    """The first limit a package crossed; reading stopped there."""

    reason: Reason
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason.value, "detail": self.detail}


def _size(n: int) -> str:
    if n >= MIB and n % MIB == 0:
        return f"{n // MIB} MiB"
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    return f"{n} bytes"
