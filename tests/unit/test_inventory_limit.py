"""``Inventory.select`` follows Ansible's ``--limit`` patterns and refuses a term that matches nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.adapters.inventory_file import load_inventory
from orchestrator.domain.inventory import Inventory
from orchestrator.domain.inventory_limit import split_pattern
from orchestrator.errors import UsageError

EXAMPLE = Path(__file__).resolve().parents[2] / "inventory.example.yml"


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load_inventory(EXAMPLE)


def names(inv: Inventory, pattern: str | None) -> list[str]:
    return [d.name for d in inv.select(pattern)]


def test_no_pattern_selects_every_device_in_file_order(inv: Inventory) -> None:
    assert names(inv, None) == names(inv, "") == names(inv, "all") == [d.name for d in inv.devices]


def test_a_group_name_selects_its_hosts_including_child_groups(inv: Inventory) -> None:
    assert names(inv, "site_north") == [
        "north-icu-bed01",
        "north-icu-bed02",
        "north-icu-bed03",
        "north-cardio-bed11",
        "north-cardio-bed12",
    ]


def test_host_names_and_groups_combine_with_commas_or_colons(inv: Inventory) -> None:
    expected = ["north-cardio-bed11", "north-cardio-bed12", "stmary-er-bay02"]
    assert names(inv, "north_cardio,stmary-er-bay02") == expected
    assert names(inv, "north_cardio:stmary-er-bay02") == expected


def test_wildcards_match_host_and_group_names(inv: Inventory) -> None:
    assert names(inv, "*-bed0?") == [
        "north-icu-bed01",
        "north-icu-bed02",
        "north-icu-bed03",
        "stmary-neuro-bed05",
        "riverside-mat-bed07",
        "riverside-mat-bed08",
    ]
    assert names(inv, "riverside_*") == names(inv, "site_riverside")


def test_an_exclusion_removes_hosts(inv: Inventory) -> None:
    assert names(inv, "site_north:!north_icu") == ["north-cardio-bed11", "north-cardio-bed12"]


def test_only_exclusions_start_from_all(inv: Inventory) -> None:
    assert len(inv.select("!site_north")) == len(inv.devices) - 5


def test_an_intersection_keeps_hosts_in_both(inv: Inventory) -> None:
    assert names(inv, "site_stmary:&stmary_er") == ["stmary-er-bay01", "stmary-er-bay02"]


def test_operators_apply_in_ansible_order_whatever_their_position(inv: Inventory) -> None:
    assert names(inv, "!north_icu,&site_north,all") == names(inv, "all,&site_north,!north_icu")


def test_a_tilde_term_is_a_regular_expression_matched_from_the_start(inv: Inventory) -> None:
    assert names(inv, "~riverside-(mat|home)-.*0[18]$") == ["riverside-mat-bed08", "riverside-home-unit01"]
    with pytest.raises(UsageError):
        inv.select("~bed01")  # re.match, as Ansible does: anchored at the start


def test_a_term_that_matches_nothing_is_refused(inv: Inventory) -> None:
    with pytest.raises(UsageError) as caught:
        inv.select("site_north:!north_icuu")
    assert caught.value.reason == "limit-matches-nothing"
    assert "north_icuu" in caught.value.message


def test_an_invalid_regular_expression_is_a_usage_error(inv: Inventory) -> None:
    with pytest.raises(UsageError) as caught:
        inv.select("~bed(")
    assert caught.value.reason == "bad-limit-pattern"


def test_an_ipv6_address_is_one_term_not_split_on_colons() -> None:
    assert split_pattern("fe80::1") == ["fe80::1"]
    assert split_pattern("a:b, c") == ["a:b", "c"]
    assert split_pattern("a:!b:&c") == ["a", "!b", "&c"]
