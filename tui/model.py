"""The TUI's view model: fleet rows, waves and the campaign phase, read from the journal's projection.

Why a model of our own rather than asking widgets: the engine may append hundreds of records a second
from its worker threads, while a DataTable re-renders the whole visible table on every frame
(PERFORMANCE.md). So records land in a thread-safe ``Inbox``; a 4-10 Hz timer drains it, folds the
records into ``orchestrator.domain.status.FleetStatus`` (cheap, no widget touched), the same projection
the CLI and the exports read, and learns which rows changed (``Changes``); only then does it
touch the screen, once, inside ``batch_update()``. A monitor that changed ten times between two ticks
costs one row update.

This module imports no Textual and makes no decision about the campaign: it only reads what the engine
wrote (the payloads listed in ``orchestrator.domain.events``). Deliberately left out: re-deriving state
the engine did not write (no guessing what a monitor "should" be doing).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.domain import projection
from orchestrator.domain.describe import STATE_WORDS, VERDICT_WORDS, headline, state_words, verdict_words
from orchestrator.domain.devices import Device
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.indicators import ALL_CVES
from orchestrator.domain.lifecycle import TERMINAL, DeviceState
from orchestrator.domain.projection import Phase
from orchestrator.domain.status import DEVICE_RECORDS, DeviceStatus, FleetStatus

# Words and symbols, never colour alone: the describer's, so the table, the log and the CLI say the same.
STATE_LABELS = STATE_WORDS
VERDICT_LABELS = VERDICT_WORDS
CVE_IDS: tuple[str, ...] = tuple(c.value for c in ALL_CVES)
TERMINAL_STATES: frozenset[str] = frozenset(s.value for s in TERMINAL)
FAILED_STATES: frozenset[str] = frozenset({DeviceState.FAILED.value})
TIMELINE_LIMIT = 400  # records kept per monitor: enough for every retry of a normal campaign
LOG_LIMIT = 2000
_WAVE_KINDS = frozenset({EventKind.CAMPAIGN_CREATED, EventKind.WAVE_STARTED, EventKind.WAVE_FINISHED})


state_label = state_words
verdict_label = verdict_words


@dataclass
class MonitorRow:
    """One monitor as the screen shows it: a view over the projection's ``DeviceStatus``, read when shown
    and never copied, so a row cannot drift from what ``cmspatch status`` and the exports read; the
    inventory's values stand where the campaign has none (a monitor no campaign covers yet). Only the
    timeline is the row's own (what the monitor screen lists)."""

    name: str
    fleet: FleetStatus | None = None  # the projection; this monitor's part is ``fleet.devices[name]``
    inventory: Device | None = None
    last_seq: int = 0  # the newest record folded for this monitor (an older one arriving late is stale)
    timeline: deque[JournalRecord] = field(default_factory=lambda: deque(maxlen=TIMELINE_LIMIT))

    @property
    def status(self) -> DeviceStatus | None:
        return self.fleet.devices.get(self.name) if self.fleet is not None else None

    def _either(self, key: str) -> str:
        """The campaign's value, else the inventory's (a campaign-created header names every monitor)."""
        st = self.status
        value = getattr(st, key, None) if st is not None else None
        if not value and self.inventory is not None:
            value = getattr(self.inventory, key, None)
        return str(getattr(value, "value", value) or "")  # delivery is an enum in the inventory

    @property
    def site(self) -> str:
        return self._either("site")

    @property
    def ward(self) -> str:
        return self._either("ward")

    @property
    def bed(self) -> str:
        return self._either("bed")

    @property
    def model(self) -> str:
        return self._either("model")

    @property
    def serial(self) -> str:
        return self._either("serial")

    @property
    def delivery(self) -> str:
        return self._either("delivery")

    @property
    def asset_tag(self) -> str:
        return self._either("asset_tag")

    @property
    def firmware_before(self) -> str:
        st = self.status
        inventory = self.inventory.firmware if self.inventory is not None else None
        return (st.firmware_before if st is not None else None) or inventory or ""

    @property
    def firmware_after(self) -> str:
        st = self.status
        return (st.firmware_after or "") if st is not None else ""

    @property
    def firmware_after_by(self) -> str:
        """"technician NAME" when a person read it on the About screen."""
        st = self.status
        return st.firmware_after_by if st is not None else ""

    @property
    def technician(self) -> str:
        """Hands-on path: who confirmed the install."""
        st = self.status
        return (st.technician or "") if st is not None else ""

    @property
    def state(self) -> str:
        st = self.status
        return st.state.value if st is not None else "inventory"

    @property
    def reason(self) -> str:
        st = self.status
        return st.reason if st is not None else ""

    @property
    def wave(self) -> int | None:
        st = self.status
        return st.wave if st is not None else None

    @property
    def attempts(self) -> int:
        st = self.status
        return st.highest_attempt if st is not None else 0

    @property
    def retries(self) -> int:
        st = self.status
        return st.retries if st is not None else 0

    @property
    def verdicts(self) -> dict[str, str]:
        st = self.status
        return {cve: v.value for cve, v in st.verdicts.items()} if st is not None else {}

    @property
    def verdict_levels(self) -> dict[str, str]:
        """How each verdict was established (``domain.evidence``: device+network, bench, recorded)."""
        st = self.status
        return {cve: v.value for cve, v in st.verdict_levels.items()} if st is not None else {}

    @property
    def trigger_request(self) -> dict[str, Any] | None:
        """A technician is asked to exercise this trigger now."""
        st = self.status
        return st.trigger_request if st is not None else None

    @property
    def containment(self) -> dict[str, Any] | None:
        """The latest containment record (``domain.status`` facts)."""
        return self.fleet.containment(self.name) if self.fleet is not None else None

    @property
    def vitals(self) -> list[dict[str, Any]]:
        """Vitals checks against a simulator, oldest first."""
        return self.fleet.vitals(self.name) if self.fleet is not None else []

    @property
    def firmware(self) -> str:
        return self.firmware_after or self.firmware_before

    def cells(self) -> tuple[str, ...]:
        """The table row, in ``FLEET_COLUMNS`` order."""
        verdicts = self.verdicts
        return (
            self.site, self.ward, self.bed, self.model, self.serial, self.firmware,
            "! technician" if self.trigger_request else state_label(self.state),
            *(verdict_label(verdicts.get(c, "")) for c in CVE_IDS),
        )

    def matches(self, column: str, needle: str) -> bool:
        if column == "state":
            return needle in self.state or needle in state_label(self.state).lower()
        verdicts = self.verdicts
        if column in CVE_IDS:
            return needle in verdicts.get(column, "")
        if column == "cve":
            return any(needle in v for v in verdicts.values())
        return needle in str(getattr(self, column, "")).lower()


# (key, label, width): fixed widths, so an update never re-measures a column (PERFORMANCE.md).
FLEET_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("site", "Site", 16),
    ("ward", "Ward", 10),
    ("bed", "Bed", 4),
    ("model", "Model", 8),
    ("serial", "Serial", 17),
    ("firmware", "Firmware", 26),
    ("state", "State", 14),
    *((cve, cve.removeprefix("CVE-"), 10) for cve in CVE_IDS),
)
COLUMN_KEYS: tuple[str, ...] = tuple(c[0] for c in FLEET_COLUMNS)
# Which columns give way first on a narrow terminal (80x24): State and the CVE verdicts are what the
# fleet table is for, so they never do; the ward outlasts the bed (a bed number alone names nothing).
NARROW_DROP_ORDER: tuple[str, ...] = ("firmware", "model", "serial", "site", "bed", "ward")
CELL_PADDING = 2  # DataTable pads every cell by one on each side


def fit_columns(width: int, keep: str = "") -> tuple[int, ...]:
    """Indices into ``FLEET_COLUMNS`` of the columns shown ``width`` cells wide. ``keep`` (the sort
    column) gives way last, so it is shown whenever it fits beside State and the CVEs."""
    shown = list(range(len(FLEET_COLUMNS)))
    order = [k for k in NARROW_DROP_ORDER if k != keep] + [k for k in NARROW_DROP_ORDER if k == keep]
    def need(columns: list[int]) -> int:
        return sum(FLEET_COLUMNS[i][2] + CELL_PADDING for i in columns)

    dropped: list[int] = []
    for key in order:
        if need(shown) <= width:
            break
        shown.remove(index := COLUMN_KEYS.index(key))
        dropped.append(index)
    for index in reversed(dropped):  # a narrower column dropped earlier may fit where the last did not
        if need([*shown, index]) <= width:
            shown = sorted([*shown, index])
    return tuple(shown)


@dataclass
class WaveInfo:
    index: int
    devices: list[str]
    started: bool = False
    finished: bool = False

    @property
    def size(self) -> int:
        return len(self.devices)


@dataclass(frozen=True)
class Changes:
    """What one drain of the inbox changed: which rows, and whether campaign-level panels must redraw."""

    devices: frozenset[str] = frozenset()
    campaign: bool = False
    log: tuple[str, ...] = ()
    records: int = 0
    asks: tuple[str, ...] = ()  # monitors whose technician was just asked to exercise a trigger

    @property
    def empty(self) -> bool:
        return not (self.devices or self.campaign or self.log)

    def merge(self, other: Changes) -> Changes:
        """Two drains as one push (when the screen is held back under load)."""
        return Changes(self.devices | other.devices, self.campaign or other.campaign, self.log + other.log,
                       self.records + other.records, self.asks + other.asks)


class Inbox:
    """Thread-safe hand-off from the engine's threads to the UI timer. ``put`` is cheap: one append."""

    def __init__(self) -> None:
        self._queue: deque[JournalRecord] = deque()
        self._lock = threading.Lock()
        self.received = 0

    def put(self, record: JournalRecord) -> None:
        with self._lock:
            self._queue.append(record)
            self.received += 1

    def drain(self, limit: int | None = None) -> list[JournalRecord]:
        with self._lock:
            if limit is None or limit >= len(self._queue):
                out = list(self._queue)
                self._queue.clear()
            else:
                out = [self._queue.popleft() for _ in range(limit)]
        return out

    def __len__(self) -> int:
        return len(self._queue)


class FleetModel:
    """Everything the screens show: the journal's own projection (``FleetStatus``) plus what only a view
    needs (inventory rows not in the campaign, per-monitor timelines, the log pane, the phase).

    Why the projection rather than a fold of our own: the CLI ``status``, the exports and a resumed
    engine read state through ``FleetStatus``; a second fold of the same records would drift from it.
    ``MonitorRow`` is a view over it (no copy to refresh): a drain only says which rows changed.
    """

    def __init__(self) -> None:
        self.status = FleetStatus()
        self.rows: dict[str, MonitorRow] = {}
        self.campaign_id: str | None = None
        self.waves: list[WaveInfo] = []
        self.final_counts: dict[str, int] = {}
        self.log: deque[str] = deque(maxlen=LOG_LIMIT)
        self.seen: set[int] = set()
        self.last_seq = 0
        self.applied = 0

    # -- what the projection holds, under the names the screens read --------------------------------
    @property
    def package(self) -> dict[str, Any]:
        created = self.status.created
        if not created:
            return {}
        return {k: created.get(k) for k in ("package_name", "package_sha256", "manifest_sha256",
                                            "target_version", "signers")}

    @property
    def policy(self) -> dict[str, Any]:
        return dict(self.status.created.get("policy") or {})

    @property
    def operator(self) -> str:
        return str(self.status.created.get("operator", ""))

    @property
    def phase(self) -> Phase:
        return projection.phase(self.status)

    @property
    def phase_detail(self) -> str:
        return projection.phase_detail(self.status)

    @property
    def complete(self) -> bool:
        """Finished with every monitor patched or skipped (a finished campaign may still have failures)."""
        return projection.complete(self.status)

    @property
    def unfinished(self) -> str:
        """What keeps the campaign from being complete, e.g. "2 failed, 1 deferred"."""
        return projection.unfinished_words(self.status)

    @property
    def current_wave(self) -> int | None:
        return self.status.current_wave

    @property
    def gate_wave(self) -> int | None:
        return None if self.status.finished else self.status.gate_waiting

    # -- seeding -------------------------------------------------------------------------------
    def load_inventory(self, devices: Iterable[Device]) -> None:
        for d in devices:
            self._row(d.name).inventory = d

    # -- folding -------------------------------------------------------------------------------
    def apply_many(self, records: Sequence[JournalRecord]) -> Changes:
        devices: set[str] = set()
        campaign = False
        log: list[str] = []
        asks: list[str] = []
        for record in records:
            if record.seq in self.seen and record.campaign == self.campaign_id:
                continue  # the same record via the journal poll and the live subscription
            touched, camp, line = self._apply(record)
            if touched:
                devices |= touched
                if record.kind is EventKind.TRIGGER_REQUESTED and record.device:
                    asks.append(record.device)
            campaign = campaign or camp
            if line:
                log.append(line)
                self.log.append(line)
        return Changes(frozenset(devices), campaign, tuple(log), len(records), tuple(asks))

    def apply(self, record: JournalRecord) -> Changes:
        return self.apply_many([record])

    def _row(self, name: str) -> MonitorRow:
        row = self.rows.get(name)
        if row is None:
            row = self.rows[name] = MonitorRow(name=name, fleet=self.status)
        return row

    def _apply(self, r: JournalRecord) -> tuple[set[str], bool, str | None]:
        if r.campaign == DEVICE_RECORDS:  # a fact about a monitor (containment, vitals): shown, not followed
            if r.device is None or r.seq in self.seen:
                return set(), False, None
            self.seen.add(r.seq)
            self.status.apply(r)
            self._row(r.device).timeline.append(r)
            return {r.device}, False, None
        if self.campaign_id is None:
            self.campaign_id = r.campaign
        elif r.campaign != self.campaign_id:
            return set(), False, None  # another campaign in the same journal: not ours
        self.seen.add(r.seq)
        self.last_seq = max(self.last_seq, r.seq)
        self.applied += 1
        if r.device is not None:
            row = self._row(r.device)
            if r.seq < row.last_seq:
                return set(), False, None  # stale: a later record for this monitor is already folded
            self.status.apply(r)
            row.last_seq = r.seq
            row.timeline.append(r)
            return {r.device}, r.kind is EventKind.STATE_CHANGED, self._log_line(r)
        self.status.apply(r)
        if r.kind in _WAVE_KINDS:
            st = self.status
            self.waves = [WaveInfo(i, list(w), i in st.waves_started, i in st.waves_finished)
                          for i, w in enumerate(st.waves)]
        touched = set(self.status.devices) if r.kind is EventKind.CAMPAIGN_CREATED else set()
        line = self._log_line(r)
        if r.kind is EventKind.UNATTRIBUTED_CONTACT:  # the Campaign tab names them: redraw it
            return touched, True, line
        return touched, r.kind is not EventKind.LOG and line is not None, line

    def _log_line(self, r: JournalRecord) -> str | None:
        """The log pane's line: the describer's headline (the same words as the CLI's progress), timed."""
        if r.kind is EventKind.CAMPAIGN_FINISHED:
            self.final_counts = dict(r.data.get("counts") or {})
        if r.kind is EventKind.STATE_CHANGED and r.data.get("to") == DeviceState.PATCHED.value:
            return None  # the fleet table shows them; 1,000 of them would bury a failure in an 8-line pane
        line = headline(r)
        return f"{r.at[11:19]} {line}" if line is not None else None

    # -- queries -------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Monitors per state: the projection's, plus inventory rows the campaign does not cover."""
        out = {state: n for state, n in self.status.counts().items() if n}
        for name, row in self.rows.items():
            if name not in self.status.devices:
                out[row.state] = out.get(row.state, 0) + 1
        return out

    def wave_progress(self, wave: WaveInfo) -> tuple[int, int]:
        devices = self.status.devices
        done = sum(1 for n in wave.devices if n in devices and devices[n].terminal)
        return done, wave.size

    def overall_progress(self) -> tuple[int, int]:
        in_campaign = [d for d in self.status.devices.values() if d.wave is not None]
        if in_campaign:
            return sum(1 for d in in_campaign if d.terminal), len(in_campaign)
        return sum(1 for r in self.rows.values() if r.state in TERMINAL_STATES), len(self.rows)

    def deferred(self) -> list[MonitorRow]:
        return sorted((self.rows[d.name] for d in self.status.devices.values()
                       if d.state is DeviceState.DEFERRED and d.name in self.rows), key=lambda r: r.name)

    def budget(self, wave: int | None = None) -> projection.FailureBudget | None:
        """The halting rules' budget (``domain.projection``, the one the engine halts on), for ``wave``
        (default: the wave waiting at the gate, else the running one). None: the journal's policy does
        not read, and a budget of our own would be a guess."""
        policy = projection.journalled_policy(self.status)
        if policy is None:
            return None
        return projection.failure_budget(self.status, policy, self.gate_wave if wave is None else wave)

    def failure_budget(self, wave: int | None = None) -> str:
        """The budget in words, as the approve-wave dialog and the Campaign tab show it."""
        budget = self.budget(wave)
        return budget.describe() if budget is not None else "unknown: the campaign's policy does not read"

    def can_approve(self) -> bool:
        return self.phase == Phase.GATE and self.gate_wave is not None

    @property
    def live(self) -> bool:
        return self.phase in (Phase.RUNNING, Phase.GATE, Phase.PAUSED)


# -- filter, search and sort (pure, so the rules are unit-tested without a terminal) -------------------
COLUMN_ALIASES: dict[str, str] = {
    **{k: k for k in COLUMN_KEYS},
    **{cve.removeprefix("CVE-"): cve for cve in CVE_IDS},
    **{cve.rsplit("-", 1)[-1]: cve for cve in CVE_IDS},  # 0626 for CVE-2025-0626
    **{cve.lower(): cve for cve in CVE_IDS},
    "fw": "firmware", "name": "name", "host": "name", "delivery": "delivery", "cve": "cve",
    "verdict": "cve", "wave": "wave", "reason": "reason", "asset": "asset_tag",
}


@dataclass(frozen=True)
class FleetQuery:
    """What the Fleet screen shows: ``text`` holds words (searched in every column) and ``column:value``
    terms (``state:failed site:north 0626:vuln``); all terms must match."""

    text: str = ""
    sort: str = "site"  # a column key; ties broken by site, ward, bed, serial
    reverse: bool = False

    def terms(self) -> list[tuple[str | None, str]]:
        out: list[tuple[str | None, str]] = []
        for word in self.text.lower().split():
            column, sep, needle = word.partition(":")
            if sep and column in COLUMN_ALIASES:
                out.append((COLUMN_ALIASES[column], needle))
            else:
                out.append((None, word))
        return out

    def match(self, row: MonitorRow) -> bool:
        for column, needle in self.terms():
            if column is None:
                hay = " ".join((row.name, row.asset_tag, row.delivery, row.reason, *row.cells())).lower()
                if needle not in hay:
                    return False
            elif column == "wave":
                if row.wave is None or needle != str(row.wave + 1):
                    return False
            elif not row.matches(column, needle):
                return False
        return True

    def select(self, rows: Iterable[MonitorRow]) -> list[MonitorRow]:
        """The matching rows (the table orders them itself, by the displayed cells)."""
        return [r for r in rows if self.match(r)] if self.text.strip() else list(rows)
