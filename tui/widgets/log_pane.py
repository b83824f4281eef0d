"""The log pane: campaign milestones, failures, deferrals and retries (not every record: a flood of
hundreds per second would bury what a person must see)."""

from __future__ import annotations

from collections.abc import Iterable

from textual.widgets import RichLog


class LogPane(RichLog):
    DEFAULT_CSS = """
    LogPane { height: 8; border-top: solid $primary; }
    LogPane.hidden { display: none; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=1000, wrap=False, markup=False, highlight=False)

    def add(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)
