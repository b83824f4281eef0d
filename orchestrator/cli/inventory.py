"""``cmspatch inventory check|list|import``: validate an inventory, show what it holds, or make one from an
asset-register export (``cli/asset_import.py``).

A bad inventory raises ``InventoryError``; ``cli/main.py`` prints every problem (file:line: message) and
exits 2. Data goes to stdout, so ``list --json`` can feed scripts; check and list change no file, import
writes only a new one.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.cli.asset_import import register_import
from orchestrator.domain.devices import Device
from orchestrator.errors import ExitCode


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "inventory",
        help="check or list the monitors of an inventory",
        description="Check or list the monitors of an Ansible-compatible YAML inventory.",
    )
    commands = parser.add_subparsers(dest="inventory_command", metavar="ACTION", required=True)
    check = commands.add_parser("check", help="validate the inventory and summarise it (exit 2 when invalid)")
    _common(check)
    check.set_defaults(func=run_check)
    listing = commands.add_parser("list", help="one line per monitor")
    _common(listing)
    listing.add_argument(
        "--limit", metavar="PATTERN", help="Ansible host pattern, e.g. 'site_north:!north_icu'"
    )
    listing.set_defaults(func=run_list)
    register_import(commands)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", "--inventory", required=True, metavar="FILE", help="inventory YAML file")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def device_record(device: Device) -> dict[str, object]:
    """What is safe to print about a monitor: no free-form vars (they could hold anything)."""
    return {
        "name": device.name,
        "model": device.model,
        "serial": device.serial,
        "site": device.site,
        "ward": device.ward,
        "bed": device.bed,
        "delivery": str(device.delivery),
        "address": device.address or None,
        "port": device.port if device.address else None,
        "user": device.user or None,
        "credential": device.credential.describe() if device.address else None,
        "host_key": device.host_key,
        "asset_tag": device.asset_tag,
        "firmware": device.firmware,
        "groups": list(device.groups),
        "line": device.source_line,
    }


def run_check(args: argparse.Namespace) -> int:
    inventory = load_inventory(args.inventory)
    devices = inventory.devices
    summary = {
        "inventory": inventory.path,
        "devices": len(devices),
        "sites": dict(sorted(Counter(d.site for d in devices).items())),
        "models": dict(sorted(Counter(d.model for d in devices).items())),
        "delivery": dict(sorted(Counter(str(d.delivery) for d in devices).items())),
        "known_hosts": inventory.known_hosts,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return int(ExitCode.OK)
    print(f"{inventory.path}: valid, {len(devices)} monitor(s)")
    for title, key in (("site", "sites"), ("model", "models"), ("delivery path", "delivery")):
        counts: dict[str, int] = summary[key]  # type: ignore[assignment]
        print(f"  by {title}:")
        for name, count in counts.items():
            print(f"    {count:5d}  {name}")
    if inventory.known_hosts:
        print(f"  known_hosts: {inventory.known_hosts}")
    return int(ExitCode.OK)


def run_list(args: argparse.Namespace) -> int:
    inventory = load_inventory(args.inventory)
    devices = inventory.select(args.limit)
    if args.json:
        print(json.dumps([device_record(d) for d in devices], indent=2))
        return int(ExitCode.OK)
    for d in devices:
        where = f"{d.address}:{d.port}" if d.address else "-"
        print(f"{d.name}\t{d.model}\t{d.serial}\t{d.site} / {d.ward} / bed {d.bed}\t{d.delivery}\t{where}")
    if not devices:
        print("no monitor matches", file=sys.stderr)
    return int(ExitCode.OK)
