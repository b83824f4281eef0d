"""The export model: one fold of the verified journal that every format renders."""

from __future__ import annotations

from dataclasses import replace

import pytest

from orchestrator.errors import ExportError, JournalError
from orchestrator.exports.model import Outcome, build_model, classify
from tests.unit.test_export_journal import CAMPAIGN, build_campaign


def test_each_monitor_gets_the_outcome_its_journal_proves() -> None:
    model = build_model(build_campaign())
    outcomes = {d.name: d.outcome for d in model.devices}
    assert outcomes == {
        "north-icu-bed01": Outcome.PATCHED,
        "north-icu-bed02": Outcome.DEFERRED,
        "north-ward-bed03": Outcome.FAILED,
        "south-icu-bed01": Outcome.INCONCLUSIVE,
        "south-icu-bed02": Outcome.FAILED,
        "south-ward-bed05": Outcome.PATCHED,
    }


def test_patched_state_without_all_four_fixed_verdicts_is_not_counted_patched() -> None:
    assert classify("patched", {"CVE-2024-12248": "fixed"}) is Outcome.INCONCLUSIVE
    assert (
        classify(
            "patched",
            dict.fromkeys(("CVE-2024-12248", "CVE-2025-0626", "CVE-2025-0683", "CVE-2025-1204"), "fixed"),
        )
        is Outcome.PATCHED
    )


def test_an_inconclusive_verification_the_engine_failed_is_counted_inconclusive() -> None:
    verdicts = dict.fromkeys(("CVE-2024-12248", "CVE-2025-0626", "CVE-2025-1204"), "fixed")
    assert classify("failed", {**verdicts, "CVE-2025-0683": "inconclusive"}) is Outcome.INCONCLUSIVE
    assert classify("failed", {}) is Outcome.FAILED


def test_a_monitor_skipped_as_already_patched_counts_patched_only_with_four_fixed_verdicts() -> None:
    four = dict.fromkeys(("CVE-2024-12248", "CVE-2025-0626", "CVE-2025-0683", "CVE-2025-1204"), "fixed")
    assert classify("skipped", four) is Outcome.PATCHED
    assert classify("skipped", {}) is Outcome.NOT_DONE


def test_a_vulnerable_verdict_counts_as_failed_whatever_the_state() -> None:
    assert classify("patched", {"CVE-2025-0626": "vulnerable"}) is Outcome.FAILED


def test_the_wave_approver_is_the_one_who_approved_that_wave() -> None:
    rows = {d.name: d for d in build_model(build_campaign()).devices}
    assert rows["north-icu-bed01"].approver == ""  # the canary wave has no gate
    assert rows["south-icu-bed01"].approver == "m.bianchi"
    assert rows["south-ward-bed05"].approver == "l.verdi"


def test_the_chain_head_is_the_newest_journal_record() -> None:
    records = build_campaign(other_campaign_after=True)
    model = build_model(records, CAMPAIGN)
    assert model.chain_head == records[-1].hash
    assert model.campaign_head == records[-2].hash
    assert model.campaign.id == CAMPAIGN


def test_an_edited_record_refuses_the_export() -> None:
    records = build_campaign()
    records[10] = replace(records[10], data={**records[10].data, "to": "patched"})
    with pytest.raises(JournalError) as exc:
        build_model(records)
    assert exc.value.reason == "chain-broken"


def test_a_deleted_record_refuses_the_export() -> None:
    records = build_campaign()
    del records[5]
    with pytest.raises(JournalError, match="chain broken"):
        build_model(records)


def test_an_unknown_campaign_is_a_clear_error() -> None:
    with pytest.raises(ExportError) as exc:
        build_model(build_campaign(), "no-such-campaign")
    assert exc.value.reason == "unknown-campaign"


def test_an_empty_journal_is_a_clear_error() -> None:
    with pytest.raises(ExportError) as exc:
        build_model([])
    assert exc.value.reason == "no-campaign"


def test_the_same_journal_gives_the_same_model() -> None:
    assert build_model(build_campaign()) == build_model(build_campaign())


def test_records_that_do_not_start_at_the_journal_genesis_are_refused() -> None:
    records = build_campaign()
    with pytest.raises(JournalError, match="first record"):
        build_model(records[3:])
