"""The one network guard: which addresses are refused, in every spelling, and how a name is checked."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.adapters.guarded_net import resolve_checked
from orchestrator.domain import netguard
from orchestrator.domain.netguard import (
    DEFAULT_GUARD,
    IndicatorAddressRefused,
    NetworkGuard,
    current_guard,
    install_guard,
    refuse_indicator,
)
from orchestrator.errors import ExitCode, UsageError, exit_code_for


@pytest.fixture
def fresh_guard() -> Iterator[None]:
    """Installing is process-wide and add-only by design; each test here starts from the default."""
    saved = netguard._current[0]
    netguard._current[0] = DEFAULT_GUARD
    yield
    netguard._current[0] = saved


@pytest.mark.parametrize("address", [
    "202.114.4.119", "202.114.4.0", "202.114.4.255", " 202.114.4.120 ",
    "::ffff:202.114.4.119", "[::ffff:202.114.4.119]", "::ffff:ca72:477",  # IPv4-mapped IPv6
    "3396469879", "202.114.004.119", "0xca.0x72.4.119", "202.114.1143",  # legacy forms the C resolver takes
])
def test_indicator_address_is_refused_in_every_spelling(address: str) -> None:
    with pytest.raises(IndicatorAddressRefused) as caught:
        refuse_indicator(address, guard=DEFAULT_GUARD)
    assert caught.value.reason == "indicator-address"
    assert exit_code_for(caught.value) is ExitCode.USAGE and isinstance(caught.value, UsageError)


@pytest.mark.parametrize("address", ["127.77.0.1", "202.114.5.1", "202.114.3.255", "10.0.0.1", "::1",
                                     "bed01.icu.example", "", "1.2", "fe80::1%lo"])
def test_monitor_addresses_and_names_pass(address: str) -> None:
    refuse_indicator(address, guard=DEFAULT_GUARD)


def test_loopback_stand_ins_are_refused_once_the_map_is_installed(fresh_guard: None) -> None:
    refuse_indicator("127.114.9.119")  # before: an ordinary loopback address
    install_guard(NetworkGuard.with_indicator_maps(["127.114.9"]))
    with pytest.raises(IndicatorAddressRefused):
        refuse_indicator("127.114.9.119")
    refuse_indicator("127.77.0.1")  # the emulated monitors stay reachable
    refuse_indicator("127.114.10.1")


def test_install_guard_only_adds_networks(fresh_guard: None) -> None:
    install_guard(NetworkGuard.with_networks(["198.51.100.0/24"]))
    install_guard(NetworkGuard())  # an empty guard removes nothing
    assert current_guard().forbidden("198.51.100.7") is not None
    assert current_guard().forbidden("202.114.4.1") is not None


def test_a_stand_in_prefix_that_is_not_loopback_is_refused() -> None:
    with pytest.raises(Exception) as caught:
        NetworkGuard.with_indicator_maps(["8.8.8"])
    assert getattr(caught.value, "reason", None) == "unsafe-mapping"


def test_addresses_written_inside_other_text_are_found() -> None:
    text = ("-o ProxyJump=service@202.114.4.7:22 -o X=[::ffff:202.114.4.9] HostName:202.114.4.3 "
            "-o ConnectTimeout=10 127.77.0.1 10:30 deadbeef 202.114.44.1")
    found = [token for token, _net in DEFAULT_GUARD.forbidden_in(text)]
    assert found == ["202.114.4.7", "::ffff:202.114.4.9", "202.114.4.3"]


def _resolver(*answers: str) -> Any:
    def resolve(host: str, port: int, family: int = 0, kind: int = 0) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for a in answers:
            if ":" in a:
                out.append((socket.AF_INET6, kind, 6, "", (a, port, 0, 0)))
            else:
                out.append((socket.AF_INET, kind, 6, "", (a, port)))
        return out
    return resolve


def test_a_name_resolving_to_an_indicator_address_is_refused() -> None:
    with pytest.raises(IndicatorAddressRefused) as caught:
        resolve_checked("bed01.icu.example", 2222, resolver=_resolver("202.114.4.119"))
    assert "bed01.icu.example" in caught.value.message and "202.114.4.119" in caught.value.message


def test_a_name_with_one_indicator_address_among_good_ones_is_refused_as_a_whole() -> None:
    with pytest.raises(IndicatorAddressRefused):
        resolve_checked("bed01", 2222, resolver=_resolver("127.77.0.1", "::ffff:202.114.4.119"))


def test_a_literal_indicator_address_is_refused_before_the_resolver_is_asked() -> None:
    asked: list[str] = []

    def resolver(host: str, *rest: Any) -> list[tuple[Any, ...]]:
        asked.append(host)
        return []

    with pytest.raises(IndicatorAddressRefused):
        resolve_checked("202.114.4.119", 22, resolver=resolver)
    assert asked == []


def test_a_good_name_gives_exactly_the_checked_addresses() -> None:
    checked = resolve_checked("bed01", 2222, resolver=_resolver("127.77.0.1", "::1"))
    assert [c[3][0] for c in checked] == ["127.77.0.1", "::1"]
