"""kill -9 at random moments, then --resume: every monitor ends patched, installed exactly once.

The CLI runs as a real subprocess against the emulated fleet in this process; it is SIGKILLed after
seeded random delays (so a failure can be replayed), which lands in every phase over the runs:
before the journal exists, mid-upload, mid-install, mid-reboot, mid-verification.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.domain.status import project
from orchestrator.errors import ExitCode
from tests.integration.engine_rig import Rig, rig

FAST = ["--waves", "1,100%", "--observation-window", "0.4", "--reboot-timeout", "8", "--yes"]


def _start(r: Rig, config: Path, *, json_out: bool = False) -> subprocess.Popen[str]:
    resume = []
    if r.journal_path.exists():
        with SqliteJournal(r.journal_path) as journal:
            resume = ["--resume"] if journal.campaigns() else []
    log = (r.workdir / "cli-stderr.log").open("a")
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli.main", "run", *r.cli_args(), *FAST,
                             "--campaign-config", str(config), *resume, *(["--json"] if json_out else [])],
                            stdout=subprocess.PIPE if json_out else subprocess.DEVNULL,
                            stderr=log if json_out else subprocess.PIPE, text=True)


def _config(r: Rig, workers: int = 10) -> Path:
    path = r.workdir / "campaign.yml"
    path.write_text("retry_attempts: 3\nretry_initial: 0.05\nretry_max: 0.2\nrecheck_interval: 0.2\n"
                    f"max_workers: {workers}\n")
    return path


def _assert_all_patched_once(r: Rig) -> None:
    with SqliteJournal(r.journal_path) as journal:
        assert journal.verify().ok
        fleet = project(journal.records())
    states = {name: (d.state.value, d.reason) for name, d in fleet.devices.items()}
    assert all(state == "patched" for state, _ in states.values()), states
    installs = {m.name: r.installs(m.name) for m in r.fleet.monitors}
    assert all(n == 1 for n in installs.values()), installs
    assert all(m.version == r.package.target_version for m in r.fleet.monitors)


def _phases(r: Rig) -> set[str]:
    if not r.journal_path.exists():
        return {"no-journal"}
    with SqliteJournal(r.journal_path) as journal:
        return {d.state.value for d in project(journal.records()).devices.values()} or {"no-campaign"}


def test_kill_9_at_random_points_then_resume_patches_everything_exactly_once(tmp_path: Path) -> None:
    # Kill points are drawn in journal records, not seconds, so a loaded machine still lands them
    # inside the campaign: after N records (the record is durable), plus a short random delay that
    # lands the kill between records, in the middle of an upload, an install or a reboot.
    rng = random.Random(int(os.environ.get("CMSPATCH_KILL_SEED", "20261124")))  # replay a failure by seed
    with rig(tmp_path, monitors=4, sinkhole=False) as r:
        config = _config(r, workers=1)  # one monitor at a time: more distinct phases to land in
        kills, seen = 0, set()
        while kills < 7:
            proc = _start(r, config, json_out=True)
            assert proc.stdout is not None
            for _ in range(rng.randint(1, 45)):
                if not proc.stdout.readline():
                    break
            try:
                code = proc.wait(timeout=rng.uniform(0.0, 0.4))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                proc.stdout.close()
                kills += 1
                seen |= _phases(r)
                continue
            assert code == ExitCode.OK, (r.workdir / "cli-stderr.log").read_text()
            break
        else:
            proc = _start(r, config, json_out=True)
            assert proc.stdout is not None
            proc.stdout.read()
            assert proc.wait(timeout=120) == ExitCode.OK, (r.workdir / "cli-stderr.log").read_text()
        print(f"{kills} kills; device states seen at kill time: {sorted(seen)}")
        _assert_all_patched_once(r)


def test_ctrl_c_stops_cleanly_with_exit_130_and_the_campaign_resumes(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=3, sinkhole=False) as r:
        config = _config(r)
        proc = _start(r, config)
        assert proc.stderr is not None
        for line in proc.stderr:  # interrupt once the canary is through and wave 2 is under way
            if "wave 2 started" in line:
                proc.send_signal(signal.SIGINT)
                break
        assert proc.wait(timeout=60) == ExitCode.INTERRUPTED
        with SqliteJournal(r.journal_path) as journal:
            assert not project(journal.records()).finished
        resumed = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "run", *r.cli_args(), *FAST,
                                  "--campaign-config", str(config), "--resume", "--json"],
                                 capture_output=True, text=True, timeout=120, check=False)
        assert resumed.returncode == ExitCode.OK, resumed.stderr
        assert json.loads(resumed.stdout.splitlines()[-1])["kind"] == "campaign-finished"
        _assert_all_patched_once(r)
