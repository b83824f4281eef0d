"""Proof that the backdoor is gone, one monitor at a time: run the checks, watch the network, decide.

``verify_device`` is what the engine calls after a reboot and what ``cmspatch survey`` / ``verify``
call on demand. It

1. runs the device checks of ``domain.checks.CATALOGUE`` over the service session (BusyBox commands
   that scan on the device; nothing is uploaded, installed or changed);
2. probes the monitor's own address with one benign UDP datagram per suspect port;
3. exercises the hidden-mount triggers when a ``trigger`` callable is given (in emulation
   ``cms-service trigger ...``; on a real unit the technician presses the keys) and, for a window after
   each, asks the network observer (sinkhole or capture) whether the monitor reached for 202.114.4.0/24,
   re-reading /proc/mounts and eth0 on the device;
4. turns the evidence into a verdict per CVE (``domain.verdict_rules``).

Clinical gate: right before each trigger, ``clinical_gate`` reads ``cms-status`` through the session (the
campaign's command) and asks ``domain.clinical.may_disturb``; the UDP probe, which follows the check
batch with nothing in between, is gated on the ``cms-status`` that batch read (the same reading the
patient-status evidence shows, and one round trip less per monitor). The
boot-key trigger restarts a real unit; the menu update starts the update code; and a datagram, however
benign, reaches a service known to run attacker-chosen code on what it receives (CVE-2024-12248), so
none of the three is done on a monitor with a patient connected, an alarm active, or a status we cannot
read. A held action is evidence "not exercised: patient connected" (alarm active / clinical status
unknown) and its CVE stays inconclusive. Without a session the status cannot be read, so nothing is
pressed or probed, and no technician is asked either: the person at the bed can see the patient, but a
request from cmspatch must not rest on a status cmspatch could not read (the hands-on work order already
tells the technician to check with the nurse before touching the unit).

No session (no service access, or the monitor is unreachable) makes the device checks "not run", so
those CVEs come out inconclusive, never fixed; network evidence still counts (a leak seen by the
sinkhole is a leak). Transport errors never escape: they become evidence.
Deliberately left out: retries (the engine's retry policy wraps transports; a verification that could
not run is reported, not repeated) and writing anything (``verification_events`` returns events; the
caller appends them to its journal).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from orchestrator.adapters.clock import SYSTEM_CLOCK
from orchestrator.adapters.profile_file import shipped_profile
from orchestrator.adapters.udp_probe import probe_udp
from orchestrator.domain import check_batch, checks
from orchestrator.domain.attribution import Attribution, FleetIdentities, Identity
from orchestrator.domain.checks import ProbeResult
from orchestrator.domain.clinical import ClinicalGate, may_disturb
from orchestrator.domain.devices import Device
from orchestrator.domain.events import Event, EventKind
from orchestrator.domain.indicators import IndicatorMap
from orchestrator.domain.profile import DEFAULT_PROFILE, DeviceProfile
from orchestrator.domain.verdict_rules import decide_all
from orchestrator.domain.verdicts import CveVerdict, Evidence, Verdict
from orchestrator.errors import CmspatchError
from orchestrator.ports import Clock, DeviceSession, NetworkObserver, Observation

COMMAND_TIMEOUT = 20.0
UNATTRIBUTED_RECORDED = 100  # contacts listed per verification in the journal (the total is always kept)
Trigger = Callable[[str], None]
Prober = Callable[[str, Sequence[int]], list[ProbeResult]]


@dataclass(frozen=True)
class DeviceVerification:
    firmware: str | None
    evidence: tuple[Evidence, ...]
    verdicts: tuple[CveVerdict, ...]
    device: str = ""
    triggers: tuple[str, ...] = ()  # triggers actually exercised
    reachable: bool = True  # False: the service session failed or was absent
    patient_connected: bool | None = None
    # Contacts seen while this monitor was watched that fit no monitor (``domain.attribution``): each
    # made the network checks of its window inconclusive. {contact fields, why, since, until}
    unattributed: tuple[dict[str, Any], ...] = ()
    clinical_hold: str | None = None  # the Deferral that held a trigger or the probe, if any

    @property
    def all_fixed(self) -> bool:
        return bool(self.verdicts) and all(v.verdict is Verdict.FIXED for v in self.verdicts)

    @property
    def any_vulnerable(self) -> bool:
        return any(v.verdict is Verdict.VULNERABLE for v in self.verdicts)

    def verdict_for(self, cve: str) -> Verdict:
        return next((v.verdict for v in self.verdicts if v.cve.value == str(cve)), Verdict.INCONCLUSIVE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device, "firmware": self.firmware, "reachable": self.reachable,
            "triggers": list(self.triggers), "patient_connected": self.patient_connected,
            "clinical_hold": self.clinical_hold,
            "all_fixed": self.all_fixed, "verdicts": [v.to_dict() for v in self.verdicts],
            "evidence": [e.to_dict() for e in self.evidence],
            "unattributed_contacts": [dict(c) for c in self.unattributed],
        }


class Verifier(Protocol):
    def __call__(self, session: DeviceSession | None, device: Device, *, expected_version: str | None,
                 observer: NetworkObserver | None, trigger: Trigger | None,
                 window: float) -> DeviceVerification: ...


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def clinical_gate(session: DeviceSession | None, profile: DeviceProfile | None = None) -> ClinicalGate:
    """``may_disturb`` on the monitor's status command (its profile's; default ``cms-status``) read now
    through ``session``; no session, a failed command or a transport error is an unknown status, hence no."""
    if session is None:
        return may_disturb(None)
    profile = profile or shipped_profile()
    try:
        result = session.run(profile.command("clinical_status"), timeout=COMMAND_TIMEOUT)
    except CmspatchError:  # sessions raise only ours (``ports``): a transport error is an unknown status
        return may_disturb(None)
    return may_disturb(result.text if result.ok else None, profile.status)


MAC_VAR = "mac_address"  # inventory host var with the monitor's MAC, when the site records it


def identity_of(device: Device) -> Identity:
    """What the inventory says about a monitor on the network: its address and, if recorded, its MAC."""
    mac = device.vars.get(MAC_VAR)
    return Identity(device.name, device.address or None, str(mac) if mac else None)


class Identities:
    """The fleet's network identities for one run, shared by its concurrent verifications (thread-safe):
    the inventory's (every monitor of it, not only those verified: a neighbour's leak is the
    neighbour's), plus what each monitor reports about itself (``ifconfig``) as it is verified.
    ``attribute`` applies ``domain.attribution``'s rule."""

    def __init__(self, devices: Iterable[Device]) -> None:
        self._lock = threading.Lock()
        self._fleet = FleetIdentities.of(identity_of(d) for d in devices)

    def report(self, device: str, addresses: Iterable[str], mac: str | None) -> None:
        with self._lock:
            self._fleet.report(device, addresses, mac)

    def attribute(self, obs: Observation) -> Attribution:
        with self._lock:
            return self._fleet.attribute(obs.source, obs.mac)


def session_trigger(session: DeviceSession, profile: DeviceProfile | None = None) -> Trigger:
    """A trigger by the profile's service command over the service session (the emulator's
    ``cms-service trigger NAME`` on the shipped one). A trigger the profile has no command for is the
    technician's: the caller asks one (``Engine._trigger_for``); here it is refused."""
    def trigger(name: str) -> None:
        if name not in checks.TRIGGERS:
            raise ValueError(f"unknown trigger {name!r}")
        command = (profile or shipped_profile()).trigger_command(name)
        if command is None:
            raise CmspatchError(f"trigger {name}: the device profile has no service command for it (a "
                                "technician exercises it)", reason="trigger-not-answered")
        result = session.run(command, timeout=COMMAND_TIMEOUT)
        if not result.ok:
            raise CmspatchError(f"trigger {name} failed: {result.stderr.decode('utf-8', 'replace').strip()}",
                                reason="trigger-failed")
    return trigger


@dataclass
class _Run:
    """Mutable state of one verification; the result is frozen at the end."""

    session: DeviceSession | None
    device: Device
    mapped_prefix: str | None
    unreachable: str | None = None
    evidence: list[Evidence] = field(default_factory=list)
    fetched: dict[str, tuple[bytes, int] | str] = field(default_factory=dict)  # prefetch: output or why not
    reported: tuple[tuple[str, ...], str | None] | None = None  # the monitor's own addresses and MAC
    clinical_hold: str | None = None
    # cms-status as the check batch read it (output, or None if it failed): the probe's gate, which
    # follows the batch with nothing in between, uses it instead of a second round trip.
    batch_status: tuple[str | None] | None = None
    profile: DeviceProfile | None = None  # the monitor's device profile; None: the shipped one
    commands: dict[str, str] = field(default_factory=dict)  # each device check's command (the profile's)

    def __post_init__(self) -> None:
        self.profile = p = self.profile or shipped_profile()
        self.commands = checks.device_commands(p.command("clinical_status"), p.command("firmware_read"),
                                               p.binaries, p.device_checks)

    @property
    def device_profile(self) -> DeviceProfile:
        assert self.profile is not None  # set in __post_init__
        return self.profile


    def may_disturb(self, check: str, *, read: tuple[str | None] | None = None) -> bool:
        """The clinical gate right now, before the action ``check`` speaks to (on ``read``, a status just
        read, or on a fresh ``cms-status``); a no is recorded as that check's "not exercised" evidence
        (details ``clinical``: the Deferral), and a yes is never reused for a later action."""
        gate = may_disturb(read[0], self.device_profile.status) if read is not None else clinical_gate(
            None if self.unreachable is not None else self.session, self.profile)
        if gate.allowed:
            return True
        assert gate.reason is not None
        self.clinical_hold = self.clinical_hold or gate.reason.value
        status = self.device_profile.command("clinical_status")
        why = gate.why_not + (f" (no service session to read {status})" if self.session is None
                              else " (the service session failed)" if self.unreachable is not None else "")
        evidence = checks.not_run(check, now_iso(), f"not exercised: {why}")
        self.evidence.append(replace(evidence, details={**evidence.details, "clinical": gate.reason.value}))
        return False

    def prefetch(self, names: Sequence[str]) -> None:
        """Run the checks ``names`` in one round trip (``domain.check_batch``); ``run`` then hands out each
        one's output in turn, exactly as if it had run alone. A transport error makes the monitor unreachable,
        as a single command would."""
        names = [name for name in names if name in self.commands]  # the profile's declared checks only
        if self.session is None or self.unreachable is not None or not names:
            return
        nonce = secrets.token_hex(16)
        try:
            result = self.session.run(check_batch.batch_script(names, nonce, self.commands),
                                      timeout=COMMAND_TIMEOUT * len(names))
        except CmspatchError as exc:
            self.unreachable = f"monitor unreachable ({exc.reason}: {exc.message})"
            return
        parts = check_batch.split_batch(result.stdout, nonce, names)
        for name in names:
            part = parts.get(name)
            if part is None:
                self.fetched[name] = (f"no result for this check in the batch's output (batch exit "
                                      f"{result.exit_status})")
            else:
                extra = part.stderr if part.exit_status not in (0, 1) else b""
                self.fetched[name] = (part.stdout + extra, part.exit_status)

    def run(self, check: str) -> tuple[bytes, int] | None:
        command = self.commands.get(check)
        if command is None:
            self.evidence.append(checks.not_declared(check, now_iso(), self.device_profile.name))
            return None
        if self.session is None or self.unreachable is not None:
            self.evidence.append(checks.not_run(check, now_iso(), self.unreachable or "no service access"))
            return None
        if (fetched := self.fetched.pop(check, None)) is not None:
            if isinstance(fetched, str):
                self.evidence.append(checks.not_run(check, now_iso(), fetched))
                return None
            return fetched
        try:
            result = self.session.run(command, timeout=COMMAND_TIMEOUT)
        except CmspatchError as exc:
            self.unreachable = f"monitor unreachable ({exc.reason}: {exc.message})"
            self.evidence.append(checks.not_run(check, now_iso(), self.unreachable))
            return None
        extra = result.stderr if result.exit_status not in (0, 1) else b""
        return result.stdout + extra, result.exit_status

    def add(self, evidence: Evidence) -> None:
        command = self.commands.get(evidence.check)
        if command is not None and evidence.details.get("command") not in (None, command):
            evidence = replace(evidence, details={**evidence.details, "command": command})  # as run
        self.evidence.append(evidence)


# What _device_checks reads, fetched in one batch.
DEVICE_CHECKS = ("firmware-version", "monitor-mount-string", "update-mount-string",
                 "monitor-indicator-address", "update-indicator-address", "binary-hashes", "nfs-mount",
                 "indicator-route", "indicator-socket", "udp-listener", "eth0-state", "patient-status",
                 "interface-identity")


def _device_checks(r: _Run, expected_version: str | None, expected_files: Mapping[str, str] | None
                   ) -> tuple[str | None, list[int], str, bool | None]:
    firmware: str | None = None
    listeners: list[int] = []
    eth0 = "unknown"
    patient: bool | None = None
    r.prefetch(DEVICE_CHECKS)
    if (out := r.run("firmware-version")) is not None:
        ev = (checks.firmware_version(out[0], now_iso(), expected_version) if out[1] == 0
              else checks.command_error("firmware-version", now_iso(), out[1], out[0]))
        firmware = str(ev.details.get("version") or "") or None
        r.add(ev)
    for check in ("monitor-mount-string", "update-mount-string", "monitor-indicator-address",
                  "update-indicator-address"):
        if (out := r.run(check)) is not None:
            r.add(checks.binary_pattern(check, out[0], out[1], now_iso(), r.device_profile.binaries))
    if (out := r.run("binary-hashes")) is not None:
        expected = checks.expected_at(expected_files, r.device_profile.binaries)
        r.add(checks.binary_hashes(out[0], out[1], now_iso(), expected))
    simple: dict[str, Callable[[bytes, str], Evidence]] = {
        "nfs-mount": lambda o, at: checks.nfs_mounts("nfs-mount", o, at, r.mapped_prefix),
        "indicator-route": lambda o, at: checks.routes(o, at, r.mapped_prefix),
        "indicator-socket": lambda o, at: checks.indicator_sockets(o, at, r.mapped_prefix),
    }
    for check, parse in simple.items():
        if (out := r.run(check)) is not None:
            r.add(parse(out[0], now_iso()) if out[1] == 0 else checks.command_error(check, now_iso(), out[1],
                                                                                      out[0]))
    if (out := r.run("udp-listener")) is not None:
        if out[1] == 0:
            ev, listeners = checks.udp_listeners(out[0], now_iso())
            r.add(ev)
        else:
            r.add(checks.command_error("udp-listener", now_iso(), out[1], out[0]))
    if (out := r.run("eth0-state")) is not None and out[1] == 0:
        ev, eth0 = checks.eth0_state(out[0], now_iso())
        r.add(ev)
    if (out := r.run("patient-status")) is not None:
        r.batch_status = (out[0].decode("utf-8", "replace") if out[1] == 0 else None,)
    if out is not None and out[1] == 0:
        ev, patient = checks.patient_status(out[0], now_iso(), r.device_profile.status)
        r.add(ev)
    if (out := r.run("interface-identity")) is not None:
        if out[1] == 0:
            ev, r.reported = checks.interface_identity(out[0], now_iso())
            r.add(ev)
        else:
            r.add(checks.command_error("interface-identity", now_iso(), out[1], out[0]))
    return firmware, listeners, eth0, patient


def _wait(watch: _Watch, since: str, seconds: float, stop_when: Callable[[Observation], bool]) -> None:
    """Watch a live observer for ``seconds``; return early once it has seen, since ``since``, what settles
    the question from this monitor."""
    if seconds > 0 and watch.observer is not None:
        watch.observer.wait_for(lambda o: o.at >= since and stop_when(o) and watch.owns(o), seconds)


def _mount_completed(obs: Observation) -> bool:
    """The last step of the hidden mount (MNT "/pm"): waiting past it only delays a vulnerable verdict."""
    return obs.kind == "rpc-mount" and "MNT" in obs.summary


@dataclass
class _Watch:
    """The network side of one verification: who to watch, from when, and the trigger windows."""

    observer: NetworkObserver | None
    source: str
    since: str
    why_not: str  # why there is no observer, if there is none
    clock: Clock = SYSTEM_CLOCK
    started: float = 0.0  # on ``clock``
    device: str = ""
    identities: Identities = field(default_factory=lambda: Identities(()))
    exercised: list[str] = field(default_factory=list)
    windows: list[tuple[str, str]] = field(default_factory=list)
    unattributed: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)

    def owns(self, obs: Observation) -> bool:
        return self.identities.attribute(obs).device == self.device

    def seen(self, since: str | None, until: str) -> tuple[list[Observation], list[Observation]]:
        """This monitor's contacts in the window, and those that fit no monitor (noted for the record);
        contacts attributed to another monitor are that monitor's business."""
        assert self.observer is not None
        mine: list[Observation] = []
        strangers: list[Observation] = []
        for o in self.observer.observations(since=since, until=until):
            who = self.identities.attribute(o)
            if who.device == self.device:
                mine.append(o)
            elif not who.attributed:
                strangers.append(o)
                key = (o.at, o.source, o.target, o.kind, o.sha256)
                self.unattributed.setdefault(key, {
                    "at": o.at, "source": o.source, "mac": o.mac, "target": o.target, "protocol": o.protocol,
                    "kind": o.kind, "summary": o.summary, "sha256": o.sha256, "why": who.why,
                    "since": since or "start of capture", "until": until})
        return mine, strangers

    @property
    def recorded(self) -> bool:
        """A capture read from a file: its traffic happened before this run, not after our triggers."""
        return self.observer is not None and self.observer.recorded

    @property
    def live(self) -> bool:
        return self.observer is not None and not self.recorded


def _exercise_triggers(r: _Run, watch: _Watch, trigger: Trigger, window: float, eth0: str) -> None:
    share = window / len(checks.TRIGGERS)
    for name in checks.TRIGGERS:
        check = f"sinkhole-after-{name}"
        if not r.may_disturb(check):
            continue
        since, t0 = now_iso(), watch.clock.now()
        try:
            trigger(name)
        except CmspatchError as exc:  # a trigger is the technician or the device: report, don't crash
            what = "not exercised" if exc.reason in ("trigger-not-answered", "trigger-declined") else "failed"
            r.add(checks.not_run(check, now_iso(), f"trigger {name} {what}: {exc}"))
            continue
        watch.exercised.append(name)
        if watch.live:
            _wait(watch, since, share, _mount_completed)
        elif share > 0:
            watch.clock.sleep(share)  # no live observer: still give the device time before re-reading it
        r.prefetch((f"nfs-mount-after-{name}", f"eth0-after-{name}"))
        if (out := r.run(f"nfs-mount-after-{name}")) is not None:
            r.add(checks.nfs_mounts(f"nfs-mount-after-{name}", out[0], now_iso(), r.mapped_prefix))
        if (out := r.run(f"eth0-after-{name}")) is not None:
            r.add(checks.eth0_after(name, eth0, out[0], now_iso()))
        until = now_iso()
        watch.windows.append((since, until))
        if watch.observer is None:
            r.add(checks.not_run(check, until, watch.why_not))
        elif watch.recorded:
            r.add(checks.not_run(check, until, "a recorded capture cannot show what follows a trigger now"))
        else:
            seen, strangers = watch.seen(since, until)
            r.add(checks.network_window(check, seen, until, since=since, until=until, source=watch.source,
                                        watched=watch.clock.now() - t0, unattributed=strangers))


def _window_evidence(r: _Run, watch: _Watch) -> None:
    until = now_iso()
    if watch.observer is None:
        for check in ("sinkhole-window", "sinkhole-nfs"):
            r.add(checks.not_run(check, until, watch.why_not))
        return
    since = None if watch.recorded else watch.since
    seen, strangers = watch.seen(since, until)
    shown_since = since or (seen[0].at if seen else "start of capture")
    watched = None if watch.recorded else watch.clock.now() - watch.started
    r.add(checks.network_window("sinkhole-window", seen, until, since=shown_since, until=until,
                                source=watch.source, watched=watched, unattributed=strangers))

    def outside(items: list[Observation]) -> list[Observation]:
        return [o for o in items if not any(a <= o.at <= b for a, b in watch.windows)]

    r.add(checks.network_window("sinkhole-nfs", outside(seen), until, since=shown_since, until=until,
                                source=watch.source, watched=watched, unattributed=outside(strangers)))


def verify_device(session: DeviceSession | None, device: Device, *, expected_version: str | None,
                  observer: NetworkObserver | None, trigger: Trigger | None, window: float,
                  indicator_map: IndicatorMap | None = None, expected_files: Mapping[str, str] | None = None,
                  udp_probe_ports: Sequence[int] | None = checks.DEFAULT_UDP_PROBE_PORTS,
                  prober: Prober | None = None, no_session_reason: str | None = None,
                  no_trigger_reason: str | None = None, fleet: Identities | None = None,
                  profile: DeviceProfile | None = None, clock: Clock = SYSTEM_CLOCK) -> DeviceVerification:
    """Verify one monitor (implements ``Verifier``). Never raises for a device problem: see module doc.

    ``udp_probe_ports=None`` skips the probe (CVE-2024-12248 then stays inconclusive);
    ``no_session_reason`` says why ``session`` is None (shown in the evidence instead of "no service access");
    ``no_trigger_reason`` likewise says why ``trigger`` is None. ``fleet``: the run's ``Identities``
    (default: this monitor alone, so every other sender is unattributed); a contact in the window that
    fits no monitor makes this monitor's network checks inconclusive (``domain.attribution``). The probe
    and each trigger ask the clinical gate first (module doc): a monitor in clinical use is read, never
    probed or triggered. ``clock`` times the observation windows (and the pause after a trigger when
    nothing watches live).
    """
    watched_map = observer.indicator_map if observer is not None else None
    mapped = (indicator_map or watched_map or IndicatorMap()).loopback_prefix
    r = _Run(session, device, mapped, unreachable=no_session_reason if session is None else None,
             profile=profile)
    watch_from, started = now_iso(), clock.now()
    firmware, listeners, eth0, patient = _device_checks(r, expected_version, expected_files)

    if udp_probe_ports is None:
        r.add(checks.not_run("udp-probe", now_iso(), "UDP probe switched off for this run"))
    elif not device.address:
        r.add(checks.not_run("udp-probe", now_iso(), "no network address (hands-on unit)"))
    elif r.may_disturb("udp-probe", read=r.batch_status):
        probe = prober or (lambda address, ports: probe_udp(address, ports))
        ports = sorted(set(udp_probe_ports) | set(listeners))
        r.add(checks.udp_probe(probe(device.address, ports), now_iso(), device.address))

    source = device.address
    no_watch = ("no network observer (sinkhole/pcap)" if observer is None
                else None if source else "no network address to attribute traffic to (hands-on unit)")
    fleet = fleet or Identities((device,))
    if r.reported is not None:
        fleet.report(device.name, *r.reported)
    watch = _Watch(None if no_watch else observer, source, watch_from, no_watch or "", clock, started,
                   device=device.name, identities=fleet)
    if trigger is not None:
        _exercise_triggers(r, watch, trigger, window, eth0)
    else:
        for name in checks.TRIGGERS:
            r.add(checks.not_run(f"sinkhole-after-{name}", now_iso(), "trigger not exercised (" + (
                no_trigger_reason or "read-only run; use --exercise-triggers") + ")"))
    if watch.live:
        # The whole verification watches at least ``window`` for the leak (triggers may have ended early on
        # a mount). Only patient data in clear ends it sooner: nothing stronger can come.
        remaining = window - (clock.now() - started)
        _wait(watch, watch_from, remaining, lambda o: o.patient_record)
    _window_evidence(r, watch)

    evidence = tuple(r.evidence)
    return DeviceVerification(firmware=firmware, evidence=evidence, verdicts=decide_all(evidence),
                              device=device.name, triggers=tuple(watch.exercised),
                              reachable=session is not None and r.unreachable is None,
                              patient_connected=patient, clinical_hold=r.clinical_hold,
                              unattributed=tuple(watch.unattributed.values()))


def verification_events(campaign: str, result: DeviceVerification, *, device: str | None = None,
                        triggered_by: str = "cmspatch", by_trigger: Mapping[str, str] | None = None
                        ) -> list[Event]:
    """The journal records of one verification, identical whoever ran it (engine, survey, verify).
    ``by_trigger`` names who exercised a given trigger when it was not ``triggered_by`` (a technician)."""
    name = device or result.device
    who = by_trigger or {}
    events = [Event(campaign, EventKind.TRIGGER_EXERCISED, {"trigger": t, "by": who.get(t, triggered_by)},
                    device=name) for t in result.triggers]
    events += [Event(campaign, EventKind.CHECK_RESULT,
                     {"evidence": e.to_dict(), "cves": [c.value for c in checks.cves_of(e)]}, device=name)
               for e in result.evidence]
    events += [Event(campaign, EventKind.VERDICT, v.to_dict(), device=name) for v in result.verdicts]
    if result.unattributed:  # fleet-wide (no device: they fit none), one record per verification
        events.append(Event(campaign, EventKind.UNATTRIBUTED_CONTACT, {
            "watched": name, "total": len(result.unattributed),
            "contacts": [dict(c) for c in result.unattributed[:UNATTRIBUTED_RECORDED]]}))
    return events


@dataclass(frozen=True)
class CampaignResult:
    """One monitor's verification as a campaign reads it (``ports.VerificationResult``)."""

    result: DeviceVerification
    device: str

    @property
    def all_fixed(self) -> bool:
        return self.result.all_fixed

    @property
    def any_vulnerable(self) -> bool:
        return self.result.any_vulnerable

    def events(self, campaign: str, *, by_trigger: Mapping[str, str]) -> list[Event]:
        return verification_events(campaign, self.result, device=self.device, triggered_by="cmspatch",
                                   by_trigger=by_trigger)


class CampaignVerifier:
    """``ports.Verification`` for a campaign: ``verify_device`` with the network identities of the whole
    inventory (made on first use and shared by every monitor of the run: a neighbour's leak is the
    neighbour's), the monitor's profile, and the triggers by its service command."""

    def __init__(self, devices: Iterable[Device], verify: Callable[..., DeviceVerification] = verify_device,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._devices = tuple(devices)
        self._verify = verify
        self._clock = clock
        self._lock = threading.Lock()
        self._fleet: Identities | None = None

    def service_trigger(self, session: DeviceSession, profile: DeviceProfile) -> Trigger:
        return session_trigger(session, profile)

    def verify(self, session: DeviceSession | None, device: Device, *, profile: DeviceProfile,
               expected_version: str, observer: NetworkObserver | None, trigger: Trigger | None,
               no_trigger_reason: str, window: float, expected_files: Mapping[str, str] | None
               ) -> CampaignResult:
        with self._lock:
            self._fleet = self._fleet or Identities(self._devices)
        kwargs: dict[str, Any] = {"expected_files": expected_files, "fleet": self._fleet,
                                  "clock": self._clock}
        if device.profile != DEFAULT_PROFILE:  # verify_device's defaults are the shipped profile's
            kwargs.update(profile=profile, udp_probe_ports=profile.udp_probe_ports)
        if no_trigger_reason:
            kwargs["no_trigger_reason"] = no_trigger_reason
        result = self._verify(session, device, expected_version=expected_version, observer=observer,
                              trigger=trigger, window=window, **kwargs)
        return CampaignResult(result, device.name)
