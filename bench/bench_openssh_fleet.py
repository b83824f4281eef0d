"""What a real-OpenSSH monitor costs idle: start-up and memory of N sshd monitors in BusyBox chroots.

    .venv/bin/python -m bench.bench_openssh_fleet --monitors 200

Needs root, sshd, unshare and BusyBox (orchestrator/emulator/openssh). Prints the fleet's start-up time
(roots, keys and every sshd accepting connections), each sshd's time to accept, and the listeners' RSS and
PSS (shared pages counted once), then the processes one idle session adds. The fleet the campaign
benchmark will run on (issue 15); this is only its idle cost.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from orchestrator.emulator.openssh import OpenSshFleet, missing_tools


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=200)
    args = parser.parse_args()
    if missing := missing_tools():
        raise SystemExit(f"needs {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="bench-openssh-") as work:
        prefix = f"127.{random.randint(100, 119)}"
        fleet = OpenSshFleet.start(Path(work), monitors=args.monitors, address_prefix=prefix,
                                   port=random.randrange(20000, 30000))
        try:
            pids = [m.sshd_pid for m in fleet.monitors]
            rss = [_kib(p, "Rss") for p in pids if p]
            pss = [_kib(p, "Pss") for p in pids if p]
            ready = sorted(m.started_seconds * 1000 for m in fleet.monitors)
            print(f"{args.monitors} sshd monitors up in {fleet.start_seconds:.2f} s; each sshd accepting "
                  f"after p50 {statistics.median(ready):.0f} ms, max {ready[-1]:.0f} ms")
            print(f"listener RSS {statistics.mean(rss) / 1024:.1f} MiB each, "
                  f"PSS {statistics.mean(pss) / 1024:.2f} MiB each ({sum(pss) / 1024:.0f} MiB for the fleet)")
            monitor = fleet.monitors[0]
            session = subprocess.Popen(
                ["ssh", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={fleet.known_hosts_path}",
                 "-i", str(fleet.key_path), "-p", str(monitor.port), f"{fleet.user}@{monitor.address}",
                 "echo up; sleep 3"], stdout=subprocess.PIPE, text=True)
            assert session.stdout is not None and session.stdout.readline().strip() == "up"
            time.sleep(0.2)
            tree = subprocess.run(["ps", "-o", "rss=,args=", "--ppid", str(monitor.sshd_pid)],
                                  capture_output=True, text=True).stdout
            tree += subprocess.run(["ps", "-o", "rss=,args=", "-u", fleet.user], capture_output=True,
                                   text=True).stdout
            print("one idle session adds (RSS KiB):", "; ".join(" ".join(line.split()) for line in
                                                              tree.splitlines()))
            session.wait(10)
        finally:
            fleet.stop()


if __name__ == "__main__":
    main()
