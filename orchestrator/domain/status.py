"""Fleet status: the current state of a campaign, derived from its journal records and nothing else.

Every view (CLI ``status``, TUI, exports) and a resumed engine read state through this projection, so
they cannot disagree. It is incremental (``FleetStatus.apply(record)``) so the TUI can feed it one
record at a time; ``project`` folds a whole record stream.

Deliberately left out: no I/O, and no judgement about what to do next (that is ``domain.campaign``).
Records of other campaigns in the same stream are ignored once a campaign is being followed.

Facts about a monitor that belong to no campaign (a vitals check against a patient simulator, its
containment) are journalled under the pseudo-campaign ``DEVICE_RECORDS``; every campaign that holds the
monitor shows them (``FleetStatus.vitals`` / ``containment``), and nothing resumes or exports that id as a
campaign of its own.

Read-only runs (``cmspatch survey`` / ``verify``, campaign ids ``survey-...`` / ``verify-...``) fold into the
same ``FleetStatus`` with ``mode`` set: their header is ``survey-started`` and each monitor gets its survey
classification (``survey_status``). Such a header never displaces a patch campaign being followed (a
survey run beside a campaign must not pull the TUI or a resume off it). Journals written before the header
existed still fold when the campaign is named: ``project(records, "survey-...")`` starts from the id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.evidence import DEFAULT_LEVEL, STRENGTH, EvidenceLevel, level_of, weakest
from orchestrator.domain.lifecycle import TERMINAL, DeviceState
from orchestrator.domain.verdicts import Verdict


@dataclass
class DeviceStatus:
    """One monitor's current standing (mutable on purpose: it is the fold's accumulator)."""

    name: str
    model: str = ""
    serial: str = ""
    site: str = ""
    ward: str = ""
    bed: str = ""
    asset_tag: str | None = None
    delivery: str = "ssh"
    wave: int | None = None
    state: DeviceState = DeviceState.PENDING
    reason: str = ""
    firmware_before: str | None = None
    firmware_after: str | None = None
    # Who read ``firmware_after``: "" when cmspatch read it on the monitor, "technician NAME" when it is
    # the version a technician read on the About screen and typed in (hands-on path).
    firmware_after_by: str = ""
    attempts: int = 0  # attempt records, every step counted
    highest_attempt: int = 0  # the largest attempt number any step reported (1 = nothing was retried)
    retries: int = 0  # attempts that ended in "retry"
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    verdict_levels: dict[str, EvidenceLevel] = field(default_factory=dict)  # cve -> how it was established
    last_at: str = ""
    # The wave running when this monitor reached its final outcome: the halting rules count it there
    # (domain.projection.tally), however it got there (a re-check of an earlier wave's deferral too).
    ended_in_wave: int | None = None
    rechecks: int = 0  # deferrals after the first: bounds the re-checks however the monitor got there
    deferrals: int = 0
    technician: str | None = None  # hands-on path: who confirmed
    work_order: dict[str, Any] | None = None
    # survey/verify runs: what was read on the monitor, and the classification of the survey event
    firmware_seen: str | None = None
    survey_status: str | None = None  # "vulnerable" | "unproven" | "fixed" | "unknown" (verdict_rules)
    affected: bool | None = None
    reachable: bool | None = None
    survey_reasons: tuple[str, ...] = ()
    clinical_hold: str | None = None  # the clinical gate held this monitor's probe or triggers (a Deferral)
    # A trigger a person was asked to exercise and has not answered yet (the trigger-requested payload).
    trigger_request: dict[str, Any] | None = None
    # Hands-on bench session (cmspatch bench): the latest bench-started payload, its steps so far, and the
    # bench-finished payload once it ended (None while it runs or if none ran).
    bench_started: dict[str, Any] | None = None
    bench_steps: list[dict[str, Any]] = field(default_factory=list)
    bench_result: dict[str, Any] | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def not_asked_for(self, trigger: str) -> str | None:
        """None while this monitor waits for ``trigger`` to be exercised; otherwise what it waits for, in
        words (an answer to a request nobody made is refused, from the TUI and the CLI alike)."""
        asked = (self.trigger_request or {}).get("trigger")
        if asked == trigger:
            return None
        return f"asks for {asked}" if asked else "asks for no trigger now"


@dataclass
class FleetStatus:
    campaign: str | None = None
    devices: dict[str, DeviceStatus] = field(default_factory=dict)
    waves: list[list[str]] = field(default_factory=list)
    current_wave: int | None = None
    waves_started: set[int] = field(default_factory=set)
    waves_finished: set[int] = field(default_factory=set)
    gate_waiting: int | None = None  # wave index waiting for approval
    approved: dict[int, str] = field(default_factory=dict)  # wave -> approver
    halted: dict[str, Any] | None = None  # the campaign-halted payload
    aborted: dict[str, Any] | None = None
    paused: bool = False
    finished: bool = False
    created: dict[str, Any] = field(default_factory=dict)  # the campaign-created payload
    last_seq: int = 0
    mode: str = "patch"  # "patch" | "survey" | "verify" (read-only runs: ``created`` is their header)
    # Contacts with the indicator range that fit no monitor (``unattributed-contact``), each once:
    # the contact's fields plus ``watched``, the monitors whose network checks it made inconclusive.
    unattributed: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)
    unattributed_unlisted: bool = False  # a record said it saw more than it listed
    # DEVICE_RECORDS facts per monitor, oldest first: vitals-check and containment payloads (+ at, seq, hash)
    facts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Number of monitors per state (every state present, zeros included)."""
        tally = Counter(d.state for d in self.devices.values())
        return {s.value: tally.get(s, 0) for s in DeviceState}

    def wave_of(self, device: str) -> int | None:
        status = self.devices.get(device)
        return status.wave if status else None

    def unattributed_contacts(self) -> list[dict[str, Any]]:
        """Every unattributed contact once, oldest first."""
        return sorted(self.unattributed.values(), key=lambda c: str(c.get("at", "")))

    def verdicts_by_level(self) -> dict[str, dict[str, int]]:
        """Verdicts per evidence level and verdict, e.g. {"bench": {"fixed": 3, "inconclusive": 1}}."""
        out: dict[str, dict[str, int]] = {}
        for d in self.devices.values():
            for cve, verdict in d.verdicts.items():
                level = d.verdict_levels.get(cve, DEFAULT_LEVEL).value
                out.setdefault(level, {}).setdefault(verdict.value, 0)
                out[level][verdict.value] += 1
        return {level: out[level] for level in (lv.value for lv in STRENGTH) if level in out}

    def patched_by_level(self) -> dict[str, int]:
        """Patched monitors per evidence level, each counted at its weakest verdict's level (a monitor is
        only as proven as its least proven CVE)."""
        tally = Counter(
            found.value for d in self.devices.values() if d.state is DeviceState.PATCHED
            and (found := weakest(d.verdict_levels.get(c, DEFAULT_LEVEL) for c in d.verdicts)) is not None)
        return {lv.value: tally[lv.value] for lv in STRENGTH if tally[lv.value]}

    def survey_counts(self) -> dict[str, int]:
        """Survey/verify runs: monitors per survey status (the four words, zeros included)."""
        tally = Counter(d.survey_status for d in self.devices.values() if d.survey_status)
        return {s: tally.get(s, 0) for s in SURVEY_STATUSES}

    def vitals(self, device: str) -> list[dict[str, Any]]:
        """Every vitals check of ``device``, oldest first."""
        return [f for f in self.facts.get(device, ()) if f["kind"] == EventKind.VITALS_CHECK.value]

    def containment(self, device: str) -> dict[str, Any] | None:
        """The latest containment record of ``device`` (its state, who confirmed it, when), or None."""
        found = [f for f in self.facts.get(device, ()) if f["kind"] == EventKind.CONTAINMENT.value]
        return found[-1] if found else None

    def apply(self, record: JournalRecord) -> None:
        """Fold one record in. Unknown kinds are ignored so older readers survive newer writers."""
        if record.campaign == DEVICE_RECORDS:
            if record.device and record.kind in (EventKind.VITALS_CHECK, EventKind.CONTAINMENT):
                self.facts.setdefault(record.device, []).append(
                    {**record.data, "kind": record.kind.value, "at": record.at, "seq": record.seq,
                     "hash": record.hash})
            return  # a fact never changes which campaign is followed, nor its last record
        if record.kind is EventKind.CAMPAIGN_CREATED:
            if self.campaign is not None and record.campaign != self.campaign:
                self._follow_anew()  # a newer campaign in the stream: follow it
            self._created(record)
        elif record.kind is EventKind.SURVEY_STARTED and (
                self.campaign is None or record.campaign == self.campaign or self.mode != "patch"):
            if self.campaign is not None and record.campaign != self.campaign:
                self._follow_anew()  # a newer survey after a survey: follow it
            self._created(record)
            self.mode = str(record.data.get("mode") or campaign_mode(record.campaign))
        elif self.campaign is None or record.campaign != self.campaign:
            return
        else:
            handler = _HANDLERS.get(record.kind)
            if handler is not None:
                handler(self, record)
        self.last_seq = record.seq
        if record.device and record.device in self.devices:
            self.devices[record.device].last_at = record.at

    def _follow_anew(self) -> None:
        """Start over for a newer campaign in the stream; the monitors' facts belong to no campaign."""
        facts = self.facts
        self.__dict__.update(FleetStatus().__dict__)
        self.facts = facts

    def _created(self, record: JournalRecord) -> None:
        data = record.data
        self.campaign = record.campaign
        self.created = dict(data)
        self.waves = [list(w) for w in data.get("waves", [])]
        for name, info in data.get("devices", {}).items():
            self.devices[name] = DeviceStatus(
                name=name, model=info.get("model", ""), serial=info.get("serial", ""),
                site=info.get("site", ""), ward=info.get("ward", ""), bed=info.get("bed", ""),
                asset_tag=info.get("asset_tag"), delivery=info.get("delivery", "ssh"),
                firmware_before=info.get("firmware"))
        for index, wave in enumerate(self.waves):
            for name in wave:
                if name in self.devices:
                    self.devices[name].wave = index

    def _device(self, record: JournalRecord) -> DeviceStatus | None:
        if record.device is None:
            return None
        if record.device not in self.devices:
            self.devices[record.device] = DeviceStatus(name=record.device)
        return self.devices[record.device]


def _state_changed(fleet: FleetStatus, record: JournalRecord) -> None:
    device = fleet._device(record)
    if device is None:
        return
    target = DeviceState(record.data["to"])
    if target is DeviceState.DEFERRED:
        device.rechecks += 1 if device.deferrals else 0
        device.deferrals += 1
    device.state = target
    device.ended_in_wave = fleet.current_wave if target in TERMINAL else None
    device.reason = str(record.data.get("reason", "") or "")
    device.trigger_request = None  # a request belongs to one verification; a move ends it


def _attempt(fleet: FleetStatus, record: JournalRecord) -> None:
    device = fleet._device(record)
    if device is not None:
        device.attempts += 1
        device.highest_attempt = max(device.highest_attempt, int(record.data.get("attempt", 0) or 0))
        if record.data.get("outcome") == "retry":
            device.retries += 1


def _firmware(fleet: FleetStatus, record: JournalRecord) -> None:
    device = fleet._device(record)
    if device is None:
        return
    device.firmware_seen = record.data.get("version") or device.firmware_seen
    if record.data.get("when") == "before":
        device.firmware_before = record.data.get("version")
    elif record.data.get("when") == "after":
        device.firmware_after = record.data.get("version")
        device.firmware_after_by = ""


def _verdict(fleet: FleetStatus, record: JournalRecord) -> None:
    device = fleet._device(record)
    if device is not None:
        device.verdicts[str(record.data["cve"])] = Verdict(record.data["verdict"])
        device.verdict_levels[str(record.data["cve"])] = level_of(record.data)


def _bench(fleet: FleetStatus, record: JournalRecord) -> None:
    device = fleet._device(record)
    if device is None:
        return
    if record.kind is EventKind.BENCH_STARTED:
        device.bench_started, device.bench_steps, device.bench_result = dict(record.data), [], None
    elif record.kind is EventKind.BENCH_STEP:
        device.bench_steps.append(dict(record.data))
    else:
        device.bench_result = dict(record.data)


def _work_order(fleet: FleetStatus, record: JournalRecord) -> None:
    device = fleet._device(record)
    if device is not None:
        device.work_order = dict(record.data.get("order", {}))


def _technician(fleet: FleetStatus, record: JournalRecord) -> None:
    device = fleet._device(record)
    if device is not None:
        device.technician = str(record.data.get("technician", ""))
        if record.data.get("version"):  # what they read on the About screen, shown as theirs
            device.firmware_after = str(record.data["version"])
            device.firmware_after_by = f"technician {device.technician}"


def _trigger_requested(fleet: FleetStatus, record: JournalRecord) -> None:
    device = fleet._device(record)
    if device is not None:
        device.trigger_request = dict(record.data)


def _trigger_answered(fleet: FleetStatus, record: JournalRecord) -> None:
    device = fleet._device(record)
    if device is not None and device.trigger_request is not None \
            and device.trigger_request.get("trigger") == record.data.get("trigger"):
        device.trigger_request = None


def _survey(fleet: FleetStatus, record: JournalRecord) -> None:
    device = fleet._device(record)
    if device is None:
        return
    data = record.data
    status = data.get("status")
    device.survey_status = str(status) if status in SURVEY_STATUSES else "unknown"
    device.affected = bool(data.get("affected")) if "affected" in data else None
    device.reachable = bool(data.get("reachable")) if "reachable" in data else None
    device.survey_reasons = tuple(str(r) for r in data.get("reasons") or ())
    device.clinical_hold = str(data["clinical_hold"]) if data.get("clinical_hold") else None
    device.model = device.model or str(data.get("model") or "")


def _unattributed(fleet: FleetStatus, record: JournalRecord) -> None:
    contacts = [dict(c) for c in record.data.get("contacts") or () if isinstance(c, dict)]
    watched = str(record.data.get("watched") or "")
    if int(record.data.get("total") or 0) > len(contacts):
        fleet.unattributed_unlisted = True
    for contact in contacts:
        key = tuple(str(contact.get(k, "")) for k in ("at", "source", "target", "kind", "sha256"))
        entry = fleet.unattributed.setdefault(key, {**contact, "watched": []})
        if watched and watched not in entry["watched"]:
            entry["watched"].append(watched)


def _wave_started(fleet: FleetStatus, record: JournalRecord) -> None:
    fleet.current_wave = int(record.data["wave"])
    fleet.waves_started.add(fleet.current_wave)
    if fleet.gate_waiting is not None and fleet.gate_waiting <= fleet.current_wave:
        fleet.gate_waiting = None


def _wave_finished(fleet: FleetStatus, record: JournalRecord) -> None:
    fleet.waves_finished.add(int(record.data["wave"]))


def _gate_waiting(fleet: FleetStatus, record: JournalRecord) -> None:
    fleet.gate_waiting = int(record.data["wave"])


def _gate_approved(fleet: FleetStatus, record: JournalRecord) -> None:
    wave = int(record.data["wave"])
    fleet.approved[wave] = str(record.data.get("approver", ""))
    if fleet.gate_waiting == wave:
        fleet.gate_waiting = None


def _halted(fleet: FleetStatus, record: JournalRecord) -> None:
    fleet.halted = dict(record.data)


def _aborted(fleet: FleetStatus, record: JournalRecord) -> None:
    fleet.aborted = dict(record.data)


def _paused(fleet: FleetStatus, record: JournalRecord) -> None:
    fleet.paused = record.kind is EventKind.CAMPAIGN_PAUSED


def _finished(fleet: FleetStatus, record: JournalRecord) -> None:
    fleet.finished = True


_HANDLERS = {
    EventKind.STATE_CHANGED: _state_changed,
    EventKind.ATTEMPT: _attempt,
    EventKind.FIRMWARE_READ: _firmware,
    EventKind.VERDICT: _verdict,
    EventKind.WORK_ORDER: _work_order,
    EventKind.TECHNICIAN_CONFIRMED: _technician,
    EventKind.TRIGGER_REQUESTED: _trigger_requested,
    EventKind.TRIGGER_ANSWERED: _trigger_answered,
    EventKind.WAVE_STARTED: _wave_started,
    EventKind.WAVE_FINISHED: _wave_finished,
    EventKind.GATE_WAITING: _gate_waiting,
    EventKind.GATE_APPROVED: _gate_approved,
    EventKind.CAMPAIGN_HALTED: _halted,
    EventKind.CAMPAIGN_ABORTED: _aborted,
    EventKind.CAMPAIGN_PAUSED: _paused,
    EventKind.CAMPAIGN_RESUMED: _paused,
    EventKind.CAMPAIGN_FINISHED: _finished,
    EventKind.SURVEY: _survey,
    EventKind.UNATTRIBUTED_CONTACT: _unattributed,
    EventKind.BENCH_STARTED: _bench,
    EventKind.BENCH_STEP: _bench,
    EventKind.BENCH_FINISHED: _bench,
}

SURVEY_STATUSES = ("vulnerable", "unproven", "fixed", "unknown")
DEVICE_RECORDS = "device-records"  # the pseudo-campaign of facts about monitors (vitals, containment)
# Ids that are not patch campaigns: never resumed, never exported as one, never picked as "the latest".
READ_ONLY_PREFIXES = ("survey-", "verify-", DEVICE_RECORDS)


def campaign_mode(campaign: str) -> str:
    """The mode of a campaign id: survey / verify for the read-only runs, patch for everything else."""
    return campaign.split("-", 1)[0] if campaign.startswith(READ_ONLY_PREFIXES) else "patch"


def project(records: Iterable[JournalRecord], campaign: str | None = None) -> FleetStatus:
    """Fold records into the fleet status of ``campaign`` (default: the last campaign created)."""
    fleet = FleetStatus()
    if campaign is not None and campaign_mode(campaign) != "patch":
        # a survey/verify run recorded before it had a header still shows what it recorded
        fleet.campaign, fleet.mode = campaign, campaign_mode(campaign)
    for record in records:
        if campaign is not None and record.campaign not in (campaign, DEVICE_RECORDS):
            continue
        fleet.apply(record)
    return fleet
