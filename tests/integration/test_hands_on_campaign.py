"""The hands-on unit in the campaign: confirmed by a named technician, it awaits its bench session and is
neither failed nor counted against the failure budget; resuming (with or without ``--limit``) or halting
never rewrites another monitor's outcome, so a patient-connected deferral stays deferred, and "keep
isolated", in every export.

Real parts: emulated monitors over SSH on loopback, SQLite, signatures, the CLI in its own process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.demo import add_manual_unit
from orchestrator.domain.campaign import Ending
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.errors import ExitCode
from orchestrator.exports.csaf import ISOLATE, render_csaf
from orchestrator.exports.csv import render_csv
from orchestrator.exports.cyclonedx import render_cyclonedx
from orchestrator.exports.html import render_html
from orchestrator.exports.json import render_json
from orchestrator.exports.model import build_model
from orchestrator.wiring import resume_engine
from tests.integration.engine_rig import Rig, fast_policy, rig

ONE_WAVE = ["--waves", "100%", "--observation-window", "0.4", "--reboot-timeout", "8", "--max-failures", "1",
            "--no-sinkhole"]


def cmspatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def _cli(r: Rig, inventory: Path) -> list[str]:
    args = r.cli_args()
    args[args.index("-i") + 1] = str(inventory)
    return args


def _status(r: Rig) -> dict[str, object]:
    result = cmspatch("status", "--journal", str(r.journal_path), "--json")
    assert result.returncode == ExitCode.OK, result.stderr
    return dict(json.loads(result.stdout))


def _exports(r: Rig) -> dict[str, str]:
    """All five documents, rendered from the journal as `cmspatch export` renders them."""
    with SqliteJournal(r.journal_path, create=False, read_only=True) as journal:
        model = build_model(journal.records())
    return {"csv": render_csv(model).decode(), "json": render_json(model).decode(),
            "html": render_html(model).decode(), "csaf": render_csaf(model).decode(),
            "cyclonedx": render_cyclonedx(model).decode()}


def _assert_deferred_everywhere(exports: dict[str, str], name: str) -> None:
    row = next(line for line in exports["csv"].splitlines() if f",{name}," in line)
    assert ",deferred," in row and "patient-connected" in row, row
    doc = json.loads(exports["json"])
    assert next(d for d in doc["devices"] if d["device"] == name)["outcome"] == "deferred"
    assert ISOLATE in exports["csaf"] and "Deferred: patient-connected" in exports["csaf"]
    assert "Deferred: patient-connected" in exports["cyclonedx"]
    assert "workaround_available" in exports["cyclonedx"]
    assert "deferred" in exports["html"].lower()


def test_a_confirmed_hands_on_unit_awaits_its_bench_and_resuming_keeps_the_deferrals(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, sinkhole=False) as r:
        inventory = tmp_path / "inventory.yml"
        unit = add_manual_unit(r.fleet.inventory_path, inventory)
        patient = r.fleet.monitors[0].name
        r.fleet.monitors[0].inject("patient")
        config = tmp_path / "campaign.yml"
        config.write_text("max_rechecks: 1\nrecheck_interval: 0.1\n", encoding="utf-8")
        first = cmspatch("run", *_cli(r, inventory), *ONE_WAVE, "--campaign-config", str(config), "--yes",
                         "--work-orders", str(tmp_path / "wo"))
        assert first.returncode == ExitCode.INCOMPLETE, first.stderr

        confirmed = cmspatch("confirm", unit, "--technician", "L. Bianchi", "--version", "CMS7.820.200.05",
                             "--journal", str(r.journal_path))
        assert confirmed.returncode == ExitCode.OK, confirmed.stderr
        assert f"cmspatch bench {unit}" in confirmed.stderr
        devices = _status(r)["devices"]
        assert isinstance(devices, dict)
        assert devices[unit]["state"] == "awaiting-bench"
        assert devices[unit]["firmware_after"] == "CMS7.820.200.05"
        assert devices[unit]["firmware_after_by"] == "technician L. Bianchi"
        assert f"cmspatch bench {unit}" in devices[unit]["next_step"]
        text = cmspatch("status", "--journal", str(r.journal_path)).stdout
        assert "CMS7.820.200.05 (read by technician L. Bianchi)" in text and "hands-on units waiting" in text

        # The campaign halts on its first failure (--max-failures 1): waiting for the bench is none.
        for limit in (["--limit", unit], []):
            again = cmspatch("run", *_cli(r, inventory), "--resume", "--yes", *limit)
            assert again.returncode == ExitCode.INCOMPLETE, again.stderr
            status = _status(r)
            assert status["halted"] is None
            devices = status["devices"]
            assert isinstance(devices, dict)
            assert devices[unit]["state"] == "awaiting-bench"
            assert devices[patient]["state"] == "deferred"
            assert devices[patient]["reason"] == "patient-connected"
            _assert_deferred_everywhere(_exports(r), patient)
        assert r.installs(patient) == 0


def test_a_resume_limited_to_one_monitor_drives_no_other(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=2, sinkhole=False) as r:
        for monitor in r.fleet.monitors:
            monitor.inject("patient")
        journal = r.journal()
        engine = r.engine(journal, policy=fast_policy(max_rechecks=1))
        engine.run()
        names = [m.name for m in r.fleet.monitors]
        assert all(engine.status.devices[n].state is DeviceState.DEFERRED for n in names)

        def of(name: str) -> list[int]:
            return [rec.seq for rec in journal.records(engine.campaign_id) if rec.device == name]

        before = of(names[1])
        resumed = resume_engine(journal=journal, campaign_id=engine.campaign_id, inventory=r.inventory,
                                package=r.package, transports=engine.transports, operator="test",
                                policy=fast_policy(max_rechecks=3), limit=names[0])
        assert resumed.scope == {names[0]}
        resumed.run()
        assert of(names[1]) == before, "a monitor outside --limit was driven"
        assert len(of(names[0])) > 0 and resumed.status.devices[names[0]].rechecks > 1  # it was re-checked
        journal.close()


def test_a_halted_campaign_keeps_its_deferred_monitors_deferred(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=2, sinkhole=False) as r:
        journal = r.journal()
        engine = r.engine(journal, policy=fast_policy(max_failures=1, max_rechecks=0))
        canary, other = engine.waves[0][0], engine.waves[1][0]
        r.fleet.monitor(canary).inject("patient")
        r.fleet.monitor(other).inject("install-fail")
        outcome = engine.run()
        assert outcome.ending is Ending.HALTED
        assert engine.status.devices[other].state is DeviceState.FAILED
        assert (engine.status.devices[canary].state, engine.status.devices[canary].reason) == (
            DeviceState.DEFERRED, "patient-connected")
        journal.close()
        _assert_deferred_everywhere(_exports(r), canary)


def test_confirm_refuses_a_blank_technician_and_a_second_confirmation(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=1, sinkhole=False) as r:
        inventory = tmp_path / "inventory.yml"
        unit = add_manual_unit(r.fleet.inventory_path, inventory)
        journal = r.journal()
        engine = r.engine(journal, inventory=load_inventory(inventory), limit=unit)
        engine.run()
        journal.close()
        blank = cmspatch("confirm", unit, "--technician", "  ", "--journal", str(r.journal_path))
        assert blank.returncode == ExitCode.USAGE and "[no-technician]" in blank.stderr, blank.stderr
        assert cmspatch("confirm", unit, "--technician", "G. Neri", "--journal",
                        str(r.journal_path)).returncode == ExitCode.OK
        twice = cmspatch("confirm", unit, "--technician", "G. Neri", "--journal", str(r.journal_path))
        assert twice.returncode == ExitCode.USAGE and "not-awaiting-technician" in twice.stderr, twice.stderr
