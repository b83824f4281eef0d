"""``cmspatch rollup DIR|FILES --policy region-policy.yaml``: one regional status from facilities' exports.

    cmspatch rollup DIR|FILE... --policy REGION.yaml [--since DATE] [--out DIR] [--json]

Each file is a facility's signed JSON export (``cmspatch export --format json --sign KEY``) with its
``FILE.sig`` beside it. Every signature is verified against the keys the region policy lists per facility
(``domain.rollup``), and the chain head and campaign the signature vouches for must be the ones the export
states; an export that fails is listed with its reason and never counted. Writes ``region-status.html``,
``region-status.csv`` and ``region-status.csaf.json`` (one CSAF VEX over every facility) into ``--out``
(default: the current directory), each atomically.

Exit codes: 0 every export verified, every facility reported since the date and no serial reported twice;
1 something to act on (a failed export, a facility not reporting, a serial in two facilities); 2 usage or
a bad region policy.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.domain.rollup import ExportCheck, RegionPolicy
from orchestrator.domain.strict_load import MIB, Limits, StrictLoadError
from orchestrator.errors import ExitCode, UsageError

EXPORT = Limits("JSON export", 512 * MIB, max_depth=64, max_nodes=20_000_000, max_aliases=0)
SIGNATURE = Limits("export signature", 1 * MIB, max_depth=16, max_nodes=1_000, max_aliases=0)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("rollup", help="regional status from many facilities' signed exports",
                       description=(__doc__ or "").split("\n\n")[2])
    p.add_argument("inputs", nargs="+", type=Path, metavar="DIR|FILE", help="exports, or folders of them")
    p.add_argument("--policy", required=True, type=Path, metavar="REGION.yaml",
                   help="region policy: the facilities and the keys that sign for each")
    p.add_argument("--since", metavar="DATE", help="facilities with no export since DATE are listed "
                   "(default: the policy's reported_since)")
    p.add_argument("--out", type=Path, default=Path("."), metavar="DIR", help="where the documents go")
    p.add_argument("--json", action="store_true", help="machine-readable summary on stdout")
    p.set_defaults(func=cmd_rollup)


def _files(inputs: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in inputs:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and not p.name.endswith(".sig")
                            and not p.name.startswith("."))
        elif path.exists():
            found.append(path)
        else:
            raise UsageError(f"{path}: no such file or directory", reason="missing")
    return found


def check_export(path: Path, policy: RegionPolicy) -> ExportCheck:
    """Verify one facility export: signature by a facility's key, a JSON export meeting its schema, and the
    chain head and campaign the signature vouches for equal to the ones inside."""
    from orchestrator.adapters.strict_files import read_capped
    from orchestrator.domain.strict_load import load_json
    from orchestrator.exports.json import FORMAT, validate_json_export
    from orchestrator.exports.signing import verify_export

    name = str(path)
    sig_path = Path(f"{path}.sig")
    if not sig_path.exists():
        return ExportCheck(name, False, "unsigned", f"no {sig_path.name} beside it: an unsigned export "
                           "proves nothing about who made it")
    try:
        data, sig = read_capped(path, EXPORT), read_capped(sig_path, SIGNATURE)
    except StrictLoadError as exc:
        return ExportCheck(name, False, "unreadable", exc.message)
    result = verify_export(data, sig, keys=policy.keys)
    if not result.valid or result.statement is None:
        return ExportCheck(name, False, result.reason, result.message)
    owner = policy.facility_of(result.signers[0])
    assert owner is not None  # verify_export counted only keys the policy lists
    facility, key = owner
    stmt = result.statement
    try:
        doc = load_json(data, name, EXPORT)
    except StrictLoadError as exc:
        return ExportCheck(name, False, "not-a-json-export", f"{exc.message}: the roll-up reads the JSON "
                           "export (cmspatch export --format json)", facility.name)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return ExportCheck(name, False, "not-a-json-export", "signed, but not a cmspatch JSON export: the "
                           "roll-up reads --format json", facility.name)
    problems = validate_json_export(doc)
    if problems:
        return ExportCheck(name, False, "export-schema", "; ".join(problems[:3]), facility.name)
    chain, campaign = doc["chain"], doc["campaign"]
    if stmt.get("chain_head") != chain["head"] or stmt.get("campaign") != campaign["id"] or (
            "chain_seq" in stmt and stmt["chain_seq"] != chain["records"]):
        return ExportCheck(name, False, "chain-head-mismatch", (
            f"the signature vouches for campaign {stmt.get('campaign')} at chain head "
            f"{stmt.get('chain_head')}, "
            f"the export states {campaign['id']} at {chain['head']}"), facility.name)
    signed_at = stmt.get("signed_at") if isinstance(stmt.get("signed_at"), str) else ""
    return ExportCheck(name, True, "valid", result.message, facility.name,
                       str(stmt.get("signed_by") or ""), key.owner, signed_at or str(doc["generated_at"]),
                       str(campaign["id"]), str(campaign["mode"]), str(chain["head"]), doc)


def cmd_rollup(args: argparse.Namespace) -> int:
    from orchestrator.adapters.strict_files import read_capped
    from orchestrator.adapters.trust_files import atomic_write
    from orchestrator.domain.rollup import REGION_POLICY, RegionPolicyError, parse_region_policy, roll_up
    from orchestrator.errors import ExportError
    from orchestrator.exports.rollup import render_rollup_csaf, render_rollup_csv, render_rollup_html

    policy = parse_region_policy(read_capped(args.policy, REGION_POLICY), str(args.policy))
    if args.since:
        try:
            datetime.fromisoformat(args.since)
        except ValueError:
            raise RegionPolicyError(f"--since {args.since!r} is not a date (e.g. 2026-11-24)") from None
    if not args.out.is_dir():
        raise UsageError(f"{args.out}: no such directory", reason="missing")
    checks = [check_export(path, policy) for path in _files(args.inputs)]
    rollup = roll_up(policy, checks, args.since or "")
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    written = {"html": args.out / "region-status.html", "csv": args.out / "region-status.csv",
               "csaf": args.out / "region-status.csaf.json"}
    atomic_write(written["html"], render_rollup_html(rollup))
    atomic_write(written["csv"], render_rollup_csv(rollup))
    try:
        atomic_write(written["csaf"], render_rollup_csaf(rollup, generated_at=now))
    except ExportError as exc:
        if exc.reason != "empty":
            raise
        print(f"cmspatch: warning: {exc.message}; no CSAF written", file=sys.stderr)
        del written["csaf"]
    failed = [c for c in checks if not c.valid]
    summary = {
        "region": rollup.region, "since": rollup.since, "monitors": len(rollup.monitors),
        "totals": rollup.totals(), "counts": rollup.counts(), "patched_by_level": rollup.patched_by_level(),
        "failed": [{"file": c.file, "reason": c.reason, "message": c.message} for c in failed],
        "not_reported": [{"facility": f, "last": last} for f, last in rollup.not_reported],
        "duplicate_serials": [{"serial": s, "facilities": list(fs)} for s, fs in rollup.duplicates],
        "written": {k: str(v) for k, v in written.items()},
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        totals = ", ".join(f"{n} {s}" for s, n in rollup.totals().items())
        verified = sum(c.valid for c in checks)
        print(f"{len(rollup.monitors)} monitors from {verified} verified export(s): {totals}")
        for c in failed:
            print(f"  FAILED   {c.file}: [{c.reason}] {c.message}")
        for f, last in rollup.not_reported:
            print(f"  SILENT   {f}: newest verified report {last}"
                  + (f" (wanted since {rollup.since})" if rollup.since else ""))
        for s, fs in rollup.duplicates:
            print(f"  TWICE    serial {s} reported by {', '.join(fs)}")
        print("wrote " + ", ".join(str(p) for p in written.values()))
    attention = failed or rollup.not_reported or rollup.duplicates
    return int(ExitCode.INCOMPLETE if attention else ExitCode.OK)
