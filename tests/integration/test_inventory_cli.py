"""The inventory from outside: the ``cmspatch inventory`` commands, and real Ansible reading the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.cli.main import main

BIN = Path(sys.executable).parent
EXAMPLE = Path(__file__).resolve().parents[2] / "inventory.example.yml"
BAD = """\
all:
  vars:
    ansible_user: service
    ansible_ssh_private_key_file: keys/fleet
  hosts:
    bed01:
      ansible_host: 127.77.0.1
      model: CMS8800
      serial: "S-1"
      site: North
      ward: ICU
      bed: "01"
      host_key: "SHA256:nope"
"""


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_HOME": str(cwd or Path.cwd()), "NO_COLOR": "1"}
    env.pop("CMSPATCH_DEBUG", None)
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=cwd, env=env, check=False)


def test_check_of_a_bad_inventory_exits_2_with_every_problem_located_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text(BAD)
    result = run(str(BIN / "cmspatch"), "inventory", "check", "-i", "bad.yml", cwd=tmp_path)
    assert result.returncode == 2
    assert "bad.yml:8: " in result.stderr and "CMS8800" in result.stderr
    assert "bad.yml:13: " in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""


def test_check_of_a_missing_file_exits_2_without_traceback(tmp_path: Path) -> None:
    result = run(str(BIN / "cmspatch"), "inventory", "check", "-i", "missing.yml", cwd=tmp_path)
    assert result.returncode == 2
    assert "missing.yml: cannot read the inventory" in result.stderr
    assert "Traceback" not in result.stderr


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """In-process, for speed: the subprocess tests above cover the real entry point."""
    code = main(["inventory", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_of_the_example_summarises_sites_models_and_delivery_paths(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = cli(capsys, "check", "-i", str(EXAMPLE), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["devices"] == 12
    assert len(summary["sites"]) == 3 and len(summary["models"]) == 6
    assert summary["delivery"] == {"ansible": 2, "manual": 3, "ssh": 7}


def test_list_prints_one_line_per_selected_device(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "list", "-i", str(EXAMPLE), "--limit", "site_north:!north_icu")
    assert code == 0, err
    assert [line.split("\t")[0] for line in out.splitlines()] == ["north-cardio-bed11", "north-cardio-bed12"]


def test_list_json_carries_no_free_form_vars(capsys: pytest.CaptureFixture[str]) -> None:
    records = json.loads(cli(capsys, "list", "-i", str(EXAMPLE), "--json")[1])
    assert len(records) == 12 and "vars" not in records[0]
    assert records[0]["host_key"].startswith("SHA256:")


def test_a_limit_that_matches_nothing_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "list", "-i", str(EXAMPLE), "--limit", "north_icuu")
    assert (code, out) == (2, "")
    assert "limit-matches-nothing" in err


def ansible_hostvars(path: Path, cwd: Path) -> dict[str, dict[str, object]]:
    result = run(str(BIN / "ansible-inventory"), "-i", str(path), "--list", cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "Skipping" not in result.stderr and "Unable to parse" not in result.stderr, result.stderr
    assert "reserved name" not in result.stderr, result.stderr  # e.g. `serial`, one warning per host
    hostvars: dict[str, dict[str, object]] = json.loads(result.stdout)["_meta"]["hostvars"]
    return hostvars


FIELDS = ("model", "serial", "site", "ward", "bed")
ANSIBLE_NAME = {"serial": "serial_number"}  # Ansible reserves `serial`: the inventory writes serial_number


def test_ansible_reads_the_example_and_sees_the_same_hosts_and_values(tmp_path: Path) -> None:
    hostvars = ansible_hostvars(EXAMPLE, tmp_path)
    inventory = load_inventory(EXAMPLE)
    assert sorted(hostvars) == sorted(d.name for d in inventory.devices)
    for device in inventory.devices:
        theirs = hostvars[device.name]
        mine = {f: getattr(device, f) for f in FIELDS}
        assert {f: str(theirs[ANSIBLE_NAME.get(f, f)]) for f in FIELDS} == mine
        assert theirs["delivery"] == device.delivery.value
        assert theirs.get("ansible_host", "") == device.address


@pytest.mark.parametrize("order", ["deep group first", "deep group last"])
def test_inheritance_matches_ansible_for_a_host_in_groups_of_different_depth(
    tmp_path: Path, order: str
) -> None:
    shallow = "    wave1:\n      vars: {ward: Wave, bed: '7', model: CMS6000}\n      hosts: {h1: }\n"
    deep = (
        "    site:\n      vars: {site: S, ward: Site, model: CMS7000}\n      children:\n        icu:\n"
        "          vars: {ward: ICU}\n          hosts:\n"
        "            h1: {serial_number: X1, delivery: manual}\n"
    )
    groups = deep + shallow if order == "deep group first" else shallow + deep
    path = tmp_path / "inv.yml"
    path.write_text("all:\n  vars: {bed: '0'}\n  children:\n" + groups)
    theirs = ansible_hostvars(path, tmp_path)["h1"]
    device = load_inventory(path).device("h1")
    assert {f: str(theirs[ANSIBLE_NAME.get(f, f)]) for f in FIELDS} == {f: getattr(device, f) for f in FIELDS}
    assert (device.ward, device.model, device.bed) == ("ICU", "CMS6000", "7")
