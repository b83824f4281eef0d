"""The campaign read off its folded journal: phase, tallies, failure budget and each monitor's outcome.

``domain.status`` folds records into a ``FleetStatus``; this module answers the questions every reader
asks of that fold, once, as pure functions: where the campaign stands (``phase``), what the halting rules
count (``tally``), how much failure is left before a halt (``failure_budget``) and what a report counts a
monitor as (``outcome``). The engine's halting rule, the TUI's approve-wave dialog, ``cmspatch status``
and every export call these same functions, so none of them can count differently: two copies of the
budget are how the TUI once showed the operator a budget the halting rule did not apply.

Why a tally per wave is "outcomes reached while that wave ran" (``DeviceStatus.ended_in_wave``) and not
"outcomes of that wave's monitors": a deferred monitor of an earlier wave that fails on its re-check
counts against the wave running at the time, which is the wave the operator approved and is watching.
Because it is read from the journal, a resumed run keeps the tally it had when it was interrupted.

Deliberately left out: no I/O, no thresholds of its own (the rules are ``domain.campaign.halt_decision``),
and no wording beyond one line per rule (the views lay it out).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from orchestrator.domain.campaign import (
    CampaignPolicy,
    HaltDecision,
    Tally,
    all_done,
    counts_as_failure,
    halt_decision,
)
from orchestrator.domain.indicators import ALL_CVES
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.status import DeviceStatus, FleetStatus
from orchestrator.errors import CmspatchError

CVE_IDS: tuple[str, ...] = tuple(c.value for c in ALL_CVES)


class Phase(StrEnum):
    """Where the campaign stands, as the journal tells it."""

    NOT_STARTED = "not started"
    RUNNING = "running"
    GATE = "waiting for approval"
    PAUSED = "paused"
    HALTED = "halted"
    ABORTED = "aborted"
    FINISHED = "finished"


def phase(fleet: FleetStatus) -> Phase:
    """The phase of the followed campaign. An abort or a halt outlives the campaign-finished record that
    follows it (the campaign ended, but not as planned); a pause outlives a gate (nothing starts)."""
    if fleet.campaign is None:
        return Phase.NOT_STARTED
    if fleet.aborted is not None:
        return Phase.ABORTED
    if fleet.halted is not None:
        return Phase.HALTED
    if fleet.finished:
        return Phase.FINISHED
    if fleet.paused:
        return Phase.PAUSED
    if fleet.gate_waiting is not None:
        return Phase.GATE
    return Phase.RUNNING


def phase_detail(fleet: FleetStatus) -> str:
    """Why a campaign halted or was aborted, in words ("" otherwise)."""
    if fleet.aborted is not None:
        return f"by {fleet.aborted.get('by', '?')}: {fleet.aborted.get('reason', '')}"
    if fleet.halted is not None:
        h = fleet.halted
        return f"{h.get('reason', '')} ({h.get('failed', '?')} failed of {h.get('executed', '?')} executed)"
    return ""


def complete(fleet: FleetStatus) -> bool:
    """Every monitor of the campaign ended patched or skipped: the campaign did all it was asked."""
    return all_done(fleet.counts())


def unfinished_words(fleet: FleetStatus) -> str:
    """What keeps a campaign from being complete, e.g. "2 failed, 1 deferred" ("" when complete)."""
    counts = fleet.counts()
    left = [(n, state) for state, n in counts.items()
            if n and state not in (DeviceState.PATCHED.value, DeviceState.SKIPPED.value)]
    return ", ".join(f"{n} {state}" for n, state in left)


# --- what the halting rules count ------------------------------------------------------------------

def _executed(device: DeviceStatus) -> bool:
    """Reached a final outcome of its own: a monitor skipped because the campaign stopped did not run."""
    return device.terminal and not (device.state is DeviceState.SKIPPED
                                    and device.reason.startswith("campaign-"))


def tally(fleet: FleetStatus, policy: CampaignPolicy, wave: int | None = None) -> Tally:
    """Executed and failed monitors, in the campaign (``wave`` None) or while ``wave`` ran."""
    executed = failed = 0
    for d in fleet.devices.values():
        if _executed(d) and (wave is None or d.ended_in_wave == wave):
            executed += 1
            failed += counts_as_failure(policy, d.state, d.reason)
    return Tally(executed, failed)


@dataclass(frozen=True)
class FailureBudget:
    """The halting rules of a policy against what the journal says has failed so far.

    ``decision`` is the halting rule itself (the engine halts on it); ``lines`` is what the operator is
    shown before approving a wave. Both read the same two tallies, so they cannot disagree."""

    policy: CampaignPolicy
    total: Tally
    wave: Tally
    wave_index: int

    def decision(self) -> HaltDecision | None:
        return halt_decision(self.policy, self.total, self.wave, self.wave_index)

    def left(self) -> int | None:
        """Failures the count rules still allow before a halt (None: no count rule is set)."""
        limits = [limit - tally.failed for tally, limit in ((self.total, self.policy.max_failures),
                                                           (self.wave, self.policy.wave_max_failures))
                  if limit is not None]
        if self.policy.canary_must_pass and self.wave_index == 0:
            limits.append(1 - self.wave.failed)
        return max(0, min(limits)) if limits else None

    def lines(self) -> list[str]:
        p = self.policy
        out: list[str] = []
        if p.canary_must_pass and self.wave_index == 0:
            out.append(f"canary wave: {self.wave.failed} failed; any failure halts")
        for where, tally, count, pct in (("", self.total, p.max_failures, p.max_failure_pct),
                                         (f"wave {self.wave_index + 1}: ", self.wave, p.wave_max_failures,
                                          p.wave_max_failure_pct)):
            if count is not None:
                left = max(0, count - tally.failed)
                out.append(f"{where}{tally.failed} failed of max {count}: {left} left before halt")
            if pct is not None:
                now = tally.failed * 100.0 / tally.executed if tally.executed else 0.0
                rule = f"{where}{now:.0f}% failed of {tally.executed} executed (halts at {pct:g}%"
                floor = p.min_executed_for_pct
                out.append(rule + (f", once {floor} executed)" if tally.executed < floor else ")"))
        if not out:
            out.append(f"{self.total.failed} failed; no failure limit set")
        if not p.unreachable_is_failure:
            out.append("unreachable monitors do not count as failures")
        return out

    def describe(self) -> str:
        return "; ".join(self.lines())


def failure_budget(fleet: FleetStatus, policy: CampaignPolicy, wave: int | None = None) -> FailureBudget:
    """The budget for ``wave`` (default: the wave running now, else the first). Before approving a wave,
    pass that wave: its own rules start from what the journal already holds for it (nothing, unless a
    run was interrupted inside it)."""
    index = wave if wave is not None else (fleet.current_wave if fleet.current_wave is not None else 0)
    return FailureBudget(policy, tally(fleet, policy), tally(fleet, policy, index), index)


def journalled_policy(fleet: FleetStatus) -> CampaignPolicy | None:
    """The policy the campaign was created with, as its header records it (None: unreadable; a view must
    then say it cannot show the budget rather than show one of its own)."""
    raw = fleet.created.get("policy")
    if not isinstance(raw, dict):
        return None
    try:
        return CampaignPolicy.from_dict(raw)
    except (CmspatchError, TypeError, ValueError):
        return None


# --- what a report counts a monitor as -------------------------------------------------------------

class Outcome(StrEnum):
    """What a report counts a monitor as. Words, never colours, carry the meaning everywhere."""

    PATCHED = "patched"  # state patched and all four CVEs verified fixed
    DEFERRED = "deferred"  # not touched: patient connected, alarm, outside the maintenance window
    FAILED = "failed"  # install or verification failed, or a CVE is still present after patching
    INCONCLUSIVE = "inconclusive"  # patched, but at least one CVE could not be shown fixed
    NOT_DONE = "not-done"  # pending, skipped (campaign halted/aborted) or still in progress


def classify(state: str, verdicts: dict[str, str]) -> Outcome:
    """The outcome a report counts. Verdicts decide before states: the engine fails a monitor whose
    verification was inconclusive (``verification-inconclusive``), but an auditor must see it as
    inconclusive, not as a failed install; a monitor skipped as already patched counts as patched
    only because its verdicts say so."""
    values = set(verdicts.values())
    if "vulnerable" in values:
        return Outcome.FAILED
    if state == DeviceState.DEFERRED:
        return Outcome.DEFERRED
    verified = state in (DeviceState.PATCHED, DeviceState.SKIPPED, DeviceState.FAILED, DeviceState.VERIFYING)
    if verified and all(verdicts.get(cve) == "fixed" for cve in CVE_IDS):
        return Outcome.PATCHED if state in (DeviceState.PATCHED, DeviceState.SKIPPED) else Outcome.NOT_DONE
    if verified and "inconclusive" in values:
        return Outcome.INCONCLUSIVE
    if state in (DeviceState.FAILED, DeviceState.PATCHED):
        return Outcome.FAILED if state == DeviceState.FAILED else Outcome.INCONCLUSIVE
    return Outcome.NOT_DONE


def outcome(device: DeviceStatus, mode: str = "patch") -> Outcome:
    """The report's outcome of one monitor; a read-only run (survey / verify) installed nothing, so
    whatever it saw, nothing was done to the monitor."""
    if mode != "patch":
        return Outcome.NOT_DONE
    return classify(device.state.value, {cve: v.value for cve, v in device.verdicts.items()})


def outcome_counts(fleet: FleetStatus) -> dict[Outcome, int]:
    """Monitors per outcome (every outcome present, zeros included): what status and exports report."""
    counts = {o: 0 for o in Outcome}
    for d in fleet.devices.values():
        counts[outcome(d, fleet.mode)] += 1
    return counts
