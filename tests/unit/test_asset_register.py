"""Asset-register import: the six models however a register spells them, every problem at once."""

from __future__ import annotations

import pytest

from orchestrator.domain.asset_register import ColumnMap, normalise_model, read_register
from orchestrator.domain.inventory import parse_inventory
from orchestrator.domain.inventory_writer import write_inventory
from orchestrator.errors import UsageError
from tests.register_fixture import register_csv

HEAD = "Asset No.,Manufacturer,Model,Serial Number,Site,Department,Location,IP Address,MAC Address\n"


@pytest.mark.parametrize(("spelled", "model"), [
    ("CMS8000", "CMS8000"), ("CMS-8000", "CMS8000"), ("CMS 8000", "CMS8000"), ("cms8000", "CMS8000"),
    ("Contec CMS 6500 patient monitor", "CMS6500"), ("CMS.9000", "CMS9000"), ("Epsimed NM-120", "MN-120"),
    ("MN-120", "MN-120"), ("mn120", "MN-120"), ("NM 120", "MN-120"),
])
def test_register_spellings_of_the_six_models_are_recognised(spelled: str, model: str) -> None:
    assert normalise_model("Contec", spelled) == model


@pytest.mark.parametrize("other", ["CMS50D", "CMS80000", "IntelliVue MX450", "MN-1200", ""])
def test_other_devices_are_not_taken_for_monitors(other: str) -> None:
    assert normalise_model("Contec", other) is None


def test_three_hundred_row_register_imports_every_monitor_and_lists_the_duplicates() -> None:
    text, facts = register_csv(300, monitors=60, duplicate_serials=2)
    result = read_register(text, "assets.csv")
    assert result.rows == 300
    assert sum(result.ignored.values()) == facts["others"]
    # Both rows of each duplicated serial are left out: which is right is for a person to decide.
    assert len(result.units) == facts["monitors"] - 2 * facts["duplicates"]
    dup = [p for p in result.problems if p.code == "duplicate-serial"]
    assert len(dup) == 2 and all(p.file == "assets.csv" and p.line > 1 for p in dup)
    assert {u.serial for u in result.units}.isdisjoint({p.message.split()[1] for p in dup})


def test_unit_without_address_is_written_for_the_hands_on_path() -> None:
    text = (HEAD + "A1,Contec,CMS8000,S1,North,ICU,Bed 01,,\n"
            "A2,Contec,CMS8000,S2,North,ICU,Bed 02,127.66.0.2,\n")
    result = read_register(text, "r.csv")
    written = write_inventory(result.units)
    inv = parse_inventory(written.text, "/tmp/inv.yml", base_dir="/tmp")
    delivery = {d.serial: str(d.delivery) for d in inv.devices}
    assert delivery == {"S1": "manual", "S2": "ssh"}


def test_every_row_problem_is_reported_at_once_with_its_line() -> None:
    text = HEAD + "\n".join([
        "A1,Contec,CMS 8500,S1,North,ICU,01,,",            # 2: a Contec monitor model that is not one of six
        "A2,Contec,CMS8000,S2,North,ICU,02,202.114.4.119,",  # 3: the backdoor's server as a monitor's address
        "A3,Contec,CMS8000,,North,ICU,03,,",               # 4: no serial
        "A4,Contec,CMS8000,S4,North,ICU,04,not an address!,",  # 5
        "A5,Contec,CMS8000,S5,North,ICU,05,127.66.0.5,zz:zz",  # 6
        "A6,Contec,CMS8000,S6,North,ICU,06,127.66.0.5,",   # 7: line 6's address (refused rows claim it too)
        "A7,Contec,CMS8000,S7,North,ICU,07,127.66.0.6,",
        "A8,Contec,CMS8000,S8,North,ICU,08,127.66.0.6,",   # 9: duplicate address
    ]) + "\n"
    result = read_register(text, "r.csv")
    found = [(p.line, p.code) for p in result.problems]
    assert found == [(2, "unknown-model"), (3, "indicator-address"), (4, "missing-field"), (5, "bad-address"),
                     (6, "bad-mac"), (7, "duplicate-address"), (9, "duplicate-address")]
    assert sorted(u.serial for u in result.units) == ["S7"]


def test_a_password_column_is_refused_and_its_values_never_read() -> None:
    text = ("Asset No.,Model,Serial Number,Site,Ward,Bed,Service Password\n"
            "A1,CMS8000,S1,North,ICU,01,hunter2\n")
    result = read_register(text, "r.csv")
    secret = [p for p in result.problems if p.code == "secret-column"]
    assert secret and secret[0].line == 1
    assert all("hunter2" not in p.message for p in result.problems)
    assert "hunter2" not in write_inventory(result.units).text


def test_semicolon_export_and_a_column_map_for_own_headings() -> None:
    text = ("Equipment ID;Make;Type;Serial No;Facility;Cost Centre;Room/Bed\n"
            "E1;Contec;CMS-8000;S1;North;ICU;12\n")
    cmap = ColumnMap(columns={"asset_tag": "Equipment ID", "serial": "Serial No", "site": "Facility",
                              "ward": "Cost Centre", "bed": "Room/Bed"})
    result = read_register(text, "r.csv", cmap)
    assert [(u.model, u.serial, u.site, u.ward, u.bed, u.asset_tag) for u in result.units] == [
        ("CMS8000", "S1", "North", "ICU", "12", "E1")]


def test_a_column_map_naming_a_missing_heading_is_a_problem_on_line_one() -> None:
    result = read_register(HEAD, "r.csv", ColumnMap(columns={"serial": "Seriennummer"}))
    assert [(p.line, p.code) for p in result.problems] == [(1, "missing-column"), (1, "missing-column")]


def test_unknown_field_in_a_column_map_is_refused() -> None:
    with pytest.raises(UsageError) as err:
        ColumnMap(columns={"serail": "Serial"})
    assert err.value.reason == "bad-column-map"


def test_merge_adds_only_units_the_inventory_lacks_and_reuses_its_groups() -> None:
    first = read_register(HEAD + "A1,Contec,CMS8000,S1,North,ICU,01,127.66.0.1,\n", "r.csv")
    base_text = write_inventory(first.units).text
    import yaml
    base = yaml.safe_load(base_text)
    again = read_register(HEAD + "A1,Contec,CMS8000,S1,North,ICU,01,127.66.0.1,\n"
                                 "A2,Contec,CMS8000,S2,North,ICU,02,127.66.0.2,\n", "r.csv")
    merged = write_inventory(again.units, base=base, known_serials=["S1"])
    assert [a.serial for a in merged.added] == ["S2"] and merged.already == ("S1",)
    inv = parse_inventory(merged.text, "/tmp/inv.yml", base_dir="/tmp")
    assert sorted(d.serial for d in inv.devices) == ["S1", "S2"]
    assert {d.groups[-1] for d in inv.devices} == {"north_icu"}  # the ward group found by its value
