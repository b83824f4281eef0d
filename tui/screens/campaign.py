"""Campaign: the wave plan, a progress bar per wave and overall, the failure budget left, the deferred
monitors and why, and the decisions (approve next wave, pause, resume, abort).

Approve and abort go through a confirmation modal (the app's actions); this view only draws the model
and offers buttons that trigger the same actions as the keys.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Label, ProgressBar, Static

from tui.model import FleetModel, Phase
from tui.widgets.waves import WaveList

PHASE_SYMBOL = {
    Phase.NOT_STARTED: "○", Phase.RUNNING: "»", Phase.GATE: "‖", Phase.PAUSED: "‖",
    Phase.HALTED: "✖", Phase.ABORTED: "✖", Phase.FINISHED: "✔",
}


def phase_line(model: FleetModel) -> str:
    symbol = PHASE_SYMBOL.get(model.phase, "")
    words = model.phase.value.upper()
    if model.phase == Phase.FINISHED and not model.complete:
        # finished, but not as asked: never the tick of a clean run next to failed monitors
        symbol, words = "!", f"FINISHED, NOT ALL PATCHED ({model.unfinished})"
    text = f"{symbol} Campaign {model.campaign_id or '(not started)'}: {words}"
    if model.phase == Phase.GATE and model.gate_wave is not None:
        text += f" - wave {model.gate_wave + 1} needs approval (press a)"
    elif model.phase == Phase.RUNNING and model.current_wave is not None:
        text += f" - wave {model.current_wave + 1} of {len(model.waves)}"
    if model.phase_detail:
        text += f" - {model.phase_detail}"
    asking = sorted(name for name, row in model.rows.items() if row.trigger_request)
    if asking:
        more = f" and {len(asking) - 3} more" if len(asking) > 3 else ""
        text += f"\n! Technician needed at the bed: {', '.join(asking[:3])}{more} (open the monitor, t / n)"
    return text


class CampaignView(Vertical):
    DEFAULT_CSS = """
    CampaignView { height: 1fr; padding: 0 1; }
    CampaignView > Static { height: auto; }
    CampaignView > #overall { height: 1; }
    CampaignView > #overall > Label { width: 32; }
    CampaignView > #overall > ProgressBar { width: 1fr; }
    CampaignView > #campaign-buttons { height: 3; }
    CampaignView > #deferred-table { height: 1fr; min-height: 4; }
    """

    def __init__(self, model: FleetModel) -> None:
        super().__init__(id="campaign-view")
        self.fleet = model
        self._last: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static(phase_line(self.fleet), id="campaign-phase")
        yield Static("", id="campaign-package")
        yield Static("", id="failure-budget")
        with Horizontal(id="overall"):
            yield Label("Overall", id="overall-label")
            yield ProgressBar(total=1, show_eta=False, id="overall-bar")
        yield Label("Waves (canary first):")
        yield WaveList(id="wave-list")
        with Horizontal(id="campaign-buttons"):
            yield Button("Start…", id="btn-start", variant="primary")
            yield Button("Approve next wave…", id="btn-approve", variant="success")
            yield Button("Pause", id="btn-pause")
            yield Button("Resume", id="btn-resume")
            yield Button("Abort…", id="btn-abort", variant="error")
        yield Label("Deferred monitors (patient connected, alarm, or outside the maintenance window):",
                    id="deferred-title")
        yield DataTable(id="deferred-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#deferred-table", DataTable)
        table.add_column("Monitor", width=22, key="name")
        table.add_column("Site / ward / bed", width=44, key="where")
        table.add_column("Why deferred", width=60, key="reason")

    def show(self, *, can: dict[str, bool], read_only: bool) -> None:
        model = self.fleet
        self.query_one("#campaign-phase", Static).update(phase_line(model))
        pkg = model.package
        if pkg:
            self.query_one("#campaign-package", Static).update(
                f"Package {pkg.get('package_name')} -> firmware {pkg.get('target_version')}"
                f" · operator {model.operator}")
        strangers = model.status.unattributed_contacts()
        self.query_one("#failure-budget", Static).update(
            "Failure budget: " + model.failure_budget()
            + (f"\n! {len(strangers)} contact(s) with 202.114.4.0/24 fit no monitor (from "
               + ", ".join(sorted({str(c.get('source', '?')).rsplit(':', 1)[0] for c in strangers}))
               + "): the network checks of the monitors watched meanwhile are inconclusive"
               if strangers else ""))
        done, total = model.overall_progress()
        self.query_one("#overall-label", Label).update(f"Overall {done}/{total} finished")
        self.query_one("#overall-bar", ProgressBar).update(total=max(total, 1), progress=done)
        self.query_one(WaveList).show(model)
        for name, action in (("start", "start"), ("approve", "approve"), ("pause", "pause"),
                             ("resume", "resume"), ("abort", "abort")):
            button = self.query_one(f"#btn-{name}", Button)
            button.display = not read_only
            button.disabled = not can.get(action, False)
        deferred = model.deferred()
        key = tuple(f"{r.name}|{r.reason}" for r in deferred)
        if key != self._last:
            self._last = key
            table = self.query_one("#deferred-table", DataTable)
            table.clear()
            for r in deferred:
                table.add_row(r.name, f"{r.site} / {r.ward} / {r.bed}", r.reason or "-", key=r.name)
