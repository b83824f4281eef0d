"""The one network guard: cmspatch never connects to an indicator address.

The backdoor's addresses (202.114.4.0/24, ``INDICATOR_NETWORK``) and any further networks a site
configures as indicators are only ever *listened* on (the sinkhole, through the loopback mapping). A
connection towards one of them, whatever path asks for it (the SSH adapter, ``enroll``, the UDP probe,
the Ansible transport, the inventory), is refused here, before a socket is opened. The loopback
stand-ins of the indicator addresses (``IndicatorMap``) are indicator addresses too: product code has
no business connecting to the sinkhole's own listeners.

Pure: the adapters resolve names (``socket.getaddrinfo``) and pass every resolved address to
``refuse_indicator``; this module only compares values.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from orchestrator.domain.indicators import INDICATOR_NETWORK
from orchestrator.errors import UsageError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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

    @property
    def networks(self) -> tuple[Network, ...]:
        return (INDICATOR_NETWORK, *self.extra)

    def forbidden(self, address: str) -> Network | None:
        """The refused network ``address`` falls in, or None. A non-address (a host name) is None:
        names are resolved by the adapter and each resolved address checked again."""
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]").split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return next((net for net in self.networks if ip.version == net.version and ip in net), None)

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
