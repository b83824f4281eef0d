"""A whole patch campaign on N emulated monitors: cmspatch against what a user would run instead.

Run: ``.venv/bin/python -m bench.bench_campaign [--monitors 200] [--package-mib 5] [--ansible-monitors 6]``
     ``.venv/bin/python -m bench.bench_campaign --fleet openssh --monitors 30 --forks 30`` (as root)

All in ONE run, each contender against a FRESH fleet (same size, same package). ``--fleet emulator``
(default) is the project's asyncssh emulator; ``--fleet openssh`` is one real OpenSSH ``sshd`` per monitor
in a BusyBox chroot (``orchestrator.emulator.openssh``, needs root), where the default contenders are
(a), (c) and (d): the server side is then OpenSSH's, not the emulator's.

  (a) cmspatch-ssh      the Engine, paramiko transport, one wave of 100%, auto-approve, a sinkhole
  (b) cmspatch-ansible  the Engine, Ansible transport (ansible-runner per step): slow, so on a smaller
                        fleet (``--ansible-monitors``); its ratios are per monitor
  (c) plain-ansible     ``ansible-playbook bench/plain_patch.yml -f FORKS`` (Ansible defaults)
  (d) openssh-floor     ``xargs -P FORKS bench/openssh_floor.sh``: OpenSSH scp + ssh, ControlMaster
  (e) rss-1000          the Engine planning and holding a 1,000-monitor campaign: fleet of 1,000
                        served, plan(), canary wave (1 monitor) patched over SSH, stopped at the gate

Same steps for every contender: clinical check, upload, sha256sum on the monitor, cms-install, reboot,
wait, read the version. cmspatch additionally reads the firmware before, asks ``cms-status`` again right
before install and before reboot, and verifies after the reboot with the product's default settings
(binary scan, mounts, routes, UDP listener and probe, both hidden-mount triggers exercised, a sinkhole
watching for the policy's default observation window): more work, not less. Its exit code is the
campaign's (0 only if every monitor is patched with all four CVE verdicts fixed).

Each contender runs in its own child process (the fleet stays in this one, so the monitors' CPU is not
counted). Printed per contender: wall time, CPU (user+sys of the child and all its descendants, from
wait4), peak RSS of the largest single process (VmHWM, read from /proc every 0.1 s: exact for every
process alive at a sample) and peak RSS of the whole process tree (sum, sampled), exit code, monitors
patched (the emulator's own firmware state) and, for cmspatch, monitors its journal shows patched with
all four verdicts fixed, plus where a cmspatch monitor's time went (mean seconds per phase).
Ratios are printed, never asserted: figures
vary 30-50% run to run on a shared 2-core machine (PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:  # the parent measures children: it imports no more of cmspatch than it must
    from orchestrator.domain.devices import Device
    from orchestrator.ports import CommandResult, DeviceSession, DeviceTransport, ProgressCallback

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


@dataclass(frozen=True)
class Measured:
    name: str
    monitors: int
    wall: float
    cpu: float
    maxrss_mb: float
    tree_rss_mb: float
    patched: int
    exit_code: int
    verified: int | None = None  # cmspatch: patched with all four CVE verdicts fixed, per its journal
    note: str = ""
    fleet_cpu: float = 0.0  # the emulated monitors' CPU (this process + their busybox) during the run
    steps: int | None = None  # monitor-steps: commands run, uploads and reconnects (cmspatch: counted)
    oos: dict[str, list[float]] | None = dataclasses.field(default=None, repr=False)  # out of service per
    #     monitor, seconds: {"upload": [...], "install": [...]}


# ----------------------------------------------------------------------------------------- setup
def build_bench_package(workdir: Path, mib: float) -> Path:
    """The emulator's fixed package plus an incompressible payload, so uploads carry ``mib`` MiB."""
    from orchestrator.emulator.firmware import build_package

    small = build_package(workdir / "small.tar.gz", variant="fixed")
    out = workdir / "cms-fix-bench.tar.gz"
    payload = random.Random(4212).randbytes(int(mib * 1024 * 1024))
    with tarfile.open(small, "r:gz") as src, tarfile.open(out, "w:gz", compresslevel=1) as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo("payload/firmware.img")
        info.size, info.mtime, info.mode = len(payload), 1735689600, 0o644
        dst.addfile(info, io.BytesIO(payload))
    return out


# Address plan, disjoint from the other users of this machine's loopback: tests draw monitor prefixes
# from 127.20-127.119 and indicator maps from 127.120-127.250 (tests/integration/conftest.py,
# engine_rig.py), the demo uses 127.77. Every monitor also listens on the fixed UDP service port, so a
# shared prefix collides whatever the SSH port. The bench takes 127.2-127.19 for monitors and
# 127.251-127.254 for its indicator maps, drawn at random, and draws again when the address is taken
# (another bench at the same time).
_BENCH_MONITOR_OCTETS = range(2, 20)
_BENCH_INDICATOR_OCTETS = range(251, 255)


def _indicator_free(prefix: str) -> bool:
    """The child's sinkhole binds the mapped .119/.120 on fixed ports: are they free right now?"""
    import socket

    for host in (f"{prefix}.119", f"{prefix}.120"):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((host, 111))
                except OSError:
                    return False
    return True


def start_fleet(workdir: Path, monitors: int, rng: random.Random, used: set[str],
                kind: str = "emulator") -> Any:
    from orchestrator.domain.indicators import IndicatorMap
    from orchestrator.emulator import EmulatedFleet
    from orchestrator.emulator.openssh import OpenSshFleet
    from orchestrator.errors import EmulatorError

    start = OpenSshFleet.start if kind == "openssh" else EmulatedFleet.start

    for attempt in range(8):
        prefix = f"127.{rng.choice(_BENCH_MONITOR_OCTETS)}"
        indicator = f"127.{rng.choice(_BENCH_INDICATOR_OCTETS)}.{rng.randrange(1, 255)}"
        if prefix in used or indicator in used or not _indicator_free(indicator):
            continue
        try:
            fleet = start(workdir / f"try{attempt}", monitors=monitors, address_prefix=prefix,
                                        port=rng.randrange(20000, 30000),
                                        indicator_map=IndicatorMap(indicator), reboot_seconds=1.0)
        except EmulatorError as exc:
            if exc.reason != "address-in-use":
                raise
            print(f"  ({prefix}.x taken: {exc.message}; drawing again)", file=sys.stderr)
            continue
        used.update((prefix, indicator))
        return fleet
    raise SystemExit("no free loopback addresses for an emulated fleet after 8 draws")


def measure(name: str, argv: list[str], monitors: int, fleet: Any, *, env: dict[str, str] | None = None,
            cwd: Path = REPO, note: str = "", expect: int | None = None, expect_exit: int = 0) -> Measured:
    """Run one contender as a child; CPU and max RSS from wait4, tree RSS sampled."""
    started = time.monotonic()
    before = os.times()  # this process runs the fleet; its reaped children include the monitors' busybox
    proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    peak = [0]
    hwm = [0]  # largest VmHWM of any process of the tree (kB): a true per-process peak, unlike
    #            wait4's ru_maxrss, which keeps the pre-exec high-water mark of the forked parent
    done = threading.Event()

    def read_hwm(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0

    def sample() -> None:
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not done.wait(0.1):
            total = 0
            try:
                for p in [root, *root.children(recursive=True)]:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                    hwm[0] = max(hwm[0], read_hwm(p.pid))
            except psutil.Error:
                break
            peak[0] = max(peak[0], total)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    wall = time.monotonic() - started
    after = os.times()
    contender_cpu = usage.ru_utime + usage.ru_stime
    fleet_cpu = sum(b - a for a, b in zip(before[:4], after[:4], strict=True)) - contender_cpu
    patched = sum(1 for m in fleet.monitors if m.firmware_state == "fixed")
    if proc.returncode not in (0, expect_exit) or patched < (monitors if expect is None else expect):
        tail = output.decode("utf-8", "replace").strip().splitlines()[-6:]
        print(f"  [{name}] exit {proc.returncode}, patched {patched}/{monitors}: " + " | ".join(tail),
              file=sys.stderr)
    lines = output.decode("utf-8", "replace").strip().splitlines()
    verified, steps, oos = None, None, floor_out_of_service(lines)
    if lines and lines[-1].startswith("{"):
        child = json.loads(lines[-1])
        verified, steps, oos = child.get("verified"), child.get("steps"), child.pop("out_of_service", None)
        note = f"{note} child: {json.dumps(child)}".strip()
    return Measured(name, monitors, wall, contender_cpu, hwm[0] / 1024,
                    peak[0] / 2**20, patched, proc.returncode, verified, note, fleet_cpu, steps, oos)


def floor_out_of_service(lines: list[str]) -> dict[str, list[float]] | None:
    """The floor script's ``NAME ok up=T install=T done=T`` lines (epoch seconds) as per-monitor spans."""
    spans: dict[str, list[float]] = {"upload": [], "install": []}
    for line in lines:
        fields = dict(f.split("=", 1) for f in line.split()[2:] if "=" in f)
        if line.split()[1:2] == ["ok"] and {"up", "install", "done"} <= set(fields):
            done = float(fields["done"])
            spans["upload"].append(done - float(fields["up"]))
            spans["install"].append(done - float(fields["install"]))
    return spans if spans["upload"] else None


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, -(-len(ordered) * q // 100) - 1))]


class CountingTransport:
    """Counts the monitor-steps the engine takes over a transport: every command run, upload and
    reconnect on any session it opens (the unit the controller's CPU is divided by)."""

    def __init__(self, inner: DeviceTransport) -> None:
        self._inner = inner
        self.name = inner.name
        self.steps = 0
        self._lock = threading.Lock()

    def open(self, device: Device) -> DeviceSession:
        return _CountingSession(self._inner.open(device), self)

    def count(self) -> None:
        with self._lock:
            self.steps += 1


class _CountingSession:
    """``ports.DeviceSession`` around another, counting its steps (every method spelt out: the port's
    contract, not whatever the session happens to have)."""

    def __init__(self, inner: DeviceSession, counter: CountingTransport) -> None:
        self._inner = inner
        self._counter = counter
        self.device = inner.device

    def run(self, command: str, *, timeout: float = 30.0) -> CommandResult:
        self._counter.count()
        return self._inner.run(command, timeout=timeout)

    def put(self, local: Path, remote: str, *, progress: ProgressCallback | None = None) -> None:
        self._counter.count()
        self._inner.put(local, remote, progress=progress)

    def reconnect(self, *, timeout: float) -> None:
        self._counter.count()
        self._inner.reconnect(timeout=timeout)

    def wait_disconnect(self, timeout: float) -> bool:
        return self._inner.wait_disconnect(timeout)

    def close(self) -> None:
        self._inner.close()


# -------------------------------------------------------------------------------- child: engine
def child_engine(args: argparse.Namespace) -> int:
    """Runs inside the measured child: the cmspatch Engine on one fleet, over SSH or Ansible."""
    from orchestrator import wiring
    from orchestrator.adapters.inventory_file import load_inventory
    from orchestrator.adapters.journal_sqlite import SqliteJournal
    from orchestrator.adapters.package_verify import verify_package
    from orchestrator.cli.campaign import exit_code_of
    from orchestrator.domain.campaign import CampaignPolicy
    from orchestrator.domain.devices import DeliveryPath
    from orchestrator.domain.indicators import ALL_CVES, IndicatorMap
    from orchestrator.domain.lifecycle import DeviceState
    from orchestrator.domain.verdicts import Verdict

    inventory = load_inventory(args.inventory)
    if args.child == "hold":
        inventory = replicate(inventory, args.hold_monitors)
    package = verify_package(Path(args.package), Path(args.manifest), Path(args.policy),
                             state=Path(args.state)).require()
    stack = ExitStack()
    # Every monitor over the path measured (the inventory says ssh; the ansible child drives them all
    # through ansible-runner), built by the composition root like cmspatch run's.
    transport = (wiring.ansible_transport(inventory, stack, forks=args.forks) if args.child == "ansible"
                 else wiring.ssh_transport(inventory))
    counting = CountingTransport(transport)
    gate = args.child == "hold"
    policy = CampaignPolicy(
        waves=("1", "100%") if gate else ("100%",), require_approval=gate, canary_must_pass=False,
        per_site_concurrency=args.forks, max_workers=args.forks, exercise_triggers=True,
        observation_window=args.observation_window, reboot_timeout=120.0, command_timeout=60.0,
        retry_initial=0.5, retry_max=5.0, max_rechecks=0)
    with stack, SqliteJournal(args.journal) as journal:
        sinkhole = wiring.sinkhole(IndicatorMap(args.indicator_prefix), stack)
        engine = wiring.new_engine(inventory=inventory, package=package, journal=journal,
                        transports={DeliveryPath.SSH: counting}, policy=policy, operator="bench",
                        observer=sinkhole)
        phases = Phases()
        engine.subscribe(phases.record)
        plan = engine.plan()
        if gate:
            engine.stop_at_gate()
        outcome = engine.run(auto_approve=not gate)
        rss = psutil.Process().memory_info().rss / 2**20
        verified = sum(1 for d in engine.status.devices.values()
                       if d.state is DeviceState.PATCHED and len(d.verdicts) == len(ALL_CVES)
                       and all(v is Verdict.FIXED for v in d.verdicts.values()))
        print(json.dumps({"exit": int(exit_code_of(outcome)), "verified": verified,
                          "counts": {k: v for k, v in outcome.counts.items() if v},
                          "waves": len(plan.waves), "devices": len(inventory.devices),
                          "rss_mb_at_end": round(rss, 1), "steps": counting.steps,
                          "phase_mean_s": phases.means(), "out_of_service": phases.out_of_service()}))
    return int(exit_code_of(outcome))


class Phases:
    """Mean seconds a monitor spends per phase, from the engine's own events (for "where time goes")."""

    MARKS = (("firmware-read", "before"), ("state", "uploading"), ("state", "uploaded"),
             ("state", "installing"), ("state", "rebooting"), ("state", "verifying"), ("firmware-after", ""),
             ("state", "patched"))
    NAMES = ("queue+connect+clinical+firmware", "upload-start", "upload+hash", "clinical-recheck",
             "install", "recheck+reboot+reconnect", "read-version", "verify(checks+triggers+window)")

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.seen: dict[str, dict[str, float]] = {}

    def record(self, rec: Any) -> None:
        now = time.monotonic()
        if rec.device is None:
            return
        kind, data = str(rec.kind), rec.data
        if kind == "firmware-read":
            key = "firmware-read:before" if data.get("when") == "before" else "firmware-after:"
        elif kind == "state-changed":
            key = f"state:{data.get('to')}"
        else:
            return
        with self.lock:
            self.seen.setdefault(rec.device, {}).setdefault(key, now)

    def out_of_service(self) -> dict[str, list[float]]:
        """Per patched monitor, seconds from its first disturbing action to its verified verdict: from
        the upload (the clinical gate counts it as disturbing) and from the install (the monitoring
        application stops), each to the ``patched`` state, which follows verification."""
        with self.lock:
            done = [m for m in self.seen.values() if "state:patched" in m]
            return {kind: [round(m["state:patched"] - m[f"state:{start}"], 3) for m in done
                           if f"state:{start}" in m]
                    for kind, start in (("upload", "uploading"), ("install", "installing"))}

    def means(self) -> dict[str, float]:
        keys = [f"{a}:{b}" for a, b in self.MARKS]
        out: dict[str, float] = {}
        done = [m for m in self.seen.values() if all(k in m for k in keys)]
        if not done:
            return out
        previous = [self.t0] * len(done)
        for name, key in zip(self.NAMES, keys, strict=True):
            now = [m[key] for m in done]
            out[name] = round(sum(b - a for a, b in zip(previous, now, strict=True)) / len(done), 2)
            previous = now
        out["monitors"] = len(done)
        return out


def replicate(inventory: Any, count: int) -> Any:
    """``count`` inventory entries that all point at the first (served) monitor.

    Holding a campaign only touches the canary before the gate, so the other 999 need no server: they
    are planned, journalled (campaign-created lists all 1,000) and held in the engine's status. (The
    emulator serves 1,000 monitors too since its BusyBox links go past the filesystem's link limit:
    ``--only ssh --monitors 1000`` runs one campaign on all of them end to end.)"""

    first = inventory.devices[0]
    devices = [first] + [dataclasses.replace(first, name=f"{first.name}-r{i:04d}",
                                             serial=f"{first.serial}-{i}") for i in range(1, count)]
    return dataclasses.replace(inventory, devices=tuple(devices))


# --------------------------------------------------------------------------------------- parent
def run_all(args: argparse.Namespace) -> None:
    from orchestrator.adapters.demo_trust import make_demo_trust

    work = Path(tempfile.mkdtemp(prefix="bench-campaign-"))
    try:
        package = build_bench_package(work, args.package_mib)
        sha = hashlib.sha256(package.read_bytes()).hexdigest()
        with tarfile.open(package) as archive:
            member = archive.extractfile("VERSION")
            version = member.read().decode().strip() if member else ""
        trust = make_demo_trust(work, package)
        print(f"package {package.stat().st_size / 2**20:.1f} MiB, forks/concurrency {args.forks}, "
              f"{os.cpu_count()} cores; monitors: {args.monitors} (ansible path: {args.ansible_monitors})")
        from orchestrator.domain.campaign import CampaignPolicy

        default_window = CampaignPolicy().observation_window
        print(f"cmspatch settings: observation window {args.observation_window:g} s "
              f"(product default {default_window:g} s), both hidden-mount triggers exercised "
              "(menu-update, boot-key), sinkhole on, UDP probe on, cms-status re-asked before install and "
              "reboot; the other contenders do not verify (they only read the version after the reboot)")
        results: list[Measured] = []
        rng = random.Random(os.getpid() ^ time.time_ns())
        used: set[str] = set()
        default = ["ssh", "plain", "floor"]
        if args.fleet == "emulator":
            default += ["ansible", "hold"]
        wanted = args.only.split(",") if args.only else default
        for name in wanted:
            n = {"ansible": args.ansible_monitors, "hold": 1}.get(name, args.monitors)
            fleet_dir = work / f"fleet-{name}"
            t0 = time.monotonic()
            fleet = start_fleet(fleet_dir, n, rng, used, args.fleet)
            print(f"- {name}: {args.fleet} fleet of {n} up in {time.monotonic() - t0:.1f} s "
                  f"({fleet.monitors[0].address}.., indicators {fleet.indicator_map.loopback_prefix}.x)",
                  flush=True)
            try:
                inv = str(fleet.inventory_path)
                common = ["--inventory", inv, "--package", str(package), "--manifest", str(trust.manifest),
                          "--policy", str(trust.policy), "--forks", str(args.forks),
                          "--indicator-prefix", fleet.indicator_map.loopback_prefix]
                if name in ("ssh", "ansible", "hold"):
                    state = work / f"state-{name}.json"
                    argv = [PY, "-m", "bench.bench_campaign", "--child", name, *common, "--state", str(state),
                            "--journal", str(work / f"journal-{name}.db"),
                            "--hold-monitors", str(args.hold_monitors),
                            "--observation-window", str(args.observation_window)]
                    label = {"ssh": "cmspatch-ssh", "ansible": "cmspatch-ansible", "hold": "rss-1000"}[name]
                    result = measure(label, argv, n, fleet, expect=1 if name == "hold" else None,
                                     expect_exit=5 if name == "hold" else 0)
                    if name == "hold":
                        result = dataclasses.replace(
                            result, monitors=args.hold_monitors,
                            note=f"exit 5 = held at the gate as asked; plan + journal of "
                                 f"{args.hold_monitors}, canary patched over SSH;"
                                 f" 1 monitor served; {result.note}")
                elif name == "plain":
                    argv = [str(Path(PY).parent / "ansible-playbook"), "-i", inv, "-f", str(args.forks),
                            str(REPO / "bench/plain_patch.yml"), "-e", f"package={package}", "-e",
                            f"sha256={sha}", "-e", f"target_version={version}"]
                    result = measure("plain-ansible", argv, n, fleet,
                                     env={"ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_NOCOLOR": "1",
                                          "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work / "cp-plain")})
                else:
                    cpdir = work / "cp-floor"
                    cpdir.mkdir()
                    hosts = "\n".join(f"{m.name} {m.address} {m.port}" for m in fleet.monitors) + "\n"
                    hostfile = work / "floor-hosts.txt"
                    hostfile.write_text(hosts)
                    env = {"PKG": str(package), "SHA": sha, "VERSION": version, "USER": fleet.user,
                           "KEY": str(fleet.key_path), "KNOWN": str(fleet.known_hosts_path),
                           "CPDIR": str(cpdir)}
                    script = REPO / "bench/openssh_floor.sh"
                    argv = ["sh", "-c", f"xargs -P {args.forks} -L 1 sh {script} < {hostfile}"]
                    result = measure("openssh-floor", argv, n, fleet, env=env)
                results.append(result)
                print(f"  {result}", flush=True)
            finally:
                fleet.stop()
        report(results, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(results: list[Measured], args: argparse.Namespace) -> None:
    print()
    print("patched = the emulator's firmware state is fixed; verified = cmspatch's journal shows the monitor "
          "patched with all four CVE verdicts fixed (the others do not verify: '-');\nCPU = the contender's "
          "process tree; fleet CPU = the emulated monitors serving it (same 2 cores)")
    print(f"{'contender':<18}{'monitors':>9}{'patched':>9}{'verified':>9}{'exit':>6}{'wall s':>9}"
          f"{'s/monitor':>11}{'CPU s':>9}{'CPU s/mon':>11}{'maxRSS MB':>11}{'treeRSS MB':>12}"
          f"{'fleet CPU s':>13}")
    for r in results:
        verified = "-" if r.verified is None else str(r.verified)
        print(f"{r.name:<18}{r.monitors:>9}{r.patched:>9}{verified:>9}{r.exit_code:>6}{r.wall:>9.1f}"
              f"{r.wall / r.monitors:>11.3f}{r.cpu:>9.1f}{r.cpu / r.monitors:>11.3f}{r.maxrss_mb:>11.0f}"
              f"{r.tree_rss_mb:>12.0f}{r.fleet_cpu:>13.1f}")
    for r in results:
        if r.note:
            print(f"  {r.name}: {r.note}")
    by = {r.name: r for r in results}

    def ratio(a: str, b: str, what: str, per_monitor: bool = False) -> None:
        if a in by and b in by:
            x, y = by[a], by[b]
            va = getattr(x, what) / (x.monitors if per_monitor else 1)
            vb = getattr(y, what) / (y.monitors if per_monitor else 1)
            print(f"  {a} / {b} {what}{' per monitor' if per_monitor else ''}: {va / vb:.2f}x")

    print("\nratios (goals: plain-ansible / cmspatch-ssh wall >= 5x; "
          "cmspatch-ssh / openssh-floor wall <= 1.5x)")
    ratio("plain-ansible", "cmspatch-ssh", "wall")
    ratio("plain-ansible", "cmspatch-ssh", "cpu")
    ratio("cmspatch-ssh", "openssh-floor", "wall")
    ratio("cmspatch-ssh", "openssh-floor", "cpu")
    ratio("cmspatch-ansible", "cmspatch-ssh", "wall", per_monitor=True)
    ratio("cmspatch-ansible", "plain-ansible", "wall", per_monitor=True)
    print("\nout of service per monitor (first disturbing action to verified verdict; the floor: to the new "
          "version read back), p50 / p95 s:")
    for r in results:
        if r.oos:
            spans = "; ".join(f"from {kind} {percentile(v, 50):.1f} / {percentile(v, 95):.1f}"
                              for kind, v in r.oos.items() if v)
            print(f"  {r.name:<16} {spans} ({len(r.oos.get('install', []))} monitors)")
    if "cmspatch-ssh" in by and "openssh-floor" in by and by["cmspatch-ssh"].oos and by["openssh-floor"].oos:
        ours = percentile(by["cmspatch-ssh"].oos["install"], 95)
        floor = percentile(by["openssh-floor"].oos["install"], 95)
        limit = floor + args.observation_window + 1.0
        met = "MET" if ours <= limit else "NOT met"
        print(f"  goal: cmspatch p95 from install {ours:.1f} s <= floor's install + reboot p95 {floor:.1f} s"
              f" + window {args.observation_window:g} s + 1 s = {limit:.1f} s: {met}")
    for r in results:
        if r.steps:
            per = r.cpu / r.steps
            print(f"  {r.name}: {r.steps} monitor-steps (commands, uploads, reconnects), controller CPU "
                  f"{per * 1000:.2f} ms per monitor-step, peak RSS {r.maxrss_mb:.0f} MB for {r.monitors} "
                  f"monitors (goals at 1,000: <= 5 ms, < 200 MB: "
                  f"{'MET' if per <= 0.005 and r.maxrss_mb < 200 else 'NOT met'})")
    if "rss-1000" in by:
        hold = by["rss-1000"]
        print(f"  rss-1000: peak RSS of the cmspatch process holding {hold.monitors} monitors "
              f"{hold.maxrss_mb:.0f} MB (goal < 200 MB at 1,000)")
    only = f" --only {args.only}" if args.only else ""
    print(f"\ncommand: .venv/bin/python -m bench.bench_campaign --fleet {args.fleet}{only} "
          f"--monitors {args.monitors} "
          f"--package-mib {args.package_mib:g} --ansible-monitors {args.ansible_monitors} "
          f"--hold-monitors {args.hold_monitors} --forks {args.forks} "
          f"--observation-window {args.observation_window:g}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--monitors", type=int, default=200)
    parser.add_argument("--package-mib", type=float, default=5.0)
    parser.add_argument("--ansible-monitors", type=int, default=6,
                        help="fleet size for cmspatch over Ansible (slow: one ansible run per step)")
    parser.add_argument("--hold-monitors", type=int, default=1000,
                        help="campaign size for the planning/holding RSS measurement")
    parser.add_argument("--forks", type=int, default=50, help="parallelism of every contender")
    parser.add_argument("--only", help="comma list of contenders: ssh,ansible,plain,floor,hold")
    parser.add_argument("--fleet", choices=["emulator", "openssh"], default="emulator",
                        help="the monitors: the asyncssh emulator, or real OpenSSH sshd (needs root)")
    parser.add_argument("--observation-window", type=float, default=None,
                        help="cmspatch's post-reboot watch in seconds (default: the policy's default)")
    # child mode (internal)
    parser.add_argument("--child", choices=["ssh", "ansible", "hold"], help=argparse.SUPPRESS)
    for name in ("--inventory", "--package", "--manifest", "--policy", "--state", "--journal",
                 "--indicator-prefix"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.observation_window is None:
        from orchestrator.domain.campaign import CampaignPolicy

        args.observation_window = CampaignPolicy().observation_window
    if args.child:
        return child_engine(args)
    run_all(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
