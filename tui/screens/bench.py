"""Bench: one hands-on unit's bench session, driven from the TUI (the same session as ``cmspatch bench``).

The technician types their name (the field starts empty: never the operator's nor the login name; a
session without one is refused) and starts the session. A worker thread runs the session through
``Session.bench`` (``bench_station.run_station``, wired by ``cmspatch tui``); its ``Prompter`` is this
screen: each step is shown with the time elapsed of the window, and the worker waits on a queue until the
technician answers y (done) or n with a reason (could not). The outcome and the verdicts at bench level
are shown at the end; the session's records reach the fleet through the session's inbox.

Deliberately left out: anything the session decides (the steps, the verdicts, the unit's moves are the
bench station's) and leaving mid-session (the window is refused while the session runs: a half-watched
unit proves nothing, and the station ends it inconclusive if the app closes).
"""

from __future__ import annotations

import queue
import threading
import time

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Static

from orchestrator.domain import bench
from orchestrator.errors import CmspatchError
from orchestrator.ports import Answer
from tui.model import FleetModel, MonitorRow
from tui.session import BenchResultLike, Session

CLOSED = Answer(False, "the bench screen was closed")


class ScreenPrompter:
    """``ports.Prompter`` for the worker thread: shows a step on the screen, waits for the answer."""

    def __init__(self, screen: BenchScreen) -> None:
        self.screen = screen
        self.answers: queue.Queue[Answer] = queue.Queue()
        self.closed = threading.Event()

    def say(self, message: str) -> None:
        if not self.closed.is_set():
            self.screen.app.call_from_thread(self.screen.add_line, message)

    def ask(self, step: str, number: int, instructions: str, *, elapsed: float, window: float) -> Answer:
        if self.closed.is_set():
            return CLOSED
        self.screen.app.call_from_thread(self.screen.show_step, step, number, instructions, elapsed, window)
        while not self.closed.is_set():
            try:
                return self.answers.get(timeout=0.2)
            except queue.Empty:
                continue
        return CLOSED

    def close(self) -> None:
        self.closed.set()


def step_text(step: str, number: int, instructions: str, elapsed: float, window: float) -> Text:
    of = f"{number}/{len(bench.STEPS)}" if number <= len(bench.STEPS) else "after the window"
    t = Text()
    t.append(f"STEP {of} {step}", style="bold reverse")
    t.append(f"  [{elapsed:.1f} s of {window:g} s]\n", style="bold")
    t.append(f"  {instructions}\n")
    t.append("  y = done · n = could not (type the reason first)\n", style="bold")
    return t


def result_text(device: str, result: BenchResultLike) -> Text:
    t = Text()
    t.append(f"{device}: {result.outcome} at bench level", style="bold")
    t.append(f" - {result.reason}\n")
    for v in result.verdicts:
        t.append(f"  {v.cve.value:<16} {v.verdict.value:<13} (bench) {v.reason}\n")
    return t


class BenchScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("y", "answer(True)", "Done"),
        Binding("n", "answer(False)", "Could not"),
    ]
    DEFAULT_CSS = """
    BenchScreen > VerticalScroll { height: 1fr; }
    BenchScreen Static { padding: 0 1; }
    BenchScreen Horizontal { height: 3; }
    BenchScreen Horizontal Input { width: 1fr; }
    BenchScreen Horizontal Button { width: auto; margin: 0 1; }
    """

    def __init__(self, model: FleetModel, device: str, session: Session) -> None:
        super().__init__(name=f"bench-{device}")
        self.fleet = model
        self.device = device
        self.session = session
        self.prompter: ScreenPrompter | None = None
        self.asking: str | None = None  # the step waiting for an answer
        self.result: BenchResultLike | None = None
        self.error: str | None = None
        self.lines: list[str] = []
        self._asked_at = 0.0
        self._asked_elapsed = 0.0
        self._window = 0.0

    @property
    def row(self) -> MonitorRow:
        return self.fleet.rows.get(self.device) or MonitorRow(name=self.device)

    @property
    def running(self) -> bool:
        return self.prompter is not None and self.result is None and self.error is None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static("", id="bench-unit")
            with Horizontal():
                yield Input(placeholder="technician's name (who works at the bench)", id="bench-technician")
                yield Button("Start bench session", id="bench-start", variant="primary")
            yield Static("", id="bench-step")
            with Horizontal(id="bench-answer"):
                yield Input(placeholder="reason (when it could not be done)", id="bench-reason")
                yield Button("Done (y)", id="bench-yes", variant="success")
                yield Button("Could not (n)", id="bench-no", variant="warning")
            yield Static("", id="bench-clock")
            yield Static("", id="bench-result")
            yield Static("", id="bench-log")
        yield Footer()

    def on_mount(self) -> None:
        row = self.row
        self.sub_title = f"Bench session of {self.device}"
        self.query_one("#bench-unit", Static).update(Text.assemble(
            (f"Bench session of {self.device}", "bold"),
            f"  {row.model} · serial {row.serial} · from {row.site} / {row.ward} / bed {row.bed}\n",
            f"State: {row.state}"
            + (f" (installed, confirmed by {row.technician})" if row.technician else "")
            + ". The unit goes on the isolated bench switch; cmspatch watches it for the whole window."))
        self.query_one("#bench-answer").display = False
        self.query_one("#bench-technician", Input).focus()
        self.set_interval(0.5, self._tick_clock)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "answer":
            return self.asking is not None
        return True

    # -- from the worker (via call_from_thread) ------------------------------------------------------
    def show_step(self, step: str, number: int, instructions: str, elapsed: float, window: float) -> None:
        self.asking = step
        self._asked_at, self._asked_elapsed, self._window = time.monotonic(), elapsed, window
        self.query_one("#bench-step", Static).update(step_text(step, number, instructions, elapsed, window))
        self.query_one("#bench-answer").display = True
        self.query_one("#bench-reason", Input).value = ""
        self.query_one("#bench-yes", Button).focus()  # y / n are answers, not text in a field
        self.add_line(f"[{elapsed:6.1f} s of {window:g} s] step {step}: asked")
        self.refresh_bindings()

    def add_line(self, message: str) -> None:
        self.lines.append(message)
        self.query_one("#bench-log", Static).update("\n".join(self.lines[-40:]))

    def _finished(self, result: BenchResultLike | None, error: str | None) -> None:
        self.result, self.error, self.asking = result, error, None
        self.query_one("#bench-answer").display = False
        self.query_one("#bench-step", Static).update("")
        shown = self.query_one("#bench-result", Static)
        if result is not None:
            shown.update(result_text(self.device, result))
            self.notify(f"{self.device}: {result.outcome} at bench level", title="Bench session",
                        severity="information" if result.outcome == "patched" else "warning", timeout=10)
        else:
            shown.update(Text(f"Bench session refused or stopped: {error}", style="bold"))
            self.notify(f"{error}", title="Bench session", severity="error", timeout=10)
        self.refresh_bindings()

    def _tick_clock(self) -> None:
        if self.asking is not None:
            elapsed = self._asked_elapsed + time.monotonic() - self._asked_at
            self.query_one("#bench-clock", Static).update(
                f"elapsed {elapsed:.1f} s of the {self._window:g} s window")

    # -- the technician -------------------------------------------------------------------------------
    @on(Button.Pressed, "#bench-start")
    def start(self) -> None:
        if self.prompter is not None:
            self.notify("The bench session has already run on this screen.", severity="warning")
            return
        technician = self.query_one("#bench-technician", Input).value.strip()
        if not technician:
            self.notify("Who works at the bench? A bench session needs the technician's name.",
                        title="Refused", severity="error")
            return
        campaign = self.fleet.campaign_id or self.session.config.campaign_id
        if not campaign:
            self.notify("No campaign is open in this window.", title="Refused", severity="error")
            return
        self.prompter = ScreenPrompter(self)
        self.query_one("#bench-technician", Input).disabled = True
        self.query_one("#bench-start", Button).disabled = True
        self.add_line(f"bench session of {self.device} started by technician {technician}")
        self._run(campaign, technician, self.prompter)

    @work(thread=True, group="bench", exit_on_error=False)
    def _run(self, campaign: str, technician: str, prompter: ScreenPrompter) -> None:
        try:
            result = self.session.bench(campaign, self.device, technician, prompter)
        except CmspatchError as exc:
            self.app.call_from_thread(self._finished, None, f"{exc.message} [{exc.reason}]")
        except Exception as exc:  # a bug: say so, keep the window usable
            self.app.call_from_thread(self._finished, None, f"internal error: {type(exc).__name__}: {exc}")
        else:
            self.app.call_from_thread(self._finished, result, None)

    def action_answer(self, done: bool) -> None:
        if self.asking is None or self.prompter is None:
            return
        reason = self.query_one("#bench-reason", Input).value.strip()
        if not done and not reason:
            self.notify("Say why it could not be done (the reason is journalled).", severity="warning")
            self.query_one("#bench-reason", Input).focus()
            return
        self.add_line(f"step {self.asking}: " + ("done" if done else f"could not ({reason})"))
        self.asking = None
        self.query_one("#bench-answer").display = False
        self.query_one("#bench-step", Static).update("watching…")
        self.prompter.answers.put(Answer(done, "" if done else reason))
        self.refresh_bindings()

    @on(Button.Pressed, "#bench-yes")
    def _yes(self) -> None:
        self.action_answer(True)

    @on(Button.Pressed, "#bench-no")
    def _no(self) -> None:
        self.action_answer(False)

    @on(Input.Submitted, "#bench-reason")
    def _reason_given(self) -> None:
        self.action_answer(False)

    @on(Input.Submitted, "#bench-technician")
    def _name_given(self) -> None:
        self.start()

    def action_back(self) -> None:
        if self.running:
            self.notify("The bench session is running: answer its steps; it ends after its window.",
                        severity="warning")
            return
        self.app.pop_screen()

    def on_unmount(self) -> None:
        if self.prompter is not None:
            self.prompter.close()  # the app is closing: the station ends the session, never waits forever
