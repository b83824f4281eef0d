"""`cmspatch rollup`: three facilities' signed JSON exports, one tampered after signing, one facility silent
since the date, one serial reported by two facilities; real signatures, real files, the real CLI."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrator.domain.trust.signatures import SigningKey, generate_key
from orchestrator.exports.csaf import validate_csaf
from orchestrator.exports.json import export_document
from orchestrator.exports.model import build_model
from orchestrator.exports.signing import sign_export
from tests.unit.test_export_journal import build_campaign
from tests.unit.test_export_survey import _survey

KEYS = {name: generate_key("ed25519") for name in ("Ospedale Nord", "Ospedale Sud", "Clinica Est")}


def _policy(path: Path) -> Path:
    lines = ["version: 1", 'region: "Regione Esempio"', 'reported_since: "2026-11-24"', "facilities:"]
    for name, key in KEYS.items():
        pem = "\n".join("          " + line for line in key.public.pem.strip().splitlines())
        lines += [f'  - name: "{name}"', "    keys:", f'      - owner: "biomed of {name}"',
                  "        public_key: |", pem]
    path.write_text("\n".join(lines) + "\n")
    return path


def _signed(folder: Path, name: str, doc: dict[str, Any], key: SigningKey, signed_at: str) -> Path:
    data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    out = folder / name
    out.write_bytes(data)
    Path(f"{out}.sig").write_bytes(sign_export(
        data, key, fmt="json", campaign=doc["campaign"]["id"], chain_head=doc["chain"]["head"],
        chain_seq=doc["chain"]["records"], name=name, signed_at=signed_at, signed_by=f"engineer at {name}"))
    return out


def test_three_facilities_roll_up_with_a_tampered_export_a_silent_facility_and_a_serial_twice(
        tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    nord = export_document(build_model(build_campaign()))
    _signed(exports, "nord.json", nord, KEYS["Ospedale Nord"], "2026-11-30T09:00:00Z")
    sud = _signed(exports, "sud.json", export_document(_survey()), KEYS["Ospedale Sud"],
                  "2026-11-30T10:00:00Z")
    sud.write_bytes(sud.read_bytes().replace(b'"vulnerable"', b'"fixed"', 1))  # edited after signing
    est = export_document(_survey())
    est["devices"][0]["serial"] = nord["devices"][0]["serial"]  # the same monitor, claimed by two
    _signed(exports, "est.json", est, KEYS["Clinica Est"], "2026-11-10T08:00:00Z")  # before the date
    out = tmp_path / "region"
    out.mkdir()

    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "rollup", str(exports), "--policy",
                           str(_policy(tmp_path / "region-policy.yaml")), "--out", str(out), "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr  # something for the Region to act on
    summary = json.loads(done.stdout)
    assert [(f["file"].rsplit("/", 1)[-1], f["reason"]) for f in summary["failed"]] == [
        ("sud.json", "export-tampered")]
    assert {f["facility"]: f["last"] for f in summary["not_reported"]} == {
        "Ospedale Sud": "never", "Clinica Est": "2026-11-10T08:00:00Z"}
    assert summary["duplicate_serials"] == [
        {"serial": nord["devices"][0]["serial"], "facilities": ["Clinica Est", "Ospedale Nord"]}]
    assert "Ospedale Sud" not in summary["counts"]  # a failed export is never counted
    assert sum(summary["counts"]["Ospedale Nord"]["CMS8000"].values()) == 3
    assert summary["counts"]["Ospedale Nord"]["CMS8000"]["patched"] == 2
    assert summary["counts"]["Clinica Est"]["CMS8000"] == {"patched": 1, "contained": 0, "deferred": 0,
                                                          "vulnerable": 1, "unknown": 1}

    doc = json.loads((out / "region-status.csaf.json").read_text())
    assert validate_csaf(doc) == []
    fixed = {p for v in doc["vulnerabilities"] for p in v["product_status"].get("fixed", [])}
    assert fixed and all("Ospedale_Nord" in p for p in fixed)  # only a patch campaign says fixed
    html = (out / "region-status.html").read_text()
    assert "export-tampered" in html and "Clinica Est" in html and "engineer at nord.json" in html
    rows = list(csv.DictReader(io.StringIO((out / "region-status.csv").read_text())))
    assert {r["facility"] for r in rows} == {"Ospedale Nord", "Clinica Est", "Ospedale Sud"}
    assert next(r for r in rows if r["facility"] == "Ospedale Sud")["not_reported_since"] == "2026-11-24"


def test_a_region_policy_with_a_key_given_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    policy = _policy(tmp_path / "p.yaml")
    text = policy.read_text()
    policy.write_text(text.replace('region: "Regione Esempio"', 'region: "A"\nregion: "B"'))
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "rollup", str(tmp_path), "--policy",
                           str(policy)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and f"{policy}:3" in done.stderr and "Traceback" not in done.stderr
