"""Blocking rules for the indicator range: every format denies both directions, names are the site's,
and a name that could smuggle a command into a router's configuration is refused."""

from __future__ import annotations

import ipaddress

import pytest

from orchestrator.domain.blocking_rules import FORMATS, BadRuleName, BlockSpec, render


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_names_the_indicator_range(fmt: str) -> None:
    text = render(BlockSpec.build(), fmt)
    assert "202.114.4.0" in text


def test_ios_acl_denies_both_directions_with_the_wildcard_mask() -> None:
    text = render(BlockSpec.build(name="BME-CONTEC", interface="Vlan120"), "ios")
    assert " deny ip any 202.114.4.0 0.0.0.255 log" in text
    assert " deny ip 202.114.4.0 0.0.0.255 any log" in text
    assert "interface Vlan120\n ip access-group BME-CONTEC in" in text


def test_asa_rules_use_the_sites_object_group() -> None:
    text = render(BlockSpec.build(object_name="OBJ_CONTEC", monitors=["10.1.2.3"]), "asa")
    assert " network-object 202.114.4.0 255.255.255.0" in text
    assert "deny ip object-group CMSPATCH-CONTEC-MONITORS object-group OBJ_CONTEC log" in text


@pytest.mark.parametrize("bad", ["ACL\nip route 0.0.0.0 0.0.0.0 10.0.0.1", "a b", 'x"y', "1ACL"])
def test_a_name_that_could_inject_configuration_is_refused(bad: str) -> None:
    with pytest.raises(BadRuleName):
        BlockSpec.build(name=bad)


def test_an_extra_network_is_added_and_a_huge_one_refused() -> None:
    spec = BlockSpec.build(extra_networks=["203.0.113.0/24"])
    assert ipaddress.IPv4Network("203.0.113.0/24") in spec.networks
    assert render(spec, "cidr") == "202.114.4.0/24\n203.0.113.0/24\n"
    with pytest.raises(Exception, match="wider than a /8"):
        BlockSpec.build(extra_networks=["0.0.0.0/0"])
