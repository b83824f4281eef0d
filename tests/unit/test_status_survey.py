"""Survey/verify runs in the fleet-status projection, their status rendering, and their export refusal."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.cli.survey_status import render_survey_status, survey_status_dict
from orchestrator.domain.events import GENESIS_HASH, EventKind, JournalRecord, chain_hash
from orchestrator.domain.status import campaign_mode, project
from orchestrator.errors import ExportError
from orchestrator.exports.model import build_model

SURVEY = "survey-20261130T101500.000000Z"
OLD_FW, NEW_FW = "CMS7.820.075.08/0.74(0.75)", "CMS7.820.200.05/1.10(1.10)"
CVES = ("CVE-2024-12248", "CVE-2025-0626", "CVE-2025-0683", "CVE-2025-1204")


class _Chain:
    """Records chained exactly as the journal chains them (exports refuse anything else)."""

    def __init__(self) -> None:
        self.records: list[JournalRecord] = []

    def add(self, campaign: str, kind: EventKind, data: dict[str, Any], device: str | None = None) -> None:
        seq = len(self.records) + 1
        prev = self.records[-1].hash if self.records else GENESIS_HASH
        at = f"2026-11-30T10:{seq // 60:02d}:{seq % 60:02d}Z"
        digest = chain_hash(prev, seq, campaign, kind.value, device, at, data)
        self.records.append(JournalRecord(seq, campaign, kind, device, at, data, prev, digest))

    def header(self, campaign: str = SURVEY, mode: str = "survey") -> None:
        self.add(campaign, EventKind.SURVEY_STARTED, {
            "mode": mode, "operator": "biomed-alice", "inventory": "inv.yml", "limit": None,
            "started_at": "2026-11-30T10:15:00Z", "window": 10.0, "exercise_triggers": False,
            "network": "sinkhole 127.114.4", "udp_probe": True,
            "devices": {n: {"model": "CMS8000", "serial": n.upper(), "site": "North", "ward": "ICU",
                            "bed": n[-1], "asset_tag": None, "firmware": OLD_FW, "delivery": "ssh"}
                        for n in ("bed1", "bed2", "bed3")},
        })

    def monitor(self, device: str, verdicts: dict[str, str], status: str, firmware: str | None,
                campaign: str = SURVEY) -> None:
        if firmware is not None:
            self.add(campaign, EventKind.FIRMWARE_READ, {"version": firmware, "when": "before"}, device)
        for cve, verdict in verdicts.items():
            self.add(campaign, EventKind.VERDICT, {"cve": cve, "verdict": verdict, "reason": "r",
                                                   "evidence": []}, device)
        self.add(campaign, EventKind.SURVEY, {"status": status, "affected": status != "fixed",
                                              "reasons": ["model CMS8000 is in the FSCA scope"],
                                              "model": "CMS8000", "firmware": firmware or OLD_FW,
                                              "reachable": firmware is not None}, device)

    def survey(self, with_header: bool = True) -> None:
        if with_header:
            self.header()
        self.monitor("bed1", dict.fromkeys(CVES, "vulnerable"), "vulnerable", OLD_FW)
        self.monitor("bed2", dict.fromkeys(CVES, "fixed"), "fixed", NEW_FW)
        self.monitor("bed3", dict.fromkeys(CVES, "inconclusive"), "unproven", None)
        self.add(SURVEY, EventKind.CAMPAIGN_FINISHED,
                 {"counts": {"vulnerable": 1, "fixed": 1, "unproven": 1}})


def test_a_survey_header_makes_the_run_a_followed_campaign_in_survey_mode() -> None:
    chain = _Chain()
    chain.survey()
    fleet = project(chain.records)
    assert fleet.campaign == SURVEY and fleet.mode == "survey" and fleet.finished
    assert fleet.created["operator"] == "biomed-alice"
    assert fleet.survey_counts() == {"vulnerable": 1, "unproven": 1, "fixed": 1, "unknown": 0}
    bed1, bed3 = fleet.devices["bed1"], fleet.devices["bed3"]
    assert bed1.firmware_seen == OLD_FW and bed1.affected
    assert bed1.verdicts["CVE-2025-0626"].value == "vulnerable"
    assert bed3.firmware_seen is None and bed3.reachable is False and bed3.serial == "BED3"


def test_a_survey_without_a_header_still_shows_what_it_recorded_when_named() -> None:
    chain = _Chain()
    chain.survey(with_header=False)
    fleet = project(chain.records, SURVEY)
    assert fleet.mode == "survey" and not fleet.created
    assert fleet.survey_counts()["vulnerable"] == 1 and set(fleet.devices) == {"bed1", "bed2", "bed3"}
    text = render_survey_status(fleet)
    assert "no survey-started header" in text and "bed1" in text


def test_a_survey_after_a_patch_campaign_does_not_pull_the_default_view_off_the_campaign() -> None:
    chain = _Chain()
    chain.add("c1", EventKind.CAMPAIGN_CREATED,
              {"waves": [["bed1"]], "devices": {"bed1": {"model": "CMS8000"}}})
    chain.survey()
    fleet = project(chain.records)
    assert fleet.campaign == "c1" and fleet.mode == "patch" and not fleet.finished


def test_a_patch_campaign_after_a_survey_is_followed() -> None:
    chain = _Chain()
    chain.survey()
    chain.add("c2", EventKind.CAMPAIGN_CREATED,
              {"waves": [["bed9"]], "devices": {"bed9": {"model": "CMS8000"}}})
    fleet = project(chain.records)
    assert fleet.campaign == "c2" and fleet.mode == "patch" and set(fleet.devices) == {"bed9"}


def test_campaign_ids_name_their_mode() -> None:
    assert [campaign_mode(c) for c in (SURVEY, "verify-x", "c-2026-north", "surveyor")] == [
        "survey", "verify", "patch", "patch"]


def test_survey_status_lists_each_monitor_with_class_firmware_verdicts_and_counts() -> None:
    chain = _Chain()
    chain.survey()
    fleet = project(chain.records, SURVEY)
    lines = render_survey_status(fleet).splitlines()
    assert lines[0] == f"survey {SURVEY}: finished, 3 monitor(s)"
    assert "run by biomed-alice" in lines[1] and "triggers not exercised" in lines[1]
    row = {name: line for line in lines for name in ("bed1", "bed2", "bed3") if f" {name} " in line}
    assert row["bed1"].startswith("[!!] vulnerable") and OLD_FW in row["bed1"] and "VULNERABLE" in row["bed1"]
    assert row["bed2"].startswith("[ok] fixed") and row["bed2"].split()[-4:] == ["fixed"] * 4
    assert row["bed3"].startswith("[? ] unproven") and f"{OLD_FW} (inventory; not read)" in row["bed3"]
    assert "3 monitor(s): 1 vulnerable, 1 unproven, 1 fixed, 0 unknown; 2 affected; 1 unreachable" in lines
    assert "  CVE-2025-0626   1 fixed, 1 inconclusive, 1 vulnerable" in lines
    doc = survey_status_dict(fleet)
    assert doc["devices"]["bed3"]["status"] == "unproven" and doc["unreachable"] == 1


def test_a_survey_exports_as_a_read_only_run_and_an_absent_one_is_refused() -> None:
    chain = _Chain()
    chain.survey()
    model = build_model(chain.records, SURVEY)
    assert model.campaign.mode == "survey" and model.campaign.operator == "biomed-alice"
    assert model.survey_totals() == {"vulnerable": 1, "unproven": 1, "fixed": 1, "unknown": 0}
    with pytest.raises(ExportError) as exc:
        build_model(chain.records, "survey-20990101T000000.000000Z")
    assert exc.value.reason == "unknown-campaign"
