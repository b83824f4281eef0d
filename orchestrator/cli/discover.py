"""``cmspatch discover --pcap CAPTURE [-i INVENTORY] [--draft FRAGMENT.yml]``: find every unit on the wire.

Lists every host the capture shows contacting the indicator addresses (or their loopback stand-ins in
emulation, ``--indicator-prefix``), sending CMS telemetry or HL7 to them, with address, MAC and its
vendor where known, first and last seen, and what it sent (kinds and field names, never values). With an
inventory: units on the wire but in no inventory ("unknown units"), units known by MAC at a new address,
and inventory units never seen. ``--draft`` writes the unknown ones as a fragment to review (a new file,
never an overwrite). Only reads the capture: it never probes the network.

Exit 0 when every host seen is a known monitor, 1 when there are unknown units, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.oui import vendor_table
from orchestrator.adapters.pcap import read_capture
from orchestrator.adapters.trust_files import atomic_write
from orchestrator.domain.discovery import Discovery, compare, discover, draft_fragment
from orchestrator.domain.indicators import IndicatorMap
from orchestrator.errors import ExitCode, UsageError


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("discover", help="list units seen on the wire talking to the indicator addresses",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--pcap", required=True, type=Path, metavar="CAPTURE",
                   help="pcap or pcapng of a mirror port")
    p.add_argument("-i", "--inventory", type=Path, help="compare with this inventory")
    p.add_argument("--draft", type=Path, metavar="FRAGMENT.yml",
                   help="write the unknown units as an inventory fragment to review (must not exist)")
    p.add_argument("--indicator-prefix", metavar="127.X.Y",
                   help="loopback stand-in of 202.114.4.0/24 (emulation only)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_discover)


def cmd_discover(args: argparse.Namespace) -> int:
    indicator_map = IndicatorMap(args.indicator_prefix) if args.indicator_prefix else None
    devices = load_inventory(args.inventory).devices if args.inventory else ()
    report = read_capture(args.pcap, indicator_map=indicator_map)
    found = compare(discover(report.observations, vendors=vendor_table()), devices)
    if args.draft is not None:
        if args.draft.exists():
            raise UsageError(f"{args.draft} exists: choose another --draft", reason="would-overwrite")
        fragment = draft_fragment(found.unknown, str(args.pcap))
        atomic_write(args.draft, fragment.encode("utf-8"), exclusive=True)
    if args.json:
        print(json.dumps({"capture": report.path, "sha256": report.sha256, "packets": report.packets,
                          "inventory": str(args.inventory) if args.inventory else None, **found.to_dict()},
                         indent=2))
    else:
        _print(found, report.path, args)
    return int(ExitCode.INCOMPLETE if found.unknown else ExitCode.OK)


def _print(found: Discovery, capture: str, args: argparse.Namespace) -> None:
    print(f"{capture}: {len(found.hosts)} host(s) contacted the indicator addresses")
    for h in found.hosts:
        who = f"= {h.device}" + (" (by MAC, at a new address)" if h.matched_by == "mac" else "") if h.device \
            else "UNKNOWN UNIT" if args.inventory else ""
        mac = ", ".join(h.macs) or "-"
        print(f"  {h.address:<16} {mac:<18} {h.vendor or '':<24} {h.first_seen} .. {h.last_seen}  {who}")
        print(f"      sent: {', '.join(h.kinds)} to {', '.join(h.targets)}"
              + (f"; fields {', '.join(h.field_names)}" if h.field_names else "")
              + ("; PATIENT DATA IN CLEAR" if h.patient_data else ""))
    if args.inventory:
        print(f"unknown units: {len(found.unknown)}; inventory monitors never seen in this capture: "
              f"{len(found.never_seen)}" + (f" ({', '.join(found.never_seen)})" if found.never_seen else ""))
    if args.draft is not None:
        print(f"wrote {args.draft}: {len(found.unknown)} unit(s) to review")
