"""CSAF 2.0 VEX, validated against the official OASIS schema (vendored) and the mandatory tests."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from orchestrator.errors import ExportError
from orchestrator.exports import schemas
from orchestrator.exports.csaf import csaf_document, product_id, render_csaf, validate_csaf
from orchestrator.exports.csaf_checks import check_mandatory
from orchestrator.exports.model import build_model
from tests.unit.test_export_journal import CAMPAIGN, VERDICTS, build_campaign


def _doc() -> dict[str, Any]:
    return json.loads(render_csaf(build_model(build_campaign()), namespace="https://hospital.example"))


def test_the_vendored_schemas_are_the_official_files() -> None:
    for name, digest in schemas.SHA256.items():
        assert hashlib.sha256(schemas.schema_bytes(name)).hexdigest() == digest, name
    assert schemas.load(schemas.CSAF_SCHEMA)["$id"] == schemas.CSAF_SCHEMA_ID


def test_the_vex_document_validates_against_the_official_schema() -> None:
    doc = _doc()
    errors = list(schemas.csaf_validator().iter_errors(doc))
    assert not errors, [e.message for e in errors[:5]]
    assert doc["document"]["category"] == "csaf_vex" and doc["document"]["csaf_version"] == "2.0"


def test_the_vex_document_passes_the_mandatory_tests() -> None:
    assert check_mandatory(_doc()) == []


def test_cvss_references_resolve_offline_from_the_vendored_files(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("schema validation tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    doc = _doc()
    doc["vulnerabilities"][0]["scores"] = [
        {
            "products": [doc["vulnerabilities"][0]["product_status"]["fixed"][0]],
            "cvss_v3": {
                "version": "3.1",
                "baseScore": 99,
                "baseSeverity": "CRITICAL",
                "vectorString": "nonsense",
            },
        }
    ]
    messages = [e.message for e in schemas.csaf_validator().iter_errors(doc)]
    assert messages  # the CVSS 3.1 schema was found locally and applied


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d["document"].pop("publisher"),
        lambda d: d["document"].__setitem__("csaf_version", "9.9"),
        lambda d: d["product_tree"]["branches"][0].__setitem__("category", "brand"),
        lambda d: d["vulnerabilities"][0]["product_status"].__setitem__("fixed", []),
    ],
)
def test_the_schema_check_refuses_a_broken_document(break_it: Any) -> None:
    doc = _doc()
    break_it(doc)
    assert list(schemas.csaf_validator().iter_errors(doc))


def test_the_mandatory_tests_catch_what_the_schema_cannot() -> None:
    doc = _doc()
    broken = copy.deepcopy(doc)
    vuln = broken["vulnerabilities"][1]
    vuln["product_status"]["known_affected"].append("CMSPATCH-NOPE")  # 6.1.1
    vuln["product_status"]["known_affected"].append(vuln["product_status"]["fixed"][0])  # 6.1.6
    broken["vulnerabilities"].append(copy.deepcopy(broken["vulnerabilities"][0]))  # 6.1.23
    broken["vulnerabilities"][0].pop("remediations", None)
    broken["vulnerabilities"][0]["product_status"]["known_affected"] = [
        broken["vulnerabilities"][0]["product_status"]["fixed"].pop()
    ]  # 6.1.27.10
    tests = {p.test for p in check_mandatory(broken)}
    assert {"6.1.1", "6.1.6", "6.1.23", "6.1.27.10"} <= tests


def test_a_monitor_is_fixed_only_where_its_post_patch_verdict_is_fixed() -> None:
    model = build_model(build_campaign())
    doc = csaf_document(model)
    pid = {d.name: product_id(d) for d in model.devices}
    for vuln in doc["vulnerabilities"]:
        fixed = set(vuln["product_status"].get("fixed", []))
        expected = {pid[name] for name, verdicts in VERDICTS.items() if verdicts[vuln["cve"]] == "fixed"}
        assert fixed == expected, vuln["cve"]
        affected = set(vuln["product_status"]["known_affected"])
        assert affected == set(pid.values()) - expected


def test_affected_monitors_carry_the_action_that_applies_to_them() -> None:
    model = build_model(build_campaign())
    pid = {d.name: product_id(d) for d in model.devices}
    vuln = next(v for v in csaf_document(model)["vulnerabilities"] if v["cve"] == "CVE-2025-0626")
    by_product: dict[str, list[tuple[str, str]]] = {}
    for rem in vuln["remediations"]:
        for p in rem["product_ids"]:
            by_product.setdefault(p, []).append((rem["category"], rem["details"]))
    deferred = by_product[pid["north-icu-bed02"]]
    assert any(cat == "mitigation" and "Deferred: patient connected" in text for cat, text in deferred)
    still = by_product[pid["south-icu-bed02"]]
    assert any(cat == "vendor_fix" and "pending" in text for cat, text in still)
    assert any(cat == "mitigation" and "isolated from the network" in text for cat, text in still)


def test_the_product_tree_is_vendor_model_then_unit_with_its_serial() -> None:
    tree = _doc()["product_tree"]["branches"]
    assert tree[0]["category"] == "vendor" and tree[0]["name"] == "Contec"
    models = {b["name"]: b for b in tree[0]["branches"]}
    assert set(models) == {"CMS6000", "CMS7000", "CMS8000", "MN-120"}
    unit = models["MN-120"]["branches"][0]["product"]
    assert unit["product_identification_helper"]["serial_numbers"] == ["MN120-2204-00007"]
    assert "BME-009002" in unit["name"]


def test_the_document_names_the_hospital_campaign_and_chain_head() -> None:
    records = build_campaign()
    doc = json.loads(
        render_csaf(build_model(records, publisher="Ospedale Nord"), namespace="https://h.example")
    )
    assert doc["document"]["publisher"] == {
        "category": "user",
        "name": "Ospedale Nord",
        "namespace": "https://h.example",
    }
    text = json.dumps(doc["document"])
    assert records[-1].hash in text and CAMPAIGN in text
    assert doc["document"]["tracking"]["status"] == "final"


def test_the_publisher_defaults_to_the_campaign_operator() -> None:
    doc = json.loads(render_csaf(build_model(build_campaign())))
    assert doc["document"]["publisher"]["name"] == "a.rossi"
    assert validate_csaf(doc) == []


def test_an_invalid_document_is_refused_not_written(monkeypatch: pytest.MonkeyPatch) -> None:
    import orchestrator.exports.csaf as csaf

    original = csaf.csaf_document

    def broken(model: Any, **kw: Any) -> dict[str, Any]:
        doc = original(model, **kw)
        doc["document"]["csaf_version"] = "9.9"
        return doc

    monkeypatch.setattr(csaf, "csaf_document", broken)
    with pytest.raises(ExportError) as exc:
        render_csaf(build_model(build_campaign()))
    assert exc.value.reason == "csaf-invalid"


def test_a_publisher_namespace_that_is_not_a_uri_is_refused() -> None:
    with pytest.raises(ExportError) as exc:
        render_csaf(build_model(build_campaign()), namespace="our hospital")
    assert exc.value.reason == "namespace-invalid"


def test_the_tlp_label_is_chosen_by_the_caller() -> None:
    doc = json.loads(render_csaf(build_model(build_campaign()), tlp="WHITE"))
    assert doc["document"]["distribution"]["tlp"]["label"] == "WHITE"
