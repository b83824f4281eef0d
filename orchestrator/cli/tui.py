"""``cmspatch tui`` and ``cmspatch demo``: the terminal UI on a fleet, a journal, or the emulated demo.

    cmspatch tui -i INVENTORY --package P --manifest M --policy POL [--journal FILE] [--read-only]
    cmspatch tui --journal FILE --campaign ID [-i ... --package ... to resume it here] [--read-only]
    cmspatch demo [--headless] [--monitors 50] [--workdir DIR] [--refused] [--read-only]

This module only wires inputs to the TUI's ``Session`` (or, headless, to the engine and the campaign
CLI's progress printer): the campaign flags, policy building and progress lines are the campaign
CLI's own (``orchestrator.cli.campaign``), transports and engines the composition root's
(``orchestrator.wiring``), reused rather than copied. Textual is imported
inside the handlers only, so the headless CLI never loads it (``test_architecture``).
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from orchestrator.cli.people import operator_name
from orchestrator.domain.campaign import TRIGGER_BY
from orchestrator.domain.indicators import IndicatorMap
from orchestrator.domain.status import DEVICE_RECORDS
from orchestrator.errors import UsageError

PACKAGE_ARGS = ("inventory", "package", "manifest", "policy")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    from orchestrator.cli import campaign

    tui = sub.add_parser("tui", help="terminal UI: verify, run, watch and resume campaigns")
    campaign._campaign_args(tui)
    for action in tui._actions:  # the package inputs are optional here: a journal alone can be watched
        if action.dest in PACKAGE_ARGS:
            action.required = False
    tui.add_argument("--campaign", help="open this campaign from the journal (watch; resume with r)")
    tui.add_argument("--read-only", action="store_true", help="watch only: every decision is refused")
    tui.add_argument("--operator", help="who decides (default: login name); recorded in the journal")
    tui.add_argument("--bench-window", type=float, default=None,
                     help="seconds a hands-on unit is watched in its bench session, started with b on its "
                          "monitor screen (default 30)")
    tui.set_defaults(func=cmd_tui)

    demo = sub.add_parser("demo", help="the TUI on an emulated 50-monitor fleet (nothing leaves loopback)")
    demo.add_argument("--headless", action="store_true",
                      help="run the demo campaign without the UI, approving every wave (--yes)")
    demo.add_argument("--monitors", type=int, default=50)
    demo.add_argument("--workdir", type=Path, help="keep the fleet, journal and packages here")
    demo.add_argument("--keep", action="store_true",
                      help="keep the demo's work directory (its journal) after the demo, to export or "
                      "inspect it (make demo KEEP=1)")
    demo.add_argument("--refused", action="store_true",
                      help="open with the January-2025 package, which the trust checks refuse")
    demo.add_argument("--read-only", action="store_true")
    demo.add_argument("--fast", action="store_true", help="short reboots and observation windows")
    demo.add_argument("--json", action="store_true", help="headless: journal records as JSON lines")
    demo.add_argument("--address-prefix",
                      help="loopback prefix of the monitors (default 127.77, or a free one)")
    demo.add_argument("--port", type=int, default=2222, help="SSH port of every emulated monitor")
    demo.add_argument("--indicator-prefix", default="127.114.4",
                      help="loopback /24 standing in for 202.114.4 (the sinkhole listens there)")
    demo.add_argument("--trigger-by", choices=TRIGGER_BY, default="service",
                      help="technician: every monitor asks you to exercise its triggers, as a real unit "
                      "would (answer with t/n on the monitor's screen; try it with --monitors 3)")
    demo.set_defaults(func=cmd_demo)


# --- cmspatch tui -----------------------------------------------------------------------------------

def cmd_tui(args: argparse.Namespace) -> int:
    from orchestrator.adapters.journal_sqlite import SqliteJournal
    from orchestrator.cli import campaign
    from tui.session import Session, SessionConfig

    given = [name for name in PACKAGE_ARGS if getattr(args, name) is not None]
    if given and len(given) != len(PACKAGE_ARGS):
        missing = ", ".join(f"--{n}" for n in PACKAGE_ARGS if n not in given)
        raise UsageError(f"to verify and push a package give -i, --package, --manifest and --policy "
                         f"(missing: {missing})", reason="missing-inputs")
    if not given and not args.campaign:
        raise UsageError("give the package inputs (-i, --package, --manifest, --policy), or "
                         "--journal and --campaign to watch a campaign", reason="missing-inputs")
    operator = operator_name(args.operator)
    with ExitStack() as stack:
        journal_file = campaign.journal_path(args)
        if args.campaign and not journal_file.exists():
            raise UsageError(f"journal {journal_file} does not exist", reason="journal-missing")
        journal = stack.enter_context(SqliteJournal(journal_file, read_only=not given))  # watching: no writes
        if args.campaign and args.campaign not in journal.campaigns():
            raise UsageError(f"no campaign {args.campaign} in {journal_file}", reason="unknown-campaign")
        config = SessionConfig(operator=operator, read_only=args.read_only, campaign_id=args.campaign,
                               title=f"cmspatch · {journal_file.name}")
        _exports(config, journal_file)
        if args.campaign:
            # every record: the view keeps its campaign's and the monitors' facts (containment, vitals)
            config.read_journal = lambda since: journal.records(since_seq=since)
        campaign_sinkhole: list[Any] = []  # the campaign's, once its engine starts in this window
        if given:
            _package_session(args, config, journal, stack, operator, campaign_sinkhole)
        config.bench = bench_runner(args, lambda: campaign_sinkhole[0] if campaign_sinkhole else None)
        session = Session(config)
        code = _run_app(session)
        _say_after(session, args.campaign, journal_file)
    return code


def bench_runner(args: argparse.Namespace, campaign_sinkhole: Any, hands: Any = None) -> Any:
    """The TUI's bench station (``tui.session.BenchRunner``): ``bench_station.run_station`` on a journal
    it opens as a writer (``journal_unit.campaign_unit``; the one the TUI watches is read-only), the
    unit's bench address, MAC and UDP ports from the inventory (``-i``), the sinkhole on
    ``--indicator-prefix``: the campaign's own when one runs in this window (``campaign_sinkhole()``),
    never a second one bound on the same addresses. ``hands(device)``: in the demo, what each step the
    technician answers done does to the emulated unit (``Demo.bench_hands``); on a ward, the person does."""

    def run(campaign: str, device: str, technician: str, prompter: Any, on_record: Any) -> Any:
        if hands is not None:
            prompter = _HandsAtTheBench(prompter, hands(device))
        from orchestrator.bench_station import DEFAULT_WINDOW, Station, run_station
        from orchestrator.cli.bench import unit_facts
        from orchestrator.cli.journal_unit import campaign_unit

        address, address_from, mac, mac_from, ports = unit_facts(device, args.inventory)
        window = DEFAULT_WINDOW if args.bench_window is None else args.bench_window
        station = Station(window=window, sinkhole_prefix=args.indicator_prefix, address=address,
                          address_from=address_from, mac=mac, mac_from=mac_from, udp_probe_ports=ports)
        station.check()
        unit = argparse.Namespace(**{**vars(args), "campaign": campaign})
        with campaign_unit(unit, device) as (journal, campaign_id, status):
            since = max((r.seq for r in journal.records(campaign_id)), default=0)
            try:
                return run_station(journal, campaign_id, device, status, technician, station, prompter,
                                   sinkhole=campaign_sinkhole())
            finally:  # what the session journalled, to the view (records it already has are dropped)
                for record in journal.records(campaign_id, since_seq=since):
                    on_record(record)

    return run


class _HandsAtTheBench:
    """The demo's technician: a step answered done on the screen is then done to the emulated unit, as a
    person at a real bench does it before answering (the station reads the unit only after the answer)."""

    def __init__(self, screen: Any, hands: dict[str, Any]) -> None:
        self._screen, self._hands = screen, hands

    def ask(self, step: str, number: int, instructions: str, *, elapsed: float, window: float) -> Any:
        answer = self._screen.ask(step, number, instructions, elapsed=elapsed, window=window)
        if answer.done and step in self._hands:
            self._hands[step]()
        return answer

    def say(self, message: str) -> None:
        self._screen.say(message)


def _package_session(args: argparse.Namespace, config: Any, journal: Any, stack: ExitStack,
                     operator: str, campaign_sinkhole: list[Any] | None = None) -> None:
    from orchestrator import wiring
    from orchestrator.adapters.inventory_file import load_inventory
    from orchestrator.adapters.package_verify import verify_package
    from orchestrator.cli import campaign
    from orchestrator.cli.package import archive_limits

    inventory = load_inventory(args.inventory)
    config.devices = inventory.select(args.limit) if args.limit else inventory.devices
    limits = archive_limits(args)
    config.verify = lambda: verify_package(args.package, args.manifest, args.policy, state=args.state,
                                           record=not args.read_only, limits=limits)
    policy = campaign.build_policy(args)

    def observer() -> Any:  # started with the engine: a watcher must not hold the sinkhole's ports
        if args.no_sinkhole:
            return None
        hole = wiring.sinkhole(IndicatorMap(args.indicator_prefix), stack)
        if campaign_sinkhole is not None:
            campaign_sinkhole.append(hole)  # a bench session in this window watches through it
        return hole

    def held(engine: Any) -> Any:  # locks before listeners: refused as held, never as "address in use"
        stack.enter_context(engine.hold())
        engine.observer = observer()
        return engine

    def transports() -> Any:
        return wiring.transports(inventory, args.work_orders, stack)

    def new_engine(package: Any) -> Any:
        return held(wiring.new_engine(inventory=inventory, package=package, journal=journal,
                           transports=transports(), policy=policy,
                           operator=operator, limit=args.limit))

    def resume_engine(package: Any) -> Any:
        return held(wiring.resume_engine(journal=journal, campaign_id=args.campaign, inventory=inventory,
                                  package=package, transports=transports(),
                                  operator=operator, limit=args.limit))

    config.new_engine = new_engine
    config.resume_engine = resume_engine


def _exports(config: Any, journal_file: Path) -> None:
    """The TUI's export action: ``cmspatch export``'s own function over this window's journal."""
    from orchestrator.cli import export

    def write(fmt: str, out: Path, campaign: str | None) -> str:
        return export.export_words(export.write_export(journal_file, fmt, out, campaign=campaign))

    config.export = write
    config.export_formats = export.FORMATS


def _run_app(session: Any) -> int:
    from tui.app import CmspatchApp

    app = CmspatchApp(session)
    result = app.run()
    if session.engine is not None:
        app.engine_done.wait(timeout=120)  # an interrupted engine stops at its next step boundary
    return int(result or 0)


def _say_after(session: Any, campaign_id: str | None, journal_file: Path) -> None:
    outcome = session.outcome
    engine = session.engine
    if engine is None:
        return
    cid = engine.campaign_id or campaign_id
    if outcome is not None:
        print(f"cmspatch: campaign {cid}: {outcome.message}", file=sys.stderr)
    if outcome is None or outcome.ending.resumable:
        print(f"cmspatch: resume with: cmspatch tui --journal {journal_file} --campaign {cid} "
              "-i ... --package ... --manifest ... --policy ...", file=sys.stderr)


# --- cmspatch demo ------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    from orchestrator.demo import demo_policy, pick_prefix, start_demo

    if not 1 <= args.monitors <= 2000:
        raise UsageError("--monitors must be 1..2000", reason="bad-monitors")

    def say(message: str) -> None:
        print(f"cmspatch demo: {message}", file=sys.stderr, flush=True)

    demo = start_demo(args.workdir, monitors=args.monitors, fast=args.fast, keep=args.keep,
                      address_prefix=args.address_prefix or pick_prefix(port=args.port), port=args.port,
                      indicator_map=IndicatorMap(args.indicator_prefix),
                      reboot_seconds=0.5 if args.fast else 1.0, progress=say,
                      policy=demo_policy(fast=args.fast, trigger_by=args.trigger_by))
    with demo:
        say(f"fleet up; inventory {demo.inventory_path}")
        say(f"journal {demo.journal_path} ({demo_keeps(demo)})")
        code = _demo_headless(demo, args) if args.headless else _demo_tui(demo, args)
    say(demo_epilogue(demo))
    return code


def demo_keeps(demo: Any) -> str:
    return "kept after the demo" if demo.kept else \
        "removed when the demo ends: keep it with make demo KEEP=1, or cmspatch demo --keep"


def demo_epilogue(demo: Any) -> str:
    """The demo's last words: where its journal is and the commands that read it, or that it is gone."""
    journal = demo.journal_path
    if not demo.kept:
        return (f"the journal {journal} went with the demo; to keep it: make demo KEEP=1 "
                "(cmspatch demo --keep, or --workdir DIR)")
    from orchestrator.adapters.journal_sqlite import SqliteJournal

    with SqliteJournal(journal, read_only=True) as kept:
        campaigns = [c for c in kept.campaigns() if c != DEVICE_RECORDS]
    lines = [f"the journal is kept: {journal}",
             f"  report: cmspatch export --journal {journal} --format html --out cmspatch-demo.html",
             f"  status: cmspatch status --journal {journal}"]
    if campaigns:  # none when the window closed before a campaign started
        lines.append(f"  watch:  cmspatch tui --journal {journal} --campaign {campaigns[-1]} --read-only")
    return "\n".join([*lines, f"  remove it with: rm -r {demo.workdir}"])


def _demo_headless(demo: Any, args: argparse.Namespace) -> int:
    from orchestrator.adapters.journal_sqlite import SqliteJournal
    from orchestrator.cli import campaign

    report = demo.verify(refused=args.refused)
    print(f"cmspatch demo: package {report.message}", file=sys.stderr)
    package = report.require()
    with SqliteJournal(demo.journal_path) as journal:
        engine = demo.engine(package, journal, operator=operator_name(None, warn=False))
        engine.subscribe(campaign._Progress(args.json))
        with campaign._sigint_interrupts(engine):
            outcome = engine.run(auto_approve=True)
    print(f"cmspatch demo: campaign {outcome.campaign_id}: {outcome.message} "
          f"({campaign._nonzero(outcome.counts)})", file=sys.stderr)
    for name in demo.manual_units if demo.kept else ():  # the command needs the journal to outlive the demo
        print(f"cmspatch demo: hands-on unit {name} waits for a technician: cmspatch confirm {name} "
              f"--technician NAME --journal {demo.journal_path}", file=sys.stderr)
    return int(campaign.exit_code_of(outcome))


def _demo_bench(demo: Any, window: float | None = None) -> Any:
    """The demo's bench station: its hands-on unit answers on its bench address, watched through the
    bench's own indicator stand-in (an isolated switch: never the campaign's sinkhole), and the
    technician's answers move the emulated unit (``Demo.bench_hands``)."""
    unit = argparse.Namespace(journal=str(demo.journal_path), campaign=None,
                              inventory=str(demo.inventory_path), bench_window=window,
                              indicator_prefix=demo.bench_map.loopback_prefix)
    return bench_runner(unit, lambda: None, hands=demo.bench_hands)


def _demo_tui(demo: Any, args: argparse.Namespace) -> int:
    from orchestrator.adapters.journal_sqlite import SqliteJournal
    from tui.session import Session, SessionConfig

    operator = operator_name(None, warn=False)  # the demo: nobody to name
    with SqliteJournal(demo.journal_path) as journal:
        config = SessionConfig(
            operator=operator, devices=demo.inventory().devices, read_only=args.read_only,
            verify=lambda: demo.verify(refused=args.refused),
            new_engine=lambda package: demo.engine(package, journal, operator=operator),
            title=f"cmspatch demo · {args.monitors} emulated monitors",
            technician_hands=demo.press_trigger,
            bench=_demo_bench(demo) if demo.bench_units and demo.bench_map is not None else None)
        _exports(config, demo.journal_path)
        session = Session(config)
        code = _run_app(session)
        if session.engine is not None:
            print(f"cmspatch demo: campaign {session.engine.campaign_id} is in the journal", file=sys.stderr)
    return code
