"""Units found in a register (or on the wire) -> an Ansible YAML inventory, new or merged into one.

The inventory is grouped as ``inventory.example.yml`` is: ``all`` -> one group per site (``site``
var) -> one group per ward (``ward`` var) -> hosts. Merging into an existing inventory finds the site
and ward groups by their ``site``/``ward`` values (whatever the groups are called), adds only units
whose serial the inventory does not already hold, and reports each addition; the caller writes the
result to a *new* file, so the inventory a person maintains is never overwritten.

Host names are ``<site>-<ward>-bed<bed>`` in lower case (or the register's own host name when it gives a
valid one), made unique with the serial. Values written per unit: model, serial_number, bed, asset_tag,
firmware, mac_address, ansible_host / ansible_port and ``delivery`` (``manual`` without an address).
No host key is written: the inventory names a known_hosts file, and ``cmspatch enroll`` fills it after
a person has compared the fingerprints.

Deliberately left out: no I/O, and comments of a merged inventory are not kept (PyYAML drops them);
the command says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from orchestrator.domain.asset_register import Unit
from orchestrator.domain.inventory_values import HOSTNAME_RE

_BED_WORD = re.compile(r"^\s*(bed|letto|bett)\s*", re.IGNORECASE)  # "Bed 04" names the host ...-bed04
DEFAULT_VARS: dict[str, Any] = {
    "ansible_user": "service",
    "ansible_ssh_private_key_file": "keys/service_ed25519",
    "cmspatch_known_hosts": "known_hosts",
    "ansible_ssh_common_args": "-o UserKnownHostsFile=known_hosts -o StrictHostKeyChecking=yes",
    "delivery": "ssh",
}


def _slug(text: str, sep: str) -> str:
    s = re.sub(r"[^a-z0-9]+", sep, text.lower()).strip(sep)
    return s or "unnamed"


@dataclass(frozen=True)
class Addition:
    name: str
    serial: str
    site: str
    ward: str
    delivery: str
    line: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Written:
    text: str
    added: tuple[Addition, ...]
    already: tuple[str, ...]  # serials the inventory already held (not added again)


def _host_vars(unit: Unit) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if unit.address:
        out["ansible_host"] = unit.address
        if unit.port is not None:
            out["ansible_port"] = unit.port
    else:
        out["delivery"] = "manual"
    out["model"] = unit.model
    out["serial_number"] = unit.serial
    out["bed"] = unit.bed
    for key, value in (("asset_tag", unit.asset_tag), ("firmware", unit.firmware),
                       ("mac_address", unit.mac)):
        if value:
            out[key] = value
    out["cmspatch_register_line"] = unit.line  # where this unit came from, for the person reviewing it
    return out


def _find_child(children: dict[str, Any], var: str, value: str) -> str | None:
    for name, group in children.items():
        group_vars = group.get("vars") if isinstance(group, dict) else None
        if isinstance(group_vars, dict) and group_vars.get(var) == value:
            return name
    return None


def _all_hosts(doc: Any) -> set[str]:
    names: set[str] = set()

    def walk(group: Any) -> None:
        if not isinstance(group, dict):
            return
        hosts = group.get("hosts")
        if isinstance(hosts, dict):
            names.update(str(h) for h in hosts)
        children = group.get("children")
        for child in children.values() if isinstance(children, dict) else ():
            walk(child)

    walk(doc.get("all") if isinstance(doc, dict) else None)
    return names


def write_inventory(units: Iterable[Unit], *, base: Mapping[str, Any] | None = None,
                    known_serials: Iterable[str] = (), defaults: Mapping[str, Any] | None = None,
                    header: str = "") -> Written:
    """Render ``units`` as an inventory; with ``base`` (an inventory already loaded as plain data) add them
    to a copy of it. ``known_serials``: serials ``base`` holds (those units are not added again)."""
    doc: dict[str, Any] = yaml.safe_load(yaml.safe_dump(dict(base))) if base else {}
    root = doc.setdefault("all", {})
    if not base:
        root["vars"] = {**DEFAULT_VARS, **(defaults or {})}
    children = root.setdefault("children", {})
    if children is None:
        children = root["children"] = {}
    taken = _all_hosts(doc) | set(children)
    known = set(known_serials)
    added: list[Addition] = []
    already: list[str] = []
    for unit in sorted(units, key=lambda u: (u.site, u.ward, u.bed, u.serial)):
        if unit.serial in known:
            already.append(unit.serial)
            continue
        known.add(unit.serial)
        site = _group(children, "site", unit.site, f"site_{_slug(unit.site, '_')}", "children", taken)
        ward = _group(site["children"], "ward", unit.ward, f"{_slug(unit.site, '_')}_{_slug(unit.ward, '_')}",
                      "hosts", taken)
        hosts = ward["hosts"]
        wanted = unit.name.lower() if unit.name and HOSTNAME_RE.fullmatch(unit.name) else (
            f"{_slug(unit.site, '-')}-{_slug(unit.ward, '-')}-bed{_slug(_BED_WORD.sub('', unit.bed), '-')}")
        name = wanted if wanted not in taken else _unique(f"{wanted}-{_slug(unit.serial, '-')}", taken)
        taken.add(name)
        hosts[name] = _host_vars(unit)
        added.append(Addition(name, unit.serial, unit.site, unit.ward,
                              "manual" if unit.hands_on else "network", unit.line))
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False, width=110)
    return Written(header + body, tuple(added), tuple(already))


def _group(parent: dict[str, Any], var: str, value: str, name: str, inner: str,
           taken: set[str]) -> dict[str, Any]:
    """The child group of ``parent`` whose ``var`` is ``value`` (found by value, whatever it is called), or a
    new one named ``name``; its ``inner`` mapping ("children" or "hosts") exists afterwards."""
    found = _find_child(parent, var, value)
    if found is None:
        found = _unique(name, taken)
        parent[found] = {"vars": {var: value}}
    group: dict[str, Any] = parent[found]
    group[inner] = group.get(inner) or {}
    return group


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}" if "_" in name else f"{name}-{n}", n + 1
    taken.add(candidate)
    return candidate
