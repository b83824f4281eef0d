"""Wave plan with a progress bar per wave: a handful of bars, not thousands of moving rows."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Label, ProgressBar

from tui.model import FleetModel, WaveInfo


def wave_status(model: FleetModel, wave: WaveInfo) -> str:
    done, size = model.wave_progress(wave)
    if model.gate_wave == wave.index:
        return "‖ awaiting approval"
    if wave.finished or (wave.started and done == size and size):
        return "✔ done"
    if wave.started:
        return "» running"
    return "○ planned"


class WaveRow(Horizontal):
    DEFAULT_CSS = """
    WaveRow { height: 1; }
    WaveRow > .wave-name { width: 10; }
    WaveRow > .wave-status { width: 30; }
    WaveRow > ProgressBar { width: 1fr; }
    """

    def __init__(self, index: int) -> None:
        super().__init__(id=f"wave-{index}")
        self.index = index

    def compose(self) -> ComposeResult:
        yield Label(f"Wave {self.index + 1}", classes="wave-name")
        yield Label("", classes="wave-status")
        yield ProgressBar(total=1, show_eta=False, id=f"wave-bar-{self.index}")

    def show(self, model: FleetModel, wave: WaveInfo) -> None:
        done, size = model.wave_progress(wave)
        status = f"{wave_status(model, wave)} {done}/{size}"
        label = self.query_one(".wave-status", Label)
        if str(label.content) != status:
            label.update(status)
        bar = self.query_one(ProgressBar)
        if bar.total != max(size, 1) or bar.progress != done:
            bar.update(total=max(size, 1), progress=done)


class WaveList(VerticalScroll):
    DEFAULT_CSS = """
    WaveList { height: auto; max-height: 12; }
    """

    def show(self, model: FleetModel) -> None:
        rows = list(self.query(WaveRow))
        if len(rows) != len(model.waves):
            for extra in rows[len(model.waves):]:
                extra.remove()
            for wave in model.waves[len(rows):]:
                self.mount(WaveRow(wave.index))
            self.call_after_refresh(self._fill, model)
            return
        self._fill(model)

    def _fill(self, model: FleetModel) -> None:
        for row in self.query(WaveRow):
            if row.index < len(model.waves) and row.is_mounted:
                row.show(model, model.waves[row.index])
