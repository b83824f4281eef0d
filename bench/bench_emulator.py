"""How cheap is an emulated monitor? Start-up time and memory of N idle monitors, against real sshd.

    .venv/bin/python -m bench.bench_emulator --monitors 500

Prints start-up time, the process's RSS before/after, RSS per idle monitor, disk per monitor root, and
checks that a sample of monitors answers SSH (paramiko exec). The peer is what the emulator replaces:
one real OpenSSH ``sshd -D`` per monitor (a few are started to measure RSS and start-up per instance),
and the ratios are printed. Goals: 500 monitors up in < 30 s, < 2 MB RSS per idle monitor.
Not measured here: throughput under load (see bench_campaign) -- this is about idle fleet cost.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import paramiko
import psutil

from orchestrator.domain.indicators import IndicatorMap
from orchestrator.emulator import EmulatedFleet

SSHD_CONFIG = """\
Port {port}
ListenAddress {address}
HostKey {hostkey}
PidFile none
UsePAM no
PasswordAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile {authorized}
StrictModes no
ChrootDirectory none
"""


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def _wait_port(address: str, port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def _dir_size(path: Path) -> int:
    total = 0
    seen: set[int] = set()
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if st.st_ino not in seen:  # hard links (BusyBox) count once
                seen.add(st.st_ino)
                total += st.st_size
    return total


def sample_check(fleet: EmulatedFleet, sample: int) -> tuple[int, int, float]:
    monitors = random.Random(7).sample(list(fleet.monitors), min(sample, len(fleet.monitors)))
    ok = 0
    started = time.monotonic()
    for m in monitors:
        client = paramiko.SSHClient()
        client.load_host_keys(str(fleet.known_hosts_path))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(m.address, port=m.port, username="service", key_filename=str(fleet.key_path),
                           look_for_keys=False, allow_agent=False, timeout=10)
            _, out, _ = client.exec_command("cat /etc/firmware_version", timeout=10)
            ok += out.read().decode().strip() == m.version
        except (OSError, paramiko.SSHException):
            pass
        finally:
            client.close()
    return ok, len(monitors), time.monotonic() - started


def sshd_peer(workdir: Path, count: int, port: int) -> tuple[float, float] | None:
    """Start ``count`` real sshd processes; return (seconds to start each, RSS bytes each) or None."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd):
        return None
    Path("/run/sshd").mkdir(exist_ok=True)
    hostkey = workdir / "sshd_host_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey)], check=True)
    authorized = workdir / "authorized_keys"
    authorized.write_text(Path(str(hostkey) + ".pub").read_text())
    procs: list[subprocess.Popen[bytes]] = []
    try:
        started = time.monotonic()
        for i in range(count):
            address = f"127.199.0.{i + 1}"
            config = workdir / f"sshd{i}.conf"
            config.write_text(SSHD_CONFIG.format(port=port, address=address, hostkey=hostkey,
                                                 authorized=authorized))
            procs.append(subprocess.Popen([sshd, "-D", "-f", str(config)], stderr=subprocess.DEVNULL))
            if not _wait_port(address, port):
                return None
        elapsed = (time.monotonic() - started) / count
        rss = sum(psutil.Process(p.pid).memory_info().rss for p in procs) / count
        return elapsed, rss
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--monitors", type=int, default=50)
    parser.add_argument("--sample", type=int, default=20, help="monitors checked over SSH")
    parser.add_argument("--peer", type=int, default=5, help="real sshd instances to measure (0: skip)")
    parser.add_argument("--port", type=int, default=22922)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp:
        workdir = Path(tmp)
        rss_before = _rss()
        started = time.monotonic()
        fleet = EmulatedFleet.start(workdir / "fleet", monitors=args.monitors, address_prefix="127.93",
                                    indicator_map=IndicatorMap("127.198.4"), port=args.port,
                                    states="vulnerable=8,insufficient=1,fixed=1")
        startup = time.monotonic() - started
        try:
            time.sleep(1.0)  # let the fleet settle into idle before measuring its memory
            rss_after = _rss()
            per_monitor = (rss_after - rss_before) / args.monitors
            disk = _dir_size(workdir / "fleet" / "monitors") / args.monitors
            ok, sampled, check_s = sample_check(fleet, args.sample)
        finally:
            fleet.stop()
        peer = sshd_peer(workdir, args.peer, args.port) if args.peer else None

    mib = 1024 * 1024
    print(f"emulated monitors:        {args.monitors}")
    print(f"start-up:                 {startup:.2f} s ({startup / args.monitors * 1000:.1f} ms per monitor)"
          f"   goal < 30 s for 500")
    print(f"process RSS:              {rss_before / mib:.1f} MiB before, {rss_after / mib:.1f} MiB idle")
    print(f"RSS per idle monitor:     {per_monitor / 1024:.0f} KiB   goal < 2048 KiB")
    print(f"disk per monitor root:    {disk / 1024:.0f} KiB (BusyBox hard-linked)")
    print(f"SSH sample check:         {ok}/{sampled} answered with their version ({check_s:.2f} s, "
          f"{check_s / max(sampled, 1) * 1000:.0f} ms per fresh paramiko connection)")
    if peer is None:
        print("peer (real sshd):         unavailable")
    else:
        sshd_start, sshd_rss = peer
        print(f"peer: one real sshd:      {sshd_start * 1000:.0f} ms to listen, "
              f"{sshd_rss / 1024:.0f} KiB RSS (idle, before any login)")
        print(f"ratio sshd/emulated:      RSS x{sshd_rss / max(per_monitor, 1):.1f}, "
              f"start-up x{sshd_start / (startup / args.monitors):.1f}")


if __name__ == "__main__":
    main()
