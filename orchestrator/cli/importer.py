"""``cmspatch import ARTIFACT_DIR``: journal a campaign that AWX / ansible-runner ran with patch.yml.

Thin: argument parsing and output only; the reading and mapping live in ``adapters.awx_import`` and
``adapters.awx_mapping``. Exit 0 when the imported job finished with every host patched (or deferred
hosts absent), 1 when the job shows failed, deferred or unfinished hosts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from orchestrator.adapters.awx_import import import_job
from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.journal_sqlite import DEFAULT_JOURNAL, SqliteJournal
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.status import project
from orchestrator.errors import ExitCode, UsageError


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "import",
        help="journal a campaign run by AWX / ansible-runner (playbooks/patch.yml)",
        description="Read the artifact directory of an AWX or ansible-runner job of playbooks/patch.yml "
                    "(job_events/*.json, status, rc) and write the equivalent campaign events into the "
                    "journal. Importing the same job twice adds nothing.",
    )
    parser.add_argument("artifact_dir", metavar="ARTIFACT_DIR", help="job artifact directory")
    parser.add_argument("--journal", default=os.environ.get("CMSPATCH_JOURNAL", DEFAULT_JOURNAL),
                        metavar="FILE", help=f"SQLite journal (default {DEFAULT_JOURNAL})")
    parser.add_argument("--campaign", metavar="ID", help="campaign id (default awx-<job ident>)")
    parser.add_argument("-i", "--inventory", metavar="FILE",
                        help="inventory the job ran against: adds model, serial, site, ward, bed per monitor")
    parser.add_argument("--operator", default="awx", help="who ran the job (recorded in the campaign)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    path = Path(args.artifact_dir)
    if not path.is_dir():
        raise UsageError(f"{path}: no such directory", reason="import-not-a-job")
    inventory = load_inventory(args.inventory) if args.inventory else None
    with SqliteJournal(args.journal) as journal:
        result = import_job(path, journal, campaign=args.campaign, inventory=inventory,
                            inventory_path=os.path.abspath(args.inventory) if args.inventory else "",
                            operator=args.operator)
        fleet = project(journal.records(result.campaign), result.campaign)
    counts = fleet.counts()
    if args.json:
        print(json.dumps({**result.to_dict(), "counts": counts}, sort_keys=True))
    else:
        verb = "imported" if result.added else "already imported"
        print(f"{verb} job {result.job} ({result.status or 'unknown status'}) as campaign {result.campaign}: "
              f"{result.hosts} monitor(s), {result.added} new event(s) of {result.mapped}")
        print("  " + ", ".join(f"{state} {n}" for state, n in counts.items() if n))
    if result.added == 0:
        print(f"cmspatch: nothing new in {path}", file=sys.stderr)
    all_patched = bool(fleet.devices) and all(
        d.state in (DeviceState.PATCHED, DeviceState.SKIPPED) for d in fleet.devices.values())
    return int(ExitCode.OK if all_patched and fleet.finished else ExitCode.INCOMPLETE)
