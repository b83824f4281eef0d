"""The bench's rules (domain.bench): fixed from the network only when watched, exercised and silent."""

from __future__ import annotations

from dataclasses import dataclass, replace

from orchestrator.domain import bench
from orchestrator.domain.checks import ProbeResult
from orchestrator.domain.indicators import Cve
from orchestrator.domain.verdicts import Verdict

T0, T1, T2, T3, END = ("2026-12-01T10:00:00+00:00", "2026-12-01T10:00:10+00:00",
                       "2026-12-01T10:00:20+00:00", "2026-12-01T10:00:30+00:00", "2026-12-01T10:00:40+00:00")


@dataclass(frozen=True)
class Obs:
    at: str
    source: str
    target: str
    kind: str
    sha256: str = "0" * 64
    patient_record: bool = False
    field_names: tuple[str, ...] = ()


def _steps(**not_done: str) -> dict[str, bench.StepAnswer]:
    return {s: bench.StepAnswer(s, s not in not_done, "B. Verdi", not_done.get(s, "")) for s in bench.STEPS}


def facts(**changes: object) -> bench.BenchFacts:
    base = bench.BenchFacts(
        started=T0, ended=END, window=40.0, watched=40.0, source="127.88.0.10",
        coverage=(bench.Coverage("sinkhole 127.114.4", T0, END),), steps=_steps(),
        trigger_windows={"menu-update": bench.TriggerWindow(T1, T2, 10.0),
                         "boot-key": bench.TriggerWindow(T2, T3, 10.0)},
        contacts=(), probe=(ProbeResult(51000, "refused"),), probe_address="127.88.0.10")
    return replace(base, **changes)  # type: ignore[arg-type]


def outcome(f: bench.BenchFacts) -> tuple[str, dict[Cve, Verdict]]:
    verdicts = bench.bench_verdicts(bench.bench_evidence(f), networking_removed=f.networking_removed)
    return bench.bench_outcome(verdicts)[0], {v.cve: v.verdict for v in verdicts}


def test_a_silent_unit_watched_throughout_with_triggers_and_simulator_is_patched_at_bench() -> None:
    assert outcome(facts()) == ("patched", dict.fromkeys(Cve, Verdict.FIXED))


def test_without_a_named_udp_port_the_udp_cve_stays_inconclusive_and_the_unit_is_still_patched() -> None:
    result, verdicts = outcome(facts(probe=None))
    assert verdicts[Cve.UDP_RCE] is Verdict.INCONCLUSIVE and result == "patched"


def test_a_trigger_not_pressed_leaves_its_cve_inconclusive() -> None:
    result, verdicts = outcome(facts(steps=_steps(**{"boot-key": "key stuck"})))
    assert verdicts[Cve.UPDATE_NFS] is Verdict.INCONCLUSIVE and result == "inconclusive"


def test_without_a_patient_simulator_nothing_network_side_is_fixed() -> None:
    _, verdicts = outcome(facts(steps=_steps(**{"patient-simulator": "no simulator"})))
    assert verdicts[Cve.PHI_LEAK] is Verdict.INCONCLUSIVE
    assert verdicts[Cve.MONITOR_NFS] is Verdict.INCONCLUSIVE


def test_a_watch_that_did_not_cover_the_whole_session_proves_nothing() -> None:
    result, verdicts = outcome(facts(coverage=(bench.Coverage("pcap b.pcap", T1, END),)))
    assert set(verdicts.values()) == {Verdict.INCONCLUSIVE} and result == "inconclusive"


def test_a_mount_after_the_boot_key_is_vulnerable() -> None:
    mount = Obs("2026-12-01T10:00:25+00:00", "127.88.0.10:700", "202.114.4.119:111", "rpc-mount")
    result, verdicts = outcome(facts(contacts=(mount,)))
    assert verdicts[Cve.UPDATE_NFS] is Verdict.VULNERABLE and verdicts[Cve.MONITOR_NFS] is Verdict.FIXED
    assert result == "vulnerable"


def test_a_stranger_on_the_bench_makes_the_windows_it_falls_in_inconclusive() -> None:
    odd = Obs("2026-12-01T10:00:05+00:00", "127.88.0.99:700", "202.114.4.119:515", "cms-telemetry")
    _, verdicts = outcome(facts(strangers=(odd,)))
    assert verdicts[Cve.PHI_LEAK] is Verdict.INCONCLUSIVE


def test_a_fix_that_removes_networking_needs_a_capture_to_show_nothing_at_all_was_sent() -> None:
    assert outcome(facts(networking_removed=True))[0] == "inconclusive"
    pcap = (bench.Coverage("pcap b.pcap", T0, END),)
    assert outcome(facts(networking_removed=True, coverage=pcap, sent_anything=0,
                         silence_observer="pcap b.pcap"))[0] == "patched"
    assert outcome(facts(networking_removed=True, coverage=pcap, sent_anything=3,
                         silence_observer="pcap b.pcap"))[0] == "inconclusive"


def test_triggers_and_probe_wait_for_the_unit_to_be_on_the_bench() -> None:
    assert bench.may_act(_steps(**{"on-bench": "still at the bed"})) is not None
    assert bench.may_act(_steps()) is None


def test_only_a_hands_on_unit_waiting_for_it_may_have_a_bench_session() -> None:
    assert bench.may_bench("awaiting-technician", "manual") is None
    assert bench.may_bench("awaiting-bench", "manual") is None
    assert bench.may_bench("patched", "manual") is not None
    assert bench.may_bench("awaiting-technician", "ssh") is not None
