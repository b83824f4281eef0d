"""Wave planning follows Ansible's `serial`: canary first, every wave non-empty, the last takes the rest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain.devices import CredentialRef, DeliveryPath, Device
from orchestrator.domain.waves import batch_sizes, parse_waves, plan_waves
from orchestrator.errors import UsageError


def _device(name: str, site: str = "North", ward: str = "ICU") -> Device:
    return Device(name=name, model="CMS8000", serial=name, site=site, ward=ward, bed="1", address="127.0.0.1",
                  port=22, user="service", credential=CredentialRef(key_file="k"), host_key="SHA256:x",
                  delivery=DeliveryPath.SSH)


def test_the_default_pattern_starts_with_a_single_canary() -> None:
    assert batch_sizes(50, ("1", "5", "20%", "100%")) == [1, 5, 10, 34]


def test_the_last_size_repeats_until_every_monitor_is_placed() -> None:
    assert batch_sizes(12, ("1", "5")) == [1, 5, 5, 1]


def test_a_percentage_is_of_the_whole_fleet_and_at_least_one() -> None:
    assert batch_sizes(3, ("10%",)) == [1, 1, 1]


def test_a_fleet_smaller_than_the_canary_pattern_still_gets_every_monitor() -> None:
    assert batch_sizes(2, ("1", "5", "20%", "100%")) == [1, 1]


def test_an_empty_fleet_has_no_waves() -> None:
    assert plan_waves([], ("1", "100%")) == ()


@pytest.mark.parametrize("spec", ["", "0", "1,,2", "abc", "150%", "-1", "5x"])
def test_a_malformed_wave_list_is_refused(spec: str) -> None:
    with pytest.raises(UsageError):
        parse_waves(spec)


def test_waves_parse_from_the_command_line_form() -> None:
    assert parse_waves("1, 5,20%,100%") == ("1", "5", "20%", "100%")


def test_grouping_by_site_gives_each_site_its_own_canary() -> None:
    devices = [_device(f"n{i}", "North") for i in range(4)] + [_device(f"s{i}", "South") for i in range(3)]
    waves = plan_waves(devices, ("1", "100%"), group_by="site")
    assert waves[0] == ("n0", "s0")
    assert waves[1] == ("n1", "n2", "n3", "s1", "s2")


def test_grouping_by_ward_separates_wards_of_one_site() -> None:
    devices = [_device("a", ward="ICU"), _device("b", ward="ICU"), _device("c", ward="ER")]
    assert plan_waves(devices, ("1", "100%"), group_by="ward")[0] == ("a", "c")


def test_an_unknown_grouping_is_refused() -> None:
    with pytest.raises(UsageError):
        plan_waves([_device("a")], ("1",), group_by="bed")


sizes = st.lists(st.one_of(st.integers(1, 30).map(str), st.integers(1, 100).map(lambda n: f"{n}%")),
                 min_size=1, max_size=6)


@given(n=st.integers(0, 300), spec=sizes)
def test_batches_cover_the_fleet_exactly_and_are_never_empty(n: int, spec: list[str]) -> None:
    result = batch_sizes(n, spec)
    assert sum(result) == n
    assert all(size >= 1 for size in result)


@given(n=st.integers(1, 120), spec=sizes, group_by=st.sampled_from([None, "site", "ward"]),
       sites=st.integers(1, 4))
def test_every_monitor_is_in_exactly_one_wave_in_inventory_order(
        n: int, spec: list[str], group_by: str | None, sites: int) -> None:
    devices = [_device(f"d{i:03}", f"site{i % sites}", f"ward{i % 2}") for i in range(n)]
    waves = plan_waves(devices, spec, group_by)
    flat = [name for wave in waves for name in wave]
    assert sorted(flat) == sorted(d.name for d in devices)
    assert all(wave for wave in waves)
    if group_by is None:
        assert flat == [d.name for d in devices]


@given(n=st.integers(1, 200))
def test_the_canary_wave_holds_one_monitor_per_group(n: int) -> None:
    devices = [_device(f"d{i}", f"site{i % 3}") for i in range(n)]
    waves = plan_waves(devices, ("1", "5", "20%", "100%"), "site")
    assert len(waves[0]) == min(3, n)
