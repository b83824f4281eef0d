"""Ansible ``--limit`` host patterns, evaluated over typed devices.

Follows ``ansible.inventory.manager`` (ansible-core 2.17): terms separated by commas (or, without a comma,
by colons); plain terms are united first, then ``&`` terms intersect, then ``!`` terms exclude; with only
``&``/``!`` terms the base is ``all``. A term matches group names first and host names when no group
matched or the term is a glob (``*?[.``) or a regex (``~``, matched at the start like ``re.match``).

One deliberate difference: Ansible warns and carries on when a term matches nothing; we refuse
(``limit-matches-nothing``), because a mistyped ``!north_icu`` would otherwise patch the very ward the
engineer meant to spare. Host-range subscripts (``group[0:3]``) are not supported.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Iterable

from orchestrator.domain.devices import Device
from orchestrator.errors import UsageError

_COLON_TERMS = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")


def split_pattern(pattern: str) -> list[str]:
    if "," in pattern:
        terms = pattern.split(",")
    else:
        try:
            ipaddress.IPv6Address(pattern.strip())
            terms = [pattern]
        except ValueError:
            terms = _COLON_TERMS.findall(pattern)
    return [t.strip() for t in terms if t.strip()]


def _matcher(term: str) -> re.Pattern[str]:
    try:
        return re.compile(term[1:]) if term.startswith("~") else re.compile(fnmatch.translate(term))
    except re.error as exc:
        raise UsageError(
            f"--limit: '{term}' is not a valid pattern ({exc})", reason="bad-limit-pattern"
        ) from exc


def _match_term(term: str, devices: tuple[Device, ...], group_names: Iterable[str]) -> set[str]:
    matcher = _matcher(term)
    groups = {g for g in group_names if matcher.match(g)}
    names = {d.name for d in devices if groups.intersection(d.groups)}
    if not groups or term.startswith("~") or any(c in term for c in ".?*["):
        names |= {d.name for d in devices if matcher.match(d.name)}
    if not names and not groups:
        raise UsageError(
            f"--limit: '{term}' matches no monitor and no group in the inventory",
            reason="limit-matches-nothing",
        )
    return names


def select(
    devices: tuple[Device, ...], group_names: Iterable[str], pattern: str | None
) -> tuple[Device, ...]:
    """The devices a ``--limit`` pattern selects, in inventory order; ``None`` or empty selects all."""
    if pattern is None or not pattern.strip():
        return devices
    groups = frozenset(group_names)
    terms = split_pattern(pattern)
    plain = [t for t in terms if t[0] not in "!&"] or ["all"]
    chosen: set[str] = set()
    for term in plain:
        chosen |= _match_term(term, devices, groups)
    for term in (t for t in terms if t[0] == "&"):
        chosen &= _match_term(term[1:], devices, groups) if term[1:] else _nothing(term)
    for term in (t for t in terms if t[0] == "!"):
        chosen -= _match_term(term[1:], devices, groups) if term[1:] else _nothing(term)
    return tuple(d for d in devices if d.name in chosen)


def _nothing(term: str) -> set[str]:
    raise UsageError(f"--limit: '{term}' names nothing after its operator", reason="bad-limit-pattern")
