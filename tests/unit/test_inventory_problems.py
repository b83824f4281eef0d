"""Every kind of inventory problem is reported with its file, its line and a stable code."""

from __future__ import annotations

import textwrap

import pytest

from orchestrator.domain.inventory import parse_inventory
from orchestrator.errors import InventoryError, Problem

KEY = "SHA256:SmPuBF7qMMRDB6S+4mSPJa6pTyWClJof6Wk3TuQ14CE"
KEY2 = "SHA256:LqF49tUh0h1oCFBXXV6E2PWL3S5q3CGOafJStZbnQC0"

# Lines 1-11 are shared (line 11 is `hosts:`); the first host's name is on line 12, then its fields:
# ansible_host 13, ansible_port 14, model 15, serial 16, bed 17, host_key 18, any extra field 19;
# a second host starts on line 19 (20 after a host with one extra field).
HEAD = """\
all:
  vars:
    ansible_user: service
    ansible_ssh_private_key_file: keys/fleet_ed25519
  children:
    site_north:
      vars: { site: "North General" }
      children:
        north_icu:
          vars: { ward: "ICU" }
"""


def host(name: str, address: str = "127.77.0.1", serial: str = "S-1", **extra: str) -> str:
    fields = {
        "ansible_host": address,
        "ansible_port": "2222",
        "model": "CMS8000",
        "serial": f'"{serial}"' if serial != "DROP" else serial,
        "bed": '"01"',
        "host_key": f'"{KEY}"',
        **extra,
    }
    body = "".join(f"      {k}: {v}\n" for k, v in fields.items() if v != "DROP")
    return f"    {name}:\n{body}"


def problems(hosts: str, head: str = HEAD) -> list[Problem]:
    text = head + "          hosts:\n" + textwrap.indent(hosts, "        ")
    with pytest.raises(InventoryError) as caught:
        parse_inventory(text, "inv.yml", base_dir="/srv/inv")
    assert all(p.file == "inv.yml" for p in caught.value.problems)
    return caught.value.problems


def located(found: list[Problem]) -> set[tuple[int, str]]:
    return {(p.line, p.code) for p in found}


def test_yaml_syntax_error_is_reported_on_its_line() -> None:
    text = "all:\n  hosts:\n    a: {model: CMS8000\n    b: [\n"
    with pytest.raises(InventoryError) as caught:
        parse_inventory(text, "inv.yml", base_dir="/")
    [problem] = caught.value.problems
    assert problem.code == "yaml-syntax"
    assert problem.line in (4, 5)
    assert str(problem).startswith(f"inv.yml:{problem.line}: YAML syntax error")


def test_yaml_syntax_error_does_not_echo_the_offending_line() -> None:
    text = 'all:\n  vars:\n    ansible_password: "s3cret-Pa55\n    x: [\n'
    with pytest.raises(InventoryError) as caught:
        parse_inventory(text, "inv.yml", base_dir="/")
    assert "s3cret-Pa55" not in str(caught.value)


def test_unknown_model_is_reported_on_the_model_line() -> None:
    found = problems(host("north-icu-bed01", model="CMS8800"))
    assert located(found) == {(15, "unknown-model")}
    assert "CMS8800" in found[0].message


def test_duplicate_host_key_is_caught_although_yaml_would_keep_the_last() -> None:
    found = problems(host("bed01") + host("bed01", address="127.77.0.2", serial="S-2"))
    assert located(found) == {(19, "duplicate-host")}
    assert "line 12" in found[0].message


def test_a_host_redefined_with_different_values_in_another_group_is_a_duplicate() -> None:
    head = HEAD.replace(
        "    site_north:\n", '    extra:\n      hosts:\n        bed01: { bed: "99" }\n    site_north:\n'
    )
    found = problems(host("bed01"), head=head)
    assert ("duplicate-host" in {p.code for p in found}) and found[0].line == 15


def test_a_host_listed_in_two_groups_without_conflict_is_legal() -> None:
    head = HEAD.replace("    site_north:\n", "    wave_one:\n      hosts:\n        bed01:\n    site_north:\n")
    text = head + "          hosts:\n" + textwrap.indent(host("bed01"), "        ")
    inventory = parse_inventory(text, "inv.yml", base_dir="/")
    assert "wave_one" in inventory.device("bed01").groups


def test_two_hosts_on_one_address_and_port_are_refused() -> None:
    found = problems(host("bed01") + host("bed02", serial="S-2", host_key=f'"{KEY2}"'))
    assert located(found) == {(19, "duplicate-address")}
    assert "bed01" in found[0].message


def test_the_same_address_on_another_port_is_fine() -> None:
    text = (
        HEAD
        + "          hosts:\n"
        + textwrap.indent(host("bed01") + host("bed02", serial="S-2", ansible_port="2223"), "        ")
    )
    assert len(parse_inventory(text, "inv.yml", base_dir="/").devices) == 2


def test_two_hosts_with_one_serial_are_refused() -> None:
    found = problems(host("bed01") + host("bed02", address="127.77.0.2"))
    assert located(found) == {(19, "duplicate-serial")}


@pytest.mark.parametrize("address", ["bad host!", "300.1.2.3", "-leading.dash", '"{{ lookup(x) }}"'])
def test_an_address_that_is_neither_ip_nor_host_name_is_refused(address: str) -> None:
    assert located(problems(host("bed01", address=address))) == {(13, "bad-address")}


@pytest.mark.parametrize("address", ["127.77.0.1", "::1", "monitor-7.ward.example", "fe80::1"])
def test_ip_addresses_and_host_names_are_accepted(address: str) -> None:
    text = HEAD + "          hosts:\n" + textwrap.indent(host("bed01", address=f'"{address}"'), "        ")
    assert parse_inventory(text, "inv.yml", base_dir="/").devices[0].address == address


@pytest.mark.parametrize("port", ["0", "65536", "ssh", "true", "[22]"])
def test_a_port_outside_1_to_65535_is_refused(port: str) -> None:
    assert located(problems(host("bed01", ansible_port=port))) == {(14, "bad-port")}


def test_a_network_host_without_key_file_or_agent_has_no_credential() -> None:
    head = HEAD.replace("    ansible_ssh_private_key_file: keys/fleet_ed25519\n", "    x: 1\n")
    assert located(problems(host("bed01"), head=head)) == {(12, "missing-credential")}


@pytest.mark.parametrize(
    "key", ["ansible_password", "ansible_ssh_pass", "ansible_become_password", "ansible_become_pass"]
)
def test_a_password_in_clear_is_refused_without_echoing_it(key: str) -> None:
    found = problems(host("bed01", **{key: "Hunter2-Secret"}))
    assert located(found) == {(19, "password-in-clear")}
    assert "Hunter2-Secret" not in str(InventoryError(found))


def test_a_password_in_group_vars_is_reported_where_it_is_written() -> None:
    head = HEAD.replace("    ansible_user: service\n", "    ansible_user: service\n    ansible_ssh_pass: x\n")
    assert (4, "password-in-clear") in located(problems(host("bed01"), head=head))


@pytest.mark.parametrize("field", ["serial", "bed", "model"])
def test_a_host_without_a_required_field_is_refused(field: str) -> None:
    found = problems(host("bed01", **{field: "DROP"}))
    assert located(found) == {(12, "missing-field")}
    assert field in found[0].message


def test_site_and_ward_are_required_even_when_no_group_sets_them() -> None:
    head = HEAD.replace('      vars: { site: "North General" }\n', "").replace(
        '          vars: { ward: "ICU" }\n', ""
    )
    found = problems(host("bed01"), head=head)
    assert sorted(p.message.rsplit(" ", 1)[-1] for p in found if p.code == "missing-field") == [
        "site",
        "ward",
    ]


@pytest.mark.parametrize("field", ["ansible_host", "host_key"])
def test_a_network_host_needs_an_address_and_a_host_key(field: str) -> None:
    assert located(problems(host("bed01", **{field: "DROP"}))) == {(12, "missing-field")}


def test_a_network_host_needs_a_login_user() -> None:
    head = HEAD.replace("    ansible_user: service\n", "    x: 1\n")
    assert located(problems(host("bed01"), head=head)) == {(12, "missing-field")}


@pytest.mark.parametrize("fingerprint", ["SHA256:abc", "MD5:aa:bb", KEY[:-1], KEY + "xx", "ssh-ed25519 AAAA"])
def test_a_host_key_not_in_ssh_keygen_fingerprint_form_is_refused(fingerprint: str) -> None:
    assert located(problems(host("bed01", host_key=f'"{fingerprint}"'))) == {(18, "bad-host-key")}


def test_an_unknown_delivery_path_is_refused() -> None:
    assert located(problems(host("bed01", delivery="usb-stick"))) == {(19, "unknown-delivery")}


def test_a_typo_in_a_group_key_is_refused_rather_than_ignored() -> None:
    text = HEAD + "          host:\n" + textwrap.indent(host("bed01"), "        ")
    with pytest.raises(InventoryError) as caught:
        parse_inventory(text, "inv.yml", base_dir="/")
    assert located(caught.value.problems) == {(11, "unknown-group-key")}


def test_a_bad_value_in_group_vars_is_reported_once_not_per_host() -> None:
    head = HEAD.replace('vars: { ward: "ICU" }', 'vars: { ward: "ICU", ansible_port: 70000 }')
    found = problems(
        host("bed01", ansible_port="DROP")
        + host("bed02", address="127.77.0.2", serial="S-2", ansible_port="DROP"),
        head=head,
    )
    assert located(found) == {(10, "bad-port")}


def test_an_empty_inventory_defines_no_devices() -> None:
    with pytest.raises(InventoryError) as caught:
        parse_inventory("# nothing yet\n", "inv.yml", base_dir="/")
    assert [p.code for p in caught.value.problems] == ["no-devices"]


def test_every_problem_is_reported_at_once_sorted_by_line() -> None:
    head = HEAD.replace(
        "    ansible_user: service\n", "    ansible_user: service\n    ansible_password: pw\n"
    )
    hosts = (
        host("bed01", model="CMS1")
        + host("bed02", ansible_port="0", serial="DROP")
        + host("bed03", address="no way", host_key='"SHA256:short"', delivery="pigeon")
        + host("bed01")
    )
    found = problems(hosts, head=head)
    codes = [p.code for p in found]
    assert {
        "password-in-clear",
        "unknown-model",
        "bad-port",
        "missing-field",
        "bad-address",
        "bad-host-key",
        "unknown-delivery",
        "duplicate-host",
    } <= set(codes)
    assert [p.line for p in found] == sorted(p.line for p in found)
    assert all(p.line > 0 and p.message for p in found)


@pytest.mark.parametrize("name", ["bed 01", "bed[01:10]", "bed01:2222", "-bed"])
def test_a_host_name_that_is_not_one_plain_word_is_refused(name: str) -> None:
    assert (12, "bad-host-name") in located(problems(host(f'"{name}"')))


def test_a_host_named_like_a_group_is_refused() -> None:
    assert located(problems(host("north_icu"))) == {(12, "name-clash")}


def test_a_duplicate_variable_is_caught_on_its_second_line() -> None:
    head = HEAD.replace("    ansible_user: service\n", "    ansible_user: service\n    ansible_user: root\n")
    found = problems(host("bed01"), head=head)
    assert located(found) == {(4, "duplicate-key")}


def test_a_group_that_contains_its_own_parent_is_a_cycle() -> None:
    head = HEAD.replace(
        '          vars: { ward: "ICU" }\n',
        '          vars: { ward: "ICU" }\n          children:\n            site_north:\n',
    )
    assert "group-cycle" in {p.code for p in problems(host("bed01"), head=head)}


def test_hosts_written_as_a_list_are_a_structure_problem() -> None:
    text = HEAD + "          hosts: [bed01, bed02]\n"
    with pytest.raises(InventoryError) as caught:
        parse_inventory(text, "inv.yml", base_dir="/")
    assert (11, "bad-structure") in located(caught.value.problems)


def test_the_agent_switch_must_be_true_or_false() -> None:
    assert located(problems(host("bed01", cmspatch_ssh_agent="maybe"))) == {(19, "bad-value")}


def test_serial_number_is_the_key_and_serial_is_still_read() -> None:
    """Ansible reserves ``serial`` (a play keyword) and warns once per host; ``serial_number`` is the key."""
    text = HEAD + "          hosts:\n" + textwrap.indent(
        host("north-icu-bed01", serial="DROP", serial_number='"S-9"')
        + host("north-icu-bed02", address="127.77.0.2", serial="S-2", host_key=f'"{KEY2}"'), "        ")
    devices = parse_inventory(text, "inv.yml", base_dir="/srv/inv").devices
    assert [d.serial for d in devices] == ["S-9", "S-2"]


def test_serial_number_and_a_different_serial_on_one_host_are_a_conflict() -> None:
    found = problems(host("north-icu-bed01", serial_number='"S-9"'))
    assert located(found) == {(12, "conflicting-field")}
    assert "keep serial_number only" in found[0].message


def test_a_host_without_any_serial_is_told_the_key_to_write() -> None:
    found = problems(host("north-icu-bed01", serial="DROP"))
    assert located(found) == {(12, "missing-field")}
    assert "has no serial_number" in found[0].message
