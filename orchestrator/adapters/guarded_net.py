"""Resolve, check, then connect: the only way product code opens a socket towards a monitor.

``domain.netguard`` decides which addresses are refused; this module is where a name becomes addresses.
Every address ``getaddrinfo`` returns for a host is checked *before* any socket exists, and the socket is
then connected to one of exactly those checked addresses (never to the name, which a second lookup could
resolve differently). So a host name that resolves to 202.114.4.x, a legacy form such as ``3396469879``,
or an IPv4-mapped IPv6 literal ``::ffff:202.114.4.119`` are refused the same way as the plain address.

Used by the SSH adapter (``open_transport``, hence ``enroll`` too), the UDP probe and the Ansible path
(which checks here, then lets OpenSSH connect to the same name).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any

from orchestrator.domain.netguard import IndicatorAddressRefused, refuse_indicator
from orchestrator.errors import PermanentTransportError

Resolver = Callable[..., Sequence[tuple[Any, ...]]]  # socket.getaddrinfo's shape
Checked = tuple[int, int, int, tuple[Any, ...]]  # family, type, proto, sockaddr


def resolve_checked(host: str, port: int, *, kind: int = socket.SOCK_STREAM,
                    resolver: Resolver | None = None, purpose: str = "connect to") -> list[Checked]:
    """Every address ``host`` resolves to, each one passed through the network guard.

    Raises ``IndicatorAddressRefused`` if *any* of them is refused (a name with one good and one
    indicator address is refused as a whole: which one a client would pick is not ours to bet on), and
    ``OSError`` (``socket.gaierror``) when the name does not resolve."""
    refuse_indicator(host, purpose=purpose)  # a literal is refused before even asking the resolver
    infos = (resolver or socket.getaddrinfo)(host, port, 0, kind)
    checked: list[Checked] = []
    for family, socktype, proto, _canon, sockaddr in infos:
        refuse_indicator(str(sockaddr[0]), purpose=f"{purpose} {host}, which resolves to")
        checked.append((family, socktype, proto, sockaddr))
    if not checked:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} resolves to no address")
    return checked


def connect_checked(host: str, port: int, *, timeout: float,
                    resolver: Resolver | None = None) -> socket.socket:
    """A connected TCP socket to ``host``:``port`` (``socket.create_connection`` after the guard)."""
    last: OSError | None = None
    for family, socktype, proto, sockaddr in resolve_checked(host, port, resolver=resolver):
        sock = socket.socket(family, socktype, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    assert last is not None  # resolve_checked never returns an empty list
    raise last


def as_transport_error(exc: IndicatorAddressRefused, host: str) -> PermanentTransportError:
    """A refusal inside a campaign: one monitor fails for good (never retried), nothing crashes."""
    return PermanentTransportError(f"{host}: {exc.message}", reason=exc.reason, host=host)
