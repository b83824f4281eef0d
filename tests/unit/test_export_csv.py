"""CSV for the maintenance system: one row per monitor, mappable columns, no formula injection."""

from __future__ import annotations

import csv
import io

import pytest

from orchestrator.errors import ExportError
from orchestrator.exports.columns import parse_columns
from orchestrator.exports.csv import guard, render_csv
from orchestrator.exports.model import build_model
from tests.unit.test_export_journal import CAMPAIGN, DEVICES, PACKAGE_SHA, build_campaign


def _rows(data: bytes, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8")), delimiter=delimiter))


def test_one_row_per_monitor_keyed_on_asset_tag_and_serial() -> None:
    model = build_model(build_campaign())
    rows = _rows(render_csv(model))
    assert sorted((r["asset_tag"], r["serial"]) for r in rows) == sorted(
        (d["asset_tag"], d["serial"]) for d in DEVICES.values()
    )
    assert {r["campaign"] for r in rows} == {CAMPAIGN}
    assert {r["chain_head"] for r in rows} == {model.chain_head}
    assert {r["package_sha256"] for r in rows} == {PACKAGE_SHA}


def test_each_cve_has_its_own_verdict_column() -> None:
    rows = {r["serial"]: r for r in _rows(render_csv(build_model(build_campaign())))}
    mn120 = rows["MN120-2204-00007"]
    assert (
        mn120["CVE-2024-12248"],
        mn120["CVE-2025-0626"],
        mn120["CVE-2025-0683"],
        mn120["CVE-2025-1204"],
    ) == ("fixed", "vulnerable", "fixed", "vulnerable")
    assert rows["CMS8K-2301-00018"]["CVE-2025-0626"] == "not verified"
    assert rows["CMS8K-2301-00017"]["verified_at"].startswith("2026-11-24T")
    assert rows["CMS8K-2301-00017"]["operator"] == "a.rossi"
    assert rows["CMS7K-2011-00042"]["approver"] == "m.bianchi"
    assert rows["CMS8K-2301-00017"]["firmware_after"] != rows["CMS8K-2301-00017"]["firmware_before"]


def test_the_column_map_renames_picks_and_orders_columns() -> None:
    mapping = parse_columns(
        'delimiter: ";"\ncolumns:\n  serial: "Serial Number"\n  asset_tag: "Asset No."\n'
        '  CVE-2025-0626: "Backdoor"\n'
    )
    data = render_csv(build_model(build_campaign()), mapping)
    header = data.decode().splitlines()[0]
    assert header == "Serial Number;Asset No.;Backdoor"
    assert {r["Backdoor"] for r in _rows(data, ";")} == {"fixed", "vulnerable", "not verified"}


def test_the_example_column_map_is_valid() -> None:
    from importlib import resources

    text = resources.files("orchestrator.exports").joinpath("columns.example.yml").read_text()
    mapping = parse_columns(text, "columns.example.yml")
    assert mapping.delimiter == ";" and ("asset_tag", "Asset No.") in mapping.columns


def test_an_unknown_column_is_refused_with_its_line() -> None:
    with pytest.raises(ExportError) as exc:
        parse_columns("columns:\n  serial: S\n  asset_tga: A\n", "map.yml")
    assert exc.value.reason == "columns-invalid" and "map.yml:3" in exc.value.message


def test_a_header_used_twice_is_refused() -> None:
    with pytest.raises(ExportError, match="used twice"):
        parse_columns("columns:\n  serial: X\n  asset_tag: X\n")


def test_a_column_file_that_is_not_yaml_is_refused_with_its_line() -> None:
    with pytest.raises(ExportError, match=r"m.yml:2"):
        parse_columns("columns:\n\tserial: X\n", "m.yml")


@pytest.mark.parametrize("cell", ['=HYPERLINK("x")', "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_a_cell_a_spreadsheet_would_evaluate_is_neutralised(cell: str) -> None:
    assert guard(cell) == "'" + cell


def test_formula_injection_from_the_inventory_never_reaches_the_csv() -> None:
    records = build_campaign(
        device_overrides={"north-icu-bed01": {"asset_tag": "=cmd|'/c calc'!A0", "ward": "@SUM(1+1)"}}
    )
    rows = _rows(render_csv(build_model(records)))
    cells = [value for row in rows for value in row.values()]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]
    assert "'=cmd|'/c calc'!A0" in cells and "'@SUM(1+1)" in cells


def test_the_column_map_can_ask_for_a_bom_for_excel() -> None:
    mapping = parse_columns("encoding: utf-8-sig\ncolumns:\n  site: Sede\n")
    assert render_csv(build_model(build_campaign()), mapping).startswith(b"\xef\xbb\xbfSede\r\n")
    with pytest.raises(ExportError, match="encoding"):
        parse_columns("encoding: latin-1\ncolumns:\n  site: Sede\n")
