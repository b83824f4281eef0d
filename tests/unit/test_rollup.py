"""The regional roll-up's pure rules: the region policy, one monitor's status, and the fold over exports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from orchestrator.domain.rollup import (
    ExportCheck,
    RegionPolicyError,
    parse_region_policy,
    roll_up,
    status_of,
)
from orchestrator.domain.trust.signatures import generate_key

EXAMPLE = Path(__file__).resolve().parents[2] / "region-policy.example.yml"
_PEM = re.compile(r"-----BEGIN PUBLIC KEY-----\n.*?-----END PUBLIC KEY-----", re.S)


def _with_real_keys(text: str) -> str:
    def key(match: re.Match[str]) -> str:
        indent = text[:match.start()].rsplit("\n", 1)[-1]
        return ("\n" + indent).join(generate_key("ed25519").public.pem.strip().splitlines())
    return _PEM.sub(key, text)


def test_the_example_region_policy_reads_once_real_keys_are_pasted_in() -> None:
    policy = parse_region_policy(_with_real_keys(EXAMPLE.read_text()), "region-policy.example.yml")
    assert policy.region == "Regione Esempio" and policy.reported_since == "2026-11-24"
    assert [f.name for f in policy.facilities] == ["Ospedale Nord", "Ospedale Sud"]
    assert policy.facilities[0].keys[0].owner == "A. Rossi, Biomedical Engineering"


@pytest.mark.parametrize(("edit", "line", "words"), [
    (lambda t: t.replace('region: "Regione Esempio"', 'region: "A"\nregion: "B"'), 7, "given twice"),
    (lambda t: t.replace("version: 1", "version: 1\nregions: []"), 6, "unknown field"),
    (lambda t: t.replace('reported_since: "2026-11-24"', 'reported_since: "last week"'), 7, "a date"),
])
def test_a_bad_region_policy_is_refused_with_its_line(edit: Any, line: int, words: str) -> None:
    text = edit(_with_real_keys(EXAMPLE.read_text()))
    with pytest.raises(RegionPolicyError) as exc:
        parse_region_policy(text, "region.yml")
    assert f"region.yml:{line}" in exc.value.message and words in exc.value.message, exc.value.message


def test_one_key_signing_for_two_facilities_is_refused() -> None:
    pem = "\n".join("          " + x for x in generate_key("ed25519").public.pem.strip().splitlines())
    text = "\n".join(["version: 1", "facilities:"] + [
        f'  - name: "{n}"\n    keys:\n      - owner: "x"\n        public_key: |\n{pem}' for n in ("A", "B")])
    with pytest.raises(RegionPolicyError) as exc:
        parse_region_policy(text, "r.yml")
    assert "one key speaks for one facility" in exc.value.message


def _device(**kw: Any) -> dict[str, Any]:
    verdict = kw.pop("verdict", "fixed")
    return {"device": "d", "serial": kw.pop("serial", "S1"), "model": "CMS8000", "outcome": "not-done",
            "verdicts": {"CVE-2025-0626": {"verdict": verdict}}, "containment": None, **kw}


def test_each_monitor_gets_one_regional_word_by_precedence() -> None:
    assert status_of(_device(outcome="patched"), "patch") == ("patched", "not stated")
    held = {"state": "isolated", "by": "A"}
    assert status_of(_device(outcome="failed", containment=held), "patch")[0] == "contained"
    assert status_of(_device(outcome="deferred"), "patch")[0] == "deferred"
    assert status_of(_device(outcome="failed", verdict=""), "patch")[0] == "vulnerable"
    assert status_of(_device(outcome="inconclusive", verdict="inconclusive"), "patch")[0] == "unknown"
    assert status_of(_device(survey_status="fixed"), "survey") == ("patched",
                                                                    "observed fixed by a read-only survey")
    assert status_of(_device(survey_status="unproven"), "survey")[0] == "unknown"
    levelled = _device(outcome="patched", verdicts={"a": {"verdict": "fixed", "level": "bench"}})
    assert status_of(levelled, "patch") == ("patched", "bench")


def _check(facility: str, at: str, devices: list[dict[str, Any]], valid: bool = True) -> ExportCheck:
    return ExportCheck(f"{facility}-{at}.json", valid, "valid" if valid else "export-tampered", "", facility,
                       reported_at=at, campaign="c", mode="patch", document={"devices": devices})


def test_the_newest_export_speaks_for_a_serial_and_silence_and_doubles_are_flagged() -> None:
    text = _with_real_keys(EXAMPLE.read_text())
    policy = parse_region_policy(text, "r.yml")
    checks = [
        _check("Ospedale Nord", "2026-11-25T00:00:00Z", [_device(outcome="failed", verdict="vulnerable")]),
        _check("Ospedale Nord", "2026-11-30T00:00:00Z", [_device(outcome="patched")]),
        _check("Ospedale Sud", "2026-11-30T00:00:00Z", [_device(outcome="patched")], valid=False),
    ]
    rollup = roll_up(policy, checks)
    assert rollup.counts() == {"Ospedale Nord": {"CMS8000": {"patched": 1, "contained": 0, "deferred": 0,
                                                             "vulnerable": 0, "unknown": 0}}}
    assert rollup.not_reported == (("Ospedale Sud", "never"),)
    checks[2] = _check("Ospedale Sud", "2026-11-01T00:00:00Z", [_device(outcome="deferred")])
    rollup = roll_up(policy, checks)
    assert rollup.not_reported == (("Ospedale Sud", "2026-11-01T00:00:00Z"),)
    assert rollup.duplicates == (("S1", ("Ospedale Nord", "Ospedale Sud")),)
    assert roll_up(policy, checks, since="2026-10-01").not_reported == ()


def test_a_later_survey_that_proves_nothing_does_not_undo_a_proven_patch_but_one_seeing_the_backdoor_does(
        ) -> None:
    policy = parse_region_policy(_with_real_keys(EXAMPLE.read_text()), "r.yml")
    patched = _check("Ospedale Nord", "2026-11-25T00:00:00Z", [_device(outcome="patched")])
    later = ExportCheck("s.json", True, "valid", "", "Ospedale Nord", reported_at="2026-11-30T00:00:00Z",
                        campaign="survey-1", mode="survey",
                        document={"devices": [_device(survey_status="unproven")]})
    assert [m.status for m in roll_up(policy, [patched, later]).monitors] == ["patched"]
    seen = ExportCheck("s.json", True, "valid", "", "Ospedale Nord", reported_at="2026-11-30T00:00:00Z",
                       campaign="survey-1", mode="survey",
                       document={"devices": [_device(survey_status="vulnerable", verdict="vulnerable")]})
    assert [m.status for m in roll_up(policy, [patched, seen]).monitors] == ["vulnerable"]
