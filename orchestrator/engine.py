"""Drives a campaign: asks the domain what is next, calls the ports, records every event.

The engine owns sequencing and nothing else. Rules (waves, halting, clinical gating, where to resume)
are ``domain.campaign``/``domain.waves``; talking to monitors is a ``DeviceTransport`` per delivery path;
state is never held here as truth: every transition is appended to the journal *before* the action it
announces, and the engine's own view is the same projection every other view uses (``domain.status``).
That is what makes ``kill -9`` at any moment safe: a resumed run re-reads the journal and, where an
action may or may not have happened (INSTALLING), looks at the monitor before acting again.

Per monitor: ``device_flow`` holds every step done to one monitor and asks its campaign for what it
needs through ``device_flow.DeviceSeam``, which ``_Seam`` below implements over this engine's journal,
state and retry policy; this module keeps the loop, the gates, halting and the operator's decisions, and
imports no adapter: what it talks through are ``orchestrator.ports``, built by ``orchestrator.wiring``.

Threads: one pool for the whole campaign (``max_workers``), a semaphore per site
(``per_site_concurrency``), one service connection per monitor reused for every step of its flow.
Retries: ``orchestrator.retry`` (transient transport errors only), each attempt journalled.

Deliberately left out: scheduling by time of day (maintenance windows only defer), and any retry of a
failed verification (a verification is evidence, not a flaky step).
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestrator import device_flow
from orchestrator.device_flow import Givens, Stop
from orchestrator.device_lease import controller_id
from orchestrator.domain.campaign import (
    CampaignPlan,
    CampaignPolicy,
    Ending,
    HaltDecision,
    plan_device,
)
from orchestrator.domain.devices import DeliveryPath, Device
from orchestrator.domain.events import Event, EventKind, JournalRecord, device_header
from orchestrator.domain.handson import WAITING, confirmation_move, confirmation_payload
from orchestrator.domain.inventory import Inventory
from orchestrator.domain.lifecycle import TERMINAL, DeviceState, check_transition
from orchestrator.domain.profile import DeviceProfile
from orchestrator.domain.projection import (
    FailureBudget,
    complete,
    failure_budget,
    phase_detail,
    unfinished_words,
)
from orchestrator.domain.status import READ_ONLY_PREFIXES, DeviceStatus, FleetStatus, project
from orchestrator.domain.trust.verified import VerifiedPackage
from orchestrator.domain.waves import plan_waves
from orchestrator.errors import CmspatchError, UsageError
from orchestrator.ports import (
    CampaignClaims,
    Clock,
    DeviceProfiles,
    DeviceTransport,
    Journal,
    NetworkObserver,
    PackageFiles,
    StaleClaim,
    Trigger,
    Verification,
    WorkOrders,
)
from orchestrator.retry import RetryPolicy, call_with_retry
from orchestrator.technician import TechnicianDesk, trigger_answer_payload

S = DeviceState


@dataclass(frozen=True)
class EnginePorts:
    """What an engine works through besides its transports and observer (``orchestrator.wiring``
    builds them): the profiles of its monitors (read when the engine is built), the verification
    engineer's checks, the journal file's claims (None: a journal nobody else can open), hands-on work
    orders, and the package's binaries' hashes."""

    verification: Verification
    profiles: Callable[[Iterable[Device]], DeviceProfiles]
    clock: Clock  # elapsed time for a monitor's steps (the reboot's patience)
    claims: CampaignClaims | None = None
    work_orders: WorkOrders | None = None
    package_files: PackageFiles | None = None


@dataclass(frozen=True)
class CampaignOutcome:
    """What a run ended with: how (``ending``), in words (``message``), and the outcome counts."""

    campaign_id: str
    ending: Ending
    counts: dict[str, int]
    halted: HaltDecision | None = None
    message: str = ""
    stopped_at_gate: int | None = None


@dataclass
class _Control:
    """Operator decisions, shared between the caller's thread and the workers."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    approved: dict[int, str] = field(default_factory=dict)
    paused: bool = False
    aborted: tuple[str, str] | None = None  # (by, reason)
    interrupted: str | None = None
    stop_at_gate: bool = False
    halted: HaltDecision | None = None

    @property
    def stopping(self) -> bool:
        return self.aborted is not None or self.interrupted is not None or self.halted is not None


def new_campaign_id() -> str:
    return "c-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def local_time_of_day() -> Any:
    return datetime.now().time()


class Engine:
    def __init__(
        self,
        *,
        inventory: Inventory,
        package: VerifiedPackage,
        journal: Journal,
        transports: Mapping[DeliveryPath, DeviceTransport],
        policy: CampaignPolicy,
        operator: str,
        ports: EnginePorts,
        observer: NetworkObserver | None = None,
        campaign_id: str | None = None,
        limit: str | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], Any] = local_time_of_day,
    ) -> None:
        self.inventory = inventory
        self.package = package
        self.journal = journal
        self.transports = dict(transports)
        self.policy = policy
        self.operator = operator
        self.observer = observer
        self.ports = ports
        self.retry = retry or RetryPolicy(
            attempts=policy.retry_attempts,
            initial=policy.retry_initial,
            maximum=policy.retry_max,
            jitter=min(1.0, policy.retry_initial),
        )
        self._clock = clock
        self.campaign_id = campaign_id or new_campaign_id()
        self._emit_lock = threading.RLock()
        self._subscribers: list[Callable[[JournalRecord], None]] = []
        self._ctl = _Control()
        self._tally_lock = threading.Lock()
        self.status: FleetStatus = project(journal.records(self.campaign_id), self.campaign_id)
        self._desk = TechnicianDesk(
            emit=self._device_event,
            # Only an interruption ends the wait: a halt or an abort lets in-flight monitors finish, and a
            # monitor waiting for its technician is in flight.
            fold_external=self._fold_external, stopping=lambda: self._ctl.interrupted is not None,
            timeout=policy.trigger_timeout)
        self._expected_files: dict[str, str] | None = None
        self._expected_lock = threading.Lock()
        self.controller = controller_id()
        self._held = False  # this process holds the campaign and its monitors' claims (``hold``)
        self._claims_taken_over: list[StaleClaim] = []
        if self.status.campaign is not None:  # resuming: the journal's waves and devices are the truth
            self.waves = tuple(tuple(w) for w in self.status.waves)
            names = [n for w in self.waves for n in w]
            self.devices = {n: inventory.device(n) for n in names}
            self._ctl.approved.update(self.status.approved)
        else:
            selected = select(inventory, limit)
            self.devices = {d.name: d for d in selected}
            self.waves = plan_waves(selected, policy.waves, policy.group_by)
        # The monitors this run may drive. ``--limit`` on a resumed campaign narrows it; every other
        # monitor keeps its journalled outcome untouched (a patient-connected deferral stays deferred).
        self.scope: frozenset[str] = frozenset(self.devices)
        if limit is not None and self.status.campaign is not None:
            self.scope = frozenset(d.name for d in inventory.select(limit)) & self.scope
            if not self.scope:
                raise UsageError(f"no monitor of campaign {self.campaign_id} matches --limit {limit!r}",
                                 reason="empty-selection")
        # Each monitor's device profile, all read now: a bad one refuses the run before anything starts.
        self.profiles = ports.profiles(self.devices.values())

    def profile_of(self, device: Device) -> DeviceProfile:
        """The monitor's device profile (``cmspatch_profile``; default the emulated CMS service shell)."""
        return self.profiles.of(device)

    # --- construction helpers -------------------------------------------------------------------

    @classmethod
    def resume(
        cls,
        *,
        journal: Journal,
        campaign_id: str | None,
        inventory: Inventory,
        package: VerifiedPackage,
        transports: Mapping[DeliveryPath, DeviceTransport],
        operator: str,
        ports: EnginePorts,
        observer: NetworkObserver | None = None,
        retry: RetryPolicy | None = None,
        policy: CampaignPolicy | None = None,
        limit: str | None = None,
    ) -> Engine:
        """Continue a campaign from its journal (default: the newest campaign in the journal); ``limit``
        drives only the campaign's monitors it matches and leaves the others as the journal has them."""
        ids = [c for c in journal.campaigns() if not c.startswith(READ_ONLY_PREFIXES)]
        campaign = campaign_id or (ids[-1] if ids else None)
        if campaign is None or campaign not in ids:
            raise UsageError(
                f"no campaign {campaign_id or ''} to resume in the journal".replace("  ", " "),
                reason="unknown-campaign",
            )
        created = next((r for r in journal.records(campaign) if r.kind is EventKind.CAMPAIGN_CREATED), None)
        if created is None:
            raise UsageError(f"campaign {campaign} has no campaign-created record", reason="unknown-campaign")
        if created.data.get("package_sha256") != package.sha256:
            raise UsageError(
                f"campaign {campaign} pushes package {created.data.get('package_sha256')}, "
                f"not {package.sha256}: give the same package to resume",
                reason="package-differs",
            )
        recorded = CampaignPolicy.from_dict(dict(created.data.get("policy", {})))
        return cls(
            inventory=inventory,
            package=package,
            journal=journal,
            transports=transports,
            policy=policy or recorded,
            operator=operator,
            ports=ports,
            observer=observer,
            campaign_id=campaign,
            retry=retry,
            limit=limit,
        )

    # --- views and decisions (thread-safe) -----------------------------------------------------

    def subscribe(self, callback: Callable[[JournalRecord], None]) -> None:
        with self._emit_lock:
            self._subscribers.append(callback)

    def plan(self) -> CampaignPlan:
        return plan(self.devices, self.waves, self.policy, self.package, self.campaign_id, self._clock())

    def approve(self, wave: int, approver: str) -> None:
        with self._ctl.cond:
            self._ctl.approved[wave] = approver
            self._ctl.cond.notify_all()

    def pause(self, by: str) -> None:
        with self._ctl.cond:
            self._ctl.paused = True
        self._emit(Event(self.campaign_id, EventKind.CAMPAIGN_PAUSED, {"by": by}))

    def resume_run(self, by: str) -> None:
        with self._ctl.cond:
            self._ctl.paused = False
            self._ctl.cond.notify_all()
        self._emit(Event(self.campaign_id, EventKind.CAMPAIGN_RESUMED, {"by": by}))

    def abort(self, by: str, reason: str) -> None:
        with self._ctl.cond:
            if self._ctl.aborted is not None:
                return
            self._ctl.aborted = (by, reason)
            self._ctl.cond.notify_all()
        self._emit(Event(self.campaign_id, EventKind.CAMPAIGN_ABORTED, {"by": by, "reason": reason}))

    def interrupt(self, by: str = "operator") -> None:
        """Ctrl-C: stop at the next step boundary; the journal stays resumable."""
        with self._ctl.cond:
            self._ctl.interrupted = by
            self._ctl.cond.notify_all()
        self._desk.wake()

    def stop_at_gate(self) -> None:
        with self._ctl.cond:
            self._ctl.stop_at_gate = True
            self._ctl.cond.notify_all()

    def confirm_manual(
        self, device: str, technician: str, note: str = "", version: str | None = None
    ) -> None:
        """Record a named technician's confirmation (and the version they read): the unit then awaits its
        bench session (``domain.handson``), which is what verifies a hands-on unit."""
        if device not in self.devices:
            raise UsageError(f"{device} is not in campaign {self.campaign_id}", reason="unknown-device")
        if self.status.devices[device].state is not S.AWAITING_TECHNICIAN:
            raise UsageError(
                f"{device} is {self.status.devices[device].state.value}, not awaiting a technician",
                reason="not-awaiting-technician",
            )
        self._emit(
            Event(
                self.campaign_id,
                EventKind.TECHNICIAN_CONFIRMED,
                confirmation_payload(technician, note, version),
                device,
            )
        )
        self._drive(self.devices[device])

    def answer_trigger(
        self, device: str, trigger: str, by: str, *, done: bool = True, note: str = ""
    ) -> None:
        """A technician says they exercised (``done``) or could not exercise a requested trigger."""
        if device not in self.devices:
            raise UsageError(f"{device} is not in campaign {self.campaign_id}", reason="unknown-device")
        if (why := self.status.devices[device].not_asked_for(trigger)) is not None:
            raise UsageError(f"{device} {why}, not {trigger}", reason="no-trigger-request")
        self._emit(Event(self.campaign_id, EventKind.TRIGGER_ANSWERED,
                         trigger_answer_payload(trigger, by, done, note), device))

    # --- journal --------------------------------------------------------------------------------

    def _emit(self, event: Event) -> JournalRecord:
        with self._emit_lock:
            record = self.journal.append(event)
            if record.seq > self.status.last_seq + 1:
                self._fold_external(before=record.seq)  # another process appended in between
            self._apply(record)
            return record

    def _apply(self, record: JournalRecord) -> None:
        self.status.apply(record)
        self._desk.observe(record)
        for callback in self._subscribers:
            with contextlib.suppress(Exception):  # a view's bug must not stop a campaign
                callback(record)

    def _fold_external(self, before: int | None = None) -> None:
        """Apply records other processes appended (``cmspatch confirm``) that this engine has not seen."""
        with self._emit_lock:
            for record in self.journal.records(self.campaign_id, since_seq=self.status.last_seq):
                if before is not None and record.seq >= before:
                    break
                self._apply(record)

    def _device_event(self, device: str, kind: EventKind, data: dict[str, Any]) -> None:
        self._event(kind, data, device)

    def _event(self, kind: EventKind, data: dict[str, Any], device: str | None = None) -> JournalRecord:
        return self._emit(Event(self.campaign_id, kind, data, device))

    def _state(self, name: str) -> DeviceState:
        return self.status.devices[name].state

    def _move(self, name: str, to: DeviceState, reason: str = "", **extra: Any) -> None:
        with self._emit_lock:
            current = self._state(name)
            check_transition(name, current, to)
            data = {
                "from": current.value,
                "to": to.value,
                "reason": reason,
                "wave": self.status.wave_of(name),
            }
            data.update(extra)
            self._event(EventKind.STATE_CHANGED, data, name)

    def _fail(self, name: str, reason: str) -> None:
        if self._state(name) is S.DEFERRED:
            self._move(name, S.PENDING, "re-check")
        self._move(name, S.FAILED, reason)

    # --- the campaign ---------------------------------------------------------------------------

    def _created_payload(self) -> dict[str, Any]:
        pkg = self.package
        return {
            "package_name": pkg.package_name,
            "package_sha256": pkg.sha256,
            "manifest_sha256": pkg.manifest_sha256,
            "target_version": pkg.target_version,
            "signers": list(pkg.signer_keyids),
            # who signed, as the trust policy names them: exports show people and roles, not key ids
            "signed_by": [{"keyid": k, "role": r, "owner": o} for k, r, o in pkg.signers()],
            "waves": [list(w) for w in self.waves],
            "policy": self.policy.to_dict(),
            "operator": self.operator,
            "inventory": self.inventory.path,
            "devices": {n: device_header(d) for n, d in self.devices.items()},
        }

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold this campaign and its monitors in the journal (``CampaignLocked`` naming the campaign that
        runs it, or that drives any of the same monitors). Front ends take it before they bind a socket;
        ``run`` takes it itself when they did not."""
        if self._held:
            yield
            return
        done = {n for n, d in self.status.devices.items() if d.terminal}
        # A unit awaiting its bench is not this run's to drive: its bench session claims it instead.
        done |= {n for n, d in self.status.devices.items() if d.state is S.AWAITING_BENCH}
        todo = [n for n in self.devices if n not in done and n in self.scope]
        claims: contextlib.AbstractContextManager[Iterable[StaleClaim]] = contextlib.nullcontext([])
        if self.ports.claims is not None:  # a journal file (an in-memory one has nobody to share)
            claims = self.ports.claims.hold(self.campaign_id, todo, self.controller)
        with claims as taken_over:
            self._held, self._claims_taken_over = True, list(taken_over)
            try:
                yield
            finally:
                self._held = False

    def run(self, *, auto_approve: bool = False) -> CampaignOutcome:
        with self.hold():
            if self.status.campaign is None:
                self._event(EventKind.CAMPAIGN_CREATED, self._created_payload())
            elif self.status.halted is not None or self.status.aborted is not None:
                return self._outcome()  # a halted campaign is over; start a new one after investigating
            for stale in self._claims_taken_over:
                self._event(EventKind.LOG, {
                    "level": "warning", "claim": stale.to_dict(),
                    "message": f"claim of {stale.describe()} on {len(stale.devices)} monitor(s) taken over: "
                               "its process is gone"})
            self._claims_taken_over = []
            self._pick_up_external()
            with ThreadPoolExecutor(
                max_workers=self.policy.max_workers, thread_name_prefix="cmspatch"
            ) as pool:
                self._pool = pool
                sems = {
                    site: threading.Semaphore(self.policy.per_site_concurrency)
                    for site in {d.site for d in self.devices.values()}
                }
                for index, wave in enumerate(self.waves):
                    if self._ctl.stopping:
                        break
                    todo = [n for n in wave if self._needs_work(n)]
                    if not todo and (index in self.status.waves_finished or self.scope != set(self.devices)):
                        continue  # nothing of this run's in it: no gate, no wave records
                    if not self._gate(index, auto_approve):
                        return self._outcome(stopped_at_gate=index)
                    if self._ctl.stopping:
                        break
                    self._run_wave(pool, index, wave, sems)
                self._final_rechecks(pool, sems)
            return self._finish()

    def _needs_work(self, name: str) -> bool:
        """Not terminal, and not a hands-on unit waiting for a person (its technician, its bench)."""
        status = self.status.devices[name]
        if status.terminal or name not in self.scope:
            return False
        return status.state not in WAITING or confirmation_move(status.state, status.technician) is not None

    def _gate(self, index: int, auto_approve: bool) -> bool:
        """True to start wave ``index``; False when a headless run must stop here (resumable)."""
        if index == 0 or not self.policy.require_approval or index in self._ctl.approved:
            return True
        if self.status.current_wave is not None and self.status.current_wave >= index:
            return True  # started before an interruption: approval was given then
        if auto_approve:
            self._ctl.approved[index] = f"{self.operator} (--yes)"
            self._event(EventKind.GATE_APPROVED, {"wave": index, "approver": self._ctl.approved[index]})
            return True
        if self.status.gate_waiting != index:
            self._event(EventKind.GATE_WAITING, {"wave": index})
        with self._ctl.cond:
            while index not in self._ctl.approved and not self._ctl.stopping and not self._ctl.stop_at_gate:
                self._ctl.cond.wait()
            if index not in self._ctl.approved:
                return not self._ctl.stop_at_gate
            approver = self._ctl.approved[index]
        self._event(EventKind.GATE_APPROVED, {"wave": index, "approver": approver})
        return True

    def _run_wave(
        self,
        pool: ThreadPoolExecutor,
        index: int,
        wave: tuple[str, ...],
        sems: dict[str, threading.Semaphore],
    ) -> None:
        todo = [n for n in wave if self._needs_work(n)]
        self._event(EventKind.WAVE_STARTED, {"wave": index, "devices": list(wave)})
        self._drive_all(pool, todo, sems)
        deferred = self._deferred_due()
        if deferred and not self._ctl.stopping:
            self._drive_all(pool, deferred, sems)
        counts = {s.value: sum(1 for n in wave if self._state(n) is s) for s in DeviceState}
        self._event(
            EventKind.WAVE_FINISHED, {"wave": index, "counts": {k: v for k, v in counts.items() if v}}
        )

    def _final_rechecks(self, pool: ThreadPoolExecutor, sems: dict[str, threading.Semaphore]) -> None:
        while not self._ctl.stopping:
            self._pick_up_external()
            deferred = self._deferred_due()
            if not deferred:
                return
            with self._ctl.cond:
                self._ctl.cond.wait_for(lambda: self._ctl.stopping, timeout=self.policy.recheck_interval)
            if self._ctl.stopping:
                return
            self._drive_all(pool, deferred, sems)

    def _deferred_due(self) -> list[str]:
        """Deferred monitors of this run with re-checks left."""
        return [n for n in self.devices if n in self.scope and self._state(n) is S.DEFERRED
                and self.status.devices[n].rechecks < self.policy.max_rechecks]

    def _drive_all(
        self, pool: ThreadPoolExecutor, names: list[str], sems: dict[str, threading.Semaphore]
    ) -> None:
        # Round-robin over sites so one site's semaphore never starves the pool.
        by_site: dict[str, list[str]] = {}
        for name in names:
            by_site.setdefault(self.devices[name].site, []).append(name)
        order = [n for group in _interleave(list(by_site.values())) for n in group]
        futures = [pool.submit(self._worker, self.devices[n], sems[self.devices[n].site]) for n in order]
        wait(futures)
        for future in futures:
            exc = future.exception()
            if exc is not None:
                raise exc

    def _worker(self, device: Device, sem: threading.Semaphore) -> None:
        with sem:
            with self._ctl.cond:
                self._ctl.cond.wait_for(lambda: not self._ctl.paused or self._ctl.stopping)
            if self._ctl.stopping:
                return
            self._drive(device)

    def _after_outcome(self, name: str) -> None:
        """Halt if a halting rule fires now that this monitor reached its final outcome. The budget is
        read off the journal's projection, the one the operator is shown before approving a wave."""
        status = self.status.devices[name]
        if status.state not in TERMINAL:
            return
        with self._tally_lock:
            decision = self._budget().decision()
            if decision is None or self._ctl.halted is not None:
                return
            with self._ctl.cond:
                self._ctl.halted = decision
                self._ctl.cond.notify_all()
        self._event(EventKind.CAMPAIGN_HALTED, decision.to_dict())

    def _budget(self) -> FailureBudget:
        return failure_budget(self.status, self.policy)

    def _finish(self) -> CampaignOutcome:
        if self._ctl.interrupted is not None:
            self._event(
                EventKind.LOG,
                {"level": "warning", "message": f"interrupted by {self._ctl.interrupted}; resumable"},
            )
            return self._outcome()
        if self._ctl.halted is not None or self._ctl.aborted is not None:
            why = "campaign-halted" if self._ctl.halted is not None else "campaign-aborted"
            # Not started: skipped. A deferred monitor keeps its deferral (patient connected, alarm...):
            # that is why nobody touched it, and what tells the exports to keep it isolated.
            for name in self.devices:
                if name in self.scope and self._state(name) is S.PENDING:
                    self._move(name, S.SKIPPED, why)
        self._event(EventKind.CAMPAIGN_FINISHED, {"counts": self.status.counts()})
        return self._outcome()

    def _outcome(self, stopped_at_gate: int | None = None) -> CampaignOutcome:
        counts = self.status.counts()
        halted = self._ctl.halted
        if self._ctl.interrupted is not None:
            ending, msg = Ending.INTERRUPTED, "interrupted; run again with --resume to finish"
        elif stopped_at_gate is not None:
            ending, msg = Ending.AT_GATE, f"waiting for approval of wave {stopped_at_gate + 1}"
        elif halted is not None or self.status.halted is not None:
            ending = Ending.HALTED
            msg = f"halted: {halted.reason}" if halted else f"halted: {phase_detail(self.status)}"
        elif self._ctl.aborted is not None or self.status.aborted is not None:
            ending, msg = Ending.ABORTED, "aborted"
        elif complete(self.status):
            ending, msg = Ending.COMPLETE, "every monitor patched"
        else:
            ending, msg = Ending.INCOMPLETE, f"not every monitor patched: {unfinished_words(self.status)}"
        return CampaignOutcome(self.campaign_id, ending, counts, halted, msg, stopped_at_gate)

    def _pick_up_external(self) -> None:
        """Fold in records other processes appended (``cmspatch confirm``); confirmed units then await
        their bench session."""
        self._fold_external()
        for name, st in self.status.devices.items():
            if name in self.scope and st.state is S.AWAITING_TECHNICIAN and st.technician \
                    and not self._ctl.stopping:
                self._drive(self.devices[name])  # to AWAITING_BENCH: milliseconds, no monitor touched

    # --- one monitor ----------------------------------------------------------------------------

    def _check_stop(self) -> None:
        if self._ctl.interrupted is not None:
            raise Stop()

    def _record_attempt(self, name: str, step: str) -> Callable[[int, str, CmspatchError | None], None]:
        def record(attempt: int, outcome: str, error: CmspatchError | None) -> None:
            data: dict[str, Any] = {"step": step, "attempt": attempt, "outcome": outcome}
            if error is not None:
                data["error_reason"] = error.reason
                data["error"] = error.message
            self._event(EventKind.ATTEMPT, data, name)

        return record

    def _sleep(self, seconds: float) -> None:
        with self._ctl.cond:
            self._ctl.cond.wait_for(
                lambda: self._ctl.interrupted is not None or self._ctl.aborted is not None, timeout=seconds
            )

    def _retry(self, name: str, step: str, fn: Callable[[int], Any], *, once: bool = False) -> Any:
        policy = RetryPolicy(attempts=1) if once else self.retry
        return call_with_retry(fn, policy=policy, record=self._record_attempt(name, step), sleep=self._sleep)

    def _drive(self, device: Device) -> None:
        name = device.name
        givens = Givens(campaign_id=self.campaign_id, package=self.package, policy=self.policy,
                        controller=self.controller, verification=self.ports.verification,
                        clock=self.ports.clock,
                        observer=self.observer, work_orders=self.ports.work_orders)
        try:
            device_flow.drive(_Seam(self, name), device, self.profile_of(device), givens,
                              self.transports.get(device.delivery), self._clock())
        except Stop as stop:
            self._event(EventKind.LOG, {"level": "info", "message": stop.message}, name)
        except CmspatchError as exc:  # any error of ours ends this monitor, never the campaign
            if self._state(name) not in TERMINAL:
                self._fail(name, exc.reason)
        finally:
            self._after_outcome(name)

    def _package_files(self) -> dict[str, str] | None:
        """{installed path: SHA-256} of the package's binaries, for the binary-hashes check (read once)."""
        with self._expected_lock:
            if self._expected_files is None:
                try:
                    read = self.ports.package_files
                    self._expected_files = {} if read is None else dict(read())
                except CmspatchError as exc:
                    self._event(EventKind.LOG, {"level": "warning", "message":
                                f"binary hashes will not be compared: {exc.message}"})
                    self._expected_files = {}
            return self._expected_files or None


class _Seam:
    """The engine's side of ``device_flow.DeviceSeam``, bound to one monitor."""

    def __init__(self, engine: Engine, name: str) -> None:
        self._e = engine
        self.name = name

    def state(self) -> DeviceState:
        return self._e._state(self.name)

    def status(self) -> DeviceStatus:
        return self._e.status.devices[self.name]

    def records(self) -> Iterator[JournalRecord]:
        return self._e.journal.records(self._e.campaign_id)

    def record(self, kind: EventKind, data: dict[str, Any], *, campaign_wide: bool = False) -> None:
        self._e._event(kind, data, None if campaign_wide else self.name)

    def move(self, to: DeviceState, reason: str = "", **extra: Any) -> None:
        self._e._move(self.name, to, reason, **extra)

    def fail(self, reason: str) -> None:
        self._e._fail(self.name, reason)

    def defer(self, reason: str) -> None:
        self._e._move(self.name, S.DEFERRED, reason)

    def retry(self, step: str, fn: Callable[[int], Any], *, once: bool = False) -> Any:
        return self._e._retry(self.name, step, fn, once=once)

    def check_stop(self) -> None:
        self._e._check_stop()

    def technician_trigger(self) -> Trigger:
        return self._e._desk.trigger_for(self.name)

    def answered_by(self) -> Mapping[str, str]:
        return {t: f"technician {who}" for (d, t), who in self._e._desk.answered_by.items() if d == self.name}

    def expected_files(self) -> Mapping[str, str] | None:
        return self._e._package_files()


def plan(devices: Mapping[str, Device], waves: tuple[tuple[str, ...], ...], policy: CampaignPolicy,
         package: VerifiedPackage, campaign_id: str, time_of_day: Any) -> CampaignPlan:
    """What a run would do to each monitor of ``waves`` at ``time_of_day``: a pure function of its
    arguments (``cmspatch plan`` calls it without an engine, a journal or a connection)."""
    planned = tuple(
        plan_device(devices[name], index, policy,
                    package.applies_to(devices[name].model, devices[name].firmware), time_of_day)
        for index, wave in enumerate(waves)
        for name in wave
    )
    return CampaignPlan(campaign=campaign_id, waves=waves, devices=planned, policy=policy,
                        target_version=package.target_version, package_name=package.package_name)


def plan_new(inventory: Inventory, package: VerifiedPackage, policy: CampaignPolicy, *,
             limit: str | None = None, time_of_day: Any = None) -> CampaignPlan:
    """The plan of a new campaign on the monitors ``limit`` selects (the waves ``Engine`` would make)."""
    selected = select(inventory, limit)
    return plan({d.name: d for d in selected}, plan_waves(selected, policy.waves, policy.group_by), policy,
                package, new_campaign_id(), local_time_of_day() if time_of_day is None else time_of_day)


def select(inventory: Inventory, limit: str | None) -> tuple[Device, ...]:
    """The monitors of a new campaign; none is a usage error."""
    selected = tuple(inventory.select(limit))
    if not selected:
        raise UsageError(f"no monitor matches --limit {limit!r}", reason="empty-selection")
    return selected


def _interleave(groups: list[list[str]]) -> list[list[str]]:
    out: list[list[str]] = []
    depth = max((len(g) for g in groups), default=0)
    for i in range(depth):
        out.append([g[i] for g in groups if i < len(g)])
    return out
