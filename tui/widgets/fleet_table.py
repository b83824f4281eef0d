"""The live fleet table: every monitor, updated by row key, never re-measured.

Rules from PERFORMANCE.md, applied here:
- columns have fixed widths and ``update_cell`` is never asked to ``update_width``;
- only cells whose text changed since the last push are updated (the last pushed row is cached);
- the caller wraps ``push`` in ``App.batch_update()`` and calls it from a 4-10 Hz timer;
- rows are never all re-added while records flow (``add_row`` measures every cell: ~0.3 s for 2,000
  rows): a row entering or leaving the filter is added or removed alone, and a change in the sort
  column reorders rows in place (``DataTable.sort``) at most once per ``RESORT_EVERY`` seconds.
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
        self._unsorted = False
        self._last_sort = 0.0
        self.updates = 0  # cells updated, for the benchmark
        self.rebuilds = 0

    def on_mount(self) -> None:
        for key, label, width in FLEET_COLUMNS:
            self.add_column(label, width=width, key=key)
        self.rebuild()

    # -- whole-table operations (user actions) ----------------------------------------------------
    def set_query(self, query: FleetQuery) -> None:
        """Apply a new filter/sort. Only a changed filter re-adds rows; a new sort just reorders them."""
        old = self.query_spec
        self.query_spec = query
        if query.text != old.text:
            self.rebuild()
        else:
            self.resort()

    def rebuild(self) -> None:
        """Replace all rows with those matching the filter (costly: DataTable measures every new cell)."""
        selected = self.selected_name()
        rows = self.query_spec.select(self.fleet.rows.values())
        self.clear()
        self._pushed.clear()
        for row in rows:
            cells = row.cells()
            self.add_row(*cells, key=row.name)
            self._pushed[row.name] = cells
        self.rebuilds += 1
        self.resort(selected)

    def resort(self, selected: str | None = None) -> None:
        """Reorder rows in place (no re-measuring); the cursor stays on the same monitor."""
        selected = selected if selected is not None else self.selected_name()
        q = self.query_spec
        ties = [c for c in ("site", "ward", "bed", "serial") if c != q.sort]
        self.sort(q.sort, *ties, reverse=q.reverse)
        self._unsorted = False
        self._last_sort = time.monotonic()
        if selected is not None and selected in self._pushed:
            self.move_cursor(row=self.get_row_index(selected), scroll=False)

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
        """Bring the given monitors' rows up to date; call inside ``App.batch_update()``.

        Rows entering or leaving the filter are added or removed one by one; a change in the sort
        column reorders the table at most once per ``RESORT_EVERY`` seconds (so rows do not jump
        around on every tick)."""
        query = self.query_spec
        filtering = bool(query.text.strip())
        sort_index = COLUMN_KEYS.index(query.sort) if query.sort in COLUMN_KEYS else None
        for name in names:
            row = self.fleet.rows.get(name)
            if row is None:
                continue
            old = self._pushed.get(name)
            matches = not filtering or query.match(row)
            if old is None:
                if matches:  # a monitor appeared, or now matches the filter
                    cells = row.cells()
                    self.add_row(*cells, key=name)
                    self._pushed[name] = cells
                    self._unsorted = True
                continue
            if not matches:
                self.remove_row(name)
                del self._pushed[name]
                continue
            cells = row.cells()
            if cells == old:
                continue
            for index, (before, after) in enumerate(zip(old, cells, strict=True)):
                if before != after:
                    self.update_cell(name, COLUMN_KEYS[index], after)
                    self.updates += 1
                    if index == sort_index:
                        self._unsorted = True
            self._pushed[name] = cells
        if self._unsorted and time.monotonic() - self._last_sort >= RESORT_EVERY:
            self.resort()

    @property
    def shown(self) -> int:
        return len(self._pushed)
