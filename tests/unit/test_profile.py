"""Device profiles: the shipped ones load into today's behaviour, bad ones are refused with file:line,
and a template puts every value in as one shell word."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.adapters.profile_file import SHIPPED, load_profile
from orchestrator.domain.clinical import DEFAULT_GRAMMAR, Deferral, may_disturb
from orchestrator.domain.profile import (
    DEFAULT_PROFILE,
    PROFILE_LIMITS,
    STEPS,
    DeviceProfile,
    fill,
    parse_profile,
)
from orchestrator.domain.strict_load import StrictLoadError, load_yaml_document

EMULATED = (SHIPPED / f"{DEFAULT_PROFILE}.yml").read_text()


def parse(text: str) -> DeviceProfile:
    return parse_profile(load_yaml_document(text, "p.yml", PROFILE_LIMITS), "p.yml")


def refused(text: str) -> StrictLoadError:
    with pytest.raises(StrictLoadError) as info:
        parse(text)
    assert info.value.reason == "bad-profile"
    return info.value


def test_shipped_default_profile_states_todays_commands() -> None:
    p = load_profile()
    remote = "/data/upgrade/cms-fw-2.1.0.tar.gz"
    assert p.command("clinical_status") == "cms-status"
    assert p.command("firmware_read") == "cat /etc/firmware_version"
    assert p.command("hash_file", path=remote) == f"sha256sum {remote}"
    assert p.command("remove_file", path=remote) == f"rm -f {remote}"
    assert p.command("install", path=remote) == f"cms-install {remote}"
    assert p.command("reboot") == "reboot"
    assert p.trigger_command("menu-update") == "cms-service trigger menu-update"
    assert p.status == DEFAULT_GRAMMAR
    assert p.upload_dir == "/data/upgrade" and p.udp_probe_ports == (51000,)
    assert p.binaries == {"monitor": "/opt/cms/bin/monitor", "update": "/opt/cms/bin/update"}


def test_default_installer_rule_is_exit_6_or_the_word_space() -> None:
    i = load_profile().installer
    assert i.outcome(0, "") == "ok"
    assert i.outcome(6, "") == "disk-full"
    assert i.outcome(5, "No SPACE left") == "disk-full"
    assert [i.outcome(c, "flash write failed") for c in (2, 3, 4, 5, None)] == ["installer-failed"] * 5


def test_second_example_profile_asks_the_technician_for_triggers() -> None:
    p = load_profile("generic-busybox-no-triggers")
    assert p.trigger_command("menu-update") is None and p.trigger_command("boot-key") is None
    assert p.command("clinical_status").startswith("/usr/bin/devstatus")
    assert p.installer.outcome(28, "") == "disk-full" and p.installer.outcome(6, "") == "installer-failed"
    assert may_disturb("PATIENT_STATE=discharged\nALARM_STATE=quiet\n", p.status).allowed
    assert may_disturb("PATIENT_STATE=admitted\nALARM_STATE=quiet\n", p.status).reason is \
        Deferral.PATIENT_CONNECTED
    # today's words mean nothing to this unit: unknown, do not disturb
    assert may_disturb("patient=none\nalarm=none\n", p.status).reason is Deferral.STATUS_UNKNOWN


def test_unknown_key_is_refused_with_its_line() -> None:
    err = refused(EMULATED.replace("timeouts:", "timeoutz:"))
    line = next(n for n, t in enumerate(EMULATED.splitlines(), 1) if t.startswith("timeouts:"))
    assert err.line == line and "timeoutz" in err.detail


def test_template_with_unknown_placeholder_is_refused_with_its_line() -> None:
    err = refused(EMULATED.replace("cms-install {path}", "cms-install {file}"))
    line = next(n for n, t in enumerate(EMULATED.splitlines(), 1) if "cms-install {path}" in t)
    assert err.line == line and "{file}" in err.detail


def test_placeholder_on_a_step_that_takes_none_is_refused() -> None:
    assert "{path}" in refused(EMULATED.replace("  reboot: reboot", "  reboot: reboot {path}")).detail


@pytest.mark.parametrize("bad", ["/data/up;rm -rf /", "/data/$(id)", "data/upgrade", "/data/../etc",
                                 "/data/up grade", "/data/`x`"])
def test_path_with_shell_metacharacters_is_refused(bad: str) -> None:
    err = refused(EMULATED.replace("upload_dir: /data/upgrade", f"upload_dir: '{bad}'"))
    assert err.where.startswith("p.yml:") and "upload_dir" in err.detail


def test_missing_step_is_refused() -> None:
    assert "free_space" in refused(EMULATED.replace("  free_space: df -k {dir}", "")).detail


def test_installer_without_an_ok_exit_code_is_refused() -> None:
    assert "ok" in refused(EMULATED.replace("{0: ok, 6: disk-full}", "{6: disk-full}")).detail


def test_status_value_both_clear_and_busy_is_refused() -> None:
    refused(EMULATED.replace("clear: none, busy: [connected]", "clear: none, busy: [none]"))


def test_duplicate_key_in_a_profile_is_refused_by_the_strict_loader() -> None:
    with pytest.raises(StrictLoadError) as info:
        parse(EMULATED + "name: other\n")
    assert info.value.reason == "duplicate-key"


def test_missing_profile_file_is_a_located_refusal(tmp_path: Path) -> None:
    with pytest.raises(StrictLoadError) as info:
        load_profile(str(tmp_path / "nope.yml"))
    assert info.value.reason == "missing"


@given(st.text(min_size=1, max_size=80).filter(lambda s: "\x00" not in s))
def test_a_filled_value_reaches_the_shell_as_one_word(value: str) -> None:
    for allowed in STEPS.values():
        if not allowed:
            continue
        command = fill("tool --flag {" + allowed[0] + "} && echo done", allowed, **{allowed[0]: value})
        assert shlex.split(command) == ["tool", "--flag", value, "&&", "echo", "done"]


# --- the inventory names a profile per monitor ------------------------------------------------------

INVENTORY = """\
all:
  vars:
    ansible_user: service
    ansible_ssh_private_key_file: keys/fleet
    model: CMS8000
    site: North
    host_key: "SHA256:SmPuBF7qMMRDB6S+4mSPJa6pTyWClJof6Wk3TuQ14CE"
  children:
    icu:
      vars: {ward: ICU, cmspatch_profile: generic-busybox-no-triggers}
      hosts:
        bed01: {ansible_host: 127.77.0.1, serial_number: S-1, bed: "01"}
        bed02: {ansible_host: 127.77.0.2, serial_number: S-2, bed: "02", cmspatch_profile: vendor/p.yml}
    er:
      vars: {ward: ER}
      hosts:
        bed03: {ansible_host: 127.77.0.3, serial_number: S-3, bed: "03"}
"""


def test_inventory_names_a_profile_per_monitor_through_group_vars() -> None:
    from orchestrator.domain.inventory import parse_inventory

    inv = parse_inventory(INVENTORY, "inv.yml", base_dir="/srv/fleet")
    assert inv.device("bed01").profile == "generic-busybox-no-triggers"  # the group's
    assert inv.device("bed02").profile == "/srv/fleet/vendor/p.yml"  # a path, relative to the inventory
    assert inv.device("bed03").profile == DEFAULT_PROFILE  # none named: the shipped default


def test_inventory_refuses_a_profile_that_is_neither_name_nor_file() -> None:
    from orchestrator.domain.inventory import parse_inventory
    from orchestrator.errors import InventoryError

    with pytest.raises(InventoryError) as info:
        parse_inventory(INVENTORY.replace("vendor/p.yml", "'Vendor Profile'"), "inv.yml", base_dir="/x")
    assert [p.code for p in info.value.problems] == ["bad-profile"]
    assert info.value.problems[0].line == 13  # bed02, where it is written


def test_device_checks_of_the_shipped_profile_are_the_catalogues() -> None:
    from orchestrator.domain.checks import CATALOGUE, device_commands

    p = load_profile()
    ours = device_commands(p.command("clinical_status"), p.command("firmware_read"), p.binaries)
    assert ours == {c: s.command for c, s in CATALOGUE.items() if s.command is not None}
    other = load_profile("generic-busybox-no-triggers")
    theirs = device_commands(other.command("clinical_status"), other.command("firmware_read"),
                             other.binaries)
    assert theirs["binary-hashes"] == "sha256sum /usr/lib/cms/monitor /usr/lib/cms/updater"
    assert theirs["patient-status"] == "/usr/bin/devstatus --clinical"


def test_package_binaries_are_expected_where_the_profile_installs_them() -> None:
    from orchestrator.domain.checks import binary_hashes, binary_pattern, expected_at

    other = load_profile("generic-busybox-no-triggers")
    package = {"/opt/cms/bin/monitor": "a" * 64, "/opt/cms/bin/update": "b" * 64}
    moved = expected_at(package, other.binaries)
    assert moved == {"/usr/lib/cms/monitor": "a" * 64, "/usr/lib/cms/updater": "b" * 64}
    assert expected_at(package, load_profile().binaries) == package
    seen = f"{'a' * 64}  /usr/lib/cms/monitor\n{'c' * 64}  /usr/lib/cms/updater\n".encode()
    ev = binary_hashes(seen, 0, "t", moved)
    assert ev.outcome == "fail" and "/usr/lib/cms/updater differs" in ev.summary
    assert ev.details["compared_with_manifest"] == 2
    scanned = binary_pattern("monitor-mount-string", b"", 1, "t", other.binaries)
    assert "/usr/lib/cms/monitor" in scanned.summary


def test_both_shipped_profiles_declare_every_device_check() -> None:
    from orchestrator.domain.checks import ON_DEVICE

    for name in (DEFAULT_PROFILE, "generic-busybox-no-triggers"):
        assert load_profile(name).device_checks == frozenset(ON_DEVICE), name


def test_an_unknown_device_check_is_refused_with_its_line() -> None:
    err = refused(EMULATED.replace("  - udp-listener ", "  - udp-listenr "))
    line = next(n for n, t in enumerate(EMULATED.splitlines(), 1) if t.startswith("  - udp-listener"))
    assert err.line == line and "'udp-listenr' is no device check" in err.detail


def test_a_network_check_cannot_be_declared_as_the_devices() -> None:
    err = refused(EMULATED.replace("  - udp-listener ", "  - udp-probe "))
    assert "network check" in err.detail and err.line > 0


def test_a_profile_must_say_which_device_checks_it_can_run() -> None:
    text = EMULATED[:EMULATED.index("device_checks:")]
    assert "has no 'device_checks'" in refused(text).detail
    assert "twice" in refused(EMULATED.replace("  - eth0-state ", "  - nfs-mount\n  - eth0-state ")).detail


def test_only_the_declared_device_checks_get_a_command() -> None:
    from orchestrator.domain.checks import device_commands, not_declared

    p = parse(EMULATED.replace("  - udp-listener ", "  # - udp-listener "))
    ours = device_commands(p.command("clinical_status"), p.command("firmware_read"), p.binaries,
                           p.device_checks)
    assert "udp-listener" not in ours and "indicator-socket" in ours
    ev = not_declared("udp-listener", "t", p.name)
    assert ev.outcome == "error" and "does not declare" in ev.summary


def test_the_device_contract_lists_every_device_check_a_profile_may_declare() -> None:
    from orchestrator.domain.checks import ON_DEVICE

    contract = (Path(__file__).resolve().parents[2] / "docs" / "device-contract.md").read_text()
    assert [c for c in ON_DEVICE if f"`{c}`" not in contract] == []


def test_a_hands_on_step_with_an_unknown_placeholder_is_refused_with_its_line() -> None:
    err = refused(EMULATED.replace("as {usb_path} and install", "as {usb} and install"))
    line = next(n for n, t in enumerate(EMULATED.splitlines(), 1) if "as {usb_path} and install" in t)
    assert err.line == line and "{usb}" in err.detail


def test_a_usb_path_without_the_file_or_climbing_out_is_refused() -> None:
    assert "must be a path on the stick" in refused(EMULATED.replace('usb_path: "{name}"',
                                                                     'usb_path: "fw.bin"')).detail
    assert "must be a path on the stick" in refused(EMULATED.replace('usb_path: "{name}"',
                                                                     'usb_path: "../{name}"')).detail
    assert "unknown key 'usb_dir'" in refused(EMULATED.replace("  usb_path:", "  usb_dir:")).detail


def test_a_profile_without_hands_on_steps_keeps_the_words_of_before() -> None:
    start, end = EMULATED.index("hands_on:"), EMULATED.index("# The checks cmspatch may run")
    assert parse(EMULATED[:start] + EMULATED[end:]).hands_on == load_profile().hands_on
