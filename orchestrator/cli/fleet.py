"""``cmspatch fleet``: run the emulated monitor fleet, and build demo vendor packages for it.

``fleet emulate`` runs in the foreground until Ctrl-C (a normal end: exit 0) and writes an inventory and
known_hosts that the orchestrator, Ansible and OpenSSH use as they are. The emulator is imported lazily
so that the rest of the CLI never loads it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from orchestrator.errors import ExitCode


def register(sub: argparse._SubParsersAction[Any]) -> None:
    fleet = sub.add_parser("fleet", help="the emulated CMS monitor fleet (demo, tests, training)")
    fsub = fleet.add_subparsers(dest="fleet_command", metavar="SUBCOMMAND", required=True)

    emulate = fsub.add_parser(
        "emulate", help="run N emulated monitors on loopback until Ctrl-C",
        description="Run emulated monitors (real SSH, BusyBox shell, the backdoor's behaviour on loopback). "
                    "Writes inventory.yml, known_hosts and keys/fleet_ed25519 in --workdir.",
        epilog="faults: unreachable auth-refused host-key-changed upload-drop@OFFSET[*N] slow-link@RATE "
               "disk-full install-fail reboot-hang reboot-rollback slow-drop@SECONDS (sessions and the old "
               "system stay up SECONDS after reboot, default 20) fake-reboot (reboot exits 0, nothing "
               "restarts) no-boot-id patient alarm status-garbage status-duplicate status-fail "
               "default-password. Selector: host name, suffix after a dash (bed07), or *.",
    )
    emulate.add_argument("--monitors", type=int, default=10, help="number of monitors (default 10)")
    emulate.add_argument("--mix", help='models, e.g. "CMS8000=10,MN-120=5" (proportions)')
    emulate.add_argument("--states", help='firmware states, e.g. "vulnerable=40,insufficient=5,fixed=5"')
    emulate.add_argument("--faults", help='e.g. "bed07=upload-drop@100000,bed09=patient"')
    emulate.add_argument("--workdir", type=Path, default=Path("emulated-fleet"),
                         help="roots, keys, inventory.yml, known_hosts (default ./emulated-fleet)")
    emulate.add_argument("--port", type=int, default=2222, help="SSH port on every monitor (default 2222)")
    emulate.add_argument("--address-prefix", default="127.77", help="loopback prefix (default 127.77)")
    emulate.add_argument("--indicator-prefix", default="127.114.4",
                         help="loopback /24 standing in for 202.114.4.0/24 (default 127.114.4)")
    emulate.add_argument("--reboot-seconds", type=float, default=1.0, help="reboot duration (default 1.0)")
    emulate.add_argument("--profile", action="append", metavar="[SELECTOR=]PROFILE",
                         help="device profile the monitors follow (a shipped name or a path), every "
                              "monitor or those SELECTOR names, e.g. bed03=generic-busybox-no-triggers; "
                              "repeatable (default: the emulated CMS service shell)")
    emulate.add_argument("--json", action="store_true", help="print where it listens as JSON")
    emulate.set_defaults(func=_emulate)

    package = fsub.add_parser("build-package", help="write a demo vendor upgrade package (.tar.gz)")
    package.add_argument("output", type=Path)
    package.add_argument("--variant", choices=("fixed", "insufficient", "vulnerable"), default="fixed")
    package.add_argument("--version", help="firmware version string (default: the variant's build)")
    package.add_argument("--models", help="comma-separated models (default: all six)")
    package.set_defaults(func=_build_package)


def _emulate(args: argparse.Namespace) -> int:
    from orchestrator.domain.indicators import IndicatorMap
    from orchestrator.emulator import EmulatedFleet

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    fleet = EmulatedFleet.start(
        args.workdir, monitors=args.monitors, mix=args.mix, states=args.states, faults=args.faults,
        address_prefix=args.address_prefix, indicator_map=IndicatorMap(args.indicator_prefix),
        port=args.port, reboot_seconds=args.reboot_seconds, profiles=_profiles(args.profile))
    try:
        first = fleet.monitors[0]
        states = _count(m.firmware_state for m in fleet.monitors)
        models = _count(m.model for m in fleet.monitors)
        summary: dict[str, object] = {
            "monitors": len(fleet.monitors),
            "port": fleet.port,
            "addresses": [first.address, fleet.monitors[-1].address],
            "inventory": str(fleet.inventory_path),
            "known_hosts": str(fleet.known_hosts_path),
            "key": str(fleet.key_path),
            "indicator_prefix": fleet.indicator_map.loopback_prefix,
            "states": states,
            "models": models,
        }
        if args.json:
            print(json.dumps(summary), flush=True)
        else:
            last = fleet.monitors[-1].address
            print(f"emulating {summary['monitors']} monitors on {first.address} .. {last} port {fleet.port}")
            print(f"  states:      {_fmt(states)}")
            print(f"  models:      {_fmt(models)}")
            print(f"  inventory:   {fleet.inventory_path}")
            print(f"  known_hosts: {fleet.known_hosts_path}")
            print(f"  key:         {fleet.key_path}")
            print(f"  indicators:  202.114.4.0/24 -> {fleet.indicator_map.loopback_prefix}.0/24")
            print(f"  try:         ssh -i {fleet.key_path} -o UserKnownHostsFile={fleet.known_hosts_path} "
                  f"-p {fleet.port} service@{first.address} cms-status", flush=True)
            print("Ctrl-C to stop.", file=sys.stderr, flush=True)
        stop.wait()
    finally:
        fleet.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("emulated fleet stopped", file=sys.stderr)
    return int(ExitCode.OK)


def _profiles(given: list[str] | None) -> dict[str, str] | None:
    """``--profile`` values: ``PROFILE`` (every monitor) or ``SELECTOR=PROFILE``."""
    if not given:
        return None
    out: dict[str, str] = {}
    for entry in given:
        selector, sep, ref = entry.rpartition("=")
        out[selector if sep else "*"] = ref
    return out


def _build_package(args: argparse.Namespace) -> int:
    from orchestrator.emulator.firmware import build_package

    models = [m.strip() for m in args.models.split(",")] if args.models else None
    path = build_package(args.output, variant=args.variant, version=args.version, models=models)
    print(path)
    return int(ExitCode.OK)


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items())
