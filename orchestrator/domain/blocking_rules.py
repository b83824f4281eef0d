"""Blocking rules for the indicator range, for the equipment hospitals have (CISA: block 202.114.4.0/24).

One value, ``BlockSpec`` (the networks, the site's own object names, the monitors' addresses if the site
wants the rule scoped to them), rendered for nftables, iptables (IPv4), Cisco IOS extended ACLs, Cisco ASA
access lists with object groups, and a plain CIDR list for anything else (a firewall's import, a proxy's
deny list). Every rule denies both directions, so a monitor can neither reach the backdoor's server nor
be reached from it, and logs or counts the hits: the counter is containment evidence.

Names are the site's (``--name``, ``--object``, ``--interface``) where given. They are checked against a
conservative character set: a name with a space, a quote or a newline could smuggle a second command into
a router's configuration.

Deliberately left out: no I/O, no applying. The engineer reviews the rules and loads them with the
site's own change process; cmspatch never configures network equipment.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.domain.indicators import INDICATOR_NETWORK
from orchestrator.errors import UsageError

FORMATS = ("nftables", "iptables", "ios", "asa", "cidr")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_IFACE = re.compile(r"[A-Za-z][A-Za-z0-9/._:-]{0,63}")
ADVISORY = "Contec CMS backdoor indicators (CISA ICSMA-25-030-01)"


class BadRuleName(UsageError):
    reason = "bad-rule-name"


@dataclass(frozen=True)
class BlockSpec:
    networks: tuple[ipaddress.IPv4Network, ...] = (INDICATOR_NETWORK,)
    name: str = "CMSPATCH-BLOCK-CONTEC"  # ACL / chain / table name
    object_name: str = "CMSPATCH-CONTEC-INDICATORS"  # object group / set of the indicator networks
    interface: str | None = None  # where IOS/ASA apply it; None: leave the access-group line commented
    monitors: tuple[ipaddress.IPv4Address, ...] = ()  # scope the rules to these sources (else any)

    def __post_init__(self) -> None:
        for label, value in (("name", self.name), ("object name", self.object_name)):
            if not _NAME.fullmatch(value):
                raise BadRuleName(f"{label} {value!r}: use letters, digits, '_', '.', '-' (at most 64, "
                                  "starting with a letter)")
        if self.interface is not None and not _IFACE.fullmatch(self.interface):
            raise BadRuleName(f"interface {self.interface!r} is not an interface name")
        if INDICATOR_NETWORK not in self.networks:
            raise UsageError("the blocking rules always include 202.114.4.0/24", reason="bad-network")

    @classmethod
    def build(cls, *, extra_networks: Sequence[str] = (), monitors: Sequence[str] = (),
              name: str | None = None, object_name: str | None = None,
              interface: str | None = None) -> BlockSpec:
        nets: list[ipaddress.IPv4Network] = [INDICATOR_NETWORK]
        for text in extra_networks:
            try:
                net = ipaddress.IPv4Network(text, strict=False)
            except ValueError as exc:
                raise UsageError(f"network {text!r} is not an IPv4 network", reason="bad-network") from exc
            if net.prefixlen < 8:
                raise UsageError(f"network {net} is wider than a /8: refusing to block it",
                                 reason="bad-network")
            if net not in nets:
                nets.append(net)
        hosts: list[ipaddress.IPv4Address] = []
        for text in monitors:
            try:
                hosts.append(ipaddress.IPv4Address(text))
            except ValueError:
                continue  # host names and IPv6 addresses: the rule stays scoped to "any" source
        defaults = cls()
        return cls(tuple(nets), name or defaults.name, object_name or defaults.object_name, interface,
                   tuple(dict.fromkeys(hosts)))


def _wildcard(net: ipaddress.IPv4Network) -> str:
    return str(net.hostmask)


def render(spec: BlockSpec, fmt: str) -> str:
    if fmt not in FORMATS:
        raise UsageError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}", reason="bad-format")
    return {"nftables": _nft, "iptables": _iptables, "ios": _ios, "asa": _asa, "cidr": _cidr}[fmt](spec)


def _cidr(spec: BlockSpec) -> str:
    return "".join(f"{n}\n" for n in spec.networks)


def _nft(spec: BlockSpec) -> str:
    table = spec.name.lower().replace("-", "_").replace(".", "_")
    objects = spec.object_name.lower().replace("-", "_").replace(".", "_")
    elements = ", ".join(str(n) for n in spec.networks)
    scope = ""
    lines = [f"# {ADVISORY}: deny both directions, counted.", f"table inet {table} {{",
             f"  set {objects} {{", "    type ipv4_addr; flags interval;", f"    elements = {{ {elements} }}",
             "  }"]
    if spec.monitors:
        lines += ["  set contec_monitors {", "    type ipv4_addr;",
                  f"    elements = {{ {', '.join(str(m) for m in spec.monitors)} }}", "  }"]
        scope = "ip saddr @contec_monitors "
    for chain, hook in (("forward", "forward"), ("output", "output")):
        lines += [f"  chain {chain} {{", f"    type filter hook {hook} priority filter; policy accept;",
                  f'    {scope}ip daddr @{objects} counter log prefix "cmspatch-contec " drop '
                  f'comment "{ADVISORY}"',
                  f"    ip saddr @{objects} counter drop", "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _iptables(spec: BlockSpec) -> str:
    chain = spec.name[:28]  # iptables chain names are at most 28 characters
    lines = [f"# {ADVISORY}: deny both directions, logged. Load with iptables-restore --noflush.",
             "*filter", f":{chain} - [0:0]"]
    for net in spec.networks:
        sources = [f"-s {m}/32 " for m in spec.monitors] or [""]
        for src in sources:
            lines.append(f'-A {chain} {src}-d {net} -m comment --comment "cmspatch contec" -j LOG '
                         '--log-prefix "cmspatch-contec "')
            lines.append(f'-A {chain} {src}-d {net} -m comment --comment "cmspatch contec" -j DROP')
        lines.append(f'-A {chain} -s {net} -m comment --comment "cmspatch contec" -j DROP')
    lines += [f"-I FORWARD 1 -j {chain}", f"-I OUTPUT 1 -j {chain}", "COMMIT"]
    return "\n".join(lines) + "\n"


def _ios(spec: BlockSpec) -> str:
    lines = [f"! {ADVISORY}: deny both directions, logged; everything else permitted.",
             f"ip access-list extended {spec.name}", f" remark {ADVISORY}"]
    sources = [f"host {m}" for m in spec.monitors] or ["any"]
    for net in spec.networks:
        for src in sources:
            lines.append(f" deny ip {src} {net.network_address} {_wildcard(net)} log")
        lines.append(f" deny ip {net.network_address} {_wildcard(net)} any log")
    lines += [" permit ip any any", "!"]
    if spec.interface:
        lines += [f"interface {spec.interface}", f" ip access-group {spec.name} in", "!"]
    else:
        lines.append("! apply it where the monitors' VLAN enters: interface <VLAN> / "
                     f"ip access-group {spec.name} in")
    return "\n".join(lines) + "\n"


def _asa(spec: BlockSpec) -> str:
    lines = [f"! {ADVISORY}: deny both directions, logged; everything else permitted.",
             f"object-group network {spec.object_name}", f" description {ADVISORY}"]
    lines += [f" network-object {n.network_address} {n.netmask}" for n in spec.networks]
    src = "any"
    if spec.monitors:
        lines += ["object-group network CMSPATCH-CONTEC-MONITORS"]
        lines += [f" network-object host {m}" for m in spec.monitors]
        src = "object-group CMSPATCH-CONTEC-MONITORS"
    lines += [f"access-list {spec.name} extended deny ip {src} object-group {spec.object_name} log",
              f"access-list {spec.name} extended deny ip object-group {spec.object_name} any log",
              f"access-list {spec.name} extended permit ip any any"]
    if spec.interface:
        lines.append(f"access-group {spec.name} in interface {spec.interface}")
    else:
        lines.append(f"! apply it: access-group {spec.name} in interface <nameif of the monitors' network>")
    return "\n".join(lines) + "\n"
