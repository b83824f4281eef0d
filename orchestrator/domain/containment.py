"""Containment: how a monitor that is not patched yet is kept from the backdoor's addresses.

Regulators ask facilities to disconnect the device where possible (Italy), to block 202.114.4.0/24
(CISA), or to agree the handling with the treating physician (BfArM). Each monitor's containment is a
state with who confirmed it, how, and when:

- ``networked``: on the network, nothing done (the default; recording it says someone looked);
- ``isolated``: on a segment that cannot reach the indicator range (VLAN, firewall rule: ``how`` says
  which; ``cmspatch contain rules`` writes the rule);
- ``disconnected``: cable out, Wi-Fi off;
- ``clinical-use``: kept in use by clinical decision, with the physician who agreed (required).

A capture of the uplink or mirror port can back an ``isolated``/``disconnected`` record: the record
carries the capture's hash and window and the count of packets from the contained monitors to the
indicator range, which must be zero: a capture that shows them passing contradicts the record, and it is
refused (``judge_capture``).

Deliberately left out: no I/O; nothing here changes the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from orchestrator.errors import CmspatchError, UsageError


class Containment(StrEnum):
    NETWORKED = "networked"
    ISOLATED = "isolated"
    DISCONNECTED = "disconnected"
    CLINICAL_USE = "clinical-use"


class ContainmentContradicted(CmspatchError):
    reason = "containment-contradicted"


@dataclass(frozen=True)
class CaptureFacts:
    sha256: str
    packets: int
    first: str
    last: str
    sources: tuple[str, ...]  # address of every sender seen contacting the indicator range


def record_payload(state: str, *, by: str, how: str = "", physician: str = "", note: str = "",
                   capture: dict[str, Any] | None = None) -> dict[str, Any]:
    """The journal payload of one containment record; refuses what an auditor could not accept."""
    try:
        value = Containment(state)
    except ValueError as exc:
        raise UsageError(f"containment state must be one of {', '.join(c.value for c in Containment)}, "
                         f"not {state!r}", reason="bad-containment") from exc
    if not by.strip():
        raise UsageError("--by must name the person who confirmed the containment", reason="no-person")
    if value is Containment.CLINICAL_USE and not physician.strip():
        raise UsageError("clinical-use needs --physician: the treating physician who agreed to keep the "
                         "monitor in use (BfArM)", reason="no-physician")
    if value in (Containment.ISOLATED,) and not how.strip():
        raise UsageError("isolated needs --how: the VLAN, firewall rule or ACL that isolates it",
                         reason="no-method")
    return {"state": value.value, "by": by.strip(), "how": how.strip(), "physician": physician.strip(),
            "note": note.strip(), "capture": capture}


def judge_capture(facts: CaptureFacts, state: str, addresses: Iterable[str],
                  names: Sequence[str]) -> dict[str, Any]:
    """The capture as evidence for containing the monitors at ``addresses``: refused when one of them is
    seen contacting the indicator range (or the capture covers no time at all)."""
    wanted = set(addresses)
    leaking = sorted(wanted & set(facts.sources))
    if Containment(state) in (Containment.ISOLATED, Containment.DISCONNECTED):
        if facts.packets == 0:
            raise ContainmentContradicted("the capture holds no packet: it shows nothing about the window")
        if leaking:
            raise ContainmentContradicted(
                f"the capture shows {', '.join(leaking)} contacting 202.114.4.0/24 between {facts.first} and "
                f"{facts.last}: {', '.join(names)} is not contained; nothing recorded")
    return {"sha256": facts.sha256, "packets": facts.packets, "first": facts.first, "last": facts.last,
            "indicator_contacts_from_monitors": len(leaking),
            "other_senders": len(set(facts.sources) - wanted)}


def describe(held: dict[str, Any]) -> str:
    """A containment record in words: state (how), who confirmed it, the physician where one agreed, when."""
    how = f" ({held.get('how')})" if held.get("how") else ""
    who = f", physician {held.get('physician')}" if held.get("physician") else ""
    return f"{held.get('state')}{how}, confirmed by {held.get('by')}{who} at {held.get('at', '')}"
