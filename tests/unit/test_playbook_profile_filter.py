"""The playbooks' profile filter gives each host its own profile's commands, filled by the engine's code."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

PLUGIN = Path(__file__).resolve().parents[2] / "playbooks" / "filter_plugins" / "cmspatch_profile.py"


def _plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cmspatch_profile_filter", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_default_profile_gives_todays_commands_byte_for_byte() -> None:
    got = _plugin().cmspatch_profile_commands("", "fix.tar.gz")
    assert (got["refusal"], got["status"], got["firmware"], got["install"], got["reboot"]) == (
        "", "cms-status", "cat /etc/firmware_version", "cms-install /data/upgrade/fix.tar.gz", "reboot")
    assert got["hash"] == "sha256sum /data/upgrade/fix.tar.gz"


def test_a_host_naming_another_profile_gets_its_commands_grammar_and_exit_codes() -> None:
    plugin = _plugin()
    got = plugin.cmspatch_profile_commands("generic-busybox-no-triggers", "fix.tar.gz")
    assert got["status"] == "/usr/bin/devstatus --clinical"
    assert got["install"] == "sysupgrade --no-reboot /overlay/upgrade/fix.tar.gz"
    assert got["reboot"] == "/sbin/reboot -d 1" and got["upload_dir"] == "/overlay/upgrade"
    assert plugin.cmspatch_install_reason(28, got["installer"]) == "disk-full"
    assert plugin.cmspatch_install_reason(6, got["installer"]) == "install-failed"  # 6 is the shipped one's


def test_a_hostile_package_name_reaches_the_shell_as_one_word() -> None:
    got = _plugin().cmspatch_profile_commands("", "fix;reboot.tar.gz")
    assert got["install"] == "cms-install '/data/upgrade/fix;reboot.tar.gz'"


def test_a_profile_that_does_not_exist_fails_the_host_with_a_reason() -> None:
    got = _plugin().cmspatch_profile_commands("no-such-profile", "fix.tar.gz")
    assert got["refusal"].startswith("cmspatch-reason=")
