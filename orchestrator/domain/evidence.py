"""Evidence levels: how a verdict was established, so nobody reads a bench silence as a device proof.

Three levels, strongest first:

- ``device+network`` (``DEVICE_NETWORK``): the network path. The checks ran on the monitor over its
  service session (binaries scanned, mounts, routes, sockets, UDP listeners) and the sinkhole or a
  capture watched it while the triggers were exercised (``verification``). Every verdict journalled
  before levels existed was established this way, so a verdict record without ``level`` reads as this one.
- ``bench``: the hands-on path. A unit without service access, after its USB install, on an isolated
  bench switch: only the network was watched (sinkhole listening as the indicator addresses, a capture of
  the bench port), while a named technician attached a patient simulator and pressed the menu update and
  the boot key when asked (``domain.bench``). Nothing was read on the device itself.
- ``recorded``: what a person wrote down, such as the version on the About screen with their name. A
  version string proves nothing (Contec's January 2025 fix kept the backdoor), so a verdict at this level
  is never ``fixed``: it keeps what was recorded, and by whom, beside an inconclusive verdict.

``level_of`` reads a verdict payload. A level this code does not know reads as ``recorded``, the weakest:
a newer writer's level is never taken for a stronger one than it may be.

Deliberately left out: weighing levels against each other to *change* a verdict. The verdict rules
(``verdict_rules`` for the network path, ``bench`` for the bench) decide; the level says how, for the
views and the exports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from orchestrator.domain.indicators import ALL_CVES, Cve


class EvidenceLevel(StrEnum):
    DEVICE_NETWORK = "device+network"
    BENCH = "bench"
    RECORDED = "recorded"


DEFAULT_LEVEL = EvidenceLevel.DEVICE_NETWORK  # what a verdict record without ``level`` was established by
STRENGTH: tuple[EvidenceLevel, ...] = (EvidenceLevel.DEVICE_NETWORK, EvidenceLevel.BENCH,
                                       EvidenceLevel.RECORDED)

# One sentence per level, the same in every view and export (CSV column, CSAF note, CycloneDX detail, HTML).
DESCRIPTION: dict[EvidenceLevel, str] = {
    EvidenceLevel.DEVICE_NETWORK: "established on the device (service session checks) and from the network "
                                  "(sinkhole or capture while the triggers were exercised)",
    EvidenceLevel.BENCH: "established from the network only, at the bench, hands-on: a named technician "
                         "attached a patient simulator and pressed the triggers while the bench sinkhole "
                         "or a capture of the bench port watched; nothing was read on the device",
    EvidenceLevel.RECORDED: "what a person recorded (for example the version on the About screen, with "
                            "their name); a recorded version proves nothing by itself",
}


def parse_level(value: object) -> EvidenceLevel:
    """A level as written in a record: absent means today's network path; unknown means the weakest."""
    if value is None or value == "":
        return DEFAULT_LEVEL
    try:
        return EvidenceLevel(str(value))
    except ValueError:
        return EvidenceLevel.RECORDED


def level_of(verdict_payload: Mapping[str, Any]) -> EvidenceLevel:
    """The level of a ``verdict`` record's payload (``CveVerdict.to_dict``)."""
    return parse_level(verdict_payload.get("level"))


def weakest(levels: Iterable[EvidenceLevel]) -> EvidenceLevel | None:
    """The weakest of ``levels`` (a monitor is only as proven as its least proven CVE); None if empty."""
    found = [STRENGTH.index(level) for level in levels]
    return STRENGTH[max(found)] if found else None


def recorded_payload(cve: Cve, *, what: str, by: str, value: str | None = None) -> dict[str, Any]:
    """A ``recorded`` verdict payload: inconclusive, saying what a person recorded and who. ``value``: what
    they read (a version), journalled as they gave it. Shaped like ``CveVerdict.to_dict``."""
    said = f"{what} {value!r}" if value else what
    return {"cve": cve.value, "verdict": "inconclusive", "level": EvidenceLevel.RECORDED.value,
            "reason": f"recorded by {by or 'an unnamed person'}: {said}; a record proves nothing by itself",
            "evidence": [], "recorded": {"what": what, "by": by, "value": value}}


def recorded_payloads(*, what: str, by: str, value: str | None = None) -> list[dict[str, Any]]:
    """``recorded_payload`` for each of the four CVEs."""
    return [recorded_payload(cve, what=what, by=by, value=value) for cve in ALL_CVES]
