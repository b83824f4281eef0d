"""`cmspatch inventory import`: a register export becomes an inventory `inventory check` accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from tests.register_fixture import register_csv


def _register(tmp_path: Path, **kw: int) -> Path:
    text, _ = register_csv(**kw)
    path = tmp_path / "assets.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_register_export_imports_into_an_inventory_that_check_accepts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path, out = _register(tmp_path, rows=300, monitors=60, duplicate_serials=2), tmp_path / "inv.yml"
    assert main(["inventory", "import", "--csv", str(csv_path), "--out", str(out), "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["units"] == 56 and summary["ignored_total"] == 240
    assert [p["code"] for p in summary["problems"]] == ["duplicate-serial", "duplicate-serial"]
    assert all(p["file"] == str(csv_path) and p["line"] > 1 for p in summary["problems"])
    assert main(["inventory", "check", "-i", str(out), "--json"]) == 0
    checked = json.loads(capsys.readouterr().out)
    assert checked["devices"] == 56
    assert checked["delivery"] == {"manual": summary["hands_on"], "ssh": 56 - summary["hands_on"]}


def test_import_never_overwrites_an_existing_inventory(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path, out = _register(tmp_path, rows=20, monitors=5, duplicate_serials=0), tmp_path / "inv.yml"
    out.write_text("precious: true\n", encoding="utf-8")
    assert main(["inventory", "import", "--csv", str(csv_path), "--out", str(out)]) == 2
    assert "never overwrites" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "precious: true\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".inv.yml")] == []  # no temp file left


def test_register_that_is_not_utf8_is_refused_with_its_line(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "assets.csv"
    path.write_bytes("Model,Serial Number\nCMS8000,S1\nCMS8000,Bj\xf6rk\n".encode("latin-1"))
    assert main(["inventory", "import", "--csv", str(path), "--out", str(tmp_path / "inv.yml")]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3" in err and "--encoding" in err
    assert not (tmp_path / "inv.yml").exists()


def test_utf16_register_is_refused_not_guessed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "assets.csv"
    path.write_bytes("Model,Serial Number\r\nCMS8000,S1\r\n".encode("utf-16"))
    assert main(["inventory", "import", "--csv", str(path), "--out", str(tmp_path / "inv.yml")]) == 2
    assert not (tmp_path / "inv.yml").exists()


def test_register_with_an_indicator_address_leaves_that_row_out(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "assets.csv"
    path.write_text("Model,Serial Number,Site,Ward,Bed,IP Address\n"
                    "CMS8000,S1,North,ICU,01,202.114.4.119\nCMS8000,S2,North,ICU,02,127.66.0.2\n",
                    encoding="utf-8")
    out = tmp_path / "inv.yml"
    assert main(["inventory", "import", "--csv", str(path), "--out", str(out)]) == 1
    assert f"{path}:2:" in capsys.readouterr().err
    assert "202.114.4" not in out.read_text(encoding="utf-8").split("\nall:", 1)[1]


def test_column_map_file_names_the_registers_own_headings(tmp_path: Path) -> None:
    path = tmp_path / "assets.csv"
    path.write_text("Equipment ID;Make;Type;Serial No;Facility;Cost Centre;Room/Bed;IPv4 Address\n"
                    "E1;Contec;CMS 8000;S1;North;ICU;12;127.66.0.1\n", encoding="utf-8")
    cmap = tmp_path / "map.yml"
    cmap.write_text("columns:\n  serial: Serial No\n  site: Facility\n  ward: Cost Centre\n  bed: Room/Bed\n"
                    "  address: IPv4 Address\n  asset_tag: Equipment ID\n"
                    "defaults:\n  ansible_user: biomed\n", encoding="utf-8")
    out = tmp_path / "inv.yml"
    assert main(["inventory", "import", "--csv", str(path), "--map", str(cmap), "--out", str(out)]) == 0
    assert main(["inventory", "list", "-i", str(out), "--json"]) == 0


def test_column_map_with_a_repeated_key_is_refused_with_its_line(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cmap = tmp_path / "map.yml"
    cmap.write_text("columns:\n  serial: Serial No\ncolumns:\n  serial: Asset\n", encoding="utf-8")
    csv_path = _register(tmp_path, rows=5, monitors=2, duplicate_serials=0)
    assert main(["inventory", "import", "--csv", str(csv_path), "--map", str(cmap),
                 "--out", str(tmp_path / "inv.yml")]) == 2
    assert f"{cmap}:3" in capsys.readouterr().err


def test_the_shipped_example_map_loads() -> None:
    from orchestrator.cli.asset_import import load_column_map

    cmap = load_column_map(Path(__file__).parents[2] / "asset-map.example.yml")
    assert cmap.columns["serial"] == "Serial No"


def test_merge_writes_a_new_file_with_only_the_missing_units_and_leaves_the_old_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    head = "Model,Serial Number,Site,Ward,Bed,IP Address\n"
    one = tmp_path / "one.csv"
    one.write_text(head + "CMS8000,S1,North,ICU,01,127.66.0.1\n", encoding="utf-8")
    first = tmp_path / "inv.yml"
    assert main(["inventory", "import", "--csv", str(one), "--out", str(first)]) == 0
    before = first.read_bytes()
    two = tmp_path / "two.csv"
    two.write_text(head + "CMS8000,S1,North,ICU,01,127.66.0.1\nCMS8000,S2,North,ICU,02,127.66.0.2\n",
                   encoding="utf-8")
    merged = tmp_path / "merged.yml"
    capsys.readouterr()
    assert main(["inventory", "import", "--csv", str(two), "--merge", str(first), "--out", str(merged),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [a["serial"] for a in summary["added"]] == ["S2"] and summary["already_in_inventory"] == ["S1"]
    assert first.read_bytes() == before
    assert main(["inventory", "check", "-i", str(merged), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["devices"] == 2
