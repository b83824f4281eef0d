"""The live fleet table: every monitor, updated by row key, never re-measured.

Rules from PERFORMANCE.md, applied here:
- columns have fixed widths and ``update_cell`` is never asked to ``update_width``;
- only cells whose text changed since the last push are updated (the last pushed row is cached);
- the caller wraps ``push`` in ``App.batch_update()`` and calls it from a 4-10 Hz timer;
- on a narrow terminal columns give way in ``tui.model.NARROW_DROP_ORDER`` (State and the CVEs stay);
  the columns are re-made only when the width changes which columns fit, never while records flow;
- rows are never all re-added while records flow (``add_row`` measures every cell: ~0.3 s for 2,000
  rows): a row entering or leaving the filter is added or removed alone, and a change in the sort
  column reorders rows in place (``DataTable.sort``) at most once per ``RESORT_EVERY`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from textual import events
from textual.widgets import DataTable

from tui.model import COLUMN_KEYS, FLEET_COLUMNS, FleetModel, FleetQuery, MonitorRow, fit_columns

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
        self.shown_columns: tuple[int, ...] = ()  # indices into FLEET_COLUMNS

    def on_mount(self) -> None:
        self._fit(self.app.size.width)  # the first guess; on_resize refines it once laid out

    def on_resize(self, event: events.Resize) -> None:
        self._fit(self.scrollable_content_region.width)

    @property
    def shown_keys(self) -> tuple[str, ...]:
        return tuple(COLUMN_KEYS[i] for i in self.shown_columns)

    def _fit(self, width: int) -> None:
        """Show the columns that fit ``width``; re-make the table only when that set changes."""
        if width <= 0:
            return
        shown = fit_columns(width, keep=self.query_spec.sort)
        if shown == self.shown_columns:
            return
        self.shown_columns = shown
        selected = self.selected_name()
        self.clear(columns=True)
        for index in shown:
            key, label, col_width = FLEET_COLUMNS[index]
            self.add_column(label, width=col_width, key=key)
        self.rebuild(selected)

    def _ordered(self, rows: list[MonitorRow]) -> list[MonitorRow]:
        q = self.query_spec
        order = [COLUMN_KEYS.index(c) for c in (q.sort, "site", "ward", "bed", "serial") if c in COLUMN_KEYS]
        return sorted(rows, key=lambda r: tuple(r.cells()[i] for i in order), reverse=q.reverse)

    def _cells(self, row: MonitorRow) -> tuple[str, ...]:
        cells = row.cells()
        return tuple(cells[i] for i in self.shown_columns)

    # -- whole-table operations (user actions) ----------------------------------------------------
    def set_query(self, query: FleetQuery) -> None:
        """Apply a new filter/sort. Only a changed filter re-adds rows; a new sort just reorders them."""
        old = self.query_spec
        self.query_spec = query
        if query.sort != old.sort:  # the new sort column may fit where the old one did not
            shown = self.shown_columns
            self._fit(self.scrollable_content_region.width or self.app.size.width)
            if shown != self.shown_columns:
                return  # re-made and re-sorted
        if query.text != old.text or query.sort not in self.shown_keys:
            self.rebuild()
        else:
            self.resort()

    def rebuild(self, selected: str | None = None) -> None:
        """Replace all rows with those matching the filter (costly: DataTable measures every new cell)."""
        selected = selected or self.selected_name()
        rows = self.query_spec.select(self.fleet.rows.values())
        if self.query_spec.sort not in self.shown_keys:  # sorted by a column the width hides: by us
            rows = self._ordered(rows)
        self.clear()
        self._pushed.clear()
        for row in rows:
            cells = self._cells(row)
            self.add_row(*cells, key=row.name)
            self._pushed[row.name] = cells
        self.rebuilds += 1
        self.resort(selected)

    def resort(self, selected: str | None = None) -> None:
        """Reorder rows in place (no re-measuring); the cursor stays on the same monitor."""
        selected = selected if selected is not None else self.selected_name()
        q = self.query_spec
        shown = self.shown_keys
        ties = [c for c in ("site", "ward", "bed", "serial") if c != q.sort and c in shown]
        if q.sort in shown:  # else rebuild added the rows in order (a hidden cell rarely changes)
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
        keys = self.shown_keys
        sort_index = keys.index(query.sort) if query.sort in keys else None
        for name in names:
            row = self.fleet.rows.get(name)
            if row is None:
                continue
            old = self._pushed.get(name)
            matches = not filtering or query.match(row)
            if old is None:
                if matches:  # a monitor appeared, or now matches the filter
                    cells = self._cells(row)
                    self.add_row(*cells, key=name)
                    self._pushed[name] = cells
                    self._unsorted = True
                continue
            if not matches:
                self.remove_row(name)
                del self._pushed[name]
                continue
            cells = self._cells(row)
            if cells == old:
                continue
            for index, (before, after) in enumerate(zip(old, cells, strict=True)):
                if before != after:
                    self.update_cell(name, keys[index], after)
                    self.updates += 1
                    if index == sort_index:
                        self._unsorted = True
            self._pushed[name] = cells
        if self._unsorted and time.monotonic() - self._last_sort >= RESORT_EVERY:
            self.resort()

    @property
    def shown(self) -> int:
        return len(self._pushed)
