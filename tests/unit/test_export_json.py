"""The JSON export carries everything: evidence per check, per-monitor timeline, campaign, chain head."""

from __future__ import annotations

import json

from orchestrator.exports.json import FORMAT, render_json
from orchestrator.exports.model import build_model
from tests.unit.test_export_journal import CAMPAIGN, PACKAGE_SHA, build_campaign


def _doc() -> dict:  # type: ignore[type-arg]
    return json.loads(render_json(build_model(build_campaign())))


def test_the_json_names_its_format_campaign_and_chain_head() -> None:
    records = build_campaign()
    doc = json.loads(render_json(build_model(records)))
    assert doc["format"] == FORMAT and doc["format_version"] == 2
    assert doc["chain"]["head"] == records[-1].hash and doc["chain"]["records"] == len(records)
    assert doc["campaign"]["id"] == CAMPAIGN
    assert doc["campaign"]["package"]["sha256"] == PACKAGE_SHA
    assert len(doc["campaign"]["package"]["signers"]) == 2 and doc["campaign"]["operator"] == "a.rossi"


def test_every_check_result_evidence_is_exported() -> None:
    device = next(d for d in _doc()["devices"] if d["device"] == "south-icu-bed02")
    checks = {e["check"]: e for e in device["evidence"]}
    assert set(checks) == {"monitor-mount-string", "sinkhole-window", "firmware-version"}
    mount = checks["monitor-mount-string"]
    assert mount["outcome"] == "fail" and mount["sha256"] == "5e" * 32 and mount["cves"] == ["CVE-2025-0626"]
    assert mount["details"]["matches"] == 1


def test_each_monitor_has_its_event_timeline_with_journal_positions() -> None:
    records = build_campaign()
    device = next(
        d
        for d in json.loads(render_json(build_model(records)))["devices"]
        if d["device"] == "north-ward-bed03"
    )
    by_seq = {r.seq: r for r in records}
    assert [t["kind"] for t in device["timeline"]] == ["state-changed", "attempt", "state-changed"]
    assert all(by_seq[t["seq"]].hash == t["hash"] for t in device["timeline"])
    assert "installer-failed" in device["timeline"][1]["summary"]


def test_waves_and_summaries_are_exported() -> None:
    doc = _doc()
    assert [w["approver"] for w in doc["waves"]] == ["", "m.bianchi", "l.verdi"]
    assert doc["summary"]["total"] == {
        "patched": 2,
        "deferred": 1,
        "failed": 2,
        "inconclusive": 1,
        "not-done": 0,
    }
    assert doc["summary"]["by_site"]["South Hospital"]["inconclusive"] == 1
    assert doc["summary"]["by_model"]["CMS8000"]["patched"] == 2


def test_the_json_is_byte_identical_for_the_same_journal() -> None:
    assert render_json(build_model(build_campaign())) == render_json(build_model(build_campaign()))
