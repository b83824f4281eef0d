"""Vitals against a patient simulator: tolerance rules, what is not entered is not checked."""

from __future__ import annotations

import pytest

from orchestrator.domain.vitals import BadVitals, compare, parse_vitals


def test_values_are_parsed_with_nibp_as_systolic_and_diastolic() -> None:
    assert parse_vitals("hr=80, spo2=97; nibp=120/80,temp=37.0,resp=15", "x") == {
        "hr": 80, "spo2": 97, "sys": 120, "dia": 80, "temp": 37.0, "resp": 15}


@pytest.mark.parametrize("bad", ["hr=80,hr=81", "hr=abc", "hr=nan", "hr=900", "nibp=120", "pulse=70",
                                 "hr", "", "temp=1e9"])
def test_bad_values_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(BadVitals) as err:
        parse_vitals(bad, "--displayed")
    assert err.value.reason == "bad-vitals"


def test_a_value_outside_tolerance_is_a_tampering_finding() -> None:
    check = compare(parse_vitals("hr=80,spo2=97", "s"), parse_vitals("hr=95,spo2=97", "d"))
    assert check.outcome == "tampering-suspected" and [r.parameter for r in check.mismatches] == ["hr"]


def test_within_tolerance_on_every_parameter() -> None:
    sim = parse_vitals("hr=150,spo2=97,nibp=120/80,temp=37.0,resp=15", "s")
    shown = parse_vitals("hr=153,spo2=96,nibp=124/77,temp=37.2,resp=17", "d")  # hr tolerance is 2 % = 3 bpm
    assert compare(sim, shown).outcome == "within-tolerance"


def test_a_parameter_not_entered_is_not_checked_never_within_tolerance() -> None:
    check = compare(parse_vitals("hr=80,spo2=97", "s"), parse_vitals("hr=80", "d"))
    assert check.outcome == "incomplete" and [r.parameter for r in check.unchecked] == ["spo2"]


def test_a_displayed_value_without_a_simulator_setting_is_refused() -> None:
    with pytest.raises(BadVitals):
        compare(parse_vitals("hr=80", "s"), parse_vitals("hr=80,spo2=97", "d"))


def test_tolerances_are_read_in_their_own_units_with_nibp_for_both_pressures() -> None:
    from orchestrator.domain.vitals import parse_tolerances

    assert parse_tolerances("hr=3, nibp=4, temp=0.1") == {"hr": 3, "sys": 4, "dia": 4, "temp": 0.1}
    for bad in ("hr=-1", "pulse=2", "hr=200", "hr"):
        with pytest.raises(BadVitals):
            parse_tolerances(bad)


def test_the_profiles_stated_tolerance_decides_a_reading() -> None:
    sim, shown = parse_vitals("temp=37.0", "s"), parse_vitals("temp=37.15", "d")
    assert compare(sim, shown).outcome == "within-tolerance"  # default +-0.2
    assert compare(sim, shown, {"temp": 0.1}).outcome == "tampering-suspected"
