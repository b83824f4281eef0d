"""The TUI's own view model: fleet rows, waves and the campaign phase, folded from journal records.

Why a model of our own rather than asking widgets: the engine may append hundreds of records a second
from its worker threads, while a DataTable re-renders the whole visible table on every frame
(PERFORMANCE.md). So records land in a thread-safe ``Inbox``; a 4-10 Hz timer drains it, folds the
records here (cheap, no widget touched) and learns which rows changed (``Changes``); only then does it
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
from enum import StrEnum
from typing import Any

from orchestrator.domain.devices import Device
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.indicators import ALL_CVES
from orchestrator.domain.lifecycle import TERMINAL, DeviceState

# Words and symbols, never colour alone (NO_COLOR makes Textual monochrome).
STATE_LABELS: dict[str, str] = {
    "inventory": "· inventory",
    DeviceState.PENDING.value: "○ pending",
    DeviceState.DEFERRED.value: "‖ deferred",
    DeviceState.UPLOADING.value: "↑ uploading",
    DeviceState.UPLOADED.value: "↑ uploaded",
    DeviceState.INSTALLING.value: "» installing",
    DeviceState.REBOOTING.value: "↻ rebooting",
    DeviceState.VERIFYING.value: "… verifying",
    DeviceState.AWAITING_TECHNICIAN.value: "☐ technician",
    DeviceState.PATCHED.value: "✔ patched",
    DeviceState.FAILED.value: "✖ failed",
    DeviceState.SKIPPED.value: "⊘ skipped",
}
VERDICT_LABELS: dict[str, str] = {
    "fixed": "✔ fixed",
    "vulnerable": "✖ VULN",
    "inconclusive": "? unsure",
    "": "·",
}
CVE_IDS: tuple[str, ...] = tuple(c.value for c in ALL_CVES)
TERMINAL_STATES: frozenset[str] = frozenset(s.value for s in TERMINAL)
FAILED_STATES: frozenset[str] = frozenset({DeviceState.FAILED.value})
TIMELINE_LIMIT = 400  # records kept per monitor: enough for every retry of a normal campaign
LOG_LIMIT = 2000


def state_label(state: str) -> str:
    return STATE_LABELS.get(state, state)


def verdict_label(verdict: str) -> str:
    return VERDICT_LABELS.get(verdict, verdict)


class Phase(StrEnum):
    """Where the campaign stands, as the journal tells it."""

    NOT_STARTED = "not started"
    RUNNING = "running"
    GATE = "waiting for approval"
    PAUSED = "paused"
    HALTED = "halted"
    ABORTED = "aborted"
    FINISHED = "finished"


@dataclass
class MonitorRow:
    """One monitor as the screen shows it. Mutable on purpose: folded in place, record by record."""

    name: str
    site: str = ""
    ward: str = ""
    bed: str = ""
    model: str = ""
    serial: str = ""
    delivery: str = ""
    asset_tag: str = ""
    firmware_before: str = ""
    firmware_after: str = ""
    state: str = "inventory"
    reason: str = ""
    wave: int | None = None
    attempts: int = 0
    retries: int = 0
    verdicts: dict[str, str] = field(default_factory=dict)
    last_at: str = ""
    last_seq: int = 0
    timeline: deque[JournalRecord] = field(default_factory=lambda: deque(maxlen=TIMELINE_LIMIT))

    @property
    def firmware(self) -> str:
        return self.firmware_after or self.firmware_before

    def cells(self) -> tuple[str, ...]:
        """The table row, in ``FLEET_COLUMNS`` order."""
        return (
            self.site, self.ward, self.bed, self.model, self.serial, self.firmware,
            state_label(self.state), *(verdict_label(self.verdicts.get(c, "")) for c in CVE_IDS),
        )

    def matches(self, column: str, needle: str) -> bool:
        if column == "state":
            return needle in self.state or needle in state_label(self.state).lower()
        if column in CVE_IDS:
            return needle in self.verdicts.get(column, "")
        if column == "cve":
            return any(needle in v for v in self.verdicts.values())
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

    @property
    def empty(self) -> bool:
        return not (self.devices or self.campaign or self.log)

    def merge(self, other: Changes) -> Changes:
        """Two drains as one push (when the screen is held back under load)."""
        return Changes(self.devices | other.devices, self.campaign or other.campaign, self.log + other.log,
                       self.records + other.records)


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
    """Everything the screens show, folded from journal records (and seeded from the inventory)."""

    def __init__(self) -> None:
        self.rows: dict[str, MonitorRow] = {}
        self.campaign_id: str | None = None
        self.package: dict[str, Any] = {}
        self.policy: dict[str, Any] = {}
        self.operator: str = ""
        self.waves: list[WaveInfo] = []
        self.phase: Phase = Phase.NOT_STARTED
        self.phase_detail: str = ""
        self.gate_wave: int | None = None
        self.current_wave: int | None = None
        self.final_counts: dict[str, int] = {}
        self.log: deque[str] = deque(maxlen=LOG_LIMIT)
        self.seen: set[int] = set()
        self.last_seq = 0
        self.applied = 0
        self._also_touched: set[str] = set()

    # -- seeding -------------------------------------------------------------------------------
    def load_inventory(self, devices: Iterable[Device]) -> None:
        for d in devices:
            row = self.rows.get(d.name) or MonitorRow(name=d.name)
            row.site, row.ward, row.bed, row.model, row.serial = d.site, d.ward, d.bed, d.model, d.serial
            row.delivery, row.asset_tag = d.delivery.value, d.asset_tag or ""
            row.firmware_before = row.firmware_before or (d.firmware or "")
            self.rows[d.name] = row

    # -- folding -------------------------------------------------------------------------------
    def apply_many(self, records: Sequence[JournalRecord]) -> Changes:
        devices: set[str] = set()
        campaign = False
        log: list[str] = []
        for record in records:
            if record.seq in self.seen and record.campaign == self.campaign_id:
                continue  # the same record via the journal poll and the live subscription
            touched, camp, line = self._apply(record)
            if touched:
                devices.add(touched)
            campaign = campaign or camp
            if line:
                log.append(line)
                self.log.append(line)
        if self._also_touched:
            devices |= self._also_touched
            self._also_touched = set()
        return Changes(frozenset(devices), campaign, tuple(log), len(records))

    def apply(self, record: JournalRecord) -> Changes:
        return self.apply_many([record])

    def _row(self, name: str) -> MonitorRow:
        row = self.rows.get(name)
        if row is None:
            row = self.rows[name] = MonitorRow(name=name)
        return row

    def _apply(self, r: JournalRecord) -> tuple[str | None, bool, str | None]:
        if self.campaign_id is None:
            self.campaign_id = r.campaign
        elif r.campaign != self.campaign_id:
            return None, False, None  # another campaign in the same journal: not ours
        self.seen.add(r.seq)
        self.last_seq = max(self.last_seq, r.seq)
        self.applied += 1
        d = r.data
        kind = r.kind
        if r.device is not None:
            row = self._row(r.device)
            if r.seq < row.last_seq:
                return None, False, None  # stale: a later record for this monitor is already folded
            row.last_seq, row.last_at = r.seq, r.at
            row.timeline.append(r)
            return r.device, self._device(row, r), self._device_log(row, r)
        when = r.at[11:19]
        if kind == EventKind.CAMPAIGN_CREATED:
            self.package = {k: d.get(k) for k in ("package_name", "package_sha256", "manifest_sha256",
                                                  "target_version", "signers")}
            self.policy = dict(d.get("policy") or {})
            self.operator = str(d.get("operator", ""))
            for name, info in (d.get("devices") or {}).items():
                row = self._row(name)
                for key in ("model", "serial", "site", "ward", "bed", "asset_tag", "delivery"):
                    if info.get(key) is not None:
                        setattr(row, key, str(info[key]))
                if info.get("firmware") and not row.firmware_before:
                    row.firmware_before = str(info["firmware"])
                if row.state == "inventory":
                    row.state = DeviceState.PENDING.value
            self.waves = [WaveInfo(i, list(w)) for i, w in enumerate(d.get("waves") or [])]
            for wave in self.waves:
                for name in wave.devices:
                    self._row(name).wave = wave.index
            self.phase = Phase.RUNNING
            self._also_touched.update(self.rows)  # every row's state and wave changed at once
            return None, True, f"{when} campaign {r.campaign} created by {self.operator}: " \
                f"{len(self.waves)} wave(s), package {self.package.get('package_name')}"
        if kind == EventKind.WAVE_STARTED:
            w = self._wave(int(d.get("wave", 0)), d.get("devices"))
            w.started = True
            self.current_wave = w.index
            self.gate_wave = None
            if self.phase in (Phase.GATE, Phase.NOT_STARTED):
                self.phase = Phase.RUNNING
            return None, True, f"{when} wave {w.index + 1} started ({w.size} monitors)"
        if kind == EventKind.WAVE_FINISHED:
            w = self._wave(int(d.get("wave", 0)), None)
            w.finished = True
            return None, True, f"{when} wave {w.index + 1} finished: {_counts_text(d.get('counts') or {})}"
        if kind == EventKind.GATE_WAITING:
            self.gate_wave = int(d.get("wave", 0))
            if self.phase not in (Phase.PAUSED,):
                self.phase = Phase.GATE
            return None, True, f"{when} waiting for approval of wave {self.gate_wave + 1}"
        if kind == EventKind.GATE_APPROVED:
            approved = int(d.get("wave", 0))
            self.gate_wave = None
            if self.phase == Phase.GATE:
                self.phase = Phase.RUNNING
            return None, True, f"{when} wave {approved + 1} approved by {d.get('approver', '?')}"
        if kind == EventKind.CAMPAIGN_PAUSED:
            self.phase = Phase.PAUSED
            return None, True, f"{when} paused by {d.get('by', '?')}"
        if kind == EventKind.CAMPAIGN_RESUMED:
            self.phase = Phase.GATE if self.gate_wave is not None else Phase.RUNNING
            return None, True, f"{when} resumed by {d.get('by', '?')}"
        if kind == EventKind.CAMPAIGN_HALTED:
            self.phase = Phase.HALTED
            self.phase_detail = f"{d.get('reason', '')} ({d.get('failed', '?')} failed of " \
                f"{d.get('executed', '?')} executed)"
            return None, True, f"{when} HALTED: {self.phase_detail}"
        if kind == EventKind.CAMPAIGN_ABORTED:
            self.phase = Phase.ABORTED
            self.phase_detail = f"by {d.get('by', '?')}: {d.get('reason', '')}"
            return None, True, f"{when} ABORTED {self.phase_detail}"
        if kind == EventKind.CAMPAIGN_FINISHED:
            if self.phase not in (Phase.HALTED, Phase.ABORTED):
                self.phase = Phase.FINISHED
            self.final_counts = dict(d.get("counts") or {})
            self.gate_wave = None
            return None, True, f"{when} campaign finished: {_counts_text(self.final_counts)}"
        if kind == EventKind.LOG:
            return None, False, f"{when} {d.get('level', 'info')}: {d.get('message', '')}"
        return None, False, None

    def _wave(self, index: int, devices: Any) -> WaveInfo:
        while len(self.waves) <= index:
            self.waves.append(WaveInfo(len(self.waves), []))
        w = self.waves[index]
        if devices:
            w.devices = [str(x) for x in devices]
            for name in w.devices:
                self._row(name).wave = index
        return w

    def _device(self, row: MonitorRow, r: JournalRecord) -> bool:
        """Fold one monitor record; return True when wave/campaign aggregates change too."""
        d = r.data
        kind = r.kind
        if kind == EventKind.STATE_CHANGED:
            row.state = str(d.get("to", row.state))
            row.reason = str(d.get("reason") or "")
            if d.get("wave") is not None:
                row.wave = int(d["wave"])
            return True
        if kind == EventKind.ATTEMPT:
            row.attempts = max(row.attempts, int(d.get("attempt", 0) or 0))
            if d.get("outcome") == "retry":
                row.retries += 1
            return False
        if kind == EventKind.FIRMWARE_READ:
            if d.get("when") == "after":
                row.firmware_after = str(d.get("version") or "")
            else:
                row.firmware_before = str(d.get("version") or "")
            return False
        if kind == EventKind.VERDICT:
            cve = str(d.get("cve", ""))
            if cve:
                row.verdicts[cve] = str(d.get("verdict", ""))
            return False
        if kind == EventKind.SURVEY:
            return False
        return False

    @staticmethod
    def _device_log(row: MonitorRow, r: JournalRecord) -> str | None:
        """Only what a person needs in the log pane: failures, deferrals, retries, hands-on steps."""
        d = r.data
        when = r.at[11:19]
        if r.kind == EventKind.STATE_CHANGED and d.get("to") in ("failed", "deferred", "awaiting-technician"):
            why = f": {d.get('reason')}" if d.get("reason") else ""
            return f"{when} {row.name} {state_label(str(d.get('to')))}{why}"
        if r.kind == EventKind.ATTEMPT and d.get("outcome") == "retry":
            return f"{when} {row.name} retry {d.get('step')} #{d.get('attempt')}: {d.get('error', '')}"
        if r.kind == EventKind.TECHNICIAN_CONFIRMED:
            return f"{when} {row.name} confirmed by technician {d.get('technician', '?')}"
        if r.kind == EventKind.VERDICT and d.get("verdict") == "vulnerable":
            return f"{when} {row.name} still VULNERABLE to {d.get('cve')}: {d.get('reason', '')}"
        return None

    # -- queries -------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows.values():
            out[row.state] = out.get(row.state, 0) + 1
        return out

    def wave_progress(self, wave: WaveInfo) -> tuple[int, int]:
        done = sum(1 for n in wave.devices if self.rows.get(n) and self.rows[n].state in TERMINAL_STATES)
        return done, wave.size

    def overall_progress(self) -> tuple[int, int]:
        in_campaign = [r for r in self.rows.values() if r.wave is not None] or list(self.rows.values())
        return sum(1 for r in in_campaign if r.state in TERMINAL_STATES), len(in_campaign)

    def deferred(self) -> list[MonitorRow]:
        return sorted((r for r in self.rows.values() if r.state == DeviceState.DEFERRED.value),
                      key=lambda r: r.name)

    def failure_budget(self) -> str:
        """The halt rules of the policy against what has failed so far, in words."""
        failed = sum(1 for r in self.rows.values() if r.state in FAILED_STATES)
        executed = sum(1 for r in self.rows.values()
                       if r.state in (DeviceState.PATCHED.value, DeviceState.FAILED.value))
        parts: list[str] = []
        max_failures = self.policy.get("max_failures")
        if max_failures is not None:
            left = max(0, int(max_failures) - failed)
            parts.append(f"{failed} failed of max {max_failures}: {left} left before halt")
        pct = self.policy.get("max_failure_pct")
        if pct is not None:
            floor = int(self.policy.get("min_executed_for_pct", 5) or 0)
            now = (failed * 100.0 / executed) if executed else 0.0
            rule = f"{now:.0f}% failed of {executed} executed (halts at {float(pct):.0f}%"
            parts.append(rule + (f", once {floor} executed)" if executed < floor else ")"))
        if not parts:
            parts.append(f"{failed} failed; no failure limit set")
        return "; ".join(parts)

    def can_approve(self) -> bool:
        return self.phase == Phase.GATE and self.gate_wave is not None

    @property
    def live(self) -> bool:
        return self.phase in (Phase.RUNNING, Phase.GATE, Phase.PAUSED)


def _counts_text(counts: dict[str, Any]) -> str:
    return ", ".join(f"{state_label(str(k))} {v}" for k, v in sorted(counts.items())) or "nothing"


def counts_text(counts: dict[str, int]) -> str:
    return _counts_text(dict(counts))


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
