"""Whatever text it is given, ``parse_inventory`` returns an Inventory or raises InventoryError: no crash."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.domain.inventory import Inventory, parse_inventory
from orchestrator.errors import InventoryError

EXAMPLE_LINES = (Path(__file__).resolve().parents[2] / "inventory.example.yml").read_text().splitlines()
KEYS = [
    "all",
    "vars",
    "hosts",
    "children",
    "model",
    "serial",
    "site",
    "ward",
    "bed",
    "delivery",
    "ansible_host",
    "ansible_port",
    "ansible_user",
    "host_key",
    "ansible_ssh_private_key_file",
    "cmspatch_ssh_agent",
    "cmspatch_known_hosts",
    "ansible_password",
    "ansible_group_priority",
    "bed01",
    "icu",
    "<<",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.sampled_from(["CMS8000", "ssh", "manual", "127.77.0.1", "::1", "SHA256:x", "", "~"]),
    st.text(max_size=12),
)
STRUCTURES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=5),
    ),
    max_leaves=30,
)
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parses_or_reports(text: str) -> None:
    try:
        result = parse_inventory(text, "inv.yml", base_dir="/srv")
    except InventoryError as exc:
        assert exc.problems
        assert all(p.file == "inv.yml" and p.line >= 0 and p.message and p.code for p in exc.problems)
    else:
        assert isinstance(result, Inventory) and result.devices


@SETTINGS
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_the_parser(text: str) -> None:
    parses_or_reports(text)


@SETTINGS
@given(st.dictionaries(st.sampled_from(KEYS), STRUCTURES, min_size=1, max_size=3))
def test_arbitrary_yaml_structures_never_crash_the_parser(document: dict[str, object]) -> None:
    parses_or_reports(yaml.safe_dump(document, allow_unicode=True))


@SETTINGS
@given(st.data())
def test_damaged_copies_of_the_example_never_crash_the_parser(data: st.DataObject) -> None:
    lines = list(EXAMPLE_LINES)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "duplicate", "garble", "indent"]))
        if action == "drop":
            del lines[at]
        elif action == "duplicate":
            lines.insert(at, lines[at])
        elif action == "garble":
            lines[at] = lines[at][: data.draw(st.integers(0, 40))] + data.draw(st.text(max_size=8))
        else:
            lines[at] = "  " + lines[at]
    parses_or_reports("\n".join(lines) + "\n")


def test_aliases_that_expand_exponentially_are_refused_not_followed() -> None:
    text = ["all:", "  children:", "    g0: &g0", "      hosts: {h: }"]
    for level in range(1, 25):
        refs = ", ".join(f"c{level}_{i}: *g{level - 1}" for i in range(4))
        text += [f"    g{level}: &g{level}", f"      children: {{ {refs} }}"]
    with pytest.raises(InventoryError) as caught:
        parse_inventory("\n".join(text) + "\n", "inv.yml", base_dir="/")
    assert [p.code for p in caught.value.problems] == ["too-large"]


def test_a_recursive_alias_is_refused_not_followed() -> None:
    for text in ("all: &a\n  children:\n    loop: *a\n", "all:\n  vars: &v\n    <<: *v\n"):
        with pytest.raises(InventoryError) as caught:
            parse_inventory(text, "inv.yml", base_dir="/")
        assert "bad-structure" in {p.code for p in caught.value.problems}


FINGERPRINT = "SHA256:SmPuBF7qMMRDB6S+4mSPJa6pTyWClJof6Wk3TuQ14CE"
WORDS = st.text(
    st.characters(whitelist_categories=("L", "N"), whitelist_characters=" -'/()."), min_size=1, max_size=12
).filter(lambda s: s.strip() == s)


@st.composite
def fleets(draw: st.DrawFn) -> list[dict[str, str]]:
    count = draw(st.integers(1, 12))
    return [
        {
            "name": f"mon-{i}",
            "site": draw(st.sampled_from(["North", "St Mary's", "Riverside"])),
            "ward": draw(WORDS),
            "model": draw(st.sampled_from(["CMS6000", "CMS6500", "CMS7000", "CMS8000", "CMS9000", "MN-120"])),
            "serial": f"SN-{i}-" + draw(WORDS),
            "bed": draw(WORDS),
            "delivery": draw(st.sampled_from(["ssh", "ansible", "manual"])),
        }
        for i in range(count)
    ]


@settings(SETTINGS, max_examples=40)
@given(fleets(), st.booleans())
def test_a_generated_fleet_survives_dump_and_parse_with_group_vars_inherited(
    fleet: list[dict[str, str]], ward_in_group: bool
) -> None:
    children: dict[str, dict[str, object]] = {}
    for i, mon in enumerate(fleet):
        site = children.setdefault(f"site_{mon['site'][:2]}", {"vars": {"site": mon["site"]}, "children": {}})
        ward_vars = {"ward": mon["ward"]} if ward_in_group else {}
        ward = site["children"].setdefault(f"ward_{i}", {"vars": ward_vars, "hosts": {}})  # type: ignore[union-attr]
        host: dict[str, object] = {k: mon[k] for k in ("model", "serial", "bed", "delivery")}
        if not ward_in_group:
            host["ward"] = mon["ward"]
        if mon["delivery"] != "manual":
            host.update(ansible_host=f"127.77.0.{i + 1}", host_key=FINGERPRINT)
        ward["hosts"][mon["name"]] = host
    text = yaml.safe_dump(
        {"all": {"vars": {"ansible_user": "service", "cmspatch_ssh_agent": True}, "children": children}},
        allow_unicode=True,
    )
    inventory = parse_inventory(text, "inv.yml", base_dir="/srv")
    got = [
        {k: str(getattr(d, k)) for k in ("name", "site", "ward", "model", "serial", "bed", "delivery")}
        for d in inventory.devices
    ]
    assert sorted(got, key=lambda d: int(d["name"][4:])) == fleet  # file order groups monitors by site
