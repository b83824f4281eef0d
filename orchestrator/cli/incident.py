"""``cmspatch incident DEVICE|--all --journal FILE``: pre-filled incident report drafts from the journal.

    cmspatch incident DEVICE [--journal FILE] [--out DIR] [--reporter NAME] [--facility NAME] [--json]
    cmspatch incident --all  [--journal FILE] [--out DIR] ...

When the evidence of any run shows tampering or compromise (patient data seen leaving, a mount of the
hidden share, binaries that match no known build, a unit some run showed fixed caught reaching out later,
displayed vitals that differ from a patient simulator), a draft is written as ``incident-DEVICE-TIME.json``
and ``.html`` (new files, written atomically) in ``--out`` (default ``incidents/`` beside the journal):
the fields the national forms ask for, the evidence hashes, the actions taken and the named reporter
(``--reporter``, else ``$CMSPATCH_OPERATOR``, else the login name marked as such). Never patient data.

The journal is opened read-only and its chain verified first, as ``export`` does. ``--all`` writes a draft
for every monitor with grounds. Exit codes: 0 drafts written (``--all``: also when none has grounds),
1 the monitor named has no grounds (nothing written), 2 usage or no such monitor, 7/8 journal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.adapters.journal_sqlite import DEFAULT_JOURNAL
from orchestrator.cli.people import operator_name
from orchestrator.errors import ExitCode, UsageError


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("incident", help="incident report drafts where the evidence shows tampering",
                       description=(__doc__ or "").split("\n\n")[2])
    p.add_argument("device", nargs="?", help="inventory name of the monitor")
    p.add_argument("--all", action="store_true", help="a draft for every monitor whose evidence has grounds")
    p.add_argument("--journal", default=os.environ.get("CMSPATCH_JOURNAL", DEFAULT_JOURNAL), metavar="FILE",
                   help=f"SQLite journal (default {DEFAULT_JOURNAL}, or $CMSPATCH_JOURNAL)")
    p.add_argument("--out", type=Path, metavar="DIR", help="where drafts are written (default incidents/ "
                   "beside the journal)")
    p.add_argument("--reporter", metavar="NAME", help="who reports (default $CMSPATCH_OPERATOR)")
    p.add_argument("--facility", metavar="NAME", help="the facility as the form should name it (default: "
                   "the monitor's site)")
    p.add_argument("--json", action="store_true", help="machine-readable summary on stdout")
    p.set_defaults(func=cmd_incident)


def cmd_incident(args: argparse.Namespace) -> int:
    from orchestrator.adapters.journal_sqlite import SqliteJournal
    from orchestrator.adapters.trust_files import atomic_write
    from orchestrator.cli.export import say_report
    from orchestrator.exports.incident import draft_for, monitor_records, render_draft_html, render_draft_json

    if bool(args.device) == bool(args.all):
        raise UsageError("incident needs a monitor's name or --all (not both)")
    with SqliteJournal(args.journal, read_only=True) as journal:
        say_report(journal.verify_or_raise(anchors_required=False))
        records = list(journal.records())
    now = datetime.now(UTC)
    stamp = now.isoformat(timespec="seconds").replace("+00:00", "Z")
    monitors, head, count = monitor_records(records, generated_at=stamp)
    if args.device and args.device not in monitors:
        raise UsageError(f"{args.device}: no run or record in {args.journal} names this monitor",
                         reason="unknown-device")
    chosen = [monitors[args.device]] if args.device else [monitors[n] for n in sorted(monitors)]
    with_grounds = [m for m in chosen if m.grounds()]
    reporter = operator_name(args.reporter) if with_grounds else ""
    folder = args.out or Path(args.journal).resolve().parent / "incidents"
    written: list[dict[str, Any]] = []
    for rec in with_grounds:
        draft = draft_for(rec, reporter=reporter, facility=args.facility, generated_at=stamp,
                          journal_head=head, journal_records=count)
        folder.mkdir(parents=True, exist_ok=True)
        base = folder / f"incident-{rec.name}-{now.strftime('%Y%m%dT%H%M%SZ')}"
        paths = (Path(f"{base}.json"), Path(f"{base}.html"))
        atomic_write(paths[0], render_draft_json(draft), exclusive=True)
        atomic_write(paths[1], render_draft_html(draft), exclusive=True)
        written.append({"device": rec.name, "grounds": [g.kind for g in rec.grounds()],
                        "json": str(paths[0]), "html": str(paths[1])})
    if args.json:
        print(json.dumps({"drafts": written, "chain_head": head,
                          "without_grounds": [m.name for m in chosen if not m.grounds()]}, indent=2))
    else:
        for w in written:
            print(f"{w['device']}: draft written: {w['html']} and {w['json']} ({', '.join(w['grounds'])})")
        if not written:
            what = args.device or "no monitor in the journal"
            print(f"{what}: no evidence of tampering or compromise; no draft written", file=sys.stderr)
        elif not args.json:
            print("complete each draft, review it and file it with the regulator", file=sys.stderr)
    if args.device and not written:
        return int(ExitCode.INCOMPLETE)
    return int(ExitCode.OK)
