"""The one network guard: cmspatch never connects to an indicator address.

The backdoor's addresses (202.114.4.0/24, ``INDICATOR_NETWORK``) and any further networks a site
configures as indicators are only ever *listened* on (the sinkhole, through the loopback mapping). A
connection towards one of them, whatever path asks for it (the SSH adapter, ``enroll``, the UDP probe,
the Ansible transport, the inventory), is refused here, before a socket is opened. The loopback
stand-ins of the indicator addresses (``IndicatorMap``) are indicator addresses too: product code has
no business connecting to the sinkhole's own listeners.

Pure: the adapters resolve names (``socket.getaddrinfo``, in ``adapters.guarded_net``) and pass every
resolved address to ``refuse_indicator``; this module only compares values. The inventory checks its
literal addresses here too (``forbidden``, ``forbidden_in`` for addresses written inside other values such
as a ``ProxyJump`` in ``ansible_ssh_common_args``); a host *name* can only be judged once resolved.

The guard in force is process-wide (``install_guard``, called once by the CLI entry point with the
configured loopback stand-ins) and can only grow: nothing in a run can un-refuse a network.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from orchestrator.domain.indicators import INDICATOR_NETWORK, IndicatorMap
from orchestrator.errors import UsageError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Candidate address tokens inside free text: hex-and-colon runs, and numbers with dots (a :port may follow).
_ADDRESS_TOKEN = re.compile(r"(?<![\w.:])[0-9A-Fa-f]*:[0-9A-Fa-f:.]*(?![\w.:])"
                            r"|(?<![\w.])\d[0-9A-Fa-fxX.]*(?![\w.])")


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """The address the C resolver makes of a legacy IPv4 form (``3396469879``, ``202.114.004.119``,
    ``0xca.0x72.4.119``): ``ipaddress`` refuses these, OpenSSH and ``getaddrinfo`` accept them."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    try:
        numbers = [int(p, 16) if p[:2].lower() == "0x" else int(p, 8) if p.startswith("0") and len(p) > 1
                   else int(p, 10) for p in parts]
    except ValueError:
        return None
    *head, last = numbers
    if any(not 0 <= n <= 255 for n in head) or not 0 <= last < 256 ** (4 - len(head)):
        return None
    value = last
    for i, n in enumerate(reversed(head)):
        value += n << (8 * (4 - len(head) + i))
    return ipaddress.IPv4Address(value)


class IndicatorAddressRefused(UsageError):
    """A connection to an indicator address was asked for and refused (exit 2: the input is wrong)."""

    reason = "indicator-address"


@dataclass(frozen=True)
class NetworkGuard:
    """The networks cmspatch refuses to connect to: the indicator /24, plus configured ones."""

    extra: tuple[Network, ...] = ()

    @classmethod
    def with_networks(cls, networks: Iterable[str]) -> NetworkGuard:
        return cls(tuple(ipaddress.ip_network(n, strict=False) for n in networks))

    @classmethod
    def with_indicator_maps(cls, prefixes: Iterable[str]) -> NetworkGuard:
        """The guard that also refuses the loopback stand-ins of the indicator /24 (``IndicatorMap``
        prefixes, e.g. ``127.114.4``): the sinkhole listens there, nothing of ours connects there."""
        return cls(tuple(ipaddress.IPv4Network(f"{IndicatorMap(p).loopback_prefix}.0/24") for p in prefixes))

    @property
    def networks(self) -> tuple[Network, ...]:
        return (INDICATOR_NETWORK, *self.extra)

    def forbidden(self, address: str) -> Network | None:
        """The refused network ``address`` falls in, or None. A non-address (a host name) is None:
        names are resolved by the adapter and each resolved address checked again."""
        text = address.strip().strip("[]").split("%", 1)[0]
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            ip = _inet_aton(text) if text[:1].isdigit() else None
        if ip is None:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return next((net for net in self.networks if ip.version == net.version and ip in net), None)

    def forbidden_in(self, text: str) -> list[tuple[str, Network]]:
        """Every refused address written anywhere inside ``text`` (an ssh option, a proxy command)."""
        # A bare number under 7 digits (a port, a bed) is no address worth guarding: 1.0.0.0 is 16777216.
        tokens = (t for t in _ADDRESS_TOKEN.findall(text) if "." in t or ":" in t or len(t) >= 7)
        found = ((token, self.forbidden(token)) for token in tokens)
        return [(token, net) for token, net in found if net is not None]

    def refuse(self, address: str, *, purpose: str = "connect") -> None:
        """Raise ``IndicatorAddressRefused`` if ``address`` is in a refused network."""
        net = self.forbidden(address)
        if net is not None:
            raise IndicatorAddressRefused(
                f"refusing to {purpose} {address}: it is in the indicator network {net} "
                "(cmspatch only ever listens on indicator addresses, never connects to them)")

    def refuse_all(self, addresses: Sequence[str], *, purpose: str = "connect") -> None:
        for address in addresses:
            self.refuse(address, purpose=purpose)


DEFAULT_GUARD = NetworkGuard()


def refuse_indicator(address: str, *, purpose: str = "connect", guard: NetworkGuard | None = None) -> None:
    """The guard every path calls with each address it is about to connect to."""
    (guard or current_guard()).refuse(address, purpose=purpose)


_current: list[NetworkGuard] = [DEFAULT_GUARD]


def current_guard() -> NetworkGuard:
    """The guard in force for this process (the default, or one the composition root installed with the
    configured indicator networks and loopback stand-ins)."""
    return _current[0]


def install_guard(guard: NetworkGuard) -> None:
    """Set the process-wide guard once, at the composition root. It can only add networks."""
    merged = tuple(dict.fromkeys((*_current[0].extra, *guard.extra)))
    _current[0] = NetworkGuard(merged)
