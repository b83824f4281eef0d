"""Reboot + reconnect per monitor over SSH, split at the moment the monitor's port is back.

    .venv/bin/python -m bench.bench_reboot --fleet openssh --monitors 30

N monitors at once, each in its own thread: one ``SshTransport`` session, ``reboot``, ``wait_disconnect``,
``reconnect``, one command on the new session. The fleet records when it acted on the reboot and when the
monitor was accepting connections again (its ``boot`` record), so each monitor's time splits into the
reboot itself (the fixture's, not ours) and the reconnect lag after the port answered (ours). Printed:
p50 / p95 / max of both and of the whole, and the client CPU. Issue 15: reboot detection at the floor's
speed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.ssh import SshTransport
from orchestrator.emulator import EmulatedFleet
from orchestrator.emulator.openssh import OpenSshFleet


def _quantiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):.3f} s, p95 {p95:.3f} s, max {ordered[-1]:.3f} s"


def reboot_one(transport: SshTransport, device: Any, out: dict[str, float]) -> None:
    session = transport.open(device)
    try:
        out["command"] = time.time()
        session.run("reboot", timeout=10.0)
        session.wait_disconnect(30.0)
        out["dropped"] = time.time()
        session.reconnect(timeout=60.0)
        out["reconnected"] = time.time()
        session.run("cat /etc/firmware_version")
    finally:
        session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fleet", choices=["emulator", "openssh"], default="openssh")
    parser.add_argument("--monitors", type=int, default=30)
    parser.add_argument("--reboot-seconds", type=float, default=1.0)
    args = parser.parse_args()
    start = OpenSshFleet.start if args.fleet == "openssh" else EmulatedFleet.start
    with tempfile.TemporaryDirectory(prefix="bench-reboot-") as work:
        fleet = start(Path(work), monitors=args.monitors, address_prefix=f"127.{random.randint(2, 19)}",
                      port=random.randrange(20000, 30000), reboot_seconds=args.reboot_seconds)
        try:
            inventory = load_inventory(fleet.inventory_path)
            transport = SshTransport(known_hosts=inventory.known_hosts)
            times: dict[str, dict[str, float]] = {d.name: {} for d in inventory.devices}
            threads = [threading.Thread(target=reboot_one, args=(transport, d, times[d.name]))
                       for d in inventory.devices]
            cpu0 = os.times()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            cpu1 = os.times()
            whole, fixture, lag = [], [], []
            for monitor in fleet.monitors:
                t = times[monitor.name]
                acted = [a["t"] for a in monitor.activity() if a["kind"] == "reboot"]
                booted = [a["t"] for a in monitor.activity() if a["kind"] == "boot"]
                if "reconnected" not in t or not acted or len(booted) < 2:
                    print(f"  {monitor.name}: incomplete {t}")
                    continue
                whole.append(t["reconnected"] - t["command"])
                fixture.append(booted[-1] - acted[-1])
                lag.append(t["reconnected"] - booted[-1])
        finally:
            fleet.stop()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    print(f"{args.fleet} fleet, {args.monitors} monitors rebooted at once, "
          f"fixture reboot {args.reboot_seconds:g} s")
    print(f"  reboot command -> new session: {_quantiles(whole)}")
    print(f"  the fixture's reboot (acted -> accepting again): {_quantiles(fixture)}")
    print(f"  reconnect lag (accepting again -> logged in): {_quantiles(lag)}")
    print(f"  this process's CPU (the fleet's supervisor included): {cpu:.2f} s")


if __name__ == "__main__":
    main()
