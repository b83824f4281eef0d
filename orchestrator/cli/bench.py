"""``cmspatch bench DEVICE``: the bench verification station for one hands-on unit of a campaign.

The technician is a person at the bench: named (``--technician``, else asked on the terminal; never taken
from the OS account), shown each step with the timings on stderr, answering on stdin one line a step:
``y`` (done) or ``n REASON`` (could not). The same lines piped in script a session for automation and
tests (the first line is the name when ``--technician`` is not given). The unit is watched by a sinkhole
started here (``--sinkhole-prefix``, the loopback stand-in, default; ``--bench-sinkhole``, the indicator
addresses themselves, on an isolated bench switch only) and/or a capture of the bench port, read once the
technician says it is stopped, after the window (``--pcap``). The journal's claim on the unit is held
for the whole session (one driver per monitor). The session itself is ``bench_station.run_station``, the
same the TUI's bench screen runs.

Exit codes: 0 patched at bench level, 1 vulnerable or inconclusive, 2 usage, 6 the unit is driven by
another process.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from orchestrator.bench_station import DEFAULT_WINDOW
from orchestrator.domain import bench
from orchestrator.errors import ExitCode, UsageError
from orchestrator.ports import Answer


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("bench", help="verify a hands-on unit at the bench, from the network, step by step")
    p.add_argument("device", help="the unit (its inventory name in the campaign)")
    p.add_argument("--journal", help="the campaign's journal (default $CMSPATCH_JOURNAL or cmspatch.db)")
    p.add_argument("--campaign", help="the campaign (default: the newest patch campaign)")
    p.add_argument("--technician", help="who works at the bench (asked when not given; never the login name)")
    p.add_argument("--address", help="the unit's address on the bench (default: the inventory's "
                                     "bench_address or address, else learnt from its first packet)")
    p.add_argument("--mac", help="the unit's MAC (default: the inventory's mac_address)")
    p.add_argument("-i", "--inventory", help="the inventory (for the unit's profile, bench_address and MAC)")
    p.add_argument("--window", type=float, default=DEFAULT_WINDOW,
                   help=f"seconds the unit is watched in all (default {DEFAULT_WINDOW:g})")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--sinkhole-prefix", default="127.114.4",
                       help="loopback /24 the sinkhole listens on as 202.114.4.0/24 (emulation, tests)")
    where.add_argument("--bench-sinkhole", action="store_true",
                       help="listen on 202.114.4.119/.120 themselves (isolated bench switch only)")
    p.add_argument("--no-sinkhole", action="store_true", help="watch with the capture only (--pcap)")
    p.add_argument("--pcap", type=Path, help="a capture of the bench port running from before the session, "
                                             "read once the technician has stopped it (asked after the "
                                             "window)")
    p.add_argument("--networking-removed", action="store_true",
                   help="the fix removes networking: the unit must send nothing at all (needs --pcap)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=cmd_bench)


class TerminalPrompter:
    """Steps on ``err`` with the timings; one answer a line on ``inp``."""

    def __init__(self, inp: TextIO, err: TextIO) -> None:
        self.inp, self.err = inp, err

    def say(self, message: str) -> None:
        print(f"bench: {message}", file=self.err, flush=True)

    def ask(self, step: str, number: int, instructions: str, *, elapsed: float, window: float) -> Answer:
        of = f"{number}/{len(bench.STEPS)}" if number <= len(bench.STEPS) else "after the window"
        print(f"bench: [{elapsed:6.1f} s of {window:g} s] step {of} {step}: "
              f"{instructions}", file=self.err)
        print(f"bench: STEP {step}: answer y when done, or n REASON if you could not", file=self.err,
              flush=True)
        line = self.inp.readline()
        if not line:
            return Answer(False, "no answer (end of input)")
        word, _, rest = line.strip().partition(" ")
        if word.lower() in ("y", "yes", "done"):
            return Answer(True, rest.strip())
        return Answer(False, rest.strip() or "could not")


def _technician(args: argparse.Namespace, prompter: TerminalPrompter) -> str:
    name = (args.technician or "").strip()
    if not name:
        print("bench: the technician's name (who works at the bench): ", end="", file=prompter.err,
              flush=True)
        name = prompter.inp.readline().strip()
    if not name:
        raise UsageError("a bench session needs the technician's name: give --technician NAME or type it",
                         reason="no-technician")
    return name


def cmd_bench(args: argparse.Namespace) -> int:
    from orchestrator.bench_station import Station, ready, run_station
    from orchestrator.cli.journal_unit import campaign_unit

    address, address_from, mac, mac_from, ports = unit_facts(args.device, args.inventory, args.address,
                                                             args.mac)
    station = Station(window=args.window,
                      sinkhole_prefix=None if args.bench_sinkhole else args.sinkhole_prefix,
                      sinkhole=not args.no_sinkhole, pcap=args.pcap,
                      networking_removed=args.networking_removed, address=address, address_from=address_from,
                      mac=mac, mac_from=mac_from, udp_probe_ports=ports)
    station.check()
    prompter = TerminalPrompter(sys.stdin, sys.stderr)
    with campaign_unit(args, args.device) as (journal, campaign, status):
        ready(args.device, status)  # before the name is asked: a unit not waiting is refused at once
        technician = _technician(args, prompter)
        result = run_station(journal, campaign, args.device, status, technician, station, prompter)
    if args.json:
        print(json.dumps({"device": args.device, "campaign": campaign, "outcome": result.outcome,
                          "reason": result.reason, "level": "bench", "address": result.address,
                          "mac": result.mac, "verdicts": [v.to_dict() for v in result.verdicts]}, indent=2))
    else:
        for v in result.verdicts:
            print(f"{v.cve.value:<16} {v.verdict.value:<13} (bench) {v.reason}")
        print(f"{args.device}: {result.outcome} at bench level: {result.reason}")
    return int(ExitCode.OK if result.outcome == "patched" else ExitCode.INCOMPLETE)


def unit_facts(name: str, inventory_file: str | None, address: str | None = None, mac: str | None = None
               ) -> tuple[str | None, str, str | None, str, tuple[int, ...]]:
    """The unit's bench address and MAC (and where they came from: the option, else the inventory) and
    its profile's UDP probe ports; the same for ``cmspatch bench`` and the TUI's bench screen."""
    from orchestrator.adapters.profile_file import shipped_profile

    address, address_from = (address, "option") if address else (None, "")
    mac, mac_from = (mac, "option") if mac else (None, "")
    ports = shipped_profile().udp_probe_ports
    if inventory_file:
        from orchestrator.adapters.inventory_file import load_inventory
        from orchestrator.adapters.profile_file import load_profile

        inventory = load_inventory(inventory_file)
        device = next((d for d in inventory.devices if d.name == name), None)
        if device is None:
            raise UsageError(f"{name} is not in {inventory_file}", reason="unknown-device")
        ports = load_profile(device.profile).udp_probe_ports
        bench_address = device.vars.get("bench_address") or device.address
        if address is None and bench_address:
            address, address_from = str(bench_address), "inventory"
        if mac is None and device.vars.get("mac_address"):
            mac, mac_from = str(device.vars["mac_address"]), "inventory"
    return address, address_from, mac, mac_from, tuple(ports)
