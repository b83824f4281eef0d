"""Verdict rules: evidence decides, a version string does not, and nothing unproven is called fixed."""

from __future__ import annotations

from orchestrator.domain import checks
from orchestrator.domain.indicators import ALL_CVES, Cve
from orchestrator.domain.verdict_rules import REQUIRED, decide, decide_all, survey_status
from orchestrator.domain.verdicts import Evidence, Verdict

AT = "2026-01-01T00:00:00.000000+00:00"


def ev(check: str, outcome: str = "pass", **details: object) -> Evidence:
    return Evidence(check, checks.CATALOGUE[check].source, AT, outcome, f"{check} {outcome}", "0" * 64,
                    dict(details))


def all_passing() -> list[Evidence]:
    names = {c for req in REQUIRED.values() for c in req}
    return [ev(c) for c in sorted(names)] + [ev("patient-status", patient_connected=True)]


def test_every_required_check_passing_is_fixed_on_all_four_cves() -> None:
    assert [v.verdict for v in decide_all(all_passing())] == [Verdict.FIXED] * 4


def test_a_decisive_failure_is_vulnerable_even_when_everything_else_passes() -> None:
    kept = [e for e in all_passing() if e.check != "update-mount-string"]
    evidence = [*kept, ev("update-mount-string", "fail")]
    assert decide(Cve.UPDATE_NFS, evidence).verdict is Verdict.VULNERABLE
    assert decide(Cve.MONITOR_NFS, evidence).verdict is Verdict.FIXED


def test_no_evidence_at_all_is_inconclusive_never_fixed() -> None:
    assert {v.verdict for v in decide_all([])} == {Verdict.INCONCLUSIVE}


def test_a_check_that_could_not_run_is_inconclusive() -> None:
    evidence = [e for e in all_passing() if e.check != "udp-probe"] + [checks.not_run("udp-probe", AT, "x")]
    assert decide(Cve.UDP_RCE, evidence).verdict is Verdict.INCONCLUSIVE


def test_binaries_clean_but_trigger_not_exercised_is_inconclusive_for_the_hidden_mount() -> None:
    evidence = [e for e in all_passing() if e.check != "sinkhole-after-menu-update"]
    verdict = decide(Cve.MONITOR_NFS, evidence)
    assert verdict.verdict is Verdict.INCONCLUSIVE and "sinkhole-after-menu-update" in verdict.reason


def test_wrong_version_blocks_fixed_but_does_not_prove_vulnerable() -> None:
    evidence = [*all_passing(), ev("firmware-version", "fail")]
    assert {v.verdict for v in decide_all(evidence)} == {Verdict.INCONCLUSIVE}


def test_leak_seen_by_the_sinkhole_is_vulnerable_without_any_device_access() -> None:
    evidence = [ev("sinkhole-window", "fail"), checks.not_run("monitor-indicator-address", AT, "unreachable")]
    assert decide(Cve.PHI_LEAK, evidence).verdict is Verdict.VULNERABLE


def test_phi_leak_fixed_without_a_patient_says_the_evidence_is_weaker() -> None:
    evidence = [e for e in all_passing() if e.check != "patient-status"]
    verdict = decide(Cve.PHI_LEAK, [*evidence, ev("patient-status", patient_connected=False)])
    assert verdict.verdict is Verdict.FIXED and "no patient was connected" in verdict.reason


def test_phi_leak_fixed_with_unknown_patient_state_says_so() -> None:
    verdict = decide(Cve.PHI_LEAK, [e for e in all_passing() if e.check != "patient-status"])
    assert verdict.verdict is Verdict.FIXED and "unknown" in verdict.reason


def test_phi_leak_fixed_with_a_patient_connected_carries_no_caveat() -> None:
    assert "weaker" not in decide(Cve.PHI_LEAK, all_passing()).reason


def test_verdict_keeps_the_evidence_that_decided_it() -> None:
    verdict = decide(Cve.UDP_RCE, all_passing())
    assert {e.check for e in verdict.evidence} >= {"udp-listener", "udp-probe"}


def test_survey_calls_a_monitor_seen_vulnerable_affected() -> None:
    verdicts = decide_all([ev("monitor-mount-string", "fail")])
    status = survey_status("CMS8000", "CMS7.820.075.08/0.74(0.75)", verdicts, checks.KNOWN_AFFECTED_VERSIONS)
    assert status.status == "vulnerable" and status.affected
    assert any("named affected by CISA" in r for r in status.reasons)


def test_survey_keeps_an_unproven_in_scope_monitor_affected() -> None:
    status = survey_status("CMS6000", "unknown-build", decide_all([]), checks.KNOWN_AFFECTED_VERSIONS)
    assert status.status == "unproven" and status.affected


def test_survey_clears_only_a_monitor_proven_fixed() -> None:
    status = survey_status("CMS8000", "x", decide_all(all_passing()), checks.KNOWN_AFFECTED_VERSIONS)
    assert status.status == "fixed" and not status.affected


def test_required_table_covers_all_four_cves() -> None:
    assert set(REQUIRED) == set(ALL_CVES)
