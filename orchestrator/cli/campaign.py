"""Headless campaign commands: plan, run, status, audit verify, enroll, confirm.

A thin front end over ``orchestrator.engine``: it builds the engine's inputs (inventory, verified
package, transports, journal, policy), shows its events, and maps the outcome to an exit code.
Human progress goes to stderr; ``--json`` prints one journal record per line on stdout.

The journal defaults to ``./cmspatch-journal.db`` (or ``$CMSPATCH_JOURNAL``). Ctrl-C stops cleanly:
monitors finish their current step, the journal stays consistent, and ``run --resume`` finishes later.
Exit codes: 0 all patched, 1 some failed/deferred/awaiting a technician, 2 usage, 3 package refused,
4 halted or aborted, 5 stopped at a wave gate (no --yes), 6 campaign locked, 7 journal does not verify
(chain broken, or its anchors show a cut tail), 8 journal damaged, 9 journal write failed (disk full),
130 interrupted. ``status`` and ``audit verify`` open the journal read-only and write nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.adapters.journal_sqlite import DEFAULT_JOURNAL, SqliteJournal
from orchestrator.cli.people import operator_name
from orchestrator.cli.values import indicator_prefix
from orchestrator.domain import projection
from orchestrator.domain.campaign import TRIGGER_BY, CampaignPolicy, CampaignValueError, Ending
from orchestrator.domain.checks import TRIGGERS
from orchestrator.domain.describe import headline
from orchestrator.domain.events import Event, EventKind, JournalRecord
from orchestrator.domain.failures import explain as explain_failure
from orchestrator.domain.indicators import IndicatorMap
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.projection import Phase
from orchestrator.domain.status import DEVICE_RECORDS, READ_ONLY_PREFIXES, DeviceStatus, FleetStatus, project
from orchestrator.domain.waves import parse_waves
from orchestrator.errors import ExitCode, UsageError

if TYPE_CHECKING:  # the engine is imported when a command runs one, not to parse the command line
    from orchestrator.engine import CampaignOutcome


def journal_path(args: argparse.Namespace) -> Path:
    return Path(args.journal or os.environ.get("CMSPATCH_JOURNAL") or DEFAULT_JOURNAL)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    plan = sub.add_parser("plan", help="show the waves and what a run would do (changes nothing)")
    _campaign_args(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(func=cmd_plan)

    run = sub.add_parser("run", help="push the package to the fleet in waves, verified and journalled")
    _campaign_args(run)
    run.add_argument("--yes", action="store_true", help="approve every wave gate (headless)")
    run.add_argument("--json", action="store_true", help="journal records as JSON lines on stdout")
    run.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="CAMPAIGN",
        help="finish an interrupted campaign (default: the newest in the journal)",
    )
    run.add_argument("--operator", default=None, help="who runs the campaign and approves its gates (a name; "
                     "default $CMSPATCH_OPERATOR, else the login name, marked as such)")
    run.set_defaults(func=cmd_run)

    status = sub.add_parser("status", help="fleet status of a campaign, from the journal")
    _journal_arg(status)
    status.add_argument("--campaign", help="campaign id (default: the newest; survey and verify runs too)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    audit = sub.add_parser("audit", help="check the journal")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = audit_sub.add_parser(
        "verify", help="recompute the hash chain and check the anchors (exit 7 when records were altered or "
        "cut, 1 when there are no anchors to show a cut tail); writes nothing")
    _journal_arg(verify)
    verify.add_argument("--against", type=Path, metavar="EXPORT",
                        help="also check that the journal holds the chain head an export was made from "
                        "(its .sig, or a JSON export)")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=cmd_audit_verify)
    adopt = audit_sub.add_parser(
        "adopt", help="start anchoring a journal written before anchors existed (its chain must verify), so "
        "its campaigns can be resumed; the person is journalled")
    _journal_arg(adopt)
    adopt.add_argument("--by", required=True, help="who vouches for the journal as it is now (a name)")
    adopt.add_argument("--against", type=Path, metavar="EXPORT",
                       help="an export made from this journal before: its chain head must still be there")
    adopt.set_defaults(func=cmd_audit_adopt)

    enroll = sub.add_parser("enroll", help="record monitors' SSH host keys into known_hosts (explicit)")
    enroll.add_argument("-i", "--inventory", required=True, type=Path)
    enroll.add_argument("--limit", help="Ansible-style host pattern")
    enroll.add_argument("--known-hosts", type=Path, help="default: the inventory's cmspatch_known_hosts")
    enroll.add_argument("--yes", action="store_true", help="record without asking (fingerprints are shown)")
    enroll.set_defaults(func=cmd_enroll)

    confirm = sub.add_parser(
        "confirm", help="record that a technician installed the package by hand, or exercised a trigger"
    )
    confirm.add_argument("device")
    confirm.add_argument("--technician", required=True)
    confirm.add_argument(
        "--trigger", choices=TRIGGERS, help="answer the running campaign's request to exercise this trigger"
    )
    confirm.add_argument(
        "--could-not",
        action="store_true",
        help="with --trigger: the technician could not do it (say why in --note)",
    )
    confirm.add_argument("--version", help="firmware version the monitor shows afterwards")
    confirm.add_argument("--note", default="")
    confirm.add_argument("--campaign", help="campaign id (default: the newest)")
    _journal_arg(confirm)
    confirm.set_defaults(func=cmd_confirm)


def _journal_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--journal", help=f"journal file (default ./{DEFAULT_JOURNAL} or $CMSPATCH_JOURNAL)")


def _campaign_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--inventory", required=True, type=Path)
    p.add_argument("--package", required=True, type=Path)
    p.add_argument("--manifest", required=True, type=Path)
    p.add_argument("--policy", required=True, type=Path, help="trust policy")
    p.add_argument("--state", type=Path, help="anti-rollback state file (see `cmspatch package verify`)")
    from orchestrator.cli.package import add_limit_flags

    add_limit_flags(p)  # the package is verified again here: under the same limits as `package verify`
    p.add_argument("--waves", help="Ansible serial style, e.g. 1,5,20%%,100%% (the default)")
    p.add_argument("--limit", help="Ansible-style host pattern")
    p.add_argument("--group-by", choices=("site", "ward"))
    p.add_argument("--concurrency", type=int, help="monitors at once per site (default 10)")
    p.add_argument("--max-failures", type=int)
    p.add_argument("--max-failure-pct", type=float)
    p.add_argument("--min-executed", type=int, help="monitors executed before --max-failure-pct applies")
    p.add_argument("--unreachable-not-failure", action="store_true")
    p.add_argument(
        "--campaign-config",
        type=Path,
        help="YAML mapping of campaign policy fields (maintenance_windows, timeouts, ...)",
    )
    p.add_argument("--reboot-timeout", type=float)
    p.add_argument("--observation-window", type=float)
    p.add_argument("--no-triggers", action="store_true", help="do not exercise the hidden-mount triggers")
    p.add_argument(
        "--trigger-by",
        choices=TRIGGER_BY,
        help="who presses the triggers: a service command (emulated fleet; the default) or a technician "
        "asked at the bed (real units; answered in the TUI or with `cmspatch confirm --trigger`)",
    )
    p.add_argument("--trigger-timeout", type=float, help="seconds a technician has per trigger (default 300)")
    p.add_argument("--no-sinkhole", action="store_true", help="no network observation (verdicts weaker)")
    p.add_argument("--indicator-prefix", default="127.114.4", type=indicator_prefix,
                   help="loopback /24 standing in for 202.114.4 (three octets, 127.x.y)")
    p.add_argument("--work-orders", type=Path, help="directory for hands-on work orders (text + JSON)")
    _journal_arg(p)


# Where each policy field comes from on the command line, so a refusal names the flag the user typed.
FLAG_OF: dict[str, str] = {
    "waves": "--waves", "group_by": "--group-by", "per_site_concurrency": "--concurrency",
    "max_failures": "--max-failures", "max_failure_pct": "--max-failure-pct",
    "min_executed_for_pct": "--min-executed", "reboot_timeout": "--reboot-timeout",
    "observation_window": "--observation-window", "trigger_by": "--trigger-by",
    "trigger_timeout": "--trigger-timeout",
}


def build_policy(args: argparse.Namespace) -> CampaignPolicy:
    """The campaign policy from ``--campaign-config`` and the flags (flags win). Both end in
    ``CampaignPolicy``, whose values are checked in one place (``domain.campaign.BOUNDS``); a refusal
    names the flag, or the config file's line."""
    from orchestrator.adapters.strict_files import load_yaml_file_document
    from orchestrator.domain.strict_load import CAMPAIGN_CONFIG, Loaded

    data: dict[str, Any] = {}
    config: Path | None = args.campaign_config
    loaded = Loaded({})
    if config is not None:
        loaded = load_yaml_file_document(config, CAMPAIGN_CONFIG)  # located, UsageError family
        if not isinstance(loaded.value, dict):
            raise UsageError(f"{config}: expected a mapping of campaign policy fields",
                             reason="bad-campaign-config")
        unknown = sorted(str(k) for k in loaded.value if k not in CampaignPolicy.__dataclass_fields__)
        if unknown:
            where = f"{config}:{loaded.line_of((unknown[0],))}"
            raise UsageError(f"{where}: unknown field(s) {', '.join(unknown)}", reason="bad-campaign-config")
        data.update(loaded.value)
    flags = {
        "waves": parse_waves(args.waves) if args.waves else None,
        "group_by": args.group_by,
        "per_site_concurrency": args.concurrency,
        "max_failures": args.max_failures,
        "max_failure_pct": args.max_failure_pct,
        "min_executed_for_pct": args.min_executed,
        "reboot_timeout": args.reboot_timeout,
        "observation_window": args.observation_window,
        "trigger_by": args.trigger_by,
        "trigger_timeout": args.trigger_timeout,
    }
    given = {k: v for k, v in flags.items() if v is not None}
    data.update(given)
    if args.unreachable_not_failure:
        data["unreachable_is_failure"] = False
    if args.no_triggers:
        data["exercise_triggers"] = False
    try:
        return CampaignPolicy.from_dict(data)
    except CampaignValueError as exc:
        if exc.field in given:
            where = FLAG_OF[exc.field]
        else:
            where = f"{config}:{loaded.line_of((exc.field,))}" if config is not None else "campaign policy"
        raise UsageError(f"{where}: {exc.field} must be {exc.requirement}, not {exc.value!r}",
                         reason=exc.reason) from exc
    except (TypeError, ValueError) as exc:
        raise UsageError(f"campaign policy: {exc}", reason="bad-campaign-config") from exc


def _inputs(args: argparse.Namespace, *, record: bool = True) -> tuple[Any, Any]:
    from orchestrator.adapters.inventory_file import load_inventory
    from orchestrator.adapters.package_verify import verify_package
    from orchestrator.cli.package import archive_limits, warn_if_default_state

    inventory = load_inventory(args.inventory)
    warn_if_default_state(args.state)
    report = verify_package(args.package, args.manifest, args.policy, state=args.state, record=record,
                            limits=archive_limits(args))
    return inventory, report.require()


def cmd_plan(args: argparse.Namespace) -> int:
    """What a run would do. Writes nothing: no journal, and the anti-rollback state is only read (a
    release planned by mistake must not lock out the release actually meant)."""
    from orchestrator.adapters.profile_file import ProfileBook
    from orchestrator.engine import plan_new, select

    policy = build_policy(args)  # a bad value is refused before any file is read
    inventory, package = _inputs(args, record=False)
    ProfileBook(select(inventory, args.limit))  # a bad device profile refuses the plan as it would the run
    plan = plan_new(inventory, package, policy, limit=args.limit)
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2, sort_keys=True, allow_nan=False))
        return int(ExitCode.OK)
    actions = {d.name: d for d in plan.devices}
    print(
        f"package {plan.package_name} -> {plan.target_version}; {len(plan.devices)} monitors "
        f"in {len(plan.waves)} waves"
    )
    for index, wave in enumerate(plan.waves):
        gate = "" if index == 0 or not plan.policy.require_approval else "  (gate: approval first)"
        print(f"wave {index + 1}: {len(wave)} monitor(s){gate}")
        for name in wave:
            d = actions[name]
            print(f"  {name:<28} {d.delivery:<8} {d.action}{': ' + d.reason if d.reason else ''}")
    summary = ", ".join(f"{len(v)} {k}" for k, v in sorted(plan.by_action().items()))
    print(f"summary: {summary}; patient/alarm status is checked on each monitor right before it is touched")
    return int(ExitCode.OK)


class _Progress:
    """Journal records -> human lines on stderr, or JSON lines on stdout."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def __call__(self, record: JournalRecord) -> None:
        if self.as_json:
            print(json.dumps(record.to_dict(), sort_keys=True), flush=True)
            return
        line = describe(record)
        if line:
            print(line, file=sys.stderr, flush=True)


def describe(record: JournalRecord) -> str | None:
    """The progress line for a record (``domain.describe.headline``, the TUI log pane's words), with the
    command that answers a technician request, since on the CLI that is typed in another terminal."""
    line = headline(record)
    if line is not None and record.kind is EventKind.TRIGGER_REQUESTED and record.device:
        line += ". Then answer: " + answer_command(record.device, str(record.data.get("trigger")))
    return line


def answer_command(device: str, trigger: str) -> str:
    """What the technician (or whoever stands for them) types to answer a trigger request."""
    return f"cmspatch confirm {device} --trigger {trigger} --technician NAME [--could-not --note WHY]"


def _nonzero(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "nothing to do"


class _Stopper:
    """Whom a stop signal stops: the engine once there is one (``engine`` is set by the caller)."""

    def __init__(self, engine: Any = None) -> None:
        self.engine = engine


_STOP_SIGNALS = {"SIGINT": "Ctrl-C", "SIGTERM": "SIGTERM", "SIGHUP": "SIGHUP"}


@contextmanager
def _sigint_interrupts(engine: Any = None) -> Iterator[_Stopper]:
    """Ctrl-C, SIGTERM (systemd, ``timeout``, AWX) and SIGHUP (the terminal went away) all stop the same
    way: monitors finish or park their current step, the journal stays resumable, exit 130. Before there
    is an engine nothing was done yet: the command stops at once (still 130). A second signal forces."""
    stopper = _Stopper(engine)
    if sys.platform == "win32" or not _main_thread():
        yield stopper
        return
    signals = [getattr(signal, name) for name in _STOP_SIGNALS if hasattr(signal, name)]

    def handler(signum: int, frame: object) -> None:
        what = _STOP_SIGNALS.get(signal.Signals(signum).name, str(signum))
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for other in signals:
            if other != signal.SIGINT:
                signal.signal(other, signal.SIG_DFL)
        if stopper.engine is None:
            raise KeyboardInterrupt
        with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
            print(f"cmspatch: {what}: stopping after the current step (again to force)", file=sys.stderr,
                  flush=True)
        stopper.engine.interrupt(f"operator ({what})" if what == "Ctrl-C" else what)

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield stopper
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def cmd_run(args: argparse.Namespace) -> int:
    with _sigint_interrupts() as stopper:
        outcome = _run_campaign(args, stopper)
    print(
        f"cmspatch: campaign {outcome.campaign_id}: {outcome.message} ({_nonzero(outcome.counts)})",
        file=sys.stderr,
    )
    if outcome.ending is Ending.AT_GATE:
        print(
            f"cmspatch: approve and continue with: cmspatch run --resume {outcome.campaign_id} --yes ...",
            file=sys.stderr,
        )
    return int(exit_code_of(outcome))


# How a campaign run ended, as the documented exit code (README): the one place it is decided, for
# cmspatch run, the TUI, the demo and the benchmark alike.
EXIT_CODES: Mapping[Ending, ExitCode] = {
    Ending.COMPLETE: ExitCode.OK,
    Ending.INCOMPLETE: ExitCode.INCOMPLETE,
    Ending.HALTED: ExitCode.HALTED,
    Ending.ABORTED: ExitCode.HALTED,
    Ending.AT_GATE: ExitCode.AWAITING_APPROVAL,
    Ending.INTERRUPTED: ExitCode.INTERRUPTED,
}


def exit_code_of(outcome: CampaignOutcome) -> ExitCode:
    return EXIT_CODES[outcome.ending]


def _run_campaign(args: argparse.Namespace, stopper: _Stopper) -> Any:
    """Locks before listeners: the journal's claims are held before the sinkhole binds its sockets, so a
    second run is told who holds the campaign (exit 6), not that an address is in use."""
    from orchestrator import wiring

    inventory, package = _inputs(args)
    operator = operator_name(args.operator)
    with ExitStack() as stack:
        transports = wiring.transports(inventory, args.work_orders, stack)
        journal = stack.enter_context(SqliteJournal(journal_path(args)))
        journal.verify_or_raise()  # refuse a cut or altered journal before anything binds or connects
        if args.resume is not None:
            engine = wiring.resume_engine(
                journal=journal,
                campaign_id=args.resume or None,
                inventory=inventory,
                package=package,
                transports=transports,
                operator=operator,
                limit=args.limit,  # only these are driven; the rest keep what the journal says
            )
        else:
            engine = wiring.new_engine(
                inventory=inventory,
                package=package,
                journal=journal,
                transports=transports,
                policy=build_policy(args),
                operator=operator,
                limit=args.limit,
            )
        stack.enter_context(engine.hold())
        if not args.no_sinkhole:
            engine.observer = wiring.sinkhole(IndicatorMap(args.indicator_prefix), stack)
        engine.subscribe(_Progress(args.json))
        if not args.yes:
            engine.stop_at_gate()
        stopper.engine = engine
        return engine.run(auto_approve=args.yes)


def _campaign_of(journal: SqliteJournal, wanted: str | None, *, read_only: bool = False) -> str:
    """The campaign asked for, or the newest; survey/verify runs only where ``read_only`` allows them."""
    ids = [c for c in journal.campaigns() if c != DEVICE_RECORDS  # facts about monitors, not a run
           and (read_only or not c.startswith(READ_ONLY_PREFIXES))]
    if wanted:
        if wanted not in ids:
            raise UsageError(f"no campaign {wanted} in {journal.path}", reason="unknown-campaign")
        return wanted
    if not ids:
        raise UsageError(f"no campaign in {journal.path}", reason="unknown-campaign")
    return ids[-1]


def _open_existing(args: argparse.Namespace, *, read_only: bool = False) -> SqliteJournal:
    """An existing journal: read-only for the commands that only look; verified (chain and anchors) for
    a writer such as ``confirm``, before it reads what to append. Missing or not a journal: exit 2."""
    journal = SqliteJournal(journal_path(args), create=False, read_only=read_only)
    if not read_only:
        try:
            journal.verify_or_raise()
        except BaseException:
            journal.close()
            raise
    return journal


def cmd_status(args: argparse.Namespace) -> int:
    from orchestrator.cli.export import say_report

    with _open_existing(args, read_only=True) as journal:
        say_report(journal.verify_or_raise(anchors_required=False))  # a cut journal's status would mislead
        campaign = _campaign_of(journal, args.campaign, read_only=True)
        fleet = project(journal.records(), campaign)  # all: the monitors' facts belong to no campaign
    if fleet.mode != "patch":
        from orchestrator.cli.survey_status import render_survey_status, survey_status_dict

        print(json.dumps(survey_status_dict(fleet), indent=2, sort_keys=True) if args.json
              else render_survey_status(fleet))
    elif args.json:
        print(json.dumps(status_dict(fleet, str(journal_path(args))), indent=2, sort_keys=True))
    else:
        print(render_status(fleet, str(journal_path(args))))
    return int(ExitCode.OK)


def status_dict(fleet: FleetStatus, journal: str = "J") -> dict[str, Any]:
    from orchestrator.cli.survey_status import device_facts

    return {
        "campaign": fleet.campaign,
        "finished": fleet.finished,
        "halted": fleet.halted,
        "aborted": fleet.aborted,
        "gate_waiting": fleet.gate_waiting,
        "phase": projection.phase(fleet).value,
        "counts": fleet.counts(),
        "patched_by_level": fleet.patched_by_level(),
        "verdicts_by_level": fleet.verdicts_by_level(),
        "outcomes": _outcomes(fleet),
        "waves": fleet.waves,
        "unattributed_contacts": fleet.unattributed_contacts(),
        "devices": {
            n: {
                "state": d.state.value,
                "reason": d.reason,
                "wave": d.wave,
                "site": d.site,
                "ward": d.ward,
                "bed": d.bed,
                "model": d.model,
                "serial": d.serial,
                "firmware_before": d.firmware_before,
                "firmware_after": d.firmware_after,
                "firmware_after_by": d.firmware_after_by or None,
                "technician": d.technician,
                "next_step": hands_on_next(d, journal) or None,
                "attempts": d.attempts,
                "verdicts": {k: v.value for k, v in d.verdicts.items()},
                "verdict_levels": {k: d.verdict_levels[k].value for k in d.verdicts if k in d.verdict_levels},
                "trigger_request": d.trigger_request,
                **device_facts(fleet, n),
            }
            for n, d in fleet.devices.items()
        },
    }


def _phase_words(fleet: FleetStatus) -> str:
    """The projection's phase, in the words of a terminal line."""
    phase = projection.phase(fleet)
    if phase is Phase.GATE and fleet.gate_waiting is not None:
        return f"waiting at gate of wave {fleet.gate_waiting + 1}"
    if phase is Phase.RUNNING:
        return "in progress or interrupted"
    if phase is Phase.FINISHED and not projection.complete(fleet):
        return f"finished, not all patched ({projection.unfinished_words(fleet)})"
    if phase in (Phase.HALTED, Phase.ABORTED):
        return f"{phase.value.upper()} ({projection.phase_detail(fleet)})"
    return phase.value


def _outcomes(fleet: FleetStatus) -> dict[str, int]:
    """Monitors per outcome, as every export counts them (domain.projection)."""
    return {o.value: n for o, n in projection.outcome_counts(fleet).items()}


def hands_on_next(device: DeviceStatus, journal: str = "J") -> str:
    """The next command for a hands-on unit waiting for its technician or its bench, else ''."""
    from orchestrator.domain.handson import next_step

    if device.trigger_request:  # asked for a trigger: the section below says how to answer
        return ""
    return next_step(device.name, device.state, technician=device.technician, journal=journal)


def _level_lines(fleet: FleetStatus) -> list[str]:
    """How the verdicts were established (domain.evidence): patched monitors and verdicts per level."""
    patched = fleet.patched_by_level()
    verdicts = fleet.verdicts_by_level()
    lines = [f"patched by evidence level: {_nonzero(patched)}"] if patched else []
    if verdicts:
        lines.append("verdicts by evidence level: " + "; ".join(
            f"{level}: {_nonzero(counts)}" for level, counts in verdicts.items()))
    return lines


def render_status(fleet: FleetStatus, journal: str = "J") -> str:
    lines = [
        f"campaign {fleet.campaign}: {_phase_words(fleet)}",
        f"outcomes (as the exports count them): {_nonzero(_outcomes(fleet))}",
        f"counts by state: {_nonzero(fleet.counts())}",
        *_level_lines(fleet),
        "",
    ]
    lines.append(f"{'monitor':<28} {'wave':>4}  {'state':<20} {'reason':<28} firmware")
    for name, d in fleet.devices.items():
        wave = "" if d.wave is None else str(d.wave + 1)
        read = f" (read by {d.firmware_after_by})" if d.firmware_after and d.firmware_after_by else ""
        lines.append(
            f"{name:<28} {wave:>4}  {d.state.value:<20} {d.reason:<28} "
            f"{d.firmware_after or d.firmware_before or ''}{read}"
        )
    failed: dict[str, int] = {}
    for d in fleet.devices.values():
        if d.state is DeviceState.FAILED:
            failed[d.reason] = failed.get(d.reason, 0) + 1
    if failed:
        lines += ["", "why monitors failed:"]
        lines += [f"  {reason or '(no reason)'} ({n}): {explain_failure(reason)}"
                  for reason, n in sorted(failed.items())]
    waiting = [(n, step) for n, d in fleet.devices.items() if (step := hands_on_next(d, journal))]
    if waiting:
        lines += ["", "hands-on units waiting for a person (not failed, not counted against a budget):"]
        for name, step in waiting:
            lines.append(f"  {name}: {step}")
    asks = [(n, d.trigger_request) for n, d in fleet.devices.items() if d.trigger_request]
    if asks:
        lines += ["", "waiting for a technician at the bed (answer with the command shown):"]
        for name, request in asks:
            trigger = str(request.get("trigger"))
            lines += [f"  {name}: {request.get('instructions', '')}", f"    {answer_command(name, trigger)}"]
    from orchestrator.cli.survey_status import fact_lines, unattributed_lines

    return "\n".join(lines + unattributed_lines(fleet) + fact_lines(fleet))


def cmd_audit_adopt(args: argparse.Namespace) -> int:
    """Anchor a journal from before anchors, explicitly and on record. Without it such a journal is read
    (status, export) but never appended to, so an in-flight campaign could not be resumed after the upgrade.
    Anchors cannot vouch for what happened before this moment; ``--against`` an older export can."""
    from orchestrator.cli.export import claimed_head

    if not args.by.strip():
        raise UsageError("--by must name the person who vouches for the journal", reason="no-person")
    against = [claimed_head(args.against)] if args.against else []
    with SqliteJournal(journal_path(args), create=False) as journal:
        head = journal.adopt(against)
        journal.append(Event(head.campaign, EventKind.LOG, {
            "level": "warning", "message": f"journal adopted for anchoring by {args.by.strip()} at record "
            f"{head.seq}: records before it are vouched for by their hash chain only"
            + (f" and by the export {args.against}" if args.against else ""),
            "adopted_by": args.by.strip(), "adopted_at_seq": head.seq}))
    print(f"journal {journal_path(args)} anchored at record {head.seq} ({head.hash[:16]}...) "
          f"by {args.by.strip()}")
    return int(ExitCode.OK)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Exit 0: the chain verifies and the journal holds every anchored record (and the export's head);
    7: it does not; 1: the chain verifies but there is no anchor file, so a cut tail cannot be seen."""
    from orchestrator.cli.export import claimed_head, say_report

    against = [claimed_head(args.against)] if args.against else []
    with _open_existing(args, read_only=True) as journal:
        report = journal.verify(against)
    code = ExitCode.JOURNAL if not report.ok else ExitCode.INCOMPLETE if report.warning else ExitCode.OK
    if args.json:
        print(json.dumps({**report.to_dict(), "against": str(args.against) if args.against else None,
                          "exit_code": int(code)}, sort_keys=True))
        return int(code)
    if report.broken_at is not None:
        print(f"journal chain BROKEN at seq {report.broken_at}: {report.problem}", file=sys.stderr)
    else:
        print(f"journal chain intact: {report.records} records, head {report.head}")
    if report.anchor_problem:
        print(f"journal has LOST RECORDS: {report.anchor_problem} [{report.anchor_reason}]", file=sys.stderr)
    elif report.anchors is not None:
        print(report.anchor_summary)
    if against and report.ok:
        print(f"the journal holds the chain head of {args.against} (its signature is checked by "
              "`cmspatch export verify`)")
    say_report(report)
    return int(code)


def cmd_confirm(args: argparse.Namespace) -> int:
    from orchestrator.cli.journal_unit import campaign_unit
    from orchestrator.domain.handson import next_step, technician_name
    from orchestrator.technician import trigger_answer_payload

    if args.could_not and not args.trigger:
        raise UsageError("--could-not answers a trigger request: give --trigger too", reason="bad-arguments")
    args.technician = technician_name(args.technician)
    with campaign_unit(args, args.device) as (journal, campaign, device):
        if args.trigger:
            if (why := device.not_asked_for(args.trigger)) is not None:
                raise UsageError(f"{args.device} {why} in campaign {campaign}, not {args.trigger}",
                                 reason="no-trigger-request")
            journal.append(Event(campaign, EventKind.TRIGGER_ANSWERED, trigger_answer_payload(
                args.trigger, args.technician, not args.could_not, args.note), args.device))
            print(f"recorded: {args.trigger} on {args.device} "
                  f"{'could not be exercised' if args.could_not else 'exercised'} by {args.technician}; "
                  "the running campaign picks it up", file=sys.stderr)
            return int(ExitCode.OK)
        moved = _confirm_install(journal, campaign, args)
    read = f", version {args.version.strip()} read by the technician" if (args.version or "").strip() else ""
    then = "it awaits its bench session" if moved else "the running campaign moves it to its bench session"
    bench = next_step(args.device, DeviceState.AWAITING_BENCH, journal=str(journal_path(args)))
    print(f"recorded: {args.device} installed by {args.technician}{read}; {then}: {bench}", file=sys.stderr)
    return int(ExitCode.OK)


def _confirm_install(journal: SqliteJournal, campaign: str, args: argparse.Namespace) -> bool:
    """Journal the technician's confirmation. With nobody running the campaign, its move to
    AWAITING_BENCH too, under the campaign's lock (True); while a run holds the lock, that run makes the
    move as it folds the confirmation in (False): one writer of a monitor's state at a time."""
    from orchestrator.domain.handson import confirmation_move, confirmation_payload
    from orchestrator.errors import CampaignLocked
    from orchestrator.unit_moves import append_moves

    def confirm() -> DeviceStatus:
        device = project(journal.records(campaign), campaign).devices[args.device]
        if device.state is not DeviceState.AWAITING_TECHNICIAN or device.technician:
            raise UsageError(
                f"{args.device} is {device.state.value}"
                + (f", confirmed by {device.technician}" if device.technician else "")
                + ", not awaiting a technician", reason="not-awaiting-technician")
        journal.append(Event(campaign, EventKind.TECHNICIAN_CONFIRMED,
                             confirmation_payload(args.technician, args.note, args.version), args.device))
        return device

    try:
        with journal.lock(campaign):
            device = confirm()
            move = confirmation_move(device.state, args.technician)
            append_moves(journal, campaign, device, [move] if move else [])
            return move is not None
    except CampaignLocked:
        confirm()
        return False


def cmd_enroll(args: argparse.Namespace) -> int:
    from orchestrator.adapters.inventory_file import load_inventory
    from orchestrator.adapters.ssh import SshTransport, iter_enroll, record_known_hosts

    inventory = load_inventory(args.inventory)
    target = args.known_hosts or (Path(inventory.known_hosts) if inventory.known_hosts else None)
    if target is None:
        raise UsageError(
            "no known_hosts file: give --known-hosts or set cmspatch_known_hosts", reason="no-known-hosts"
        )
    transport = SshTransport(known_hosts=str(target))
    found = []
    for device, fp, key, note in iter_enroll(transport, inventory.select(args.limit)):
        print(f"{device.name:<28} {device.address}:{device.port:<6} {fp or '-':<52} {note}")
        if key is not None and note == "ok":
            found.append((device, key))
    if not found:
        print("nothing to record", file=sys.stderr)
        return int(ExitCode.INCOMPLETE)
    if not args.yes:
        if not sys.stdin.isatty():
            print(
                "cmspatch: check the fingerprints above, then re-run with --yes to record them",
                file=sys.stderr,
            )
            return int(ExitCode.INCOMPLETE)
        answer = input(f"record {len(found)} host key(s) into {target}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return int(ExitCode.INCOMPLETE)
    added, conflicts = record_known_hosts(target, found)
    for name in conflicts:
        print(
            f"cmspatch: {name}: known_hosts already holds a DIFFERENT key; not replaced (remove it "
            "by hand after checking why it changed)",
            file=sys.stderr,
        )
    print(f"recorded {added} host key(s) into {target}", file=sys.stderr)
    return int(ExitCode.INCOMPLETE if conflicts else ExitCode.OK)
