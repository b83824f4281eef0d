"""``cmspatch contain rules``: the blocking rules for the indicator range, for the site's equipment.

    cmspatch contain rules --format nftables|iptables|ios|asa|cidr [--name ACL] [--object GROUP]
                           [--interface IF] [--extra-network CIDR ...] [-i INVENTORY] [--out FILE]

With ``-i`` the rules are scoped to the inventory's monitors (their IPv4 addresses as sources); without
it they deny any host. Rules go to stdout, or to ``--out`` (a new file). cmspatch never applies them:
the engineer loads them through the site's change process (``nft -f``, ``iptables-restore --noflush``,
the router's configuration mode).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.trust_files import atomic_write
from orchestrator.domain.blocking_rules import FORMATS, BlockSpec, render
from orchestrator.errors import ExitCode


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("contain", help="containment: blocking rules for the indicator range",
                            description="Containment of monitors that are not patched yet.")
    actions = parser.add_subparsers(dest="contain_command", metavar="ACTION", required=True)
    rules = actions.add_parser("rules", help="write blocking rules for 202.114.4.0/24 (never applied)")
    rules.add_argument("--format", required=True, choices=FORMATS)
    rules.add_argument("--name", help="ACL / chain / table name (default CMSPATCH-BLOCK-CONTEC)")
    rules.add_argument("--object", dest="object_name",
                       help="object group / set name (default CMSPATCH-CONTEC-INDICATORS)")
    rules.add_argument("--interface", help="IOS interface or ASA nameif to apply the ACL to")
    rules.add_argument("--extra-network", action="append", default=[], metavar="CIDR",
                       help="another network to block (repeatable)")
    rules.add_argument("-i", "--inventory", type=Path, help="scope the rules to this inventory's monitors")
    rules.add_argument("--out", type=Path, help="write to this new file instead of stdout")
    rules.set_defaults(func=cmd_rules)


def cmd_rules(args: argparse.Namespace) -> int:
    monitors = [d.address for d in load_inventory(args.inventory).devices] if args.inventory else []
    spec = BlockSpec.build(extra_networks=args.extra_network, monitors=monitors, name=args.name,
                           object_name=args.object_name, interface=args.interface)
    text = render(spec, args.format)
    if args.out is None:
        sys.stdout.write(text)
    else:
        atomic_write(args.out, text.encode("utf-8"), exclusive=True)
        print(f"wrote {args.out} ({args.format}, {len(spec.networks)} network(s), "
              f"{len(spec.monitors) or 'any'} source(s))", file=sys.stderr)
    return int(ExitCode.OK)
