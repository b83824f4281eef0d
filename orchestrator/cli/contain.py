"""``cmspatch contain rules|record``: blocking rules for the indicator range, and who contained which monitor.

    cmspatch contain record DEVICE... -i INVENTORY --state isolated|disconnected|clinical-use|networked
                            --by NAME [--how TEXT] [--physician NAME] [--note TEXT] [--pcap CAPTURE]

``record`` journals each monitor's containment as a fact about the monitor (``domain.status``'s
``DEVICE_RECORDS``), so every campaign's status and export shows it. With ``--pcap`` the capture is the
evidence: a capture showing one of the monitors contacting 202.114.4.0/24 refuses the record (exit 1).

    cmspatch contain rules --format nftables|iptables|ios|asa|cidr [--name ACL] [--object GROUP]
                           [--interface IF] [--extra-network CIDR ...] [-i INVENTORY] [--out FILE]

With ``-i`` the rules are scoped to the inventory's monitors (their IPv4 addresses as sources); without
it they deny any host. Rules go to stdout, or to ``--out`` (a new file). cmspatch never applies them:
the engineer loads them through the site's change process (``nft -f``, ``iptables-restore --noflush``,
the router's configuration mode).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.trust_files import atomic_write
from orchestrator.domain.blocking_rules import FORMATS, BlockSpec, render
from orchestrator.domain.containment import CaptureFacts, Containment, judge_capture, record_payload
from orchestrator.domain.events import Event, EventKind
from orchestrator.domain.status import DEVICE_RECORDS
from orchestrator.errors import ExitCode, UsageError


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("contain", help="containment: blocking rules, and recording who contained what",
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
    rec = actions.add_parser("record", help="record how monitors are contained, and who confirmed it")
    rec.add_argument("devices", nargs="*", metavar="DEVICE", help="inventory names (or use --limit)")
    rec.add_argument("-i", "--inventory", required=True, type=Path)
    rec.add_argument("--limit", help="Ansible-style host pattern instead of names")
    rec.add_argument("--state", required=True, choices=[c.value for c in Containment])
    rec.add_argument("--by", required=True, help="who confirmed it (a name, as it should appear)")
    rec.add_argument("--how", default="", help="VLAN, firewall rule, cable out, Wi-Fi off ...")
    rec.add_argument("--physician", default="", help="clinical-use: the physician who agreed")
    rec.add_argument("--note", default="")
    rec.add_argument("--pcap", type=Path, help="capture of the uplink or mirror port as evidence")
    rec.add_argument("--indicator-prefix", metavar="127.X.Y", help="loopback stand-in (emulation only)")
    rec.add_argument("--journal", type=Path, help="journal file (default ./cmspatch-journal.db)")
    rec.add_argument("--json", action="store_true")
    rec.set_defaults(func=cmd_record)


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


def cmd_record(args: argparse.Namespace) -> int:
    from orchestrator.adapters.journal_sqlite import SqliteJournal
    from orchestrator.adapters.pcap import read_capture
    from orchestrator.cli.campaign import journal_path
    from orchestrator.domain.indicators import IndicatorMap

    inventory = load_inventory(args.inventory)
    if bool(args.devices) == bool(args.limit):
        raise UsageError("name the monitors, or give --limit (not both)", reason="no-devices")
    devices = ([inventory.device(n) for n in args.devices] if args.devices
               else list(inventory.select(args.limit)))
    if not devices:
        raise UsageError(f"--limit {args.limit!r} matches no monitor", reason="no-devices")
    capture = None
    if args.pcap is not None:
        report = read_capture(args.pcap, indicator_map=IndicatorMap(args.indicator_prefix)
                              if args.indicator_prefix else None)
        facts = CaptureFacts(report.sha256, report.packets, report.first_packet, report.last_packet,
                             tuple(sorted({o.source.rsplit(":", 1)[0] for o in report.observations})))
        capture = judge_capture(facts, args.state, [d.address for d in devices if d.address],
                                [d.name for d in devices])
        capture["file"] = str(args.pcap)
    payload = record_payload(args.state, by=args.by, how=args.how, physician=args.physician, note=args.note,
                             capture=capture)
    journal = journal_path(args)
    with SqliteJournal(journal) as j:
        records = [j.append(Event(DEVICE_RECORDS, EventKind.CONTAINMENT, payload, device=d.name))
                   for d in devices]
    if args.json:
        print(json.dumps({"journal": str(journal), **payload,
                          "devices": {r.device: {"seq": r.seq, "hash": r.hash} for r in records}}, indent=2))
    else:
        print(f"recorded {args.state} for {len(records)} monitor(s) in {journal}, "
              f"confirmed by {payload['by']}"
              + (f"; capture {args.pcap} ({capture['packets']} packets) shows none of them contacting "
                 "202.114.4.0/24" if capture else ""))
    return int(ExitCode.OK)
