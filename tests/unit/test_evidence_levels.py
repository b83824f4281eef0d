"""Evidence levels (domain.evidence): each verdict says how it was established, old journals still read."""

from __future__ import annotations

from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.evidence import (
    DEFAULT_LEVEL,
    EvidenceLevel,
    level_of,
    parse_level,
    recorded_payloads,
    weakest,
)
from orchestrator.domain.indicators import ALL_CVES, Cve
from orchestrator.domain.status import project
from orchestrator.domain.verdicts import CveVerdict, Verdict


def _record(seq: int, kind: EventKind, data: dict[str, object], device: str | None = "u1") -> JournalRecord:
    return JournalRecord(seq, "c1", kind, device, f"2026-12-01T00:00:{seq:02d}Z", dict(data), "", "")


def test_a_verdict_says_how_it_was_established() -> None:
    payload = CveVerdict(Cve.PHI_LEAK, Verdict.FIXED, reason="r", level=EvidenceLevel.BENCH).to_dict()
    assert payload["level"] == "bench"
    assert level_of(payload) is EvidenceLevel.BENCH


def test_a_verdict_is_at_the_network_path_level_unless_told_otherwise() -> None:
    assert CveVerdict(Cve.UDP_RCE, Verdict.FIXED).to_dict()["level"] == "device+network"


def test_a_verdict_journalled_before_levels_reads_as_the_network_path() -> None:
    assert level_of({"cve": "CVE-2025-0683", "verdict": "fixed", "reason": ""}) is DEFAULT_LEVEL
    assert DEFAULT_LEVEL is EvidenceLevel.DEVICE_NETWORK


def test_an_unknown_level_reads_as_the_weakest_never_a_stronger_one() -> None:
    assert parse_level("device+network+oracle") is EvidenceLevel.RECORDED


def test_a_monitor_is_only_as_proven_as_its_weakest_verdict() -> None:
    assert weakest([EvidenceLevel.DEVICE_NETWORK, EvidenceLevel.BENCH]) is EvidenceLevel.BENCH
    assert weakest([EvidenceLevel.BENCH, EvidenceLevel.RECORDED]) is EvidenceLevel.RECORDED
    assert weakest([]) is None


def test_what_a_person_recorded_is_never_fixed_and_keeps_who_and_what() -> None:
    payloads = recorded_payloads(what="About-screen version", by="A. Rossi",
                                 value="CMS7.820.200.05/1.10(1.10)")
    assert [p["cve"] for p in payloads] == [c.value for c in ALL_CVES]
    assert {p["verdict"] for p in payloads} == {"inconclusive"}
    assert {p["level"] for p in payloads} == {"recorded"}
    assert payloads[0]["recorded"] == {"what": "About-screen version", "by": "A. Rossi",
                                       "value": "CMS7.820.200.05/1.10(1.10)"}
    assert "A. Rossi" in payloads[0]["reason"]


def test_the_projection_keeps_each_verdicts_level_old_records_included() -> None:
    records = [
        _record(1, EventKind.CAMPAIGN_CREATED, {"waves": [["u1", "u2"]], "devices": {"u1": {}, "u2": {}}},
                None),
        _record(2, EventKind.VERDICT, {"cve": "CVE-2025-0626", "verdict": "fixed", "reason": ""}, "u1"),
        _record(3, EventKind.VERDICT, {"cve": "CVE-2025-0626", "verdict": "fixed", "level": "bench",
                                       "reason": ""}, "u2"),
    ]
    fleet = project(records)
    assert fleet.devices["u1"].verdict_levels == {"CVE-2025-0626": EvidenceLevel.DEVICE_NETWORK}
    assert fleet.devices["u2"].verdict_levels == {"CVE-2025-0626": EvidenceLevel.BENCH}


def test_the_projection_follows_a_bench_session() -> None:
    records = [
        _record(1, EventKind.CAMPAIGN_CREATED, {"waves": [["u1"]], "devices": {"u1": {}}}, None),
        _record(2, EventKind.BENCH_STARTED, {"technician": "A. Rossi", "address": "127.88.0.10"}),
        _record(3, EventKind.BENCH_STEP, {"step": "on-bench", "by": "A. Rossi", "done": True}),
        _record(4, EventKind.BENCH_FINISHED, {"outcome": "vulnerable", "level": "bench"}),
    ]
    device = project(records).devices["u1"]
    assert device.bench_started is not None and device.bench_started["technician"] == "A. Rossi"
    assert [s["step"] for s in device.bench_steps] == ["on-bench"]
    assert device.bench_result is not None and device.bench_result["outcome"] == "vulnerable"
