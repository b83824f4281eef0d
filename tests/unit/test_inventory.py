"""Loading a valid inventory: typed devices, Ansible variable inheritance, paths resolved, the example."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.domain.devices import CredentialRef, DeliveryPath
from orchestrator.domain.indicators import MODELS
from orchestrator.domain.inventory import Inventory, parse_inventory
from orchestrator.errors import InventoryError, UsageError

EXAMPLE = Path(__file__).resolve().parents[2] / "inventory.example.yml"
KEY = "SHA256:SmPuBF7qMMRDB6S+4mSPJa6pTyWClJof6Wk3TuQ14CE"

NESTED = f"""\
all:
  vars:
    ansible_user: service
    ansible_ssh_private_key_file: keys/fleet
    cmspatch_known_hosts: ../pins/known_hosts
    model: CMS6000
    bed: "00"
  children:
    site_north:
      vars: {{ site: "North General", model: CMS7000 }}
      children:
        north_icu:
          vars: {{ ward: "ICU", model: CMS8000 }}
          hosts:
            bed01:
              ansible_host: 127.77.0.1
              serial: "S-1"
              bed: "01"
              host_key: "{KEY}"
            bed02:
              ansible_host: 127.77.0.2
              ansible_port: 2200
              serial: "S-2"
              model: CMS9000
              host_key: "{KEY}"
              cmspatch_ssh_agent: true
              ansible_ssh_private_key_file: /etc/cmspatch/own_key
"""


@pytest.fixture(scope="module")
def nested() -> Inventory:
    return parse_inventory(NESTED, "inv.yml", base_dir="/srv/fleet")


def test_the_nearest_definition_wins_host_over_child_group_over_parent_over_all(nested: Inventory) -> None:
    assert nested.device("bed01").model == "CMS8000"  # ward group beats site group beats all
    assert nested.device("bed02").model == "CMS9000"  # the host's own value beats every group
    assert nested.device("bed01").bed == "01" and nested.device("bed02").bed == "00"


def test_values_of_every_level_are_combined(nested: Inventory) -> None:
    bed = nested.device("bed01")
    assert (bed.site, bed.ward, bed.user, bed.address, bed.port) == (
        "North General",
        "ICU",
        "service",
        "127.77.0.1",
        22,
    )
    assert nested.device("bed02").port == 2200


def test_a_device_belongs_to_its_groups_and_their_ancestors(nested: Inventory) -> None:
    assert nested.device("bed01").groups == ("all", "site_north", "north_icu")


def test_a_device_remembers_the_line_that_defines_it(nested: Inventory) -> None:
    assert [d.source_line for d in nested.devices] == [15, 20]


def test_relative_paths_are_resolved_against_the_inventory_directory(nested: Inventory) -> None:
    assert nested.device("bed01").credential == CredentialRef(key_file="/srv/fleet/keys/fleet")
    assert nested.known_hosts == "/srv/pins/known_hosts"
    assert nested.device("bed02").credential == CredentialRef(key_file="/etc/cmspatch/own_key", agent=True)


def test_a_group_deeper_in_the_tree_beats_a_shallower_one_for_a_host_in_both() -> None:
    text = NESTED + "    fleet:\n      vars: {ward: X}\n      hosts: {bed01: }\n"  # read last, still loses
    assert parse_inventory(text, "inv.yml", base_dir="/").device("bed01").ward == "ICU"


def test_a_string_field_keeps_the_text_as_written() -> None:
    text = NESTED.replace('bed: "01"', "bed: 01").replace('serial: "S-1"', "serial: 0x1F")
    device = parse_inventory(text, "inv.yml", base_dir="/").device("bed01")
    assert (device.bed, device.serial) == ("01", "0x1F")  # not YAML 1.1's octal 1 and hex 31


def test_yaml_merge_keys_are_honoured() -> None:
    text = NESTED.replace('    bed: "00"\n', '    bed: "00"\n    x: &common {serial: "S-9"}\n').replace(
        '              serial: "S-2"\n', "              <<: *common\n"
    )
    assert parse_inventory(text, "inv.yml", base_dir="/").device("bed02").serial == "S-9"


def test_a_manual_unit_needs_no_address_host_key_or_credential() -> None:
    text = (
        "all:\n  hosts:\n"
        "    cart1: {model: CMS6500, serial: C1, site: S, ward: W, bed: '1', delivery: manual}\n"
    )
    device = parse_inventory(text, "inv.yml", base_dir="/").device("cart1")
    assert (device.delivery, device.address, device.host_key) == (DeliveryPath.MANUAL, "", None)
    assert device.groups == ("all", "ungrouped")


def test_unknown_device_name_is_a_usage_error(nested: Inventory) -> None:
    with pytest.raises(UsageError) as caught:
        nested.device("bed99")
    assert caught.value.reason == "unknown-device"


def test_the_example_inventory_covers_every_model_three_sites_and_all_delivery_paths() -> None:
    inventory = load_inventory(EXAMPLE)
    assert {d.model for d in inventory.devices} == set(MODELS)
    assert len({d.site for d in inventory.devices}) >= 3
    assert {d.delivery for d in inventory.devices} == set(DeliveryPath)
    assert all(
        d.address.startswith("127.77.") for d in inventory.devices if d.delivery is not DeliveryPath.MANUAL
    )
    assert inventory.known_hosts == str(EXAMPLE.parent / "known_hosts")
    assert inventory.path == str(EXAMPLE)


def test_an_unreadable_file_is_an_inventory_problem_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path / "missing.yml")
    [problem] = caught.value.problems
    assert (problem.line, problem.code) == (0, "unreadable")


def test_a_file_that_is_not_utf8_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_bytes(b"all:\n  hosts:\n    bed\xff01:\n")
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert [(p.line, p.code) for p in caught.value.problems] == [(3, "not-utf8")]
