"""Fleet: every monitor in a live table, with counts per state, search, filter and sort by any column."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from tui.model import COLUMN_KEYS, FLEET_COLUMNS, FleetModel, FleetQuery, state_label
from tui.widgets.fleet_table import FleetTable

FILTER_HELP = "search, or column:value (state:failed site:north ward:icu 0626:vuln) - all terms must match"


def counts_line(model: FleetModel) -> str:
    counts = model.counts()
    parts = [f"{state_label(state)} {n}" for state, n in sorted(counts.items(), key=lambda kv: kv[0])]
    return f"{len(model.rows)} monitors: " + " · ".join(parts)


class FleetView(Vertical):
    # Escape leaves the search box for the table, the filter kept: every other key typed there is text,
    # so without it the only way out was Enter (which also applies) or the mouse.
    BINDINGS = [Binding("escape", "leave_search", "Leave search")]
    DEFAULT_CSS = """
    FleetView { height: 1fr; }
    FleetView > #fleet-counts { height: 1; padding: 0 1; }
    FleetView > Horizontal { height: 3; }
    FleetView #fleet-filter { width: 1fr; }
    FleetView #fleet-sort { width: 34; padding: 1 1 0 1; }
    """

    def __init__(self, model: FleetModel) -> None:
        super().__init__(id="fleet-view")
        self.fleet = model
        self._debounce: Timer | None = None
        self._last_counts = ""

    def compose(self) -> ComposeResult:
        yield Static(counts_line(self.fleet), id="fleet-counts")
        with Horizontal():
            yield Input(placeholder=FILTER_HELP, id="fleet-filter")
            yield Static("", id="fleet-sort")
        yield FleetTable(self.fleet, id="fleet-table")

    def on_mount(self) -> None:
        self._show_sort()

    @property
    def table(self) -> FleetTable:
        return self.query_one(FleetTable)

    def refresh_counts(self) -> None:
        self._show_sort()  # "shown" changes as monitors appear or leave the filter
        line = counts_line(self.fleet)
        if line != self._last_counts:
            self._last_counts = line
            self.query_one("#fleet-counts", Static).update(line)

    def set_query(self, query: FleetQuery) -> None:
        self.table.set_query(query)
        self._show_sort()

    def cycle_sort(self) -> None:
        q = self.table.query_spec
        nxt = COLUMN_KEYS[(COLUMN_KEYS.index(q.sort) + 1) % len(COLUMN_KEYS)] if q.sort in COLUMN_KEYS \
            else COLUMN_KEYS[0]
        self.set_query(FleetQuery(q.text, nxt, False))

    def _show_sort(self) -> None:
        q = self.table.query_spec
        label = dict((k, lbl) for k, lbl, _ in FLEET_COLUMNS).get(q.sort, q.sort)
        shown = f"{self.table.shown}/{len(self.fleet.rows)} shown"
        self.query_one("#fleet-sort", Static).update(f"sort: {label} {'▼' if q.reverse else '▲'} · {shown}")

    def action_leave_search(self) -> None:
        if self.screen.focused is self.query_one("#fleet-filter", Input):
            self.table.focus()

    @on(Input.Changed, "#fleet-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        text = event.value
        self._debounce = self.set_timer(0.25, lambda: self._apply_filter(text))

    @on(Input.Submitted, "#fleet-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._apply_filter(event.value)
        self.table.focus()

    def _apply_filter(self, text: str) -> None:
        q = self.table.query_spec
        if text != q.text:
            self.set_query(FleetQuery(text, q.sort, q.reverse))

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        q = self.table.query_spec
        self.set_query(FleetQuery(q.text, key, (not q.reverse) if key == q.sort else False))
        event.stop()
