"""Monitor: one monitor's event timeline, retries, the evidence behind each verdict, and for hands-on
units the work order, the prompts to the technician and the confirm step."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Static

from orchestrator.domain.bench import may_bench
from orchestrator.domain.describe import describe
from orchestrator.domain.devices import DeliveryPath
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.evidence import EvidenceLevel, level_of
from orchestrator.domain.failures import explain as explain_failure
from orchestrator.domain.handson import next_step
from orchestrator.domain.lifecycle import DeviceState
from tui.model import CVE_IDS, FleetModel, MonitorRow, state_label, verdict_label

# work-order fields already in the monitor's summary line (and the printable copy of the whole order)
ORDER_SHOWN_ELSEWHERE = frozenset({"campaign", "device", "site", "ward", "bed", "serial", "asset_tag",
                                   "model",
                                   "text"})
TRIGGER_PROMPTS = {
    "menu-update": "start a firmware update from the monitor's menu (exercises CVE-2025-0626)",
    "boot-key": "reboot the monitor and press C during boot (exercises CVE-2025-1204)",
}


def latest(row: MonitorRow, kind: EventKind) -> list[JournalRecord]:
    return [r for r in row.timeline if r.kind == kind]


def render_summary(row: MonitorRow) -> Text:
    t = Text()
    t.append(f"{row.name}", style="bold")
    t.append(f"  {row.model} · serial {row.serial} · {row.site} / {row.ward} / bed {row.bed}"
             f" · delivery {row.delivery or '-'}"
             + (f" · asset {row.asset_tag}" if row.asset_tag else "") + "\n")
    wave = f"wave {row.wave + 1}" if row.wave is not None else "no wave"
    t.append(f"State: {state_label(row.state)}", style="bold")
    t.append(f"  ({row.reason})" if row.reason else "")
    t.append(f" · {wave} · attempts {row.attempts} · retries {row.retries}\n")
    read = f" (read by {row.firmware_after_by})" if row.firmware_after and row.firmware_after_by else ""
    t.append(f"Firmware: before {row.firmware_before or '-'} -> after {row.firmware_after or '-'}{read}\n")
    if (held := row.containment) is not None:
        how = f" ({held.get('how')})" if held.get("how") else ""
        who = f", physician {held.get('physician')}" if held.get("physician") else ""
        t.append(f"Containment: {held.get('state')}{how}, confirmed by {held.get('by')}{who} "
                 f"at {str(held.get('at', ''))[:19]}\n")
    else:
        t.append("Containment: not recorded (cmspatch contain record)\n")
    for check in row.vitals[-3:]:
        differs = f"; differs: {', '.join(check.get('mismatches') or [])}" if check.get("mismatches") else ""
        t.append(f"Vitals check: {check.get('outcome')} by {check.get('technician')} "
                 f"at {str(check.get('at', ''))[:19]}{differs}\n",
                 style="bold" if check.get("outcome") == "tampering-suspected" else "")
    return t


def no_verdict(row: MonitorRow) -> str:
    """Why a monitor has no verdict, in words: a failed unit was never verified, and must not read as
    one whose verification is still to come."""
    if row.state == DeviceState.FAILED.value:
        reached = any(r.kind is EventKind.STATE_CHANGED and r.data.get("to") == DeviceState.VERIFYING.value
                      for r in row.timeline)
        return "no verdict: failed during verification" if reached else \
            "no verdict: failed before verification"
    if row.state == DeviceState.SKIPPED.value:
        return f"no verdict: skipped ({row.reason or 'no reason recorded'})"
    if row.state == DeviceState.DEFERRED.value:
        return "no verdict: deferred before the update"
    if row.state in (DeviceState.AWAITING_TECHNICIAN.value, DeviceState.AWAITING_BENCH.value):
        return "no verdict yet: a hands-on unit is proven at its bench session"
    return "no verdict yet (verification runs after the reboot)"


def _level_note(level: str | None) -> str:
    """Said when a verdict is not the device and the network's together: a bench silence or a record
    is a weaker proof, and the person reading must see so beside the tick."""
    return f" ({level})" if level and level != EvidenceLevel.DEVICE_NETWORK.value else ""


def render_decisive(row: MonitorRow) -> Text:
    """The timeline's decisive rows, first, so they are on screen without scrolling however long the
    timeline and the evidence are: the last state change, why it failed or waits, the verdict per CVE,
    the last retry, the open request to a technician."""
    t = Text()
    changes = latest(row, EventKind.STATE_CHANGED)
    if changes:
        last = changes[-1]
        t.append(f"Last change {last.at[11:19]}: ", style="bold")
        t.append(f"{describe(last)}\n")
    else:
        t.append("Last change: none recorded yet\n", style="bold")
    if row.state == DeviceState.FAILED.value:
        meaning = explain_failure(row.reason) if row.reason else ""
        t.append(f"Failed: {row.reason or 'no reason recorded'}", style="bold reverse")
        t.append(f" - {meaning}\n" if meaning and meaning != row.reason else "\n")
    elif row.state == DeviceState.DEFERRED.value:
        t.append(f"Deferred: {row.reason or 'no reason recorded'} (re-checked before the campaign ends)\n",
                 style="bold")
    retries = [r for r in latest(row, EventKind.ATTEMPT) if r.data.get("outcome") != "ok"]
    if retries:
        t.append(f"Last retry {retries[-1].at[11:19]}: {describe(retries[-1])}\n")
    if row.verdicts:
        verdicts, levels = row.verdicts, row.verdict_levels
        t.append("Verdicts: ", style="bold")
        t.append(" · ".join(f"{cve.removeprefix('CVE-')} {verdict_label(verdicts.get(cve, ''))}"
                            + _level_note(levels.get(cve)) for cve in CVE_IDS) + "\n")
    else:
        t.append(f"Verdicts: {no_verdict(row)}\n", style="bold")
    return t


def render_verdicts(row: MonitorRow) -> Text:
    t = Text()
    t.append("Verdicts and their evidence\n", style="bold underline")
    by_cve: dict[str, dict[str, Any]] = {}
    for r in latest(row, EventKind.VERDICT):
        by_cve[str(r.data.get("cve"))] = r.data
    if not by_cve:
        t.append(f"  {no_verdict(row)}\n")
    for cve in CVE_IDS:
        v = by_cve.get(cve)
        if v is None:
            continue
        t.append(f"  {cve}: {verdict_label(str(v.get('verdict')))}", style="bold")
        t.append(f" [{level_of(v).value}]")  # how it was established (domain.evidence)
        t.append(f" - {v.get('reason', '')}\n")
        for ev in v.get("evidence") or []:
            t.append(f"      [{ev.get('outcome')}] {ev.get('check')} "
                     f"({ev.get('source')}, {ev.get('observed_at')}): {ev.get('summary')}\n")
            t.append(f"          sha256 {str(ev.get('sha256', ''))[:16]}…\n")
    checks = latest(row, EventKind.CHECK_RESULT)
    if checks:
        t.append("Checks run\n", style="bold underline")
        for r in checks:
            ev = r.data.get("evidence") or {}
            cves = ", ".join(r.data.get("cves") or [])
            t.append(f"  [{ev.get('outcome')}] {ev.get('check')}: {ev.get('summary')}  ({cves})\n")
    return t


def render_work_order(row: MonitorRow) -> Text | None:
    if row.delivery != DeliveryPath.MANUAL.value:
        return None  # a networked unit has no work order: its triggers are on the timeline
    orders = latest(row, EventKind.WORK_ORDER)
    triggers = latest(row, EventKind.TRIGGER_EXERCISED)
    t = Text()
    t.append("Hands-on work order\n", style="bold underline")
    if not orders:
        t.append("  no work order issued yet\n")
    for r in orders[-1:]:
        order = r.data.get("order") or {}
        for key, value in order.items():
            if key in ORDER_SHOWN_ELSEWHERE:
                continue
            if isinstance(value, list | tuple):
                t.append(f"  {key.replace('_', ' ')}:\n")
                for item in value:
                    t.append(f"    - {item}\n")
            else:
                t.append(f"  {key.replace('_', ' ')}: {value}\n")
    wanted = [str(x) for x in ((orders[-1].data.get("order") or {}).get("triggers") or [])] if orders else []
    t.append("  During the observation window after the update:\n")
    done = {str(r.data.get("trigger")) for r in triggers}
    for trig in wanted or list(TRIGGER_PROMPTS):
        mark = "✔" if trig in done else "☐"
        t.append(f"  {mark} Ask the technician to {TRIGGER_PROMPTS.get(trig, trig)}\n")
    for r in triggers:
        t.append(f"  ✔ trigger {r.data.get('trigger')} exercised by {r.data.get('by')} at {r.at[11:19]}\n")
    if row.state == "awaiting-technician" and not row.technician:
        t.append("  ☐ Waiting for the technician to confirm: press m (or the button) once done.\n",
                 style="bold")
    elif row.state in ("awaiting-technician", "awaiting-bench"):
        t.append(f"  ✔ Installed, confirmed by technician {row.technician}.\n")
        t.append("  ☐ Waiting for its bench session (not failed, not counted against the budget): "
                 f"{next_step(row.name, DeviceState(row.state), technician=row.technician)}\n", style="bold")
    return t


def render_trigger_request(row: MonitorRow) -> Text | None:
    """The prompt to the technician while the verification waits for a trigger to be exercised."""
    request = row.trigger_request
    if not request:
        return None
    t = Text()
    where = f"{row.site} / {row.ward} / bed {row.bed}"
    t.append(f"TECHNICIAN NEEDED at {where}: exercise {request.get('trigger')}\n", style="bold reverse")
    t.append(f"  {request.get('instructions', '')}\n")
    t.append(f"  The sinkhole is watching. Answer within {float(request.get('timeout') or 0):g} s: "
             "t = done at the bed, n = could not be done.\n", style="bold")
    return t


class MonitorScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("m", "confirm_manual", "Technician confirms…"),
        Binding("t", "answer_trigger(True)", "Trigger done…"),
        Binding("n", "answer_trigger(False)", "Could not…"),
        Binding("b", "bench", "Bench session…"),
    ]
    DEFAULT_CSS = """
    MonitorScreen > VerticalScroll { height: 1fr; }
    MonitorScreen Static { padding: 0 1; }
    MonitorScreen #monitor-actions { height: 3; }
    MonitorScreen #monitor-timeline { height: 16; }
    """

    def __init__(self, model: FleetModel, name: str, *, read_only: bool) -> None:
        super().__init__(name=f"monitor-{name}")
        self.fleet = model
        self.device = name
        self.read_only = read_only
        self._shown_seq = -1

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static("", id="monitor-trigger")  # a person is asked to act now: first of all
            yield Static("", id="monitor-decisive")
            yield Static("", id="monitor-summary")
            yield Static("", id="monitor-work-order")
            with Horizontal(id="monitor-actions"):
                yield Button("Technician confirms…", id="btn-confirm-manual", variant="primary")
                yield Button("Trigger done…", id="btn-trigger-done", variant="success")
                yield Button("Could not…", id="btn-trigger-not", variant="warning")
            yield Static("", id="monitor-verdicts")
            yield Static("Timeline", classes="title")
            yield DataTable(id="monitor-timeline", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#monitor-timeline", DataTable)
        table.add_column("#", width=6, key="seq")
        table.add_column("Time", width=9, key="at")
        table.add_column("Event", width=20, key="kind")
        table.add_column("Detail", width=90, key="detail")
        self.sub_title = f"Monitor {self.device}"
        self.refresh_view()

    @property
    def row(self) -> MonitorRow:
        return self.fleet.rows.get(self.device) or MonitorRow(name=self.device)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "confirm_manual":
            if self.read_only or self.row.delivery != DeliveryPath.MANUAL.value:
                return False  # hidden: only a hands-on unit is confirmed by a technician
            return True if self.row.state == "awaiting-technician" else None
        if action == "answer_trigger":
            if self.read_only:
                return False
            return bool(self.row.trigger_request)  # only while a request waits: hidden otherwise
        if action == "bench":  # only for a hands-on unit waiting for its bench, with a station wired in
            config = getattr(getattr(self.app, "session", None), "config", None)
            return (not self.read_only and getattr(config, "bench", None) is not None
                    and may_bench(self.row.state, self.row.delivery) is None)
        return True

    def refresh_view(self) -> None:
        row = self.row
        self.query_one("#monitor-decisive", Static).update(render_decisive(row))
        self.query_one("#monitor-summary", Static).update(render_summary(row))
        order = render_work_order(row)
        wo = self.query_one("#monitor-work-order", Static)
        wo.display = order is not None
        if order is not None:
            wo.update(order)
        prompt = render_trigger_request(row)
        asked = self.query_one("#monitor-trigger", Static)
        asked.display = prompt is not None
        if prompt is not None:
            asked.update(prompt)
        for button_id in ("#btn-trigger-done", "#btn-trigger-not"):
            self.query_one(button_id, Button).display = prompt is not None and not self.read_only
        hands_on = row.delivery == DeliveryPath.MANUAL.value
        self.query_one("#monitor-actions").display = (hands_on or prompt is not None) and not self.read_only
        button = self.query_one("#btn-confirm-manual", Button)
        button.display = hands_on and not self.read_only
        button.disabled = row.state != "awaiting-technician"
        self.query_one("#monitor-verdicts", Static).update(render_verdicts(row))
        table = self.query_one("#monitor-timeline", DataTable)
        for r in row.timeline:
            if r.seq > self._shown_seq:
                table.add_row(str(r.seq), r.at[11:19], r.kind.value, describe(r), key=str(r.seq))
                self._shown_seq = r.seq
        self.refresh_bindings()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_confirm_manual(self) -> None:
        confirm = getattr(self.app, "action_confirm_manual", None)
        if callable(confirm):
            confirm(self.device)

    def action_bench(self) -> None:
        from tui.screens.bench import BenchScreen

        session = getattr(self.app, "session", None)
        if session is not None and self.check_action("bench", ()):
            self.app.push_screen(BenchScreen(self.fleet, self.device, session))

    def action_answer_trigger(self, done: bool) -> None:
        answer = getattr(self.app, "action_answer_trigger", None)
        if callable(answer):
            answer(self.device, done)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "btn-confirm-manual":
            event.stop()
            self.action_confirm_manual()
        elif event.button.id in ("btn-trigger-done", "btn-trigger-not"):
            event.stop()
            self.action_answer_trigger(event.button.id == "btn-trigger-done")
