"""``cmspatch inventory import --csv ASSETS.csv --out NEW.yml [--map MAP.yml] [--merge INVENTORY]``.

Reads an asset-register export (``domain.asset_register``), writes an Ansible YAML inventory
(``domain.inventory_writer``) to a file that must not exist yet (temp file + rename), then loads what it
wrote with the same loader ``inventory check`` uses, so an import never leaves an inventory that check
refuses. With ``--merge`` the new file holds the existing inventory plus the units it lacked (by serial);
the existing file is never touched.

Every problem of the register is listed at once (file:line, code). Rows with a problem are left out and
the command exits 1; with none it exits 0. Hostile input (not UTF-8, too large, not CSV) is exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.strict_files import load_yaml_file, read_capped
from orchestrator.adapters.trust_files import atomic_write
from orchestrator.domain.asset_register import FIELDS, ColumnMap, RegisterImport, read_register
from orchestrator.domain.inventory import parse_inventory
from orchestrator.domain.inventory_writer import write_inventory
from orchestrator.domain.strict_load import COLUMNS, INVENTORY, MIB, Limits, StrictLoadError, decode_text
from orchestrator.errors import ExitCode, UsageError

REGISTER = Limits("register export", 64 * MIB, hint="export one site at a time")


def register_import(commands: argparse._SubParsersAction[Any]) -> None:
    p = commands.add_parser(
        "import", help="turn an asset-register CSV export into an inventory (never overwrites one)",
        description="Turn an asset-register CSV export into a cmspatch inventory grouped by site and ward. "
                    "Rows of other devices are ignored and counted; units without an address are marked "
                    "for the hands-on path; every problem is listed with file and line.")
    p.add_argument("--csv", required=True, type=Path, metavar="ASSETS.csv", help="the register export")
    p.add_argument("--map", type=Path, metavar="MAP.yml",
                   help="which heading holds what (see asset-map.example.yml); default: common headings")
    p.add_argument("--out", required=True, type=Path, metavar="NEW.yml",
                   help="inventory to write (must not exist)")
    p.add_argument("--merge", type=Path, metavar="INVENTORY",
                   help="start from this inventory and add the units it lacks (it is not modified)")
    p.add_argument("--encoding", default="utf-8",
                   help="the export's text encoding (default utf-8; e.g. cp1252 for older Excel exports)")
    p.add_argument("--json", action="store_true", help="machine-readable summary on stdout")
    p.set_defaults(func=run_import)


def _register_text(path: Path, encoding: str) -> str:
    """The export's text: size-capped read and UTF-8 rules of the one strict loader; another encoding only
    when the person names it (never guessed)."""
    data = read_capped(path, REGISTER)
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        try:
            return decode_text(data, str(path), REGISTER)
        except StrictLoadError as exc:
            raise StrictLoadError(exc.file, exc.line, exc.column, exc.detail + " (or name the export's "
                                  "encoding with --encoding, e.g. cp1252)", exc.reason) from None
    try:
        return data.decode(encoding)
    except LookupError as exc:
        raise UsageError(f"unknown encoding {encoding!r}", reason="bad-encoding") from exc
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UsageError(f"{path}:{line}: byte {exc.start} is not {encoding} ({exc.reason})",
                         reason="not-utf8") from exc


def load_column_map(path: Path) -> ColumnMap:
    doc = load_yaml_file(path, COLUMNS)
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: expected a mapping with 'columns' (and optionally 'defaults', "
                         "'delimiter')", reason="bad-column-map")
    unknown = sorted(set(doc) - {"columns", "defaults", "delimiter"})
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {', '.join(unknown)}", reason="bad-column-map")
    columns, defaults = doc.get("columns") or {}, doc.get("defaults") or {}
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise UsageError(f"{path}: 'columns' maps a field ({', '.join(FIELDS)}) to a heading",
                         reason="bad-column-map")
    if not isinstance(defaults, dict) or not all(isinstance(v, str | int) and not isinstance(v, bool)
                                                 for v in defaults.values()):
        raise UsageError(f"{path}: 'defaults' maps inventory variables to plain values",
                         reason="bad-column-map")
    if any("pass" in str(k).lower() for k in defaults):
        raise UsageError(f"{path}: 'defaults' may not set a password (value not shown)",
                         reason="password-in-clear")
    delimiter = doc.get("delimiter")
    if delimiter is not None and not isinstance(delimiter, str):
        raise UsageError(f"{path}: 'delimiter' must be a character", reason="bad-column-map")
    try:
        return ColumnMap(columns={str(k): v for k, v in columns.items()},
                         defaults={str(k): v for k, v in defaults.items()}, delimiter=delimiter)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc.message}", reason=exc.reason) from exc


def _write_new(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` only if it does not exist (temp file, fsync, link: never an overwrite)."""
    if path.exists():
        raise UsageError(f"{path} exists: cmspatch never overwrites an inventory; choose another --out "
                         "(use --merge to start from an existing one)", reason="would-overwrite")
    try:
        atomic_write(path, text.encode("utf-8"), exclusive=True)
    except UsageError as exc:
        raise UsageError(f"{exc.message}: cmspatch never overwrites an inventory",
                         reason="would-overwrite") from exc
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror or exc})", reason="unwritable-file") from exc


def _header(result: RegisterImport, merged: Path | None) -> str:
    lines = [f"# cmspatch inventory imported from the asset register {result.path}",
             f"# {len(result.units)} unit(s): {len(result.units) - result.hands_on} networked, "
             f"{result.hands_on} hands-on (delivery: manual, no address in the register).",
             "# Review before use: compare each monitor's rating plate, then run `cmspatch enroll` to pin",
             "# the networked monitors' SSH host keys into known_hosts after comparing fingerprints."]
    if merged is not None:
        lines.append(f"# Started from {merged} (its comments are not carried over).")
    return "\n".join(lines) + "\n"


def run_import(args: argparse.Namespace) -> int:
    cmap = load_column_map(args.map) if args.map else ColumnMap()
    text = _register_text(args.csv, args.encoding)
    result = read_register(text, str(args.csv), cmap)
    base: dict[str, Any] | None = None
    serials: tuple[str, ...] = ()
    if args.merge is not None:
        existing = load_inventory(args.merge)  # refuses a bad inventory with all its problems
        base = load_yaml_file(args.merge, INVENTORY)
        serials = tuple(d.serial for d in existing.devices)
    written = write_inventory(result.units, base=base, known_serials=serials, defaults=cmap.defaults,
                              header=_header(result, args.merge))
    # Prove the result is an inventory `inventory check` accepts before it exists on disk.
    out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    parse_inventory(written.text, str(out), base_dir=str(out.parent))
    _write_new(args.out, written.text)
    summary = {**result.to_dict(), "out": str(args.out), "added": [a.to_dict() for a in written.added],
               "already_in_inventory": list(written.already)}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_human(result, written.added, written.already, args.out)
    return int(ExitCode.INCOMPLETE if result.problems else ExitCode.OK)


def _print_human(result: RegisterImport, added: Any, already: Any, out: Path) -> None:
    for p in result.problems:
        print(f"cmspatch: {p} [{p.code}]", file=sys.stderr)
    print(f"{result.path}: {result.rows} row(s); {len(result.units)} monitor(s) found, "
          f"{sum(result.ignored.values())} other device(s) ignored, {len(result.problems)} problem(s)")
    for maker, n in result.ignored.items():
        print(f"  ignored {n:5d}  {maker}")
    for a in added:
        print(f"  + {a.name}\t{a.serial}\t{a.site} / {a.ward}\t{a.delivery}\t(register line {a.line})")
    if already:
        print(f"  {len(already)} unit(s) already in the inventory, not added again")
    print(f"wrote {out}: {len(added)} monitor(s) added"
          + (f"; {len(result.problems)} row problem(s) above were left out" if result.problems else ""))
