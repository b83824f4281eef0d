"""Ansible's raw and script modules work unchanged against emulated monitors (no Python on a monitor)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: read the firmware version
      raw: cat /etc/firmware_version
      register: fw
    - name: run a probe script
      script: probe.sh hello
    - name: fail if the version is empty
      raw: test -n "{{ fw.stdout | trim }}"
"""

PROBE = """#!/bin/sh
. /etc/device.conf
echo "$1 $MODEL $(cat /etc/firmware_version)" > /tmp/probe-ran
"""


def test_ansible_playbook_raw_and_script_modules_run_on_the_monitors(
        fleet_factory: Callable[..., Any], tmp_path: Path) -> None:
    fleet = fleet_factory(2)
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    (tmp_path / "probe.sh").write_text(PROBE)
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "minimal", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
           "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CONFIG": str(tmp_path / "none.cfg")}
    playbook = Path(sys.executable).parent / "ansible-playbook"
    result = subprocess.run([str(playbook), "-i", str(fleet.inventory_path), "site.yml"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    for m in fleet.monitors:
        assert m.version in result.stdout
        assert (m.root / "tmp/probe-ran").read_text().strip() == f"hello {m.model} {m.version}"
        assert not list((m.root / "root/.ansible/tmp").glob("ansible-tmp-*"))  # Ansible cleaned up
