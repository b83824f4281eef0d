"""``cmspatch package``: record a package as received, sign its manifest, verify it before a push.

    cmspatch package attest PKG --key biomed.key --version V --models CMS8000 ... --from-versions V ...
                            --release N --cves CVE-... --expires 2027-01-31 --out PKG.manifest.json
    cmspatch package sign PKG.manifest.json --key security.key [--package PKG | --without-package]
    (--key FILE or --key 'pkcs11:token=...;object=...'; --passphrase-file/--passphrase-env, --pin-file/
     --pin-env, --pkcs11-module; with --policy P the signature records the name and role P gives the key)
    cmspatch package verify PKG --manifest M --policy P [--model CMS8000] [--state FILE]
                            [--accept-uninspectable] [--no-record] [--json]

All three read the package under the same decompression limits (``--max-expanded-mib``,
``--expansion-factor``, ``--max-ratio``, ``--max-depth``, ``--max-members``; defaults in
``orchestrator.domain.trust.limits``); crossing one is a refusal with its own reason code.

``verify`` prints who signed, which signatures counted and why others did not, what the threshold still
lacks, the expiry, the hashes, the content scan and, when refused, the reason in plain words; it exits 3
on refusal with the stable reason code on stderr. Exit codes are those of ``cmspatch --help``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.adapters.package_attest import attest_package, sign_manifest
from orchestrator.adapters.package_verify import VerificationReport, verify_package
from orchestrator.adapters.trust_files import default_state_path, read_bounded
from orchestrator.cli.keys import add_secret_flags, open_signer
from orchestrator.domain.indicators import MODELS
from orchestrator.domain.trust.limits import MIB, ArchiveLimits, LimitsInvalid
from orchestrator.domain.trust.manifest import format_time
from orchestrator.domain.trust.policy import MAX_POLICY_BYTES, parse_policy
from orchestrator.domain.trust.reasons import explain
from orchestrator.errors import ExitCode, TrustError, UsageError

_RELATIVE = re.compile(r"\+(\d{1,5})d")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    package = sub.add_parser("package", help="attest, sign and verify upgrade packages")
    actions = package.add_subparsers(dest="package_command", metavar="ACTION", required=True)

    attest = actions.add_parser("attest", help="record a package's hash as received and sign its manifest")
    attest.add_argument("package", type=Path)
    attest.add_argument("--key", required=True, help="your private key file, or a pkcs11: URI")
    attest.add_argument("--version", required=True, help="the firmware version the package installs")
    attest.add_argument("--models", required=True, nargs="+", choices=MODELS, metavar="MODEL")
    attest.add_argument("--from-versions", required=True, nargs="+", metavar="VERSION",
                        help="installed versions it upgrades from (exact, or patterns like 'CMS7.820.*')")
    attest.add_argument("--release", required=True, type=int, help="release counter, higher than any before")
    attest.add_argument("--cves", nargs="*", default=[], metavar="CVE")
    attest.add_argument("--expires", required=True, help="YYYY-MM-DD, an ISO-8601 time, or +DAYSd")
    attest.add_argument("--note", default="")
    attest.add_argument("--out", required=True, type=Path, help="manifest file to create")
    attest.add_argument("--policy", type=Path, help="record the name and role this policy gives your key")
    add_secret_flags(attest)
    add_limit_flags(attest)
    attest.set_defaults(func=cmd_attest)

    sign = actions.add_parser("sign", help="add your signature to a manifest")
    sign.add_argument("manifest", type=Path)
    sign.add_argument("--key", required=True, help="your private key file, or a pkcs11: URI")
    sign.add_argument("--package", type=Path, help="re-hash this package first and refuse if it differs "
                                                   "(default: the package beside the manifest)")
    sign.add_argument("--without-package", "--no-package-check", dest="without_package", action="store_true",
                      help="sign without checking the package bytes (recorded in your signature and shown "
                           "by verify); --no-package-check is the older name")
    sign.add_argument("--policy", type=Path, help="record the name and role this policy gives your key")
    add_secret_flags(sign)
    add_limit_flags(sign)
    sign.set_defaults(func=cmd_sign)

    verify = actions.add_parser("verify", help="check a package against its manifest and the trust policy")
    verify.add_argument("package", type=Path)
    verify.add_argument("--manifest", required=True, type=Path)
    verify.add_argument("--policy", required=True, type=Path)
    verify.add_argument("--model", choices=MODELS)
    verify.add_argument("--state", type=Path,
                        help="anti-rollback state file (default $CMSPATCH_STATE_DIR/trust-state.json, else "
                             "$XDG_STATE_HOME/cmspatch/trust-state.json, else ~/.local/state/cmspatch/...)")
    verify.add_argument("--accept-uninspectable", action="store_true",
                        help="accept a package whose format cannot be inspected for the backdoor")
    verify.add_argument("--no-record", action="store_true", help="do not record the release as accepted")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    add_limit_flags(verify)
    verify.set_defaults(func=cmd_verify)


_LIMIT_FLAGS = (  # (flag, ArchiveLimits field, unit multiplier, help)
    ("--max-expanded-mib", "max_expanded", MIB, "expanded MiB never exceeded, whatever the package size"),
    ("--expansion-factor", "expansion_factor", 1, "expanded bytes allowed per byte of the package"),
    ("--max-ratio", "max_ratio", 1, "largest output per compressed byte of one stream"),
    ("--max-depth", "max_depth", 1, "archives opened inside the package's own archive"),
    ("--max-members", "max_members", 1, "archive members at every level together"),
)


def add_limit_flags(parser: argparse.ArgumentParser) -> None:
    defaults = ArchiveLimits()
    group = parser.add_argument_group("decompression limits (crossing one refuses the package)")
    for flag, name, unit, text in _LIMIT_FLAGS:
        group.add_argument(flag, type=int, metavar="N", dest=f"limit_{name}",
                           help=f"{text} (default {getattr(defaults, name) // unit})")


def archive_limits(args: argparse.Namespace) -> ArchiveLimits:
    """The limits the flags ask for, the defaults for the rest; a value out of range is a usage error."""
    given = {name: value * unit for flag, name, unit, _ in _LIMIT_FLAGS
             if (value := getattr(args, f"limit_{name}", None)) is not None}
    try:
        return ArchiveLimits(**given)
    except LimitsInvalid as exc:
        flag, unit = next((f, u) for f, n, u, _ in _LIMIT_FLAGS if n == exc.name)
        raise UsageError(f"{flag} {given[exc.name] // unit}: must be at least {exc.minimum // unit}",
                         reason="bad-limit") from exc


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """When the manifest stops being accepted: strictly in the future (``+0d`` is now, hence refused:
    a manifest that is expired when written is of no use and looks like a mistake)."""
    moment = now if now is not None else datetime.now(UTC)
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        value = moment + timedelta(days=int(relative.group(1)))
    else:
        try:
            value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise UsageError(f"--expires {text!r}: use YYYY-MM-DD, an ISO-8601 time or +DAYSd",
                             reason="bad-expiry") from exc
        value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if value <= moment:
        raise UsageError(f"--expires {text!r} is not in the future: the manifest would be expired when "
                         "written (give +1d or later)", reason="bad-expiry")
    return value


def warn_if_default_state(state: Path | None) -> None:
    """The default anti-rollback state is one file per account: every campaign run from it shares it."""
    if state is None:
        print(f"cmspatch: warning: no --state given: using the anti-rollback state {default_state_path()}, "
              "shared by everyone who verifies packages from this account (pass --state FILE to keep a "
              "campaign's own)", file=sys.stderr)


def cmd_attest(args: argparse.Namespace) -> int:
    if args.release < 1:
        raise UsageError("--release must be 1 or more")
    if args.out.exists():
        raise UsageError(f"{args.out} exists; refusing to overwrite a manifest (add signatures with `sign`)")
    expires = parse_expiry(args.expires)
    limits = archive_limits(args)
    with open_signer(args.key, args) as key:
        attested = attest_package(args.package, key, version=args.version, models=tuple(args.models),
                                  from_versions=tuple(args.from_versions), release=args.release,
                                  cves=tuple(args.cves), expires=expires, out=args.out, note=args.note,
                                  limits=limits, signer=_signer_record(args.policy, key.keyid))
    artifact = attested.manifest.artifacts[0]
    for warning in attested.warnings:
        print(f"cmspatch: warning: {warning}", file=sys.stderr)
    print(f"attested {artifact.name}: {artifact.size} bytes, sha256 {artifact.sha256}")
    print(f"signed by {key.keyid}; manifest written to {args.out}")
    return int(ExitCode.OK)


def _signer_record(policy_path: Path | None, keyid: str) -> dict[str, str] | None:
    """The name and role ``--policy`` gives the key, for the ceremony record; refused if it has none."""
    if policy_path is None:
        return None
    policy = parse_policy(read_bounded(policy_path, MAX_POLICY_BYTES, "policy"), str(policy_path))
    trusted = policy.key(keyid)
    if trusted is None or policy.revocation(keyid) is not None:
        raise UsageError(f"{keyid} is not an active key of {policy_path}: your signature would not count",
                         reason="signer-not-in-policy")
    return {"role": trusted.role, "owner": trusted.owner}


def cmd_sign(args: argparse.Namespace) -> int:
    limits = archive_limits(args)
    with open_signer(args.key, args) as key:
        envelope, changed = sign_manifest(args.manifest, key, package=args.package, limits=limits,
                                          check_package=not args.without_package,
                                          signer=_signer_record(args.policy, key.keyid))
    if args.without_package and changed:
        print("cmspatch: warning: signed WITHOUT checking the package bytes; your signature records it",
              file=sys.stderr)
    if changed:
        print(f"signed {args.manifest} with {key.keyid} ({len(envelope.signatures)} signature(s))")
    else:
        print(f"{args.manifest} is already signed by {key.keyid}; a key counts once, nothing changed")
    return int(ExitCode.OK)


def cmd_verify(args: argparse.Namespace) -> int:
    warn_if_default_state(args.state)
    report = verify_package(args.package, args.manifest, args.policy, model=args.model, state=args.state,
                            accept_uninspectable=args.accept_uninspectable, record=not args.no_record,
                            limits=archive_limits(args))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(render_report(report))
    if not report.accepted:
        raise TrustError(report.message, reason=report.reason or "refused")
    return int(ExitCode.OK)


def render_report(report: VerificationReport) -> str:
    """The human report: words and symbols, no colour (so NO_COLOR and plain logs lose nothing)."""
    lines = [f"package    {report.package}"]
    lines.append(f"verdict    {'ACCEPTED' if report.accepted else f'REFUSED [{report.reason}]'}")
    lines.append(f"why        {report.message}")
    manifest = report.manifest
    if manifest is not None:
        trusted = "" if report.rule else "  (NOT trusted: signatures insufficient)"
        lines.append(f"manifest   {manifest.package}, release {manifest.release}, installs "
                     f"{manifest.target_version}{trusted}")
        lines.append(f"models     {' '.join(manifest.models)}")
        lines.append(f"upgrades   from {', '.join(manifest.from_versions)}")
        lines.append(f"fixes      {' '.join(manifest.cves) or '-'}")
        lines.append(f"expires    {format_time(manifest.expires)}")
    if report.artifact is not None:
        lines.append(f"sha256     recorded {report.artifact.sha256} ({report.artifact.size} bytes)")
    if report.actual_size is not None:
        actual = report.actual_sha256 or "(not computed: larger than declared, reading stopped)"
        match = ""
        if report.artifact is not None and report.actual_sha256 is not None:
            match = "  = match" if report.actual_sha256 == report.artifact.sha256 else "  != MISMATCH"
        lines.append(f"           actual   {actual} ({report.actual_size} bytes read){match}")
    lines.append("signatures")
    for check in report.signers:
        mark = "+ counted    " if check.counted else "- not counted"
        who = f"{check.role or 'unknown role'}{f' ({check.owner})' if check.owner else ''}"
        lines.append(f"  {mark} {check.keyid[:16]}  {who}: {check.detail}")
        if check.ceremony is not None:
            lines.append(f"                  signed {check.ceremony.describe()}")
        lines.append(f"                  key {check.custody_note()}")
    if not report.signers:
        lines.append("  (none)")
    if report.rule:
        lines.append(f"threshold  met by rule {report.rule!r}")
    elif report.missing:
        lines.append("threshold  NOT met: " + "; ".join(report.missing))
    scan = report.scan
    if scan is not None:
        state = "clean" if scan.clean else "BACKDOOR/UNSAFE CONTENT"
        stopped = ", STOPPED AT A LIMIT" if scan.breach is not None else ", INCOMPLETE"
        lines.append(f"scan       {scan.format}, {scan.members} member(s), {scan.bytes_scanned} bytes "
                     f"scanned: {state}{'' if scan.complete else stopped}")
        lines.extend(f"  ! {f.kind} {f.text!r} in {f.member or 'the package'} at byte {f.offset}"
                     for f in scan.findings)
        lines.extend(f"  ! unsafe member {u.name!r}: {explain(u.reason)}" for u in scan.unsafe)
        lines.extend(f"  ? {item}" for item in scan.uninspectable)
        if scan.breach is not None:
            lines.append(f"  ! [{scan.breach.reason}] {scan.breach.detail}")
    budget = scan.budget if scan is not None else None
    expanded = f"; expanded {scan.expanded} bytes" if scan is not None else ""
    lines.append(f"limits     {report.limits.describe(budget)}{expanded}")
    if report.problems:
        lines.append("problems")
        lines.extend(f"  - [{p.reason}] {explain(p.reason)}: {p.detail}" for p in report.problems)
    if report.accepted:
        lines.append(f"recorded   {'release recorded in ' + str(report.state) if report.recorded else 'no'}")
    return "\n".join(lines)
