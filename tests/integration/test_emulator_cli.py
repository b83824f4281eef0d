"""``cmspatch fleet emulate`` runs in the foreground, says where it listens, and stops cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import unique_prefixes


def test_fleet_emulate_serves_ssh_with_its_inventory_and_stops_on_sigterm(tmp_path: Path) -> None:
    prefix, indicator_map, port = unique_prefixes()
    cmd = [sys.executable, "-m", "orchestrator.cli.main", "fleet", "emulate", "--monitors", "4",
           "--mix", "CMS8000=3,MN-120=1", "--states", "vulnerable=3,fixed=1",
           "--faults", "east-er-bed01=patient",
           "--workdir", str(tmp_path / "fleet"), "--port", str(port), "--address-prefix", prefix,
           "--indicator-prefix", indicator_map.loopback_prefix, "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        summary = json.loads(proc.stdout.readline())
        assert summary["monitors"] == 4 and summary["states"] == {"vulnerable": 3, "fixed": 1}
        assert summary["models"] == {"CMS8000": 3, "MN-120": 1}
        ssh = subprocess.run(
            ["ssh", "-i", summary["key"], "-o", f"UserKnownHostsFile={summary['known_hosts']}",
             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(port),
             f"service@{summary['addresses'][0]}", "cms-status"],
            capture_output=True, text=True, timeout=20, check=False)
        assert ssh.returncode == 0, ssh.stderr
        assert "model=" in ssh.stdout
        patient = subprocess.run(
            ["ssh", "-i", summary["key"], "-o", f"UserKnownHostsFile={summary['known_hosts']}",
             "-o", "BatchMode=yes", "-p", str(port), f"service@{summary['addresses'][0].rsplit('.', 1)[0]}.3",
             "cms-status"], capture_output=True, text=True, timeout=20, check=False)
        assert "patient=connected" in patient.stdout  # monitor 3 is east-er-bed01
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_fleet_emulate_refuses_an_unknown_fault_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", "fleet", "emulate", "--monitors", "2",
         "--workdir", str(tmp_path), "--faults", "bed01=melt"], capture_output=True, text=True, timeout=30,
        check=False)
    assert result.returncode != 0
    assert "unknown fault" in result.stderr and "Traceback" not in result.stderr
