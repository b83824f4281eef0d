"""Confirmation modals: nothing destructive happens on a single key.

``ConfirmModal`` returns the typed reason (or "" when none is asked) on confirm and ``None`` on cancel;
``TechnicianModal`` returns ``(technician, note, version shown)``. Escape always cancels.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Markdown, Select

MODAL_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 76; height: auto; border: thick $accent; background: $surface; padding: 1 2; }}
{name} Horizontal {{ height: 3; align-horizontal: right; }}
{name} Button {{ margin-left: 2; }}
{name} Input {{ margin: 1 0; }}
{name} Label {{ width: 100%; margin-bottom: 1; }}
"""


class ConfirmModal(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = MODAL_CSS.format(name="ConfirmModal")

    def __init__(self, title: str, body: str, *, confirm: str, ask_reason: str | None = None,
                 danger: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.confirm_label = confirm
        self.ask_reason = ask_reason
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Label(self.title_text, id="confirm-title")
            yield Label(self.body, id="confirm-body")
            if self.ask_reason is not None:
                yield Input(placeholder=self.ask_reason, id="confirm-reason")
            with Horizontal():
                yield Button("Cancel", id="confirm-no")
                yield Button(self.confirm_label, id="confirm-yes",
                             variant="error" if self.danger else "success")

    def on_mount(self) -> None:
        if self.ask_reason is not None:
            self.query_one("#confirm-reason", Input).focus()
        else:
            self.query_one("#confirm-no", Button).focus()  # the safe choice has the focus

    @on(Button.Pressed, "#confirm-yes")
    @on(Input.Submitted, "#confirm-reason")
    def _yes(self) -> None:
        reason = self.query_one("#confirm-reason", Input).value.strip() if self.ask_reason is not None else ""
        if self.ask_reason is not None and not reason:
            self.notify("Type a reason first: it goes into the journal.", severity="warning")
            return
        self.dismiss(reason)

    @on(Button.Pressed, "#confirm-no")
    def action_cancel(self) -> None:
        self.dismiss(None)


class TechnicianModal(ModalScreen[tuple[str, str, str] | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = MODAL_CSS.format(name="TechnicianModal")

    def __init__(self, device: str, technician: str = "") -> None:
        """``technician``: a name a person typed earlier in this session, never the login account's."""
        super().__init__()
        self.device = device
        self.technician = technician

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Confirm the hands-on update of {self.device}")
            yield Label("Only confirm once the technician reports the work order done at the bedside.")
            yield Input(value=self.technician, placeholder="technician's name (who did the work)",
                        id="tech-name")
            yield Input(placeholder="version on the monitor's About screen now (journalled as read)",
                        id="tech-version")
            yield Input(placeholder="note (optional)", id="tech-note")
            with Horizontal():
                yield Button("Cancel", id="tech-no")
                yield Button("Confirm done", id="tech-yes", variant="success")

    @on(Button.Pressed, "#tech-yes")
    def _yes(self) -> None:
        name = self.query_one("#tech-name", Input).value.strip()
        if not name:
            self.notify("Who did the work? The journal records the technician.", severity="warning")
            return
        self.dismiss((name, self.query_one("#tech-note", Input).value.strip(),
                      self.query_one("#tech-version", Input).value.strip()))

    @on(Button.Pressed, "#tech-no")
    def action_cancel(self) -> None:
        self.dismiss(None)


class TriggerAnswerModal(ModalScreen[tuple[str, str] | None]):
    """The technician's answer to a trigger request: who, and (when it could not be done) why."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = MODAL_CSS.format(name="TriggerAnswerModal")

    def __init__(self, device: str, trigger: str, instructions: str, technician: str = "", *,
                 done: bool) -> None:
        super().__init__()
        self.device, self.trigger, self.instructions = device, trigger, instructions
        self.technician = technician  # typed earlier in this session, never the login account's
        self.done = done

    def compose(self) -> ComposeResult:
        with Vertical():
            if self.done:
                yield Label(f"{self.device}: the technician exercised {self.trigger}")
                yield Label(f"Only confirm once it was done at the bed: {self.instructions}")
            else:
                yield Label(f"{self.device}: {self.trigger} could not be exercised")
                yield Label("The CVE it speaks to stays inconclusive. Say why below.")
            yield Input(value=self.technician, placeholder="technician's name (who did it)", id="trig-name")
            yield Input(placeholder="note" + ("" if self.done else " (required: why not)"), id="trig-note")
            with Horizontal():
                yield Button("Cancel", id="trig-no")
                yield Button("Done at the bed" if self.done else "Could not do it", id="trig-yes",
                             variant="success" if self.done else "warning")

    @on(Button.Pressed, "#trig-yes")
    def _yes(self) -> None:
        name = self.query_one("#trig-name", Input).value.strip()
        note = self.query_one("#trig-note", Input).value.strip()
        if not name:
            self.notify("Who did it? The journal records the technician.", severity="warning")
            return
        if not self.done and not note:
            self.notify("Say why it could not be done: the auditor reads it.", severity="warning")
            return
        self.dismiss((name, note))

    @on(Button.Pressed, "#trig-no")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ExportModal(ModalScreen[tuple[str, str] | None]):
    """Which format, and where: returns ``(format, output path)``. The file is written by ``cmspatch
    export``'s own function, atomically, so a reader never sees half of it."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = MODAL_CSS.format(name="ExportModal") + "ExportModal Select { margin: 1 0; }"

    def __init__(self, formats: tuple[str, ...], campaign: str | None) -> None:
        super().__init__()
        self.formats = formats
        self.campaign = campaign or "campaign"

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Export {self.campaign} from the journal")
            yield Select([(f, f) for f in self.formats], value=self.formats[0], allow_blank=False,
                         id="export-format")
            yield Input(value=self._default(self.formats[0]), placeholder="output file", id="export-out")
            with Horizontal():
                yield Button("Cancel", id="export-no")
                yield Button("Write export", id="export-yes", variant="success")

    def _default(self, fmt: str) -> str:
        return f"cmspatch-{self.campaign}.{EXTENSIONS.get(fmt, fmt)}"

    @on(Select.Changed, "#export-format")
    def _format_changed(self, event: Select.Changed) -> None:
        out = self.query_one("#export-out", Input)
        if any(out.value == self._default(f) for f in self.formats):  # not typed by hand: follow the format
            out.value = self._default(str(event.value))

    @on(Button.Pressed, "#export-yes")
    @on(Input.Submitted, "#export-out")
    def _yes(self) -> None:
        out = self.query_one("#export-out", Input).value.strip()
        if not out:
            self.notify("Where should the export go? Type a file name.", severity="warning")
            return
        self.dismiss((str(self.query_one("#export-format", Select).value), out))

    @on(Button.Pressed, "#export-no")
    def action_cancel(self) -> None:
        self.dismiss(None)


EXTENSIONS = {"csv": "csv", "json": "json", "html": "html", "csaf": "csaf.json", "cyclonedx": "cdx.json"}


HELP = """\
# cmspatch - keys

| Key | What it does |
|---|---|
| `f` `p` `c` | Fleet, Package, Campaign tabs (or click the tabs) |
| `/` | search / filter the fleet (`state:failed site:north 0626:vuln`) |
| `o` | sort by the next column (or click a column header; click again to reverse) |
| `enter` | open the selected monitor: timeline, retries, evidence, work order |
| `t` / `n` | on a monitor asking for a technician: the trigger was exercised / could not be |
| `s` | start the campaign (asks first; only with an accepted package) |
| `a` | approve the next wave (asks first) |
| `z` / `r` | pause / resume |
| `x` | abort the campaign (asks for a reason) |
| `m` | on a hands-on monitor: the technician confirms the work order (asks first) |
| `e` | export the campaign from the journal (format, file; written atomically) |
| `l` | show / hide the log pane |
| `ctrl+p` | command palette: every action above by name |
| `escape` | back / cancel |
| `ctrl+q` | quit (a running campaign is paused first; resume it later from the journal) |

## Symbols (readable without colour)

`○ pending` `‖ deferred` `↑ uploading` `» installing` `↻ rebooting` `… verifying`
`☐ technician` `✔ patched` `✖ failed` `⊘ skipped` - verdicts: `✔ fixed` `✖ VULN` `? unsure`

A read-only window shows everything and refuses every decision.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close help")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 90; height: 80%; border: thick $accent; background: $surface; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Markdown(HELP)
            yield Button("Close", id="help-close")

    @on(Button.Pressed, "#help-close")
    def action_close(self) -> None:
        self.dismiss(None)
