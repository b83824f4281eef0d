"""``cmspatch status`` for read-only runs (``survey-...`` / ``verify-...``): one row per monitor.

A patch campaign's status is about states and waves; a survey's is about what was found: the survey
classification (``domain.verdict_rules.survey_status``: vulnerable / unproven / fixed / unknown), the
firmware read on the monitor, and the verdict per CVE. Both views read the same ``FleetStatus`` projection
(``domain.status``), so this module only formats. Words and symbols carry the meaning (no colour), the
way ``cmspatch survey`` prints it. A journal written before runs had a ``survey-started`` header shows
what it recorded and says that the header is missing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from orchestrator.domain.attribution import host_of
from orchestrator.domain.indicators import ALL_CVES
from orchestrator.domain.status import SURVEY_STATUSES, DeviceStatus, FleetStatus

SYMBOL = {"vulnerable": "!!", "unproven": "? ", "fixed": "ok", "unknown": "--"}
CVE_IDS: tuple[str, ...] = tuple(c.value for c in ALL_CVES)


def _firmware(device: DeviceStatus) -> str:
    if device.firmware_seen:
        return device.firmware_seen
    inventory = device.firmware_before or device.firmware_after
    return f"{inventory} (inventory; not read)" if inventory else "not read"


def survey_status_dict(fleet: FleetStatus) -> dict[str, Any]:
    header = fleet.created
    return {
        "campaign": fleet.campaign,
        "mode": fleet.mode,
        "finished": fleet.finished,
        "header": bool(header),
        "operator": header.get("operator"),
        "inventory": header.get("inventory"),
        "started_at": header.get("started_at"),
        "window": header.get("window"),
        "exercise_triggers": header.get("exercise_triggers"),
        "network": header.get("network"),
        "counts": fleet.survey_counts(),
        **_totals(fleet),
        "verdicts": _verdict_counts(fleet),
        "clinical_hold": _clinical_holds(fleet),
        "unattributed_contacts": fleet.unattributed_contacts(),
        "unattributed_unlisted": fleet.unattributed_unlisted,
        "devices": {
            n: {
                "status": d.survey_status,
                "affected": d.affected,
                "reachable": d.reachable,
                "model": d.model,
                "site": d.site,
                "ward": d.ward,
                "bed": d.bed,
                "serial": d.serial,
                "firmware_seen": d.firmware_seen,
                "firmware_inventory": d.firmware_before if header else None,
                "verdicts": {k: v.value for k, v in d.verdicts.items()},
                "reasons": list(d.survey_reasons),
                "clinical_hold": d.clinical_hold,
                **device_facts(fleet, n),
            }
            for n, d in fleet.devices.items()
        },
    }


def _totals(fleet: FleetStatus) -> dict[str, int]:
    devices = fleet.devices.values()
    return {"affected": sum(1 for d in devices if d.affected),
            "unreachable": sum(1 for d in devices if d.reachable is False)}


def clinical_hold_line(held: dict[str, int]) -> str:
    """The summary line of the monitors the clinical gate held, for ``survey``/``verify`` and ``status``."""
    return (f"{sum(held.values())} monitor(s) left untouched for clinical reasons (not probed, not "
            "triggered): " + ", ".join(f"{n} {reason}" for reason, n in sorted(held.items())))


def _clinical_holds(fleet: FleetStatus) -> dict[str, int]:
    """Monitors the clinical gate left untouched (not probed, not triggered), by its reason."""
    return dict(sorted(Counter(d.clinical_hold for d in fleet.devices.values() if d.clinical_hold).items()))


def _verdict_counts(fleet: FleetStatus) -> dict[str, dict[str, int]]:
    table: dict[str, Counter[str]] = {cve: Counter() for cve in CVE_IDS}
    for d in fleet.devices.values():
        for cve in CVE_IDS:
            verdict = d.verdicts.get(cve)
            table[cve][verdict.value if verdict else "not recorded"] += 1
    return {cve: dict(sorted(c.items())) for cve, c in table.items()}


def render_survey_status(fleet: FleetStatus) -> str:
    h = fleet.created
    phase = "finished" if fleet.finished else "incomplete (interrupted, or still being recorded)"
    lines = [f"{fleet.mode} {fleet.campaign}: {phase}, {len(fleet.devices)} monitor(s)"]
    if h:
        triggers = "exercised" if h.get("exercise_triggers") else "not exercised"
        lines.append(
            f"  run by {h.get('operator') or '?'} at {h.get('started_at') or '?'} "
            f"on {h.get('inventory') or '?'}"
            f"{' --limit ' + str(h['limit']) if h.get('limit') else ''}; window {h.get('window', 0):g} s, "
            f"triggers {triggers}, network evidence: {h.get('network') or '?'}"
        )
        if h.get("expected_version"):
            lines.append(f"  expected firmware {h['expected_version']}")
    else:
        lines.append("  (no survey-started header: recorded by an older cmspatch; "
                     "showing what the journal holds)")
    lines.append("")
    short = [cve.removeprefix("CVE-") for cve in CVE_IDS]
    order = {s: i for i, s in enumerate(SURVEY_STATUSES)}
    rows = sorted(fleet.devices.items(), key=lambda kv: (order.get(kv[1].survey_status or "", 9), kv[0]))
    wide = max([len("monitor"), *(len(n) for n, _ in rows)])
    fw = max([len("firmware seen"), *(len(_firmware(d)) for _, d in rows)])
    lines.append(
        f"     {'status':<10} {'monitor':<{wide}} {'model':<8} {'firmware seen':<{fw}} "
        + " ".join(f"{s:<12}" for s in short).rstrip()
    )
    for name, d in rows:
        status = d.survey_status or "no result"
        verdicts = " ".join(f"{_verdict(d, cve):<12}" for cve in CVE_IDS)
        unreachable = "  (unreachable)" if d.reachable is False else ""
        unreachable += f"  (untouched: {d.clinical_hold})" if d.clinical_hold else ""
        lines.append(
            f"[{SYMBOL.get(status, '  ')}] {status:<10} {name:<{wide}} {d.model:<8} {_firmware(d):<{fw}} "
            f"{verdicts.rstrip()}{unreachable}"
        )
    counts, totals = fleet.survey_counts(), _totals(fleet)
    lines.append("")
    lines.append(
        f"{len(fleet.devices)} monitor(s): " + ", ".join(f"{n} {s}" for s, n in counts.items())
        + f"; {totals['affected']} affected; {totals['unreachable']} unreachable"
    )
    if held := _clinical_holds(fleet):
        lines.append(clinical_hold_line(held))
    lines.append("per CVE:")
    for cve, tally in _verdict_counts(fleet).items():
        lines.append(f"  {cve:<15} " + ", ".join(f"{n} {v}" for v, n in tally.items()))
    lines += unattributed_lines(fleet) + fact_lines(fleet)
    return "\n".join(lines)


def unattributed_lines(fleet: FleetStatus) -> list[str]:
    """The contacts that fit no monitor, for ``status`` of a survey and of a campaign alike (none: none)."""
    contacts = fleet.unattributed_contacts()
    if not contacts:
        return []
    more = " (more were seen than the journal lists)" if fleet.unattributed_unlisted else ""
    lines = ["", f"{len(contacts)} contact(s) with 202.114.4.0/24 fit no monitor (unattributed){more}: the "
                 "network checks of the monitors watched meanwhile are inconclusive"]
    by_sender: dict[str, list[dict[str, Any]]] = {}
    for c in contacts:
        by_sender.setdefault(host_of(str(c.get("source", "?"))), []).append(c)
    for sender, seen in by_sender.items():
        kinds = Counter(str(c.get("kind", "?")) for c in seen)
        macs = sorted({str(c["mac"]) for c in seen if c.get("mac")})
        lines.append(
            f"  {sender}{' (MAC ' + ', '.join(macs) + ')' if macs else ''}: {len(seen)} contact(s) ("
            + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())) + ") to "
            + ", ".join(sorted({str(c.get("target", "?")) for c in seen}))
            + f" from {seen[0].get('at', '?')} to {seen[-1].get('at', '?')}: "
            + "; ".join(sorted({str(c.get("why", "")) for c in seen}))
            + "; watched: " + ", ".join(sorted({n for c in seen for n in c.get("watched", [])})))
    return lines


def device_facts(fleet: FleetStatus, name: str) -> dict[str, Any]:
    """Containment and vitals checks of one monitor, for ``status --json`` of a survey and a campaign."""
    return {"containment": fleet.containment(name), "vitals_checks": fleet.vitals(name)}


def fact_lines(fleet: FleetStatus) -> list[str]:
    """How each monitor is contained and what its vitals checks found (facts about the monitor, recorded by
    ``cmspatch contain record`` and ``cmspatch vitals``), for ``status`` of a survey and a campaign alike."""
    lines: list[str] = []
    for name in fleet.devices:
        held = fleet.containment(name)
        checks = fleet.vitals(name)
        if held is None and not checks:
            continue
        parts = []
        if held is not None:
            how = f" ({held.get('how')})" if held.get("how") else ""
            who = f", physician {held.get('physician')}" if held.get("physician") else ""
            proof = " with a clean capture" if held.get("capture") else ""
            parts.append(f"{held.get('state')}{how} confirmed by {held.get('by')}{who} "
                         f"at {held.get('at')}{proof}")
        if checks:
            last = checks[-1]
            parts.append(f"vitals {last.get('outcome')} ({len(checks)} check(s), "
                         f"last by {last.get('technician')} at {last.get('at')})")
        lines.append(f"  {name}: " + "; ".join(parts))
    return ["", "containment and vitals checks:", *lines] if lines else []


def _verdict(device: DeviceStatus, cve: str) -> str:
    verdict = device.verdicts.get(cve)
    if verdict is None:
        return "-"
    return "VULNERABLE" if verdict.value == "vulnerable" else verdict.value
