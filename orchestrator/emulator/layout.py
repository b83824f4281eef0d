"""Who is in the emulated fleet and where: names, models, states, addresses; and the files that say so.

The inventory written here is exactly the team's inventory format (site and ward groups, host vars,
pinned ``host_key`` fingerprints) and works as it is with ``ansible-playbook -i`` and with OpenSSH.
Paths inside it are absolute: Ansible and ``ssh -o UserKnownHostsFile=`` resolve relative paths against
the current directory, not the inventory's, so absolute paths are what makes it usable from anywhere.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from orchestrator.domain.indicators import MODELS, IndicatorMap
from orchestrator.emulator.catalog import DEFAULT_MIX, WARDS, FirmwareState, Ward, serial_for, version_for
from orchestrator.errors import EmulatorError

MAX_MONITORS = 250 * 256
_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


@dataclass(frozen=True)
class MonitorPlan:
    index: int
    name: str
    model: str
    serial: str
    state: FirmwareState
    version: str
    ward: Ward
    bed: str
    address: str
    asset_tag: str

    @property
    def hwaddr(self) -> str:
        i = self.index
        return f"00:1e:c0:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"


def parse_counts(spec: str | Mapping[str, int] | None, *, known: tuple[str, ...],
                 what: str) -> dict[str, int]:
    """``"CMS8000=10,MN-120=5"`` or a mapping -> weights (checked against ``known``)."""
    if spec is None or spec == "":
        return {}
    items: dict[str, int] = {}
    if isinstance(spec, str):
        for entry in filter(None, (e.strip() for e in spec.split(","))):
            key, sep, value = entry.partition("=")
            if not sep or not value.strip().isdigit():
                raise EmulatorError(f"{what}: {entry!r} is not NAME=COUNT", reason=f"bad-{what}")
            items[key.strip()] = items.get(key.strip(), 0) + int(value)
    else:
        items = dict(spec)
    unknown = [k for k in items if k not in known]
    if unknown:
        raise EmulatorError(f"{what}: unknown {', '.join(unknown)} (known: {', '.join(known)})",
                            reason=f"bad-{what}")
    if any(not isinstance(v, int) or v < 0 for v in items.values()) or not any(items.values()):
        raise EmulatorError(f"{what}: counts must be non-negative integers, not all zero",
                            reason=f"bad-{what}")
    return items


def apportion(weights: Mapping[str, int], n: int) -> list[str]:
    """n labels in proportion to the weights (largest remainder), interleaved rather than in blocks."""
    total = sum(weights.values())
    quotas = {k: n * w / total for k, w in weights.items() if w}
    counts = {k: int(q) for k, q in quotas.items()}
    for k in sorted(quotas, key=lambda k: quotas[k] - counts[k], reverse=True)[: n - sum(counts.values())]:
        counts[k] += 1
    slots = [((i + 0.5) / c, order, k) for order, (k, c) in enumerate(counts.items()) for i in range(c)]
    return [k for _, _, k in sorted(slots)]


def addresses(prefix: str, n: int) -> list[str]:
    parts = prefix.split(".")
    try:
        if len(parts) == 2:
            out = [f"{prefix}.{i // 250}.{i % 250 + 1}" for i in range(n)]
        elif len(parts) == 3 and n <= 254:
            out = [f"{prefix}.{i + 1}" for i in range(n)]
        else:
            raise ValueError(prefix)
        if n and not all(ipaddress.IPv4Address(a) in _LOOPBACK for a in (out[0], out[-1])):
            raise EmulatorError(f"address prefix {prefix} is not loopback: emulated monitors only live on "
                                "127.0.0.0/8", reason="not-loopback")
    except ValueError as exc:
        raise EmulatorError(f"address prefix {prefix!r} must look like 127.77 (or 127.77.5 for <= 254 "
                            "monitors)", reason="bad-address-prefix") from exc
    return out


def plan_fleet(n: int, *, mix: str | Mapping[str, int] | None, states: str | Mapping[str, int] | None,
               address_prefix: str, indicator_map: IndicatorMap) -> list[MonitorPlan]:
    if not 1 <= n <= MAX_MONITORS:
        raise EmulatorError(f"monitors must be 1..{MAX_MONITORS}, not {n}", reason="bad-monitors")
    addrs = addresses(address_prefix, n)
    mapped = ipaddress.IPv4Network(f"{indicator_map.loopback_prefix}.0/24")
    if not mapped.subnet_of(_LOOPBACK):
        raise EmulatorError(f"indicator map {mapped} is not loopback", reason="not-loopback")
    if any(ipaddress.IPv4Address(a) in mapped for a in addrs):
        raise EmulatorError(f"monitor addresses {address_prefix}.x overlap the mapped indicator network "
                            f"{mapped}", reason="address-overlap")
    models = apportion(parse_counts(mix, known=MODELS, what="mix") or DEFAULT_MIX, n)
    state_names = tuple(s.value for s in FirmwareState)
    fw_states = apportion(parse_counts(states, known=state_names, what="states") or {"vulnerable": 1}, n)
    plans = []
    beds: dict[str, int] = {}
    for i in range(n):
        ward = WARDS[i % len(WARDS)]
        beds[ward.ward_group] = beds.get(ward.ward_group, 0) + 1
        bed = f"{beds[ward.ward_group]:02d}"
        state = FirmwareState(fw_states[i])
        plans.append(MonitorPlan(
            index=i, name=f"{ward.short}-{ward.ward_short}-bed{bed}", model=models[i],
            serial=serial_for(models[i], i), state=state, version=version_for(models[i], state), ward=ward,
            bed=bed, address=addrs[i], asset_tag=f"BME-{4211 + i:06d}"))
    return plans


def render_inventory(hosts: list[tuple[MonitorPlan, int, str, str]], *, key_path: Path,
                     known_hosts: Path, user: str = "service", profiles: Mapping[str, str] | None = None
                     ) -> str:
    """hosts: (plan, port, host_key fingerprint, firmware version); ``user``: the service account;
    ``profiles``: monitor -> ``cmspatch_profile`` for those not on the shipped profile."""
    sites: dict[str, dict[str, object]] = {}
    for plan, port, fingerprint, firmware in hosts:
        w = plan.ward
        site = sites.setdefault(w.site_group, {"vars": {"site": w.site}, "children": {}})
        wards = site["children"]
        assert isinstance(wards, dict)
        ward = wards.setdefault(w.ward_group, {"vars": {"ward": w.ward}, "hosts": {}})
        ward["hosts"][plan.name] = {
            "ansible_host": plan.address, "ansible_port": port, "model": plan.model,
            "serial_number": plan.serial, "bed": plan.bed, "host_key": fingerprint, "delivery": "ssh",
            "asset_tag": plan.asset_tag, "firmware": firmware,
        }
        if profiles and plan.name in profiles:
            ward["hosts"][plan.name]["cmspatch_profile"] = profiles[plan.name]
    doc = {"all": {
        "vars": {
            "ansible_user": user,
            "ansible_ssh_private_key_file": str(key_path),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={shlex.quote(str(known_hosts))} "
                                       "-o StrictHostKeyChecking=yes",
            "cmspatch_known_hosts": str(known_hosts),
        },
        "children": sites,
    }}
    header = "# Emulated CMS monitor fleet, written by `cmspatch fleet emulate` (orchestrator.emulator).\n"
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: 5x faster for 500 hosts
    return header + yaml.dump(doc, Dumper=dumper, sort_keys=False, default_flow_style=False, width=200)


def known_hosts_line(address: str, port: int, public_key: str) -> str:
    host = address if port == 22 else f"[{address}]:{port}"
    return f"{host} {public_key}\n"


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
