"""``cmspatch profile check -i INVENTORY [--limit PATTERN] [--json]``: does each monitor answer its
device profile's read-only commands the way the profile says?

What a biomedical engineer runs the day a vendor's procedure arrives, before a first campaign: for each
selected monitor, over SSH (``SshTransport``: pinned host keys, the network guard), the profile's status,
firmware, free-space and boot-identity reads, each reported with what came back and whether it parses
per the profile (``domain.profile_check``). A missing status command is reported as missing. Nothing that
disturbs a monitor is run: no upload, install, remove, reboot, trigger or marker write; the status is read
through the clinical parser for the report only. Exit 0 when every answer parses, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.domain.devices import DeliveryPath, Device
from orchestrator.errors import CmspatchError, ExitCode, UsageError

if TYPE_CHECKING:
    from orchestrator.domain.profile import DeviceProfile
    from orchestrator.ports import DeviceTransport

COMMAND_TIMEOUT = 20.0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("profile", help="device profiles: check monitors answer theirs")
    profile_sub = p.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    c = profile_sub.add_parser("check", help="run each monitor's read-only profile commands and report",
                               description=(__doc__ or "").split("\n\n")[1])
    c.add_argument("-i", "--inventory", required=True, type=Path)
    c.add_argument("--limit", help="Ansible-style host pattern")
    c.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    c.set_defaults(func=cmd_check)


def check_device(device: Device, transport: DeviceTransport, profile: DeviceProfile) -> dict[str, Any]:
    """One monitor's report: its profile, and each read-only command's answer (or why none was asked)."""
    from orchestrator.domain.profile_check import judge

    row: dict[str, Any] = {"device": device.name, "profile": profile.name, "profile_file": profile.source,
                           "answers": [], "error": None}
    if device.delivery is DeliveryPath.MANUAL or not device.address:
        row["error"] = "no service access (hands-on unit): nothing to check over SSH"
        return row
    try:
        session = transport.open(device)
    except CmspatchError as exc:
        row["error"] = f"monitor unreachable ({exc.reason}: {exc.message})"
        return row
    try:
        for step, command in profile.read_only_commands().items():
            try:
                result = session.run(command, timeout=COMMAND_TIMEOUT)
            except CmspatchError as exc:
                row["error"] = f"the session failed at {step} ({exc.reason}: {exc.message})"
                break
            answer = judge(profile, step, command, result.exit_status, result.text,
                           result.stderr.decode("utf-8", "replace"))
            row["answers"].append(answer.to_dict())
    finally:
        session.close()
    return row


def cmd_check(args: argparse.Namespace) -> int:
    from orchestrator.adapters.inventory_file import load_inventory
    from orchestrator.adapters.profile_file import ProfileBook
    from orchestrator.adapters.ssh import SshTransport

    inventory = load_inventory(args.inventory)
    devices = inventory.select(args.limit)
    if not devices:
        raise UsageError(f"--limit {args.limit!r} selects no monitor", reason="empty-selection")
    book = ProfileBook(devices)  # every profile read and validated before any monitor is asked
    transport = SshTransport(known_hosts=inventory.known_hosts)
    rows = [check_device(d, transport, book.of(d)) for d in devices]
    good = all(r["error"] is None and all(a["parses"] for a in r["answers"]) for r in rows)
    if args.json:
        print(json.dumps({"inventory": str(args.inventory), "all_parse": good, "devices": rows}, indent=2))
    else:
        for r in rows:
            print(f"{r['device']}  profile {r['profile']}")
            if r["error"]:
                print(f"  ! {r['error']}")
            for a in r["answers"]:
                mark = "ok " if a["parses"] else "BAD"
                print(f"  {mark} {a['step']:<16} $ {a['command'][:60]}")
                print(f"      exit {a['exit_status']}: {a['meaning']}")
    return int(ExitCode.OK if good else ExitCode.INCOMPLETE)
