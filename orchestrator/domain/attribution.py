"""Whose contact is it? The one rule that ties a contact seen on the network to a monitor, or to none.

The sinkhole and a capture see a sender's address (and a capture on the monitors' segment also its
MAC); the fleet is known by its inventory address, by its MAC where the inventory gives one (host var
``mac_address``) and by the addresses and MAC a monitor reported about itself during the run
(``ifconfig`` on the device: behind DHCP the address changes, and the monitor knows its own).

The rule, for one observation with host address A (the port is dropped) and MAC M (when recorded):

1. The monitors *at A* are those whose inventory address or a reported address is A.
2. M known to exactly one monitor X: X, unless A is the address of a monitor other than X (then two
   identities disagree: unattributed). M known to several monitors: unattributed.
3. M recorded but known to no monitor, or no M recorded: exactly one monitor at A whose MAC is either
   unknown or (without M) anything: that monitor. With an unknown M, a monitor at A whose MAC *is*
   known and differs does not count: another machine holds its address now.
4. Anything else is unattributed: nobody at A (NAT, a new DHCP lease, a laptop), or several monitors at
   A (several monitors behind one NAT address).

An unattributed contact never clears anyone: ``orchestrator.verification`` makes the network checks
of every monitor watched while it happened inconclusive (never "pass"); a contact attributed to a
monitor still fails that monitor's check. Deliberately left out: guessing from timing, ports or
content (a guess is not evidence).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


def host_of(source: str) -> str:
    """``"127.0.0.5:4242"`` -> ``"127.0.0.5"`` (an address alone is returned as it is)."""
    host, sep, port = source.rpartition(":")
    return host if sep and port.isdigit() else source


def normalise_mac(mac: str | None) -> str | None:
    """Lower case, colon-separated ("AA-BB-..." and "aabb.ccdd.eeff" too); None for nothing usable."""
    if not mac:
        return None
    digits = "".join(c for c in mac.lower() if c in "0123456789abcdef")
    if len(digits) != 12 or digits == "0" * 12:
        return None
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def parse_ifconfig(text: str) -> tuple[tuple[str, ...], str | None]:
    """(IPv4 addresses, MAC) of every interface but loopback ``lo`` in ``ifconfig`` output (BusyBox and
    net-tools: "HWaddr xx:..", "inet addr:a.b.c.d"; newer net-tools: "ether xx:..", "inet a.b.c.d").
    The MAC is eth0's when it has one, else the first interface's."""
    addresses: list[str] = []
    macs: dict[str, str] = {}
    interface = ""
    for line in text.splitlines():
        if line and not line[0].isspace():
            interface = line.split()[0].rstrip(":")
        words = line.replace("addr:", "").split()
        if interface == "lo" or not words:
            continue
        for marker in ("HWaddr", "ether"):
            if marker in words[:-1] and (mac := normalise_mac(words[words.index(marker) + 1])):
                macs.setdefault(interface, mac)
        if "inet" in words[:-1]:
            address = words[words.index("inet") + 1].split("/")[0]
            if address.count(".") == 3 and address not in addresses:
                addresses.append(address)
    mac = macs.get("eth0") or next(iter(macs.values()), None)
    return tuple(addresses), mac


@dataclass(frozen=True)
class Identity:
    """What the fleet knows about one monitor on the network."""

    device: str
    address: str | None = None  # the inventory's
    mac: str | None = None  # the inventory's, or the one the monitor reported
    reported: frozenset[str] = frozenset()  # addresses the monitor reported about itself

    @property
    def addresses(self) -> frozenset[str]:
        return self.reported | ({self.address} if self.address else set())


@dataclass(frozen=True)
class Attribution:
    device: str | None  # None: unattributed
    why: str  # plain words: how it was decided

    @property
    def attributed(self) -> bool:
        return self.device is not None


@dataclass
class FleetIdentities:
    """The fleet's identities, indexed by address and MAC (mutable: monitors report during the run).

    Not thread-safe on its own; ``orchestrator.verification`` shares one behind a lock."""

    identities: dict[str, Identity] = field(default_factory=dict)
    _by_address: dict[str, set[str]] = field(default_factory=dict)
    _by_mac: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, identities: Iterable[Identity]) -> FleetIdentities:
        fleet = cls()
        for identity in identities:
            fleet.add(identity)
        return fleet

    def add(self, identity: Identity) -> None:
        old = self.identities.get(identity.device)
        if old is not None:
            self._unindex(old)
        identity = Identity(identity.device, identity.address, normalise_mac(identity.mac),
                            frozenset(identity.reported))
        self.identities[identity.device] = identity
        for address in identity.addresses:
            self._by_address.setdefault(address, set()).add(identity.device)
        if identity.mac:
            self._by_mac.setdefault(identity.mac, set()).add(identity.device)

    def report(self, device: str, addresses: Iterable[str] = (), mac: str | None = None) -> None:
        """What a monitor said about itself: added to what the inventory says (a reported MAC wins)."""
        old = self.identities.get(device, Identity(device))
        self.add(Identity(device, old.address, normalise_mac(mac) or old.mac,
                          old.reported | frozenset(a for a in addresses if a)))

    def _unindex(self, identity: Identity) -> None:
        for address in identity.addresses:
            self._by_address.get(address, set()).discard(identity.device)
        if identity.mac:
            self._by_mac.get(identity.mac, set()).discard(identity.device)

    def attribute(self, source: str, mac: str | None = None) -> Attribution:
        """The rule of the module docstring, for one sender ``source`` (address or address:port)."""
        address, mac = host_of(source), normalise_mac(mac)
        at_address = sorted(self._by_address.get(address, ()))
        if mac is not None and (by_mac := sorted(self._by_mac.get(mac, ()))):
            if len(by_mac) > 1:
                return Attribution(None, f"MAC {mac} is known for several monitors ({', '.join(by_mac)})")
            others = [d for d in at_address if d != by_mac[0]]
            if others:
                return Attribution(None, f"MAC {mac} is {by_mac[0]}'s but {address} is {others[0]}'s")
            return Attribution(by_mac[0], f"MAC {mac}")
        if mac is not None and at_address:
            other_mac = [d for d in at_address if self.identities[d].mac is not None]
            at_address = [d for d in at_address if d not in other_mac]
            if other_mac and not at_address:
                return Attribution(None, f"{address} is {other_mac[0]}'s address, but MAC {mac} is not its "
                                         f"MAC ({self.identities[other_mac[0]].mac})")
        if len(at_address) == 1:
            return Attribution(at_address[0], f"address {address}")
        if at_address:
            return Attribution(None, f"{address} is the address of several monitors "
                                     f"({', '.join(at_address)})")
        what = f"{address} (MAC {mac})" if mac else address
        return Attribution(None, f"no monitor is known at {what}")
