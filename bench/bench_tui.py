"""TUI under load: 2,000 monitors and a flood of journal records, the real app under ``run_test()``.

Run: ``.venv/bin/python -m bench.bench_tui [--monitors 2000] [--rate 500] [--seconds 5]``

Two ways of getting records onto the screen run side by side, in one process, on the same data:

- **coalesced** (what ``tui.app`` does): engine threads append to an inbox; an 8 Hz timer folds the
  records into the view model and updates only changed cells, by row key, in ``batch_update()``;
- **per-event** (the naive peer): every record is handed to the UI thread on its own
  (``call_from_thread``) and its row updated at once, the way a message-per-event design behaves.

Printed per mode: records/s actually shown (and how far behind the feed it is), the time one flush
takes (p50/p95/max), and the app's responsiveness while flooded: how long a key press (cursor down)
takes to be handled. Ratios compare the two modes. Nothing here is asserted: figures vary 30-50%
from run to run on a shared 2-core machine (PERFORMANCE.md), so compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from textual import events

from orchestrator.domain.events import EventKind, JournalRecord
from tests.tui.synthetic import Recorder, make_devices
from tui.app import CmspatchApp
from tui.model import FleetModel, state_label
from tui.screens.fleet import FleetView
from tui.session import Session, SessionConfig

STATES = ("pending", "uploading", "uploaded", "installing", "rebooting", "verifying", "patched")


def flood(r: Recorder, names: list[str]) -> Iterator[JournalRecord]:
    """Endless plausible traffic: state changes walking every monitor forward, with attempt records."""
    i = 0
    while True:
        name = names[i % len(names)]
        step = (i // len(names)) % (len(STATES) - 1)
        if i % 3 == 0:
            yield r.rec(EventKind.ATTEMPT, {"step": "upload", "attempt": 1 + step, "outcome": "ok"}, name)
        else:
            yield r.state(name, STATES[step], STATES[step + 1], 0)
        i += 1


@dataclass
class Result:
    mode: str
    fed: int
    shown: int
    seconds: float
    flush_ms: list[float]
    key_ms: list[float]
    seen_ms: list[float]

    @property
    def shown_per_s(self) -> float:
        return self.shown / self.seconds if self.seconds else 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class NaiveApp(CmspatchApp):
    """The peer: one UI-thread hop and one immediate table update per record (no inbox, no timer)."""

    def apply_now(self, record: JournalRecord) -> None:
        started = time.perf_counter()
        changes = self.model.apply_many([record])
        self.records_applied += 1
        table = self.query_one(FleetView).table
        table.push(changes.devices)
        self.flush_times.append(time.perf_counter() - started)


async def run_mode(mode: str, monitors: int, rate: int, seconds: float) -> Result:
    devices = make_devices(monitors)
    names = [d.name for d in devices]
    r = Recorder()
    session = Session(SessionConfig(operator="bench", devices=tuple(devices)))
    app: CmspatchApp = NaiveApp(session) if mode == "per-event" else CmspatchApp(session)
    created = r.created(devices, [names])
    stop = threading.Event()
    fed = 0

    def feeder() -> None:
        nonlocal fed
        source = flood(r, names[:-1])  # the last monitor is the latency marker's alone
        batch = max(1, rate // 100)  # feed in 10 ms slices to approximate a steady rate
        start = time.perf_counter()
        while not stop.is_set():
            for _ in range(batch):
                record = next(source)
                if mode == "per-event":
                    try:
                        app.call_from_thread(app.apply_now, record)  # type: ignore[attr-defined]
                    except RuntimeError:
                        return
                else:
                    session.inbox.put(record)
                fed += 1
            ahead = fed / rate - (time.perf_counter() - start)
            if ahead > 0:
                stop.wait(ahead)

    async with app.run_test(size=(160, 50)) as pilot:
        session.inbox.put(created)
        await pilot.pause(0.3)
        if mode == "per-event":
            app.model.apply_many(session.inbox.drain())
        await pilot.pause(1.0)  # let the table finish measuring its 2,000 new rows (done once, on idle)
        app.flush_times.clear()
        table = app.query_one(FleetView).table
        base = app.records_applied
        thread = threading.Thread(target=feeder, daemon=True)
        started = time.perf_counter()
        thread.start()
        key_ms: list[float] = []
        seen_ms: list[float] = []
        marker = names[-1]
        while time.perf_counter() - started < seconds:
            # a key press, sent the way the terminal driver sends it; handled = the cursor moved
            before = table.cursor_row
            t0 = time.perf_counter()
            key = events.Key("down", None) if before < table.row_count - 1 else events.Key("home", None)
            key.set_sender(app)
            assert app._driver is not None
            app._driver.send_message(key)
            while table.cursor_row == before and time.perf_counter() - t0 < 10:
                await asyncio.sleep(0.0005)
            key_ms.append((time.perf_counter() - t0) * 1000)
            # update latency: a record put in by an "engine thread" until its row shows it
            state = "failed" if len(seen_ms) % 2 == 0 else "patched"
            t0 = time.perf_counter()
            record = r.state(marker, "verifying", state, 0)
            if mode == "per-event":
                threading.Thread(target=app.call_from_thread, args=(app.apply_now, record),  # type: ignore[attr-defined]
                                 daemon=True).start()
            else:
                session.inbox.put(record)
            while (table.get_cell(marker, "state") != state_label(state)
                   and time.perf_counter() - t0 < 10):
                await asyncio.sleep(0.0005)
            seen_ms.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.1)
        stop.set()
        elapsed = time.perf_counter() - started
        shown = app.records_applied - base
        while thread.is_alive():  # the per-event feeder may be waiting on the UI thread: keep it running
            await asyncio.sleep(0.01)
        flush_ms = [t * 1000 for t in app.flush_times]
    return Result(mode, fed, shown, elapsed, flush_ms, key_ms, seen_ms)


def report(res: Result, rate: int) -> None:
    behind = res.fed - res.shown
    print(f"{res.mode:>10}: fed {res.fed} records ({res.fed / res.seconds:.0f}/s, target {rate}/s), "
          f"shown {res.shown} ({res.shown_per_s:.0f}/s, {behind} behind at the end)")
    print(f"{'':>10}  flush/update ms p50 {pct(res.flush_ms, .5):.2f} p95 {pct(res.flush_ms, .95):.2f} "
          f"max {max(res.flush_ms, default=float('nan')):.2f} over {len(res.flush_ms)} flushes")
    print(f"{'':>10}  key press handled in ms p50 {pct(res.key_ms, .5):.1f} p95 {pct(res.key_ms, .95):.1f} "
          f"max {max(res.key_ms, default=float('nan')):.1f} ({len(res.key_ms)} presses while flooding)")
    print(f"{'':>10}  record-to-screen ms p50 {pct(res.seen_ms, .5):.1f} p95 {pct(res.seen_ms, .95):.1f} "
          f"max {max(res.seen_ms, default=float('nan')):.1f}")


def fold_only(monitors: int, n: int) -> float:
    """Records/s the view model alone folds (the ceiling of the coalesced path)."""
    devices = make_devices(monitors)
    names = [d.name for d in devices]
    r = Recorder()
    model = FleetModel()
    model.load_inventory(devices)
    model.apply(r.created(devices, [names]))
    source = flood(r, names)
    records = [next(source) for _ in range(n)]
    t0 = time.perf_counter()
    for start in range(0, n, 500):
        model.apply_many(records[start:start + 500])
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=500, help="records per second fed")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(f"TUI bench: {args.monitors} monitors, {args.rate} records/s for {args.seconds:.0f} s, 160x50")
    print(f"view model alone folds {fold_only(args.monitors, 50_000):,.0f} records/s")
    results = {}
    for mode in ("coalesced", "per-event"):
        results[mode] = asyncio.run(run_mode(mode, args.monitors, args.rate, args.seconds))
        report(results[mode], args.rate)
    c, p = results["coalesced"], results["per-event"]
    print("ratios (per-event / coalesced):")
    print(f"  records shown per second: {p.shown_per_s / max(c.shown_per_s, 1e-9):.2f}x")
    print(f"  record-to-screen p50: {pct(p.seen_ms, .5) / max(pct(c.seen_ms, .5), 1e-9):.2f}x "
          "(per-event shows a record sooner, but only as many as the UI thread can take: the feeding "
          "engine thread is held back)")
    print(f"  key press p50: {pct(p.key_ms, .5) / max(pct(c.key_ms, .5), 1e-9):.1f}x slower, "
          f"p95 {pct(p.key_ms, .95) / max(pct(c.key_ms, .95), 1e-9):.1f}x")
    mean_c = statistics.fmean(c.flush_ms) if c.flush_ms else 0.0
    per_flush = c.shown / max(len(c.flush_ms), 1)
    print(f"  coalesced: one flush (8 Hz, slower when the loop lags) carries ~{per_flush:.0f} records "
          f"in {mean_c:.1f} ms")


if __name__ == "__main__":
    main()
