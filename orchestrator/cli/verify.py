"""``cmspatch survey``, ``cmspatch verify`` and ``cmspatch pcap``: is the backdoor there, fleet-wide?

- ``survey`` is read-only: it reads files and hashes on each monitor (no upload, no install, nothing
  written), listens with the sinkhole, and sends each monitor one small well-formed UDP probe
  (``--no-udp-probe`` to skip it; never malformed or broadcast, see ``adapters.udp_probe``). It does
  NOT press the hidden-mount triggers unless ``--exercise-triggers`` is given, because the triggers are
  the backdoor's own behaviour. It says which monitors are affected by model, by firmware version
  (CISA's list) and by what was observed.
- ``verify`` runs the same checks on demand after patching; with ``--exercise-triggers`` it can prove
  the two hidden-mount CVEs fixed (without, they stay inconclusive by rule).
- ``pcap FILE`` reads a mirror-port capture and flags any contact with 202.114.4.0/24.

All three are thin: the work is ``orchestrator.verification`` and ``orchestrator.adapters.pcap``. With
``--journal`` the results are appended as ``survey-...``/``verify-...`` campaigns: a ``survey-started``
header (devices, inventory, who, window, network evidence), then per monitor ``firmware-read``,
``check-result``, ``verdict``, ``trigger-exercised`` and ``survey``, then ``campaign-finished`` with the
counts, so ``cmspatch status`` and an auditor reading the journal see what the run was. Unreachable
monitors are inconclusive.
Exit codes: 0 every selected monitor verified fixed (pcap: capture clean), 1 some monitor affected,
vulnerable or inconclusive (pcap: indicators found), 2 usage / unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.adapters.package_reader import package_expectations
from orchestrator.adapters.ssh import SshTransport
from orchestrator.cli.people import operator_name
from orchestrator.cli.survey_status import clinical_hold_line
from orchestrator.cli.values import indicator_prefix, observation_window
from orchestrator.device_lease import DeviceLease
from orchestrator.domain.campaign import TRIGGER_BY
from orchestrator.domain.checks import KNOWN_AFFECTED_VERSIONS, TRIGGER_INSTRUCTIONS
from orchestrator.domain.devices import DeliveryPath, Device
from orchestrator.domain.events import Event, EventKind
from orchestrator.domain.indicators import IndicatorMap
from orchestrator.domain.profile import DeviceProfile
from orchestrator.domain.verdict_rules import SurveyStatus, survey_status
from orchestrator.errors import CmspatchError, ExitCode, UsageError
from orchestrator.ports import DeviceSession, NetworkObserver
from orchestrator.technician import TriggerNotExercised
from orchestrator.verification import (
    DeviceVerification,
    Identities,
    Trigger,
    session_trigger,
    verification_events,
    verify_device,
)

# A leaking monitor that found nobody listening retries on its own schedule (the emulated one backs off
# up to 5 s): a window shorter than that can miss a leak that is there.
DEFAULT_WINDOW = 10.0
SYMBOL = {"vulnerable": "!!", "unproven": "? ", "fixed": "ok", "unknown": "--"}


def register(sub: argparse._SubParsersAction[Any]) -> None:
    survey = sub.add_parser("survey", help="read-only fleet survey: which monitors carry the backdoor")
    _common(survey)
    survey.set_defaults(func=cmd_survey, mode="survey")

    verify = sub.add_parser("verify", help="prove per CVE, with evidence, that the backdoor is gone")
    _common(verify)
    verify.add_argument("--expected-version", help="the firmware version the fix installs")
    verify.add_argument("--package", type=Path,
                        help="the upgrade package pushed: its VERSION and binaries' SHA-256 become "
                             "expectations (check it first with `cmspatch package verify`)")
    verify.set_defaults(func=cmd_survey, mode="verify")

    pcap = sub.add_parser("pcap", help="read a mirror-port capture and flag contact with 202.114.4.0/24")
    pcap.add_argument("file", type=Path)
    pcap.add_argument("--sinkhole-prefix", metavar="PREFIX", type=indicator_prefix,
                      help="also flag this loopback stand-in /24 (emulation), e.g. 127.114.4")
    pcap.add_argument("--json", action="store_true")
    pcap.set_defaults(func=cmd_pcap)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--inventory", required=True, type=Path)
    p.add_argument("--limit", help="Ansible-style host pattern")
    p.add_argument("--journal", type=Path, help="append the results to this journal (SQLite)")
    p.add_argument("--operator", help="who runs it (a name; default $CMSPATCH_OPERATOR, else the login "
                   "name, marked as such)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON document")
    p.add_argument("--window", type=observation_window, default=DEFAULT_WINDOW, metavar="SECONDS",
                   help=f"how long to watch the network per monitor (default {DEFAULT_WINDOW})")
    p.add_argument("--exercise-triggers", action="store_true",
                   help="press the hidden-mount triggers (menu update, boot key) during the window")
    p.add_argument("--trigger-by", choices=TRIGGER_BY, default="service",
                   help="with --exercise-triggers: the emulator's service command (default), or a technician "
                   "at the bed, asked here on the terminal one monitor at a time (real units)")
    p.add_argument("--sinkhole-prefix", default="127.114.4", metavar="PREFIX", type=indicator_prefix,
                   help="loopback /24 standing in for 202.114.4.0/24 (default 127.114.4)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--bench-sinkhole", action="store_true",
                       help="listen on 202.114.4.119/.120 themselves (isolated bench switch only)")
    where.add_argument("--pcap", type=Path, help="use a capture as network evidence instead of a sinkhole")
    where.add_argument("--no-sinkhole", action="store_true", help="no network evidence")
    p.add_argument("--no-udp-probe", action="store_true", help="do not probe monitors over UDP")
    p.add_argument("--workers", type=int, default=48,
                   help="monitors checked in parallel (default 48; mostly waiting on the network window)")


@dataclass(frozen=True)
class Row:
    device: Device
    result: DeviceVerification
    status: SurveyStatus

    def to_dict(self) -> dict[str, Any]:
        d = self.device
        return {"device": d.name, "model": d.model, "serial": d.serial, "site": d.site, "ward": d.ward,
                "bed": d.bed, "asset_tag": d.asset_tag, "status": self.status.status,
                "affected": self.status.affected, "reasons": list(self.status.reasons),
                **self.result.to_dict()}


@contextmanager
def _observer(args: argparse.Namespace) -> Iterator[NetworkObserver | None]:
    if args.no_sinkhole:
        yield None
        return
    if args.pcap is not None:
        from orchestrator.adapters.pcap import CaptureObserver, read_capture

        mapping = IndicatorMap(args.sinkhole_prefix)
        yield CaptureObserver(read_capture(args.pcap, indicator_map=mapping), indicator_map=mapping)
        return
    from orchestrator.adapters.sinkhole import Sinkhole

    hole = Sinkhole.on_bench() if args.bench_sinkhole else Sinkhole(IndicatorMap(args.sinkhole_prefix))
    with hole:
        yield hole


def _hold_for_triggers(session: DeviceSession, profile: DeviceProfile, run_id: str, window: float
                       ) -> tuple[DeviceLease | None, str]:
    """Triggers disturb a monitor (the boot key restarts it), so a run that presses them takes the monitor's
    lease first, as a campaign does (``device_lease``): a monitor another campaign or controller is driving
    is not triggered, and the evidence names who holds it. Returns (the lease held, or None; why not)."""
    from orchestrator.domain.lease import lease_ttl

    lease = DeviceLease(campaign=run_id, upload_dir=profile.upload_dir,
                        ttl=lease_ttl(window, 300.0), run=lambda command: session.run(command, timeout=20.0),
                        log=lambda *_: None)
    try:
        held = lease.acquire()
    except CmspatchError as exc:
        return None, f"the monitor's lease could not be taken ({exc.reason}): not triggered"
    if held is not None:
        return None, f"the monitor is driven by {held.describe()}: not triggered"
    return lease, ""


def _check_one(device: Device, args: argparse.Namespace, observer: NetworkObserver | None,
               transport: SshTransport, fleet: Identities, run_id: str = "") -> Row:
    session: DeviceSession | None = None
    lease: DeviceLease | None = None
    why: str | None = None
    profile = args.profiles.of(device)  # the monitor's commands, status grammar, triggers, probe ports
    if device.delivery is DeliveryPath.MANUAL or not device.address:
        why = "no service access (hands-on unit)"
    else:
        try:
            session = transport.open(device)
        except CmspatchError as exc:
            why = f"monitor unreachable ({exc.reason}: {exc.message})"
    try:
        trigger: Trigger | None = None
        held_by = ""
        if args.exercise_triggers and session is not None:
            lease, held_by = _hold_for_triggers(session, profile, run_id or args.mode, max(args.window, 0.0))
        if held_by:
            pass  # another driver holds the monitor: read-only checks only
        elif args.exercise_triggers and args.trigger_by == "technician" and (session or device.address):
            trigger = terminal_trigger(device)
        elif args.exercise_triggers and session is not None:
            trigger = session_trigger(session, profile)  # a trigger the profile has no command for: not run
        result = verify_device(
            session, device, expected_version=getattr(args, "expected_version", None), observer=observer,
            trigger=trigger, window=max(args.window, 0.0),
            expected_files=getattr(args, "expected_files", None),
            indicator_map=None if args.bench_sinkhole else IndicatorMap(args.sinkhole_prefix),
            udp_probe_ports=None if args.no_udp_probe else profile.udp_probe_ports, no_session_reason=why,
            fleet=fleet, no_trigger_reason=held_by or None, profile=profile)
    finally:
        if lease is not None:
            lease.release()
        if session is not None:
            session.close()
    firmware = result.firmware or device.firmware
    status = survey_status(device.model, firmware, result.verdicts, KNOWN_AFFECTED_VERSIONS)
    return Row(device, result, status)


def _ask_on_stderr(prompt: str) -> str:
    """``input`` writes its prompt to stdout, which carries --json output: ask on stderr instead."""
    print(prompt, end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line


def terminal_trigger(device: Device, ask: Callable[[str], str] = _ask_on_stderr) -> Trigger:
    """A technician at the bed, asked on this terminal: Enter once done, or a reason it could not be.

    Only ever called by ``verify_device`` after the clinical gate allowed this trigger on this monitor's
    ``cms-status`` read just now: nobody is asked to press the boot key on a monitor with a patient, and
    a unit whose status cannot be read (no session) is not asked at all."""
    def trigger(name: str) -> None:
        print(f"\n>>> {device.name} ({device.site} / {device.ward} / bed {device.bed}), {name}: "
              f"{TRIGGER_INSTRUCTIONS[name]}", file=sys.stderr, flush=True)
        try:
            answer = ask("    Press Enter once done, or type why it could not be done: ").strip()
        except EOFError:
            raise TriggerNotExercised("nobody answered at the terminal (input closed)",
                                      reason="trigger-not-answered") from None
        if answer:
            raise TriggerNotExercised(f"the technician could not exercise it: {answer}",
                                      reason="trigger-declined")
    return trigger


def cmd_survey(args: argparse.Namespace) -> int:
    from orchestrator.adapters.inventory_file import load_inventory

    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    inventory = load_inventory(args.inventory)
    devices = inventory.select(args.limit)
    if not devices:
        raise UsageError(f"--limit {args.limit!r} selects no monitor")
    started = datetime.now(UTC)
    campaign = f"{args.mode}-{started.strftime('%Y%m%dT%H%M%S.%fZ')}"
    print(f"cmspatch {args.mode}: {len(devices)} monitor(s), window {args.window:g} s, triggers "
          f"{'exercised' if args.exercise_triggers else 'not exercised'}", file=sys.stderr)
    if getattr(args, "package", None) is not None:
        version, args.expected_files = package_expectations(args.package)
        args.expected_version = args.expected_version or version
    from orchestrator.adapters.profile_file import ProfileBook

    args.profiles = ProfileBook(devices)  # every monitor's profile, read and checked before any is asked
    transport = SshTransport(known_hosts=inventory.known_hosts)
    workers = min(args.workers, len(devices))
    if args.exercise_triggers and args.trigger_by == "technician":
        workers = 1  # one person, one prompt at a time
        print(f"cmspatch {args.mode}: a technician is asked for each trigger here, one monitor at a time",
              file=sys.stderr)
    with ExitStack() as stack:
        observer = stack.enter_context(_observer(args))
        fleet = Identities(inventory.devices)  # the whole inventory: a neighbour's contact is the neighbour's
        with ThreadPoolExecutor(max_workers=workers) as pool:
            rows = list(pool.map(lambda d: _check_one(d, args, observer, transport, fleet, campaign),
                                 devices))
    if args.journal is not None:
        _record(args.journal, campaign, rows, args.mode,
                header=_header(args, devices, inventory.path, started),
                triggered_by="technician" if args.trigger_by == "technician" else f"cmspatch {args.mode}")
    summary = _summary(rows)
    if args.json:
        json.dump({"campaign": campaign, "mode": args.mode, "summary": summary,
                   "devices": [r.to_dict() for r in rows]}, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        _print_human(rows, summary)
    if args.journal is not None:
        print(f"recorded as campaign {campaign} in {args.journal}", file=sys.stderr)
    return int(ExitCode.OK if all(r.result.all_fixed for r in rows) else ExitCode.INCOMPLETE)


def _header(args: argparse.Namespace, devices: Sequence[Device], inventory: str, started: datetime
            ) -> dict[str, Any]:
    """The ``survey-started`` payload: what an auditor needs to know the run was, without reading code."""
    import hashlib

    from orchestrator.domain.events import device_header

    if args.no_sinkhole:
        network = "none"
    elif args.pcap is not None:
        network = f"pcap {args.pcap}"
    else:
        network = "bench sinkhole" if args.bench_sinkhole else f"sinkhole {args.sinkhole_prefix}"
    package, package_sha256 = getattr(args, "package", None), None
    if package is not None:  # already read whole by package_expectations, so it is readable
        with package.open("rb") as handle:
            package_sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
    return {
        "mode": args.mode, "operator": operator_name(getattr(args, "operator", None), warn=False),
        "inventory": inventory, "limit": args.limit,
        "started_at": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "window": max(args.window, 0.0), "exercise_triggers": bool(args.exercise_triggers),
        "trigger_by": args.trigger_by if args.exercise_triggers else None,
        "network": network, "udp_probe": not args.no_udp_probe,
        "expected_version": getattr(args, "expected_version", None),
        "package_sha256": package_sha256,
        "devices": {d.name: device_header(d) for d in devices},
    }


def _record(path: Path, campaign: str, rows: list[Row], mode: str, header: dict[str, Any],
            triggered_by: str) -> None:
    from orchestrator.adapters.journal_sqlite import SqliteJournal

    with SqliteJournal(path) as journal:
        journal.append(Event(campaign, EventKind.SURVEY_STARTED, header))
        for row in rows:
            if row.result.firmware:  # a survey reads the state before patching; verify, after
                journal.append(Event(campaign, EventKind.FIRMWARE_READ, {
                    "version": row.result.firmware, "when": "before" if mode == "survey" else "after",
                }, device=row.device.name))
            for event in verification_events(campaign, row.result, device=row.device.name,
                                             triggered_by=triggered_by):
                journal.append(event)
            journal.append(Event(campaign, EventKind.SURVEY, {
                "affected": row.status.affected, "reasons": list(row.status.reasons),
                "status": row.status.status, "model": row.device.model,
                "firmware": row.result.firmware or row.device.firmware, "reachable": row.result.reachable,
                "clinical_hold": row.result.clinical_hold,
            }, device=row.device.name))
        journal.append(Event(campaign, EventKind.CAMPAIGN_FINISHED,
                             {"counts": dict(Counter(r.status.status for r in rows))}))


def _summary(rows: list[Row]) -> dict[str, Any]:
    by_model: dict[str, Counter[str]] = {}
    by_firmware: dict[str, Counter[str]] = {}
    for r in rows:
        by_model.setdefault(r.device.model, Counter())[r.status.status] += 1
        firmware = r.result.firmware or r.device.firmware or "unknown"
        by_firmware.setdefault(firmware, Counter())[r.status.status] += 1
    verdicts: dict[str, Counter[str]] = {}
    for r in rows:
        for v in r.result.verdicts:
            verdicts.setdefault(v.cve.value, Counter())[v.verdict.value] += 1
    def seen(prefixes: tuple[str, ...], key: str = "contacts") -> int:
        """Monitors (each counted once) with a failed network check of these kinds showing ``key``."""
        return sum(1 for r in rows if any(e.check.startswith(prefixes) and e.outcome == "fail"
                                          and e.details.get(key) for e in r.result.evidence))

    strangers = unattributed_contacts(rows)
    return {
        "monitors": len(rows),
        "observed": {  # behaviour seen on the network, independent of what the binaries carry
            "patient_data_in_clear": seen(("sinkhole-window",), "patient_record_seen"),
            "indicator_contact": seen(("sinkhole-",)),
            "hidden_mount": seen(("sinkhole-after-", "sinkhole-nfs")),
            "udp_listener_answering": sum(1 for r in rows if any(
                e.check == "udp-probe" and e.outcome == "fail" for e in r.result.evidence)),
            "unattributed_contact": len(strangers),
        },
        "status": dict(Counter(r.status.status for r in rows)),
        "affected": sum(1 for r in rows if r.status.affected),
        "unreachable": sum(1 for r in rows if not r.result.reachable),
        # contacts with the indicator range that fit no monitor (domain.attribution), each counted once
        "unattributed_contacts": strangers,
        # monitors whose probe or triggers the clinical gate held, by its reason (patient-connected, ...)
        "clinical_hold": dict(Counter(r.result.clinical_hold for r in rows if r.result.clinical_hold)),
        "by_model": {k: dict(v) for k, v in sorted(by_model.items())},
        "by_firmware": {k: dict(v) for k, v in sorted(by_firmware.items())},
        "verdicts": {k: dict(v) for k, v in sorted(verdicts.items())},
    }


def unattributed_contacts(rows: list[Row]) -> list[dict[str, Any]]:
    """Each contact that fit no monitor once, with the monitors whose network checks it made inconclusive."""
    contacts: dict[tuple[str, ...], dict[str, Any]] = {}
    for r in rows:
        for c in r.result.unattributed:
            key = (c["at"], c["source"], c["target"], c["kind"], c["sha256"])
            entry = contacts.setdefault(key, {**c, "watched": []})
            entry["watched"].append(r.device.name)
    return sorted(contacts.values(), key=lambda c: c["at"])


def _print_human(rows: list[Row], summary: dict[str, Any]) -> None:
    """Words and symbols, never colour alone (NO_COLOR and plain logs lose nothing)."""
    out = sys.stdout
    for r in rows:
        verdicts = " ".join(f"{v.cve.value[4:]}={v.verdict.value}" for v in r.result.verdicts)
        firmware = r.result.firmware or r.device.firmware or "unknown"
        out.write(f"[{SYMBOL.get(r.status.status, '  ')}] {r.status.status:<10} {r.device.name:<24} "
                  f"{r.device.model:<8} {firmware:<34} {verdicts}\n")
        for v in r.result.verdicts:
            if v.verdict.value != "fixed":
                out.write(f"        {v.cve.value} {v.verdict.value}: {v.reason[:300]}\n")
    observed = summary["observed"]
    out.write(f"\nobserved: {observed['patient_data_in_clear']} sending patient data in clear, "
              f"{observed['indicator_contact']} contacting 202.114.4.0/24, {observed['hidden_mount']} "
              f"attempting the hidden mount, {observed['udp_listener_answering']} answering on UDP, "
              f"{observed['unattributed_contact']} contact(s) fitting no monitor")
    out.write(f"\n{summary['monitors']} monitor(s): "
              + ", ".join(f"{n} {s}" for s, n in sorted(summary["status"].items()))
              + f"; {summary['affected']} affected; {summary['unreachable']} unreachable\n")
    if strangers := summary["unattributed_contacts"]:
        sources = sorted({c["source"].rsplit(":", 1)[0] for c in strangers})
        watched = sorted({n for c in strangers for n in c["watched"]})
        out.write(f"{len(strangers)} contact(s) with 202.114.4.0/24 fit no monitor (from "
                  f"{', '.join(sources)}): the network checks of {len(watched)} monitor(s) watched "
                  "meanwhile are inconclusive\n")
    if held := summary["clinical_hold"]:
        out.write(clinical_hold_line(held) + "\n")
    for title, key in (("by model", "by_model"), ("by firmware", "by_firmware")):
        out.write(f"{title}:\n")
        for name, counts in summary[key].items():
            named = "  (named affected by CISA)" if name in KNOWN_AFFECTED_VERSIONS else ""
            tally = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            out.write(f"  {name:<36} {tally}{named}\n")


def cmd_pcap(args: argparse.Namespace) -> int:
    from orchestrator.adapters.pcap import read_capture

    mapping = IndicatorMap(args.sinkhole_prefix) if args.sinkhole_prefix else None
    report = read_capture(args.file, indicator_map=mapping)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        verdict = "CLEAN: no contact with 202.114.4.0/24" if report.clean else (
            f"FLAGGED: {report.indicator_packets} packet(s) to/from 202.114.4.0/24")
        print(f"{report.path} (sha256 {report.sha256}): {report.packets} packets; {verdict}")
        for f in report.flows:
            print(f"  {f.device:<22} -> {f.indicator:<20} {f.protocol} {f.port_class:<8} {f.packets} packets")
        kinds = Counter(o.kind for o in report.observations if o.kind != "connect")
        if kinds:
            print("  decoded: " + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())))
        if report.patient_data_seen:
            fields = sorted({f for o in report.observations for f in o.field_names})
            print(f"  PATIENT DATA seen in clear (fields: {', '.join(fields)}); content not shown or stored")
        for note in report.notes:
            print(f"  note: {note}", file=sys.stderr)
    return int(ExitCode.OK if report.clean else ExitCode.INCOMPLETE)
