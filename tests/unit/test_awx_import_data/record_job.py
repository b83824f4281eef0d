"""Re-record ``job.jsonl``: a real ansible-runner job of playbooks/patch.yml on emulated monitors.

    .venv/bin/python -m tests.unit.test_awx_import_data.record_job

Six monitors: healthy, patient connected, alarm active, data partition full, installer failure,
unreachable. The job's events (as ``job_events/*.json`` hold them), ``status`` and ``rc`` are written
to one JSON-lines file so the unit tests of the mapping need no fleet and no Ansible.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import ansible_runner

from orchestrator.emulator import EmulatedFleet
from orchestrator.emulator.catalog import FIXED_VERSION
from orchestrator.emulator.firmware import build_package

HERE = Path(__file__).resolve().parent
PLAYBOOKS = HERE.parents[2] / "playbooks"
FAULTS = {"south-picu-bed01": "patient", "east-er-bed01": "alarm", "north-ccu-bed01": "disk-full",
          "south-nicu-bed01": "install-fail", "east-med-bed01": "unreachable"}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with EmulatedFleet.start(work / "fleet", monitors=6, faults=FAULTS, address_prefix="127.97",
                                 port=22977, reboot_seconds=0.5) as fleet:
            names = [m.name for m in fleet.monitors]
            package = build_package(work / "cms-fix.tar.gz", variant="fixed")
            (work / "runner").mkdir()
            runner = ansible_runner.run(
                private_data_dir=str(work / "runner"), project_dir=str(fleet.inventory_path.parent),
                playbook=str(PLAYBOOKS / "patch.yml"), inventory=str(fleet.inventory_path), ident="recorded",
                extravars={"cmspatch_package": str(package),
                           "cmspatch_sha256": hashlib.sha256(package.read_bytes()).hexdigest(),
                           "cmspatch_target_version": FIXED_VERSION},
                envvars={"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                         "ANSIBLE_NOCOLOR": "True"},
                quiet=True,
            )
            events_dir = work / "runner" / "artifacts" / "recorded" / "job_events"
            events = [json.loads(p.read_text()) for p in events_dir.glob("*.json")]
            events.sort(key=lambda e: e["counter"])
        lines = [json.dumps({"status": runner.status, "rc": runner.rc, "hosts": names})]
        lines += [json.dumps(e, sort_keys=True) for e in events]
        (HERE / "job.jsonl").write_text("\n".join(lines) + "\n")
        print(f"recorded {len(events)} events, status {runner.status}, rc {runner.rc}")


if __name__ == "__main__":
    main()
