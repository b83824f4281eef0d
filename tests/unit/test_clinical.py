"""The clinical gate (``domain.clinical.may_disturb``): only an unambiguous "no patient, no alarm" allows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain.checks import patient_status
from orchestrator.domain.clinical import (
    BenchConfirmation,
    ClinicalStatus,
    Deferral,
    may_disturb,
    may_disturb_on_bench,
    parse_cms_status,
)

CLEAR = "model=CMS8000\nserial=X1\npatient=none\nalarm=none\neth0=down\n"

# What a status line may say about the two keys, and noise that is not key=value.
PATIENT = st.sampled_from(["connected", "none", "CONNECTED", " None "])
ALARM = st.sampled_from(["active", "none", "Active"])
NOISE = st.text(st.characters(blacklist_characters="=\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=30)


def test_a_clear_status_allows() -> None:
    gate = may_disturb(CLEAR)
    assert gate.allowed and gate.reason is None and gate.why_not == ""
    assert gate.status == ClinicalStatus(patient=False, alarm=False)


@pytest.mark.parametrize(("text", "reason", "words"), [
    (CLEAR.replace("patient=none", "patient=connected"), Deferral.PATIENT_CONNECTED, "patient connected"),
    (CLEAR.replace("alarm=none", "alarm=active"), Deferral.ALARM_ACTIVE, "alarm active"),
    (None, Deferral.STATUS_UNKNOWN, "clinical status unknown"),
    ("", Deferral.STATUS_UNKNOWN, "clinical status unknown"),
    ("cms-status: cannot read /var/lib/cms/status\n", Deferral.STATUS_UNKNOWN, "clinical status unknown"),
    ("patient=none\n", Deferral.STATUS_UNKNOWN, "clinical status unknown"),  # alarm not said
    ("patient=maybe\nalarm=none\n", Deferral.STATUS_UNKNOWN, "clinical status unknown"),
    ("patient=\nalarm=none\n", Deferral.STATUS_UNKNOWN, "clinical status unknown"),
    ("patient=none\npatient=connected\nalarm=none\n", Deferral.STATUS_UNKNOWN, "clinical status unknown"),
    ("patient=none\nalarm=none\nalarm=active\n", Deferral.STATUS_UNKNOWN, "clinical status unknown"),
    ("patient: none\nalarm: none\n", Deferral.STATUS_UNKNOWN, "clinical status unknown"),
])
def test_anything_but_a_clear_status_does_not_allow(text: str | None, reason: Deferral, words: str) -> None:
    gate = may_disturb(text)
    assert not gate.allowed and gate.reason is reason and gate.why_not == words


def test_a_patient_outranks_an_alarm() -> None:
    assert may_disturb("patient=connected\nalarm=active\n").reason is Deferral.PATIENT_CONNECTED


def test_a_key_repeated_with_the_same_value_is_not_ambiguous() -> None:
    assert may_disturb("patient=none\nPATIENT = none\nalarm=none\n").allowed


def test_the_survey_check_reads_the_status_with_the_gate_parser() -> None:
    """One status parser: ``patient_status`` evidence agrees with the gate on every hard case."""
    for text, connected in [(CLEAR, False), (CLEAR.replace("patient=none", "patient=connected"), True),
                            ("patient=none\npatient=connected\nalarm=none\n", None),
                            ("patient=connected\n", None), ("patient= Connected \nalarm=none\n", True)]:
        evidence, seen = patient_status(text.encode(), "2026-01-01T00:00:00+00:00")
        assert seen is connected, text
        assert evidence.details["patient_connected"] is connected
        assert evidence.details["clinical_gate"] == (may_disturb(text).reason or "clear")


@given(patient=PATIENT, alarm=ALARM, noise=st.lists(NOISE, max_size=5), patient_first=st.booleans())
def test_parse_reads_both_keys_wherever_they_are_among_noise(patient: str, alarm: str, noise: list[str],
                                                             patient_first: bool) -> None:
    lines = [f"patient={patient}", f"alarm={alarm}"]
    text = "\n".join([*noise, *(lines if patient_first else lines[::-1]), *noise])
    status = parse_cms_status(text)
    assert status == ClinicalStatus(patient=patient.strip().lower() == "connected",
                                    alarm=alarm.lower() == "active")


@given(text=st.text(max_size=200))
def test_any_text_gives_a_verdict_and_only_a_clear_one_allows(text: str) -> None:
    gate = may_disturb(text)  # never raises
    assert gate.allowed == (gate.status == ClinicalStatus(patient=False, alarm=False))
    assert gate.allowed == (gate.reason is None)


@given(text=st.text(max_size=200), key=st.sampled_from(["patient", "alarm"]))
def test_a_conflicting_second_value_never_allows(text: str, key: str) -> None:
    assert not may_disturb(f"{text}\n{key}=none\n{key}=connected-or-active\n").allowed
    assert not may_disturb(f"{CLEAR}{key}={'connected' if key == 'patient' else 'active'}\n").allowed


@given(text=st.text(max_size=200))
def test_without_a_patient_line_it_never_allows(text: str) -> None:
    lines = [line for line in text.splitlines() if "patient" not in line.lower()]
    assert not may_disturb("\n".join([*lines, "alarm=none"])).allowed


# --- a unit with no service shell, on the bench: the technician's recorded confirmation is the only ground


def test_a_bench_unit_may_be_disturbed_only_on_a_named_technicians_confirmation() -> None:
    gate = may_disturb_on_bench(BenchConfirmation("B. Verdi", done=True))
    assert gate.allowed and gate.reason is None and gate.why_not == ""


@pytest.mark.parametrize(("confirmation", "words"), [
    (None, "not confirmed yet"),
    (BenchConfirmation("B. Verdi", done=False, note="still at bed 9"),
     "B. Verdi could not put it on the bench (still at bed 9)"),
    (BenchConfirmation("  ", done=True), "the confirmation names no technician"),
])
def test_a_bench_unit_without_that_confirmation_is_not_disturbed(confirmation: BenchConfirmation | None,
                                                                  words: str) -> None:
    gate = may_disturb_on_bench(confirmation)
    assert not gate.allowed and gate.reason is Deferral.NOT_ON_BENCH
    assert gate.why_not.startswith("the technician has not confirmed the unit is on the bench, off any "
                                   "patient")
    assert gate.why_not.endswith(words)
