"""Units found on the wire: who contacted the indicator addresses, compared with the inventory.

A mirror-port capture (or the sinkhole's log) shows which hosts reach for 202.114.4.0/24 or stream CMS
telemetry or HL7 to it. Units on the wire but in no inventory are exactly the ones that get forgotten.

``discover`` groups observations by sender (its address, and its MAC where the observer saw the frame),
with first and last seen, the indicator targets, and what it sent: message kinds and field names, never
values (observations carry no payload). ``compare`` then matches each sender to the inventory by address,
or by MAC when the inventory records one (``mac_address``): a DHCP lease that moved a known unit to a new
address is still that unit, and says so. What matches nothing is an *unknown unit*; inventory units never
seen are listed too (not seen is not proof of silence: a capture shows only its own window and port).

Deliberately left out: no I/O. The MAC vendor table is passed in (``adapters.oui`` reads Wireshark's
``manuf`` where it is installed); nothing here probes the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.domain.checks import ObservationLike
from orchestrator.domain.devices import Device


class Observation(ObservationLike, Protocol):
    """What discovery reads of a ``ports.Observation``: the verdict's view of one, plus the sender's MAC."""

    @property
    def mac(self) -> str | None: ...


def _address(source: str) -> str:
    return source.rsplit(":", 1)[0] if source.count(":") == 1 else source


@dataclass
class _Seen:
    address: str
    macs: set[str] = field(default_factory=set)
    first: str = ""
    last: str = ""
    kinds: set[str] = field(default_factory=set)
    targets: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    patient_data: bool = False
    count: int = 0


@dataclass(frozen=True)
class SeenHost:
    address: str
    macs: tuple[str, ...]
    vendor: str | None
    first_seen: str
    last_seen: str
    kinds: tuple[str, ...]  # connect, cms-telemetry, hl7, rpc-mount, ...
    targets: tuple[str, ...]  # indicator address:port, unmapped
    field_names: tuple[str, ...]  # names of the fields it sent in clear (never their values)
    patient_data: bool
    observations: int
    device: str | None = None  # the inventory monitor it is, when known
    matched_by: str = ""  # "address" | "mac" | ""

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "macs": list(self.macs), "vendor": self.vendor,
                "first_seen": self.first_seen, "last_seen": self.last_seen, "kinds": list(self.kinds),
                "targets": list(self.targets), "field_names": list(self.field_names),
                "patient_data": self.patient_data, "observations": self.observations,
                "device": self.device, "matched_by": self.matched_by}


@dataclass(frozen=True)
class Discovery:
    hosts: tuple[SeenHost, ...]
    unknown: tuple[SeenHost, ...]  # on the wire, in no inventory
    never_seen: tuple[str, ...]  # inventory monitors with an address that sent nothing in the window
    moved: tuple[SeenHost, ...]  # known by MAC at another address than the inventory's

    def to_dict(self) -> dict[str, Any]:
        return {"hosts": [h.to_dict() for h in self.hosts], "unknown": [h.to_dict() for h in self.unknown],
                "never_seen": list(self.never_seen), "moved": [h.to_dict() for h in self.moved]}


def vendor_of(mac: str, table: Mapping[str, str]) -> str | None:
    """The vendor of a MAC's prefix: ``table`` maps upper-case prefixes ("00:80:4C", or longer ones for
    /28 and /36 blocks) to names; the longest prefix wins."""
    key = mac.upper()
    for length in (14, 13, 11, 10, 8):  # 00:50:C2:36:1, 00:50:C2:36:10 ... 00:50:C2
        if (name := table.get(key[:length])) is not None:
            return name
    return None


def discover(observations: Iterable[Observation], *, vendors: Mapping[str, str] | None = None
             ) -> tuple[SeenHost, ...]:
    by_address: dict[str, _Seen] = {}
    for o in observations:
        seen = by_address.setdefault(_address(o.source), _Seen(_address(o.source)))
        if o.mac and o.mac != "00:00:00:00:00:00":  # loopback frames carry zero MACs: no identity
            seen.macs.add(o.mac.lower())
        seen.first = min(seen.first or o.at, o.at)
        seen.last = max(seen.last, o.at)
        seen.kinds.add(o.kind)
        seen.targets.add(o.target)
        seen.fields.update(o.field_names)
        seen.patient_data |= o.patient_record
        seen.count += 1
    out = []
    for s in sorted(by_address.values(), key=lambda s: (s.first, s.address)):
        macs = tuple(sorted(s.macs))
        vendor = next((v for m in macs if (v := vendor_of(m, vendors or {})) is not None), None)
        out.append(SeenHost(s.address, macs, vendor, s.first, s.last, tuple(sorted(s.kinds)),
                            tuple(sorted(s.targets)), tuple(sorted(s.fields)), s.patient_data, s.count))
    return tuple(out)


def _norm_mac(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    digits = "".join(c for c in value.lower() if c in "0123456789abcdef")
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2)) if len(digits) == 12 else None


def compare(hosts: Iterable[SeenHost], devices: Iterable[Device]) -> Discovery:
    devices = tuple(devices)
    by_address = {d.address: d for d in devices if d.address}
    by_mac = {m: d for d in devices if (m := _norm_mac(d.vars.get("mac_address"))) is not None}
    matched: list[SeenHost] = []
    for h in hosts:
        device, how = by_address.get(h.address), "address"
        if device is None:
            device = next((by_mac[m] for m in h.macs if m in by_mac), None)
            how = "mac"
        matched.append(SeenHost(**{**h.__dict__, "device": device.name if device else None,
                                   "matched_by": how if device else ""}))
    seen = {h.device for h in matched if h.device}
    return Discovery(hosts=tuple(matched), unknown=tuple(h for h in matched if h.device is None),
                     never_seen=tuple(d.name for d in devices if d.address and d.name not in seen),
                     moved=tuple(h for h in matched if h.matched_by == "mac"))


def draft_fragment(unknown: Iterable[SeenHost], source: str) -> str:
    """Unknown units as an inventory fragment to review: what the wire told, and what a person must add
    from the rating plate (model, serial, site, ward, bed). Deliberately not a valid inventory on its own,
    so nobody patches a unit nobody has looked at."""
    lines = [f"# Units seen on the wire in {source} that no inventory names.",
             "# Review each one at the bed: read model and serial from the rating plate, fill site, ward and",
             "# bed, then move it into your inventory (under its ward group) and run `cmspatch enroll`.",
             "discovered_unknown:", "  hosts:"]
    for i, h in enumerate(unknown, 1):
        lines += [f"    unknown-{i:03d}:",
                  f"      ansible_host: {h.address}",
                  *([f'      mac_address: "{h.macs[0]}"'] if h.macs else []),
                  "      model: null           # from the rating plate: CMS6000 CMS6500 CMS7000 CMS8000 "
                  "CMS9000 MN-120",
                  "      serial_number: null   # from the rating plate",
                  "      bed: null",
                  f"      # seen {h.first_seen} .. {h.last_seen}: {', '.join(h.kinds)} "
                  f"to {', '.join(h.targets)}"
                  + (f"; vendor {h.vendor}" if h.vendor else "")
                  + ("; PATIENT DATA IN CLEAR" if h.patient_data else "")]
    if len(lines) == 5:
        lines[-1] = "  hosts: {}"
    return "\n".join(lines) + "\n"
