"""CycloneDX 1.6 VEX built with cyclonedx-python-lib and validated with its bundled official schema."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.exports.cyclonedx import render_cyclonedx, validate_cyclonedx
from orchestrator.exports.model import build_model
from tests.unit.test_export_journal import VERDICTS, build_campaign


def _bom() -> dict[str, Any]:
    return json.loads(render_cyclonedx(build_model(build_campaign(), publisher="Ospedale Nord")))


def test_the_vex_bom_validates_against_the_official_cyclonedx_schema() -> None:
    data = render_cyclonedx(build_model(build_campaign())).decode()
    assert validate_cyclonedx(data) == []
    assert json.loads(data)["specVersion"] == "1.6"


def test_the_validator_refuses_a_broken_bom() -> None:
    bom = _bom()
    bom["vulnerabilities"][0]["analysis"]["state"] = "probably-fine"
    assert validate_cyclonedx(json.dumps(bom))


def test_the_hospital_is_the_manufacturer_and_monitors_are_devices() -> None:
    bom = _bom()
    assert bom["metadata"]["manufacturer"]["name"] == "Ospedale Nord"
    devices = [c for c in bom["components"] if c["type"] == "device"]
    assert len(devices) == 6
    props = {p["name"]: p["value"] for c in devices for p in c["properties"] if c["name"] == "MN-120"}
    assert props["cmspatch:serial"] == "MN120-2204-00007" and props["cmspatch:asset_tag"] == "BME-009002"


def _states(bom: dict[str, Any]) -> dict[tuple[str, str], str]:
    device_of = {
        c["bom-ref"]: next(p["value"] for p in c["properties"] if p["name"] == "cmspatch:device")
        for c in bom["components"]
    }
    return {
        (v["id"], device_of[a["ref"]]): v["analysis"]["state"]
        for v in bom["vulnerabilities"]
        for a in v["affects"]
    }


def test_resolved_only_where_the_post_patch_verdict_is_fixed() -> None:
    states = _states(_bom())
    for (cve, device), state in states.items():
        fixed = VERDICTS.get(device, {}).get(cve) == "fixed"
        assert (state == "resolved") == fixed, (cve, device, state)


def test_unfixed_monitors_are_exploitable_with_a_response_inconclusive_ones_too() -> None:
    bom = _bom()
    states = _states(bom)
    # inconclusive: exploitable, as CSAF says known_affected; the two documents classify alike
    assert states[("CVE-2025-0683", "south-icu-bed01")] == "exploitable"
    detail = next(v["analysis"]["detail"] for v in bom["vulnerabilities"] if v["id"] == "CVE-2025-0683"
                  and any(a["ref"].endswith("south-icu-bed01") for a in v["affects"]))
    assert "inconclusive" in detail.lower()
    assert states[("CVE-2025-0626", "south-icu-bed02")] == "exploitable"  # still vulnerable
    deferred = next(
        v
        for v in bom["vulnerabilities"]
        if v["id"] == "CVE-2025-0626"
        and v["analysis"]["state"] == "exploitable"
        and "Deferred" in v["analysis"]["detail"]
    )
    assert set(deferred["analysis"]["response"]) == {"update", "workaround_available"}


def test_every_monitor_has_a_statement_for_every_cve() -> None:
    states = _states(_bom())
    assert len(states) == 6 * 4


def test_the_bom_carries_campaign_and_chain_head_and_is_deterministic() -> None:
    records = build_campaign()
    first = render_cyclonedx(build_model(records))
    assert first == render_cyclonedx(build_model(records))
    props = {p["name"]: p["value"] for p in json.loads(first)["metadata"]["properties"]}
    assert props["cmspatch:chain_head"] == records[-1].hash
    assert props["cmspatch:campaign"] == records[0].campaign


def test_csaf_and_cyclonedx_classify_every_monitor_and_cve_alike() -> None:
    """One word per outcome (issue 13): fixed is resolved, everything CSAF calls known_affected
    (inconclusive included) is exploitable; the two documents never disagree about a monitor."""
    from orchestrator.exports.csaf import csaf_document, product_id

    model = build_model(build_campaign())
    name_of = {product_id(d): d.name for d in model.devices}
    csaf = {(v["cve"], name_of[p]): word for v in csaf_document(model)["vulnerabilities"]
            for word, ids in v["product_status"].items() for p in ids}
    cdx = _states(_bom())
    assert set(csaf) == set(cdx)
    same = {"fixed": "resolved", "known_affected": "exploitable"}
    assert {key: same[word] for key, word in csaf.items()} == cdx
