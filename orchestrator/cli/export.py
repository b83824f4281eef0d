"""``cmspatch export``: compliance documents from the campaign journal, and ``export verify`` to check them.

    cmspatch export --format csv|json|html|csaf|cyclonedx --out FILE [--journal FILE] [--campaign ID]
                    [--sign KEY|pkcs11:URI [--passphrase-file F | --passphrase-env NAME | --pin-file F |
                     --pin-env NAME] [--pkcs11-module SO]] [--columns MAP.yml] [--publisher NAME]
                    [--publisher-namespace URI] [--tlp RED|AMBER|GREEN|WHITE]
    cmspatch export verify FILE --sig FILE.sig (--policy POLICY | --key PUB) [--json]

The documents themselves are pure functions of the journal records (``orchestrator.exports``); this
module does the I/O: read the journal read-only (its chain and anchors are verified before anything is
written: an export of a journal whose tail was cut would prove a shorter story), write the document
atomically (temporary file + rename, so a reader never sees half a report), and with ``--sign`` write
``FILE.sig`` next to it, also atomically (the key is unlocked the way ``package sign`` unlocks it: a key
file's passphrase or a token's PIN from a file, a variable or the prompt, never the command line; the
statement records the key's custody); the signed statement carries the chain head (seq and hash)
that ``cmspatch audit verify --against FILE.sig`` checks a journal against later. Exit codes: 0 written /
valid signature, 2 usage or not a journal, 3 signature invalid (the reason code is printed), 7 journal
does not verify (chain or anchors), 8 journal damaged.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.adapters.journal_sqlite import DEFAULT_JOURNAL
from orchestrator.cli.keys import add_secret_flags
from orchestrator.cli.people import operator_name
from orchestrator.errors import ExitCode, ExportError, UsageError

if TYPE_CHECKING:
    from orchestrator.adapters.journal_anchors import Anchor
    from orchestrator.adapters.journal_sqlite import ChainReport
    from orchestrator.domain.trust.signatures import Signer
    from orchestrator.exports.columns import ColumnMap
    from orchestrator.exports.model import ExportModel

FORMATS = ("csv", "json", "html", "csaf", "cyclonedx")
MAX_EXPORT_BYTES = 1 << 30


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "export",
        help="compliance exports from the journal (CSV, JSON, HTML, CSAF VEX, CycloneDX VEX)",
        description="Write a compliance document for one campaign from the hash-chained journal. "
        "`cmspatch export verify FILE --sig FILE.sig --key PUB` checks a signed export.",
    )
    parser.add_argument("--format", choices=FORMATS, help="document format")
    parser.add_argument("--out", type=Path, metavar="FILE", help="file to write (atomically)")
    parser.add_argument(
        "--journal",
        default=os.environ.get("CMSPATCH_JOURNAL", DEFAULT_JOURNAL),
        metavar="FILE",
        help=f"SQLite journal (default {DEFAULT_JOURNAL}, or $CMSPATCH_JOURNAL)",
    )
    parser.add_argument("--campaign", metavar="ID", help="campaign id (default: the newest campaign)")
    parser.add_argument("--sign", metavar="KEY",
                        help="private key file or pkcs11: URI: also write FILE.sig (DSSE)")
    parser.add_argument("--by", dest="signed_by", metavar="NAME",
                        help="with --sign: who signs (a name, in the signed statement; default "
                             "$CMSPATCH_OPERATOR)")
    parser.add_argument(
        "--columns",
        type=Path,
        metavar="MAP.yml",
        help="CSV column mapping (see orchestrator/exports/columns.example.yml)",
    )
    parser.add_argument(
        "--publisher",
        metavar="NAME",
        help="hospital named as author/publisher (default: the campaign's operator)",
    )
    parser.add_argument("--publisher-namespace", metavar="URI", help="CSAF publisher namespace URI")
    parser.add_argument(
        "--tlp",
        default="AMBER",
        choices=("RED", "AMBER", "GREEN", "WHITE"),
        help="CSAF distribution TLP label (default AMBER)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable summary on stdout")
    add_secret_flags(parser)
    parser.set_defaults(func=run_export)
    actions = parser.add_subparsers(dest="export_action", metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        help="check a signed export",
        description="Exit 0 when the signature is valid, 3 otherwise (reason printed).",
    )
    verify.add_argument("file", type=Path, metavar="FILE", help="the exported file")
    verify.add_argument("--sig", type=Path, metavar="FILE.sig", help="signature file (default FILE.sig)")
    verify.add_argument("--policy", type=Path, metavar="POLICY", help="trust policy whose keys may sign")
    verify.add_argument(
        "--key",
        type=Path,
        action="append",
        default=[],
        metavar="PUB",
        help="public key (PEM) that may sign; repeatable",
    )
    verify.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    verify.set_defaults(func=run_verify)


# The renderers (cyclonedx-python-lib, jsonschema) and the adapters are imported when a command runs, not
# when the parser is built: every `cmspatch` invocation builds this parser, and they cost ~0.8 s to import.


def render(
    model: ExportModel,
    fmt: str,
    *,
    columns: ColumnMap | None = None,
    namespace: str | None = None,
    tlp: str = "AMBER",
) -> bytes:
    if fmt == "csv":
        from orchestrator.exports.csv import render_csv

        return render_csv(model, columns)
    if fmt == "json":
        from orchestrator.exports.json import render_json

        return render_json(model)
    if fmt == "html":
        from orchestrator.exports.html import render_html

        return render_html(model)
    if fmt == "csaf":
        from orchestrator.exports.csaf import render_csaf

        return render_csaf(model, namespace=namespace, tlp=tlp)
    from orchestrator.exports.cyclonedx import render_cyclonedx

    return render_cyclonedx(model)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _columns(path: Path) -> ColumnMap:
    from orchestrator.adapters.trust_files import read_bounded
    from orchestrator.exports.columns import parse_columns

    try:
        return parse_columns(read_bounded(path, 1 << 20, "columns"), str(path))
    except ExportError as exc:  # a bad mapping file is bad input, exit 2 like any other
        raise UsageError(exc.message, reason=exc.reason) from exc


def run_export(args: argparse.Namespace) -> int:
    from orchestrator.cli.keys import open_signer

    if not args.format or not args.out:
        raise UsageError("export needs --format and --out (or: cmspatch export verify FILE --sig FILE.sig)")
    if args.columns and args.format != "csv":
        raise UsageError("--columns applies to --format csv only")
    columns = _columns(args.columns) if args.columns else None
    with contextlib.ExitStack() as stack:  # a token's session stays open until the signature is made
        key = stack.enter_context(open_signer(args.sign, args)) if args.sign else None  # before any work
        return _export(args, columns, key)


def _export(args: argparse.Namespace, columns: ColumnMap | None, key: Signer | None) -> int:
    summary = write_export(args.journal, args.format, args.out, campaign=args.campaign, columns=columns,
                           publisher=args.publisher, namespace=args.publisher_namespace, tlp=args.tlp,
                           key=key, signed_by=args.signed_by)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(export_words(summary))
        if key is not None:
            print(f"signed: {summary['signature']} (key {key.keyid})")
    sig_path = Path(f"{args.out}.sig")
    if key is None and sig_path.exists():
        print(
            f"cmspatch: warning: {sig_path} is from an earlier export and no longer matches {args.out}; "
            "re-run with --sign or remove it",
            file=sys.stderr,
        )
    return int(ExitCode.OK)


def write_export(
    journal_file: str | Path,
    fmt: str,
    out: Path,
    *,
    campaign: str | None = None,
    columns: ColumnMap | None = None,
    publisher: str | None = None,
    namespace: str | None = None,
    tlp: str = "AMBER",
    key: Signer | None = None,
    signed_by: str | None = None,
) -> dict[str, Any]:
    """Write one export of ``journal_file`` to ``out`` (atomically) and return what was written: the one
    export function, for ``cmspatch export`` and the TUI's export action alike. A user's mistake (no
    such campaign, format or directory, an unwritable path) is a ``UsageError``, never a traceback."""
    from orchestrator.adapters.journal_sqlite import SqliteJournal
    from orchestrator.adapters.trust_files import atomic_write
    from orchestrator.exports.model import build_model
    from orchestrator.exports.signing import sign_export

    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})", reason="bad-format")
    with SqliteJournal(journal_file, read_only=True) as journal:
        say_report(journal.verify_or_raise(anchors_required=False))
        records = list(journal.records())
    try:
        model = build_model(records, campaign, publisher=publisher, generated_at=_now())
    except ExportError as exc:  # no such campaign: the command line asked for something absent
        raise UsageError(exc.message, reason=exc.reason) from exc
    try:
        data = render(model, fmt, columns=columns, namespace=namespace, tlp=tlp)
    except ExportError as exc:
        if exc.reason in ("namespace-invalid", "tlp-invalid"):  # the command line's fault: exit 2
            raise UsageError(exc.message, reason=exc.reason) from exc
        raise
    sig_path = Path(f"{out}.sig")
    try:
        atomic_write(out, data)
        if key is not None:
            atomic_write(
                sig_path,
                sign_export(
                    data,
                    key,
                    fmt=fmt,
                    campaign=model.campaign.id,
                    chain_head=model.chain_head,
                    chain_seq=model.chain_records,  # seqs run 1..N without a gap: build_model verified it
                    name=out.name,
                    signed_at=_now(),
                    signed_by=operator_name(signed_by),
                ),
            )
    except OSError as exc:  # a read-only directory, a full disk: the path given, not a bug
        raise UsageError(f"{out}: cannot write: {exc.strerror or exc}", reason="export-unwritable") from exc
    return {
        "out": str(out),
        "format": fmt,
        "bytes": len(data),
        "campaign": model.campaign.id,
        "chain_head": model.chain_head,
        "monitors": len(model.devices),
        "outcomes": {o.value: n for o, n in model.totals().items()},
        "mode": model.campaign.mode,
        "survey": model.survey_totals() if model.campaign.mode != "patch" else None,
        "signature": str(sig_path) if key is not None else None,
    }


def export_words(summary: dict[str, Any]) -> str:
    """What ``write_export`` wrote, in one line."""
    counts = ", ".join(f"{n} {o}" for o, n in summary["outcomes"].items() if n)
    if summary["mode"] != "patch":  # a read-only run installed nothing: say what it saw instead
        seen = (summary["survey"] or {}).items()
        counts = f"{summary['mode']}: " + ", ".join(f"{n} {s}" for s, n in seen if n)
    return (f"wrote {summary['out']} ({summary['format']}, {summary['bytes']} bytes): campaign "
            f"{summary['campaign']}, {summary['monitors']} monitors ({counts}), "
            f"chain head {summary['chain_head']}")


def say_report(report: ChainReport) -> None:
    """What a command that trusted the journal must still tell the engineer about it (stderr)."""
    for line in (report.warning, report.note):
        if line:
            print(f"cmspatch: warning: {line}", file=sys.stderr)


def claimed_head(path: Path) -> Anchor:
    """The chain head an export claims, as an anchor for ``audit verify --against``: from a signature
    file (FILE.sig, or FILE with FILE.sig beside it: the signed statement) or from a JSON export. The
    signature is not checked here (``cmspatch export verify`` does that)."""
    from orchestrator.adapters.journal_anchors import Anchor
    from orchestrator.adapters.trust_files import read_bounded
    from orchestrator.exports.json import FORMAT
    from orchestrator.exports.signing import MAX_SIGNATURE_BYTES, signed_statement

    data = read_bounded(path, MAX_EXPORT_BYTES, "export")
    sig_path = Path(f"{path}.sig")
    stmt = signed_statement(data) if len(data) <= MAX_SIGNATURE_BYTES else None
    if stmt is None and sig_path.exists():
        stmt, path = signed_statement(read_bounded(sig_path, MAX_SIGNATURE_BYTES, "signature")), sig_path
    head: object = None
    seq: object = None
    campaign: object = ""
    if stmt is not None:
        head, seq, campaign = stmt.get("chain_head"), stmt.get("chain_seq"), stmt.get("campaign", "")
    else:
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeError, ValueError):
            doc = None
        if isinstance(doc, dict) and doc.get("format") == FORMAT and isinstance(doc.get("chain"), dict):
            head, seq = doc["chain"].get("head"), doc["chain"].get("records")
            about = doc.get("campaign")
            campaign = about.get("id", "") if isinstance(about, dict) else ""
    if not isinstance(head, str) or len(head) != 64 or not all(c in "0123456789abcdef" for c in head):
        raise UsageError(f"{path}: no chain head found: give a signed export's .sig (or the export with its "
                         ".sig beside it), or a JSON export", reason="no-chain-head")
    if seq is not None and (type(seq) is not int or seq < 1):
        raise UsageError(f"{path}: the chain head's record number {seq!r} is not a positive integer",
                         reason="no-chain-head")
    return Anchor(seq, head, f"export {path}", kind="export", campaign=str(campaign))


def run_verify(args: argparse.Namespace) -> int:
    from orchestrator.adapters.trust_files import read_bounded
    from orchestrator.domain.trust.policy import parse_policy
    from orchestrator.domain.trust.signatures import load_public_key
    from orchestrator.exports.signing import verify_export

    if not args.policy and not args.key:
        raise UsageError("export verify needs --policy POLICY or --key PUB")
    sig_path = args.sig or Path(f"{args.file}.sig")
    data = read_bounded(args.file, MAX_EXPORT_BYTES, "export")
    sig = read_bounded(sig_path, 1 << 20, "signature")
    keys = [load_public_key(read_bounded(p, 64 * 1024, "public key"), source=str(p)) for p in args.key]
    policy = (
        parse_policy(read_bounded(args.policy, 1 << 20, "policy"), str(args.policy)) if args.policy else None
    )
    result = verify_export(data, sig, keys=keys, policy=policy)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    elif result.valid:
        print(f"{args.file}: valid: {result.message}")
    else:
        print(f"cmspatch: {args.file}: INVALID [{result.reason}]: {result.message}", file=sys.stderr)
    return int(ExitCode.OK if result.valid else ExitCode.REFUSED)
