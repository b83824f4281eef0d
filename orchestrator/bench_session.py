"""One bench session: watch a hands-on unit from the network while a named technician works through the steps.

``run_bench`` is what ``cmspatch bench`` (and the TUI's monitor screen) calls, with the campaign's journal,
a live sinkhole and/or a capture of the bench port read at the end, and a ``Prompter`` (the person). It

1. journals ``bench-started`` (who, the unit's bench address and MAC and where they came from, observers);
2. asks each step of ``domain.bench.STEPS`` in turn, journalling each answer (``bench-step``) as it comes,
   with the unit's first packets after ``on-bench`` (and its address, learnt from them when nobody gave
   it); after the simulator and each trigger it watches a share of the window, so what the unit does
   then is seen; the trigger requests wait for the ``on-bench`` confirmation (``bench.may_act``);
3. probes the unit on the UDP ports its device profile names (none named: CVE-2024-12248 stays open);
4. waits out the rest of the observation window, then (a capture given) asks the technician to stop the
   capture (``bench.CAPTURE_STEP``) and reads it;
5. decides with ``domain.bench`` and journals the evidence, the verdicts (level ``bench``), the triggers
   exercised and ``bench-finished``.

Who is who on the bench goes by ``domain.attribution``: the unit's address (and MAC where a capture shows
it); any other sender that reaches the indicator range makes the windows it falls in inconclusive.
Deliberately left out: the campaign's state transitions (the engine folds ``bench-finished``), the lock
(the caller holds the journal's claim on the unit), and starting the sinkhole (the caller's, so the TUI
and the CLI can share one).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestrator.adapters.pcap import CaptureReport
from orchestrator.domain import bench, checks
from orchestrator.domain.attribution import FleetIdentities, Identity, host_of
from orchestrator.domain.checks import ProbeResult
from orchestrator.domain.events import Event, EventKind
from orchestrator.domain.verdicts import CveVerdict, Evidence
from orchestrator.ports import Answer, Journal, NetworkObserver, Observation, Prompter

__all__ = ["Answer", "BenchResult", "BenchSetup", "Prompter", "run_bench"]

FIRST_PACKETS = 5  # recorded after the unit is put on the bench
SETTLE_SECONDS = 0.5  # after on-bench: time for a networked unit to say something first
Prober = Callable[[str, Sequence[int]], list[ProbeResult]]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class BenchSetup:
    campaign: str
    device: str
    technician: str
    window: float
    address: str | None = None
    address_from: str = ""
    mac: str | None = None
    mac_from: str = ""
    networking_removed: bool = False
    udp_probe_ports: tuple[int, ...] = ()  # the device profile's; () probes nothing
    holder: str = ""


@dataclass
class BenchResult:
    outcome: str
    reason: str
    verdicts: tuple[CveVerdict, ...]
    evidence: tuple[Evidence, ...]
    address: str | None
    mac: str | None
    first_packets: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Session:
    setup: BenchSetup
    journal: Journal
    prompter: Prompter
    live: NetworkObserver | None
    live_label: str
    live_since: str
    t0: float = field(default_factory=time.monotonic)
    started: str = field(default_factory=now_iso)
    address: str | None = None
    steps: dict[str, bench.StepAnswer] = field(default_factory=dict)
    windows: dict[str, bench.TriggerWindow] = field(default_factory=dict)
    first: list[dict[str, Any]] = field(default_factory=list)

    def emit(self, kind: EventKind, data: dict[str, Any]) -> None:
        self.journal.append(Event(self.setup.campaign, kind, data, device=self.setup.device))

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def watch(self, seconds: float, why: str) -> None:
        """Let ``seconds`` pass under the live observer's eye (the unit does what it does meanwhile)."""
        if seconds <= 0:
            return
        self.prompter.say(f"[{self.elapsed():6.1f} s] watching {seconds:.1f} s {why}")
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.live is not None:
                self.live.wait_for(lambda o: False, min(left, 1.0))
            else:
                time.sleep(min(left, 1.0))

    def step(self, name: str, number: int) -> None:
        asked = now_iso()
        why_not = bench.may_act(self.steps) if name in checks.TRIGGERS else None
        if why_not is not None:
            answer = Answer(False, f"not asked: {why_not}")
        else:
            answer = self.prompter.ask(name, number, bench.STEP_INSTRUCTIONS[name], elapsed=self.elapsed(),
                                       window=self.setup.window)
        answered = now_iso()
        self.steps[name] = bench.StepAnswer(name, answer.done, self.setup.technician, answer.note, asked,
                                            answered)
        extra: dict[str, Any] = {}
        share = self.setup.window / len(bench.STEPS)
        if name == "on-bench" and answer.done:
            self.watch(min(SETTLE_SECONDS, share), "for the unit's first packets")
            extra = self._first_packets()
        elif answer.done and name != "on-bench":
            t = time.monotonic()
            self.watch(share, f"after {name}")
            if name in checks.TRIGGERS:
                self.windows[name] = bench.TriggerWindow(asked, now_iso(), time.monotonic() - t)
        self.emit(EventKind.BENCH_STEP, {"step": name, "by": self.setup.technician, "done": answer.done,
                                         "note": answer.note, "asked_at": asked, "answered_at": answered,
                                         "elapsed": round(self.elapsed(), 3), **extra})

    def stop_capture(self) -> bool:
        """The capture's last prompt (``bench.CAPTURE_STEP``), journalled like a step; True when stopped."""
        asked = now_iso()
        answer = self.prompter.ask(bench.CAPTURE_STEP, len(bench.STEPS) + 1, bench.CAPTURE_INSTRUCTIONS,
                                   elapsed=self.elapsed(), window=self.setup.window)
        self.emit(EventKind.BENCH_STEP, {"step": bench.CAPTURE_STEP, "by": self.setup.technician,
                                         "done": answer.done, "note": answer.note, "asked_at": asked,
                                         "answered_at": now_iso(), "elapsed": round(self.elapsed(), 3)})
        return answer.done

    def _first_packets(self) -> dict[str, Any]:
        seen = self.live.observations(since=self.started) if self.live is not None else []
        self.first = [{"at": o.at, "source": o.source, "target": o.target, "kind": o.kind,
                       "summary": o.summary} for o in seen[:FIRST_PACKETS]]
        if self.address is None and seen:
            self.address = host_of(seen[0].source)
            self.prompter.say(f"the unit's bench address, from its first packet: {self.address}")
        return {"address": self.address, "mac": self.setup.mac, "first_packets": self.first}


def run_bench(journal: Journal, setup: BenchSetup, prompter: Prompter, *, live: NetworkObserver | None,
              live_label: str = "", live_since: str = "", capture: Callable[[], CaptureReport] | None = None,
              capture_label: str = "", prober: Prober | None = None) -> BenchResult:
    """Run one bench session (module doc). ``live``: a started sinkhole, running since ``live_since``;
    ``capture``: reads the bench port's capture once the window is over. Journals as it goes."""
    if live is None and capture is None:
        raise ValueError("a bench session needs a live sinkhole or a capture to watch the unit")
    s = _Session(setup, journal, prompter, live, live_label, live_since or now_iso(), address=setup.address)
    observers = [o for o in (live_label if live is not None else "", capture_label if capture else "") if o]
    s.emit(EventKind.BENCH_STARTED, {
        "technician": setup.technician, "address": setup.address, "address_from": setup.address_from,
        "mac": setup.mac, "mac_from": setup.mac_from, "observers": observers, "window": setup.window,
        "networking_removed": setup.networking_removed, "udp_probe_ports": list(setup.udp_probe_ports),
        "holder": setup.holder})
    for number, name in enumerate(bench.STEPS, 1):
        s.step(name, number)
    probe, probe_not_run = _probe(s, prober)
    s.watch(setup.window - s.elapsed(), "for the rest of the observation window")
    ended, watched = now_iso(), s.elapsed()

    coverage: list[bench.Coverage] = []
    seen: list[Observation] = []
    if live is not None:
        coverage.append(bench.Coverage(live_label, s.live_since, now_iso()))
        seen += live.observations(since=s.started, until=ended)
    sent: int | None = None
    report: CaptureReport | None = None
    if capture is not None and s.stop_capture():
        report = capture()
        coverage.append(bench.Coverage(capture_label, report.first_packet, report.last_packet))
        seen += [o for o in report.observations if s.started <= o.at <= ended]
        if s.address is None and report.observations:
            s.address = host_of(report.observations[0].source)
        mac = setup.mac or (report.sender_macs.get(s.address) if s.address else None)
        sent = report.sent_by(s.address, mac) if (s.address or mac) else None
    identities = FleetIdentities.of([Identity(setup.device, s.address, setup.mac)])
    mine = [o for o in seen if identities.attribute(o.source, o.mac).device == setup.device]
    strangers = [o for o in seen if identities.attribute(o.source, o.mac).device is None]
    facts = bench.BenchFacts(
        started=s.started, ended=ended, window=setup.window, watched=watched,
        source=s.address or "the unit", coverage=tuple(coverage), steps=dict(s.steps),
        trigger_windows=dict(s.windows), contacts=tuple(mine), strangers=tuple(strangers),
        networking_removed=setup.networking_removed, sent_anything=sent,
        silence_observer=capture_label, probe=probe, probe_not_run=probe_not_run,
        probe_address=s.address or "")
    evidence = bench.bench_evidence(facts)
    verdicts = bench.bench_verdicts(evidence, networking_removed=setup.networking_removed)
    outcome, reason = bench.bench_outcome(verdicts)
    for trigger in checks.TRIGGERS:
        if trigger in s.windows:
            s.emit(EventKind.TRIGGER_EXERCISED, {"trigger": trigger, "by": f"technician {setup.technician}"})
    for e in evidence:
        s.emit(EventKind.CHECK_RESULT, {"evidence": e.to_dict(),
                                        "cves": [c.value for c in checks.cves_of(e)]})
    for v in verdicts:
        s.emit(EventKind.VERDICT, v.to_dict())
    silent = None if sent is None else (sent == 0 and not mine)
    s.emit(EventKind.BENCH_FINISHED, {
        "outcome": outcome, "level": "bench", "reason": reason,
        "verdicts": {v.cve.value: v.verdict.value for v in verdicts}, "silent": silent,
        "watched": round(watched, 3), "address": s.address, "mac": setup.mac,
        "capture": None if report is None else {
            key: report.to_dict()[key] for key in ("path", "sha256", "packets", "first_packet", "last_packet",
                                                   "senders", "sender_macs")}})
    return BenchResult(outcome, reason, verdicts, evidence, s.address, setup.mac, s.first)


def _probe(s: _Session, prober: Prober | None) -> tuple[tuple[ProbeResult, ...] | None, str]:
    if not s.setup.udp_probe_ports:
        return None, bench.NO_UDP_PORT
    if (why := bench.may_act(s.steps)) is not None:
        return None, f"not probed: {why}"
    if s.address is None:
        return None, "not probed: the unit's bench address is unknown (give --address)"
    if prober is None:
        from orchestrator.adapters.udp_probe import probe_udp

        prober = probe_udp
    ports = ", ".join(map(str, s.setup.udp_probe_ports))
    s.prompter.say(f"[{s.elapsed():6.1f} s] probing {s.address} on UDP {ports}")
    return tuple(prober(s.address, s.setup.udp_probe_ports)), ""
