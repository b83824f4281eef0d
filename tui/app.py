"""The cmspatch terminal UI: Fleet, Package and Campaign tabs, a Monitor screen, a log pane.

A thin view (STYLE.md "Thin front ends"): the app verifies the package through the trust API, starts the
engine in a thread worker, shows the engine's journal records and sends the operator's decisions back.
It holds no campaign logic.

Flow of records: engine threads -> ``Session.inbox`` (one append each) -> ``_tick`` every 1/8 s drains
it, folds into ``FleetModel`` and pushes only what changed, once, inside ``batch_update()``. Nothing is
posted per record, so a flood of records costs the UI one small fold per record and one table update per
changed row per tick. A watched journal (headless campaign) is polled by a thread worker into the same
inbox, and the model drops records it has already seen, so watch-then-resume never shows a record twice.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, TabbedContent, TabPane

from orchestrator.domain.campaign import Ending
from orchestrator.errors import CmspatchError
from tui.model import Changes, FleetModel, Phase
from tui.screens.campaign import CampaignView
from tui.screens.fleet import FleetView
from tui.screens.modals import ConfirmModal, ExportModal, HelpScreen, TechnicianModal, TriggerAnswerModal
from tui.screens.monitor import MonitorScreen
from tui.screens.package import PackageView
from tui.session import OutcomeLike, Session
from tui.widgets.log_pane import LogPane

TICK_SECONDS = 1 / 8  # 8 Hz: inside the 4-10 Hz band where a DataTable keeps up (PERFORMANCE.md)
MAX_PUSH_SECONDS = 0.5  # under overload the screen updates at 2 Hz, never less
JOURNAL_POLL_SECONDS = 0.5
ACTIONS = ("start", "approve", "pause", "resume", "abort", "confirm_manual", "answer_trigger")


class CmspatchApp(App[int]):
    TITLE = "cmspatch"
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses live elsewhere
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "show_tab('fleet')", "Fleet"),
        Binding("p", "show_tab('package')", "Package"),
        Binding("c", "show_tab('campaign')", "Campaign"),
        Binding("slash", "search", "Search"),
        Binding("o", "sort", "Sort"),
        Binding("s", "start", "Start…"),
        Binding("a", "approve", "Approve wave…"),
        Binding("z", "pause", "Pause"),
        Binding("r", "resume", "Resume"),
        Binding("x", "abort", "Abort…"),
        Binding("e", "export", "Export…"),
        Binding("l", "toggle_log", "Log"),
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, session: Session, *, tick_seconds: float = TICK_SECONDS) -> None:
        super().__init__()
        self.session = session
        self.model = FleetModel()
        self.model.load_inventory(session.config.devices)
        self.tick_seconds = tick_seconds
        self.title = session.config.title
        self.report_error: str | None = None
        self.verified_once = threading.Event()
        self.engine_done = threading.Event()
        self._stop_polling = threading.Event()
        self._last_phase: Phase | None = None
        # The technician's name as a person last typed it here; never the operator's or the login name.
        self._technician = ""
        # measured for bench/bench_tui.py: seconds per flush, records folded
        self.flush_times: deque[float] = deque(maxlen=2000)
        self.records_applied = 0
        self.push_every = tick_seconds
        self._pending = Changes()
        self._last_tick = self._last_push = time.monotonic()

    def _main(self, selector: Any, expect_type: Any = None) -> Any:
        """Query the main screen, whatever screen (monitor, modal) is on top: ``App.query_one`` would
        search only the active screen."""
        screen = self.screen_stack[0] if self.screen_stack else self.screen
        return screen.query_one(selector) if expect_type is None else screen.query_one(selector, expect_type)

    # -- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="fleet", id="tabs"):
            with TabPane("Fleet", id="fleet"):
                yield FleetView(self.model)
            with TabPane("Package", id="package"):
                yield PackageView(id="package-view")
            with TabPane("Campaign", id="campaign"):
                yield CampaignView(self.model)
        yield LogPane(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self._update_subtitle()
        self._ticker = self.set_interval(self.tick_seconds, self._tick)
        if self.session.config.verify is not None:
            self.verify_package()
        else:
            self._show_package()
        if self.session.config.read_journal is not None:
            self.poll_journal()
        self._main(FleetView).table.focus()
        self._push_changes(Changes(campaign=True))

    # -- background work ---------------------------------------------------------------------------
    @work(thread=True, group="verify", exit_on_error=False)
    def verify_package(self) -> None:
        try:
            self.session.verify_package()
        except CmspatchError as exc:
            self.report_error = f"{exc.message} [{exc.reason}]"
        except Exception as exc:  # a bug in a check must not leave the screen saying "verifying"
            self.report_error = f"internal error: {type(exc).__name__}: {exc}"
        self.call_from_thread(self._show_package)
        self.verified_once.set()

    @work(thread=True, group="engine", exit_on_error=False)
    def run_engine(self) -> None:
        try:
            if self.session.engine is None:
                self.session.start()
            self._stop_polling.set()  # records now arrive through the subscription
            outcome = self.session.run()
        except CmspatchError as exc:
            self.call_from_thread(self._engine_stopped, f"{exc.message} [{exc.reason}]", None)
        except Exception as exc:  # a bug: say so, keep the window usable
            self.call_from_thread(self._engine_stopped, f"internal error: {type(exc).__name__}: {exc}", None)
        else:
            self.call_from_thread(self._engine_stopped, None, outcome)
        finally:
            self.engine_done.set()

    @work(thread=True, group="journal", exit_on_error=False)
    def poll_journal(self) -> None:
        """Watch a campaign that another process runs: poll the journal for new records."""
        since = 0
        while not self._stop_polling.is_set():
            try:
                for record in self.session.poll_journal(since):
                    self.session.inbox.put(record)
                    since = max(since, record.seq)
            except CmspatchError as exc:
                self.call_from_thread(self.notify, f"journal: {exc.message}", severity="error")
                return
            self._stop_polling.wait(JOURNAL_POLL_SECONDS)

    def _engine_stopped(self, error: str | None, outcome: OutcomeLike | None) -> None:
        if error is not None:
            self.notify(error, title="Campaign stopped", severity="error", timeout=10)
            self._main(LogPane).add([f"campaign stopped: {error}"])
        elif outcome is not None:
            # The outcome's words, never its exit code: a number means nothing to the operator here.
            self.notify(f"Campaign ended: {outcome.message}", title="Campaign", timeout=10,
                        severity="information" if outcome.ending is Ending.COMPLETE else "warning")
            self._main(LogPane).add([f"campaign ended: {outcome.message}"])
        self.refresh_bindings()

    # -- the coalescing tick --------------------------------------------------------------------------
    def _tick(self) -> None:
        """Fold every tick; push to the screen every tick unless the event loop is falling behind.

        When ticks arrive late (a starved CPU: each frame of a 160x50 table costs 40-70 ms), the push
        interval doubles, up to ``MAX_PUSH_SECONDS``, so key presses still get the loop; it decays back
        to the nominal rate once ticks are on time again. Folding is never skipped (it is cheap)."""
        now = time.monotonic()
        late = now - self._last_tick - self.tick_seconds
        self._last_tick = now
        if late > self.tick_seconds:
            self.push_every = min(MAX_PUSH_SECONDS, self.push_every * 2)
        else:
            self.push_every = max(self.tick_seconds, self.push_every * 0.8)
        records = self.session.inbox.drain()
        if records:
            self._pending = self._pending.merge(self.model.apply_many(records))
        if now - self._last_push < self.push_every - 0.01:
            return
        pending, self._pending = self._pending, Changes()
        self._last_push = now
        try:
            self._push_changes(pending)
        except NoMatches:  # the app is shutting down: its widgets are already gone
            return

    def _push_changes(self, changes: Changes) -> None:
        started = time.perf_counter()
        self.records_applied += changes.records
        fleet = self._main(FleetView)
        with self.batch_update():
            fleet.table.push(changes.devices)
            if changes.devices or changes.campaign:
                fleet.refresh_counts()
                self._main(CampaignView).show(can=self._can(), read_only=self.session.read_only)
            if changes.log:
                self._main(LogPane).add(changes.log)
            for device in changes.asks:
                self.notify(f"{device}: a technician must exercise a trigger at the bed. "
                            "Open the monitor (enter) and answer with t or n.",
                            title="Technician needed", severity="warning", timeout=15)
            screen = self.screen
            if isinstance(screen, MonitorScreen) and screen.device in changes.devices:
                screen.refresh_view()
            if changes.campaign:
                self._update_subtitle()
                if self.model.phase != self._last_phase:
                    self._last_phase = self.model.phase
                    self.refresh_bindings()
                    self._show_package()
        if not changes.empty:
            self.flush_times.append(time.perf_counter() - started)

    def _update_subtitle(self) -> None:
        ro = " · READ-ONLY" if self.session.read_only else ""
        cid = self.model.campaign_id or self.session.config.campaign_id or "no campaign yet"
        self.sub_title = f"{cid} · {self.model.phase.value}{ro}"

    def _show_package(self) -> None:
        s = self.session
        if s.read_only:
            hint = "read-only window: watching only"
        elif s.engine is not None or (self.model.phase != Phase.NOT_STARTED and not s.config.campaign_id):
            hint = "the campaign is under way: see the Campaign tab"
        elif s.verified is None:
            hint = "refused or not verified: nothing can start" if s.report is not None or self.report_error \
                else "verifying…"
        elif s.config.campaign_id:
            hint = f"press r to resume campaign {s.config.campaign_id} from the journal"
        else:
            hint = "press s (or the button) to start; you will be asked to confirm"
        self._main(PackageView).show(s.report, can_start=bool(self._can().get("start")), hint=hint,
                                         error=self.report_error,
                                         pending=s.config.verify is not None)
        self.refresh_bindings()

    # -- what may be done now ---------------------------------------------------------------------
    def _can(self) -> dict[str, bool]:
        s, m = self.session, self.model
        running = s.engine is not None and not self.engine_done.is_set()
        resumable_from_journal = (s.engine is None and bool(s.config.campaign_id) and s.can_start
                                  and m.phase in (Phase.RUNNING, Phase.GATE, Phase.PAUSED, Phase.NOT_STARTED))
        return {
            "start": s.can_start and not s.config.campaign_id,
            "approve": running and m.can_approve(),
            "pause": running and m.phase in (Phase.RUNNING, Phase.GATE),
            "resume": (running and m.phase == Phase.PAUSED) or resumable_from_journal,
            "abort": running and m.live,
            "confirm_manual": running,
            "answer_trigger": running,
        }

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "export":  # reading the journal decides nothing: read-only windows export too
            return self.session.config.export is not None and bool(self.session.config.export_formats)
        if action in ACTIONS:
            if self.session.read_only:
                return False  # hidden: a read-only window offers no decisions
            return True if self._can().get(action) else None  # shown greyed out when not possible now
        return True

    def _refused(self, what: str) -> bool:
        """Refuse (and say so) a decision that is not allowed now; True when refused."""
        if self.session.read_only:
            self.notify(f"Refused: this window is read-only and may not {what}.", severity="error")
            return True
        return False

    # -- actions -----------------------------------------------------------------------------------
    def action_show_tab(self, tab: str) -> None:
        if self.screen is not self.screen_stack[0]:
            self.pop_screen()
        self._main(TabbedContent).active = tab
        if tab == "fleet":
            self._main(FleetView).table.focus()

    def action_search(self) -> None:
        self.action_show_tab("fleet")
        self._main("#fleet-filter", Input).focus()

    def action_sort(self) -> None:
        self._main(FleetView).cycle_sort()

    def action_toggle_log(self) -> None:
        self._main(LogPane).toggle_class("hidden")

    def action_export(self) -> None:
        config = self.session.config
        if config.export is None or not config.export_formats:
            self.notify("This window has no journal to export from.", severity="warning")
            return
        campaign = self.model.campaign_id or config.campaign_id
        self.push_screen(ExportModal(config.export_formats, campaign),
                         lambda answer: self._export(answer, campaign))

    def _export(self, answer: tuple[str, str] | None, campaign: str | None) -> None:
        if answer is not None:
            fmt, out = answer
            self._write_export(fmt, Path(out).expanduser(), campaign)

    @work(thread=True, group="export", exit_on_error=False)
    def _write_export(self, fmt: str, out: Path, campaign: str | None) -> None:
        """Blocking (the journal's chain is verified first): a worker, so the screen keeps moving."""
        try:
            words = self.session.export(fmt, out, campaign)
        except CmspatchError as exc:
            self.call_from_thread(self.notify, f"{exc.message} [{exc.reason}]", title="Export refused",
                                  severity="error", timeout=10)
            return
        except Exception as exc:  # a bug: say so, keep the window usable
            self.call_from_thread(self.notify, f"internal error: {type(exc).__name__}: {exc}",
                                  title="Export failed", severity="error", timeout=10)
            return
        self.call_from_thread(self.notify, words, title="Export written", timeout=10)
        self.call_from_thread(self._main(LogPane).add, [words])

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_start(self) -> None:
        if self._refused("start a campaign"):
            return
        if not self._can()["start"]:
            self.notify("Cannot start: " + self._why_not_start(), severity="warning")
            return
        n = len(self.model.rows)
        body = (f"Push {self.session.verified.package_name if self.session.verified else 'the package'} "
                f"to {n} monitor(s), wave by wave. Each later wave waits for your approval.")
        self.push_screen(ConfirmModal("Start the campaign?", body, confirm="Start campaign"),
                         self._start_confirmed)

    def _why_not_start(self) -> str:
        s = self.session
        if s.engine is not None:
            return "the campaign is already running"
        if s.verified is None:
            return s.report.message if s.report is not None else (self.report_error or "package not verified")
        return "no engine configured"

    def _start_confirmed(self, answer: str | None) -> None:
        if answer is None:
            return
        self._main(LogPane).add(["starting the campaign…"])
        self.action_show_tab("campaign")
        self.run_engine()

    def action_approve(self) -> None:
        if self._refused("approve a wave"):
            return
        wave = self.model.gate_wave
        if wave is None or not self._can()["approve"]:
            self.notify("No wave is waiting for approval.", severity="warning")
            return
        size = self.model.waves[wave].size if wave < len(self.model.waves) else 0
        done, total = self.model.overall_progress()
        body = (f"Wave {wave + 1} ({size} monitors) will be patched. So far {done}/{total} finished; "
                f"failure budget: {self.model.failure_budget()}.")
        self.push_screen(ConfirmModal(f"Approve wave {wave + 1}?", body, confirm=f"Approve wave {wave + 1}"),
                         lambda answer: self._decide(answer, "approve", wave))

    def action_pause(self) -> None:
        if not self._refused("pause"):
            self._decide("", "pause")

    def action_resume(self) -> None:
        if self._refused("resume"):
            return
        s = self.session
        if s.engine is None and s.config.campaign_id:
            body = f"Resume campaign {s.config.campaign_id} from its journal in this window?"
            self.push_screen(ConfirmModal("Resume the campaign?", body, confirm="Resume"),
                             self._start_confirmed)
            return
        self._decide("", "resume")

    def action_abort(self) -> None:
        if self._refused("abort"):
            return
        if not self._can()["abort"]:
            self.notify("No campaign is running.", severity="warning")
            return
        body = ("Monitors not yet started are skipped; monitors mid-update finish their current step. "
                "The journal records who aborted and why.")
        self.push_screen(ConfirmModal("Abort the campaign?", body, confirm="Abort campaign",
                                      ask_reason="reason (required)", danger=True),
                         lambda answer: self._decide(answer, "abort"))

    def action_confirm_manual(self, device: str) -> None:
        if self._refused("confirm a hands-on unit"):
            return
        row = self.model.rows.get(device)
        if row is None or row.state != "awaiting-technician":
            self.notify(f"{device} is not waiting for a technician.", severity="warning")
            return
        self.push_screen(TechnicianModal(device, self._technician),
                         lambda answer: self._confirm_manual(device, answer))

    def action_answer_trigger(self, device: str, done: bool) -> None:
        if self._refused("answer a technician request"):
            return
        row = self.model.rows.get(device)
        request = row.trigger_request if row is not None else None
        if not request:
            self.notify(f"{device} is not waiting for a trigger.", severity="warning")
            return
        trigger = str(request.get("trigger"))
        self.push_screen(TriggerAnswerModal(device, trigger, str(request.get("instructions", "")),
                                            self._technician, done=done),
                         lambda answer: self._answer_trigger(device, trigger, done, answer))

    def _answer_trigger(self, device: str, trigger: str, done: bool, answer: tuple[str, str] | None) -> None:
        if answer is not None:
            technician, note = answer
            self._technician = technician
            did = "exercised" if done else "could not be exercised"
            self._call(lambda: self.session.answer_trigger(device, trigger, technician, done=done, note=note),
                       f"{device}: {trigger} {did} ({technician}); the sinkhole window runs")

    def _confirm_manual(self, device: str, answer: tuple[str, str, str] | None) -> None:
        if answer is not None:
            technician, note, version = answer
            self._technician = technician
            self._call(lambda: self.session.confirm_manual(device, technician, note, version or None),
                       f"{device}: confirmed by {technician}; it awaits its bench session "
                       f"(cmspatch bench {device})")

    def _decide(self, answer: str | None, what: str, wave: int | None = None) -> None:
        if answer is None:
            return
        s = self.session
        if what == "approve" and wave is not None:
            self._call(lambda: s.approve(wave), f"wave {wave + 1} approved")
        elif what == "pause":
            self._call(s.pause, "pause requested: monitors mid-update finish their step")
        elif what == "resume":
            self._call(s.resume_run, "resumed")
        elif what == "abort":
            self._call(lambda: s.abort(answer), "abort requested")

    def _call(self, fn: Any, done: str) -> None:
        """Send a decision to the engine from a thread: some block (a journal write, or a hands-on
        confirmation that runs the verification window)."""
        self._decision(fn, done)

    @work(thread=True, group="decisions", exit_on_error=False)
    def _decision(self, fn: Any, done: str) -> None:
        try:
            fn()
        except CmspatchError as exc:
            self.call_from_thread(self.notify, f"{exc.message}", title="Refused", severity="error")
            return
        except Exception as exc:  # a bug: say so, keep the window usable
            self.call_from_thread(self.notify, f"internal error: {type(exc).__name__}: {exc}",
                                  title="Refused", severity="error")
            return
        self.call_from_thread(self.notify, done)
        self.call_from_thread(self.refresh_bindings)

    # -- events -----------------------------------------------------------------------------------
    @on(DataTable.RowSelected, "#fleet-table, #deferred-table")
    def _open_monitor(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.open_monitor(str(event.row_key.value))

    def open_monitor(self, name: str) -> None:
        self.push_screen(MonitorScreen(self.model, name, read_only=self.session.read_only))

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        actions = {"start-campaign": self.action_start, "btn-start": self.action_start,
                   "btn-approve": self.action_approve, "btn-pause": self.action_pause,
                   "btn-resume": self.action_resume, "btn-abort": self.action_abort}
        handler = actions.get(event.button.id or "")
        if handler is not None:
            handler()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Fleet", "Every monitor, live", lambda: self.action_show_tab("fleet"))
        yield SystemCommand("Package", "The trust report of the package",
                            lambda: self.action_show_tab("package"))
        yield SystemCommand("Campaign", "Waves, progress, failure budget, deferred monitors",
                            lambda: self.action_show_tab("campaign"))
        for state in ("failed", "deferred", "technician", "patched"):
            yield SystemCommand(f"Show {state} monitors", f"Filter the fleet to state:{state}",
                                lambda s=state: self._filter(f"state:{s}"))
        yield SystemCommand("Show still-vulnerable monitors", "Any CVE verdict VULN",
                            lambda: self._filter("cve:vulnerable"))
        yield SystemCommand("Clear fleet filter", "Show every monitor", lambda: self._filter(""))
        yield SystemCommand("Toggle log pane", "Show or hide the log", self.action_toggle_log)
        if self.session.config.export is not None:
            yield SystemCommand("Export", "CSV, JSON, HTML, CSAF or CycloneDX from the journal",
                                self.action_export)
        if not self.session.read_only:
            yield SystemCommand("Start campaign", "Asks for confirmation", self.action_start)
            yield SystemCommand("Approve next wave", "Asks for confirmation", self.action_approve)
            yield SystemCommand("Pause campaign", "Monitors mid-update finish their step", self.action_pause)
            yield SystemCommand("Resume campaign", "Continue after a pause, or from the journal",
                                self.action_resume)
            yield SystemCommand("Abort campaign", "Asks for confirmation and a reason", self.action_abort)

    def _filter(self, text: str) -> None:
        self.action_show_tab("fleet")
        self._main("#fleet-filter", Input).value = text
        view = self._main(FleetView)
        q = view.table.query_spec
        from tui.model import FleetQuery

        view.set_query(FleetQuery(text, q.sort, q.reverse))

    # -- leaving -----------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        s = self.session
        if s.engine is not None and not self.engine_done.is_set() and self.model.live and not s.read_only:
            self.push_screen(ConfirmModal(
                "Quit while the campaign runs?",
                "The campaign is paused and stops at a safe point; resume it later from the journal "
                f"(cmspatch tui --journal … --campaign {self.model.campaign_id}).",
                confirm="Pause and quit", danger=True), self._quit_confirmed)
            return
        self._leave()

    def _quit_confirmed(self, answer: str | None) -> None:
        if answer is not None:
            self._leave()

    def on_unmount(self) -> None:
        """However the app ends (quit, test harness, crash), the engine must not outlive it blocked at a
        gate: interrupt it so its worker thread returns and the process can exit."""
        self._stop_polling.set()
        self._ticker.stop()
        self.session.stop()

    def _leave(self) -> None:
        self._stop_polling.set()
        stop = getattr(self.session, "stop", None)
        if callable(stop):
            stop()
        self.exit(0)
