"""``cmspatch vitals DEVICE -i INVENTORY --simulator ... --displayed ... --technician NAME``.

The technician sets a patient simulator to known values, connects it to the monitor and enters what the
monitor displays. The check is journalled (kind ``vitals-check``, a fact about the monitor that every
campaign holding it shows: ``domain.status.DEVICE_RECORDS``; ``run`` names this check); a
difference beyond the tolerance is a tampering finding that writes the incident draft ``cmspatch
incident`` writes (JSON and HTML, new files in ``--incident-dir``, default ``incidents/`` beside the
journal) and exits 1. Values are the simulator's
settings, never patient data. The technician is named on the command line, never taken from the OS account.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.trust_files import atomic_write
from orchestrator.domain.devices import Device
from orchestrator.domain.events import Event, EventKind
from orchestrator.domain.status import DEVICE_RECORDS
from orchestrator.domain.vitals import compare, parse_tolerances, parse_vitals
from orchestrator.errors import ExitCode, UsageError


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("vitals", help="check the displayed vitals against a patient simulator (tampering)",
                       description=(__doc__ or "").split("\n\n")[1])
    p.add_argument("device", help="inventory name of the monitor")
    p.add_argument("-i", "--inventory", required=True, type=Path)
    p.add_argument("--simulator", required=True, metavar="VALUES",
                   help="what the simulator is set to, e.g. hr=80,spo2=97,nibp=120/80,temp=37.0,resp=15")
    p.add_argument("--displayed", required=True, metavar="VALUES", help="what the monitor shows, same form")
    p.add_argument("--technician", required=True, help="who did the check (name, as it should appear)")
    p.add_argument("--simulator-id", default="", help="simulator make, model and serial")
    p.add_argument("--tolerance", metavar="VALUES", help="override tolerances, e.g. hr=3,spo2=3")
    p.add_argument("--journal", type=Path,
                   help="journal file (default ./cmspatch-journal.db or $CMSPATCH_JOURNAL)")
    p.add_argument("--incident-dir", type=Path, help="where an incident draft is written")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_vitals)


def _write_draft(args: argparse.Namespace, journal: Path, device: Device, now: datetime) -> Path:
    """The incident draft ``cmspatch incident`` writes, from the journal now holding this check (so it also
    carries whatever else the monitor's record shows), as new JSON and HTML files."""
    from orchestrator.adapters.journal_sqlite import SqliteJournal
    from orchestrator.exports.incident import draft_for, monitor_records, render_draft_html, render_draft_json

    with SqliteJournal(journal, read_only=True) as j:
        records = list(j.records())
    stamp = now.isoformat(timespec="seconds").replace("+00:00", "Z")
    monitors, head, count = monitor_records(records, generated_at=stamp)
    rec = monitors[device.name]
    known = {"name": device.name, "model": device.model, "serial": device.serial,
             "asset_tag": device.asset_tag or "", "site": device.site, "ward": device.ward, "bed": device.bed,
             "firmware": device.firmware or ""}  # the inventory's, where no run read the monitor
    rec.identity = {**known, **{k: v for k, v in rec.identity.items() if v}}
    draft = draft_for(rec, reporter=args.technician.strip(), facility=None, generated_at=stamp,
                      journal_head=head, journal_records=count)
    folder = args.incident_dir or journal.resolve().parent / "incidents"
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / f"incident-{device.name}-{now.strftime('%Y%m%dT%H%M%SZ')}-vitals"
    atomic_write(Path(f"{base}.html"), render_draft_html(draft), exclusive=True)
    atomic_write(Path(f"{base}.json"), render_draft_json(draft), exclusive=True)
    return Path(f"{base}.json")


def cmd_vitals(args: argparse.Namespace) -> int:
    from orchestrator.adapters.journal_sqlite import SqliteJournal
    from orchestrator.cli.campaign import journal_path

    if not args.technician.strip():
        raise UsageError("--technician must name the person who did the check", reason="no-technician")
    device = load_inventory(args.inventory).device(args.device)
    simulator = parse_vitals(args.simulator, "--simulator")
    displayed = parse_vitals(args.displayed, "--displayed")
    from orchestrator.adapters.profile_file import load_profile

    profile = load_profile(device.profile)  # the vendor's stated accuracy, where its profile gives one
    if args.tolerance:
        tolerances, source = parse_tolerances(args.tolerance), "command line (--tolerance)"
    elif profile.vitals_tolerances:
        tolerances, source = dict(profile.vitals_tolerances), f"device profile {profile.name}"
    else:
        tolerances, source = None, "cmspatch defaults (domain/vitals.py)"
    check = {**compare(simulator, displayed, tolerances).to_dict(), "tolerances_from": source}
    now = datetime.now(UTC)
    run = f"vitals-{now.strftime('%Y%m%dT%H%M%S%fZ')}"
    journal = journal_path(args)
    payload = {**check, "technician": args.technician.strip(), "simulator": args.simulator_id,
               "model": device.model, "serial": device.serial, "run": run}
    with SqliteJournal(journal) as j:  # a fact about the monitor, shown by every campaign that holds it
        record = j.append(Event(DEVICE_RECORDS, EventKind.VITALS_CHECK, payload, device=device.name))
    draft_path: Path | None = None
    if check["outcome"] == "tampering-suspected":
        draft_path = _write_draft(args, journal, device, now)
    if args.json:
        print(json.dumps({**payload, "run": run, "seq": record.seq,
                          "incident_draft": str(draft_path) if draft_path else None}, indent=2))
    else:
        for r in check["readings"]:
            mark = {True: "ok  ", False: "DIFF", None: "n/a "}[r["within"]]
            shown = "not entered" if r["displayed"] is None else f"{r['displayed']:g}"
            print(f"  {mark} {r['label']:<18} set {r['set_to']:g} {r['unit']}, displayed {shown} "
                  f"(+-{r['tolerance']:g})")
        print(f"{device.name}: {check['outcome']}; recorded as {run} in {journal}")
        if draft_path:
            print(f"incident draft written: {draft_path} (complete it and file it with the regulator)",
                  file=sys.stderr)
    return int(ExitCode.OK if check["outcome"] == "within-tolerance" else ExitCode.INCOMPLETE)
