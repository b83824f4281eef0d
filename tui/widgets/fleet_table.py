"""The live fleet table: every monitor, updated by row key, never re-measured.

Rules from PERFORMANCE.md, applied here:
- columns have fixed widths and ``update_cell`` is never asked to ``update_width``;
- only cells whose text changed since the last push are updated (the last pushed row is cached);
- the caller wraps ``push`` in ``App.batch_update()`` and calls it from a 4-10 Hz timer;
- a change that moves rows (filter membership, sort column) does not rebuild at once: it marks the table
  stale and the rebuild happens at most once per ``RESORT_EVERY`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from textual.widgets import DataTable

from tui.model import COLUMN_KEYS, FLEET_COLUMNS, FleetModel, FleetQuery

RESORT_EVERY = 1.0


class FleetTable(DataTable[str]):
    """DataTable of monitors keyed by inventory host name."""

    DEFAULT_CSS = """
    FleetTable { height: 1fr; }
    """

    def __init__(self, model: FleetModel, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.fleet = model
        self.query_spec = FleetQuery()
        self._pushed: dict[str, tuple[str, ...]] = {}
        self._stale = False
        self._last_rebuild = 0.0
        self.updates = 0  # cells updated, for the benchmark
        self.rebuilds = 0

    def on_mount(self) -> None:
        for key, label, width in FLEET_COLUMNS:
            self.add_column(label, width=width, key=key)
        self.rebuild()

    # -- whole-table operations (user actions, or a stale order) -----------------------------------
    def set_query(self, query: FleetQuery) -> None:
        self.query_spec = query
        self.rebuild()

    def rebuild(self) -> None:
        """Replace all rows in the order of the query. Keeps the cursor on the same monitor if it stays."""
        selected = self.selected_name()
        rows = self.query_spec.select(self.fleet.rows.values())
        self.clear()
        self._pushed.clear()
        for row in rows:
            cells = row.cells()
            self.add_row(*cells, key=row.name)
            self._pushed[row.name] = cells
        self._stale = False
        self._last_rebuild = time.monotonic()
        self.rebuilds += 1
        if selected is not None and selected in self._pushed:
            self.move_cursor(row=self.get_row_index(selected))

    def selected_name(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # an empty or shrinking table has no cursor row
            return None
        return None if key.value is None else str(key.value)

    # -- incremental push (the timer) ---------------------------------------------------------------
    def push(self, names: Iterable[str]) -> None:
        """Bring the given monitors' rows up to date; call inside ``App.batch_update()``."""
        query = self.query_spec
        filtering = bool(query.text.strip())
        sort_index = COLUMN_KEYS.index(query.sort) if query.sort in COLUMN_KEYS else None
        for name in names:
            row = self.fleet.rows.get(name)
            if row is None:
                continue
            old = self._pushed.get(name)
            if old is None:
                if not filtering or query.match(row):
                    self._stale = True  # a monitor appeared (or now matches the filter)
                continue
            if filtering and not query.match(row):
                self._stale = True
                continue
            cells = row.cells()
            if cells == old:
                continue
            for index, (before, after) in enumerate(zip(old, cells, strict=True)):
                if before != after:
                    self.update_cell(name, COLUMN_KEYS[index], after)
                    self.updates += 1
                    if index == sort_index:
                        self._stale = True
            self._pushed[name] = cells
        if self._stale and time.monotonic() - self._last_rebuild >= RESORT_EVERY:
            self.rebuild()

    @property
    def shown(self) -> int:
        return len(self._pushed)
