"""Incident drafts: which evidence is grounds for a report, and what the pre-filled draft carries."""

from __future__ import annotations

import json

from orchestrator.domain.events import EventKind
from orchestrator.domain.findings import Finding, Proof
from orchestrator.domain.incident import Sighting, grounds
from orchestrator.domain.status import DEVICE_RECORDS
from orchestrator.exports.incident import draft_for, monitor_records, render_draft_html, render_draft_json
from tests.unit.test_export_survey import LEAK_SHA, PATIENT, _survey_chain

CONTACT = Finding("indicator-contact", "contact with the indicator range 202.114.4.0/24",
                  (Proof("sinkhole-window", "2026-12-01T09:00:00Z", "cc" * 32, "1 contact(s)"),))


def test_patient_data_leaving_is_grounds_and_the_shipped_backdoor_alone_is_not() -> None:
    leak = Finding("patient-data-leaving", "patient data seen leaving", CONTACT.proofs)
    strings = Finding("backdoor-in-binaries", "the backdoor's strings", ())
    found = grounds([Sighting("survey-1", "survey", "2026-12-01T09:00:00Z", "vulnerable", "fw",
                              (leak, strings, CONTACT))])
    assert [g.kind for g in found] == ["patient-data-leaving"]


def test_a_unit_shown_fixed_then_seen_reaching_out_is_grounds() -> None:
    fixed = Sighting("c-1", "patch", "2026-11-30T10:00:00Z", "patched", "new")
    later = Sighting("survey-2", "survey", "2026-12-01T09:00:00Z", "vulnerable", "new", (CONTACT,))
    found = grounds([later, fixed])
    assert [g.kind for g in found] == ["fixed-unit-reaching-out"]
    assert "c-1" in found[0].text and found[0].proofs[0].sha256 == "cc" * 32
    assert grounds([later]) == ()  # never shown fixed: the backdoor doing what it does, not a compromise
    assert grounds([later, Sighting("c-1", "patch", "2026-12-02T00:00:00Z", "patched", "new")]) == ()


def test_a_vitals_mismatch_is_grounds_with_its_journal_record() -> None:
    found = grounds([], [{"outcome": "tampering-suspected", "mismatches": ["hr"], "at": "t", "seq": 7,
                          "hash": "dd" * 32, "run": "vitals-1"}])
    assert found[0].kind == "vitals-mismatch" and found[0].proofs[0].sha256 == "dd" * 32


def test_the_draft_of_the_leaking_monitor_carries_identity_evidence_hashes_reporter_and_no_patient() -> None:
    chain = _survey_chain()
    chain.add(DEVICE_RECORDS, EventKind.CONTAINMENT, {"state": "disconnected", "by": "Ada Tech", "how": "",
                                                       "physician": "", "note": "", "capture": None}, "bed1")
    monitors, head, count = monitor_records(chain.records)
    bed1 = monitors["bed1"]
    assert {g.kind for g in bed1.grounds()} == {"patient-data-leaving"}
    assert monitors["bed2"].grounds() == () and monitors["bed3"].grounds() == ()
    draft = draft_for(bed1, reporter="Dr. Maria Rossi (biomedical engineering)", facility="Ospedale Nord",
                      generated_at="2026-12-01T10:00:00Z", journal_head=head, journal_records=count)
    assert draft["device"]["serial"] == "BED1" and draft["device"]["model"] == "CMS8000"
    assert draft["facility"]["name"] == "Ospedale Nord" and draft["facility"]["ward"] == "ICU"
    assert draft["reporter"].startswith("Dr. Maria Rossi")
    assert any("disconnected" in a and "Ada Tech" in a for a in draft["actions_taken"])
    assert any("not patched" in a for a in draft["actions_taken"])
    assert LEAK_SHA in json.dumps(draft["observed"]) and draft["journal"]["head"] == head
    assert draft["form_fields"]["event.description"]["fda_3500a"].startswith("B5")
    for data in (render_draft_json(draft), render_draft_html(draft)):
        text = data.decode()
        assert LEAK_SHA in text and PATIENT not in text
    assert "B5 Describe event or problem" in render_draft_html(draft).decode()
