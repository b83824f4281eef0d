"""One monitor's steps, behind a small seam the engine implements.

The engine (``engine.py``) keeps the campaign: the loop, the wave gates, halting, the threads and the
operator's decisions. Everything done to one monitor is here: opening its session, its lease, the
clinical check, upload with resume, hash on the device, install, reboot and its proof, verification, and
the hands-on path's work order. What a monitor's steps may ask of their campaign is ``DeviceSeam``, a
handful of methods (journal an event, move the state, fail, defer, retry, stop when interrupted), so
this module never reaches into the engine: one journal, one retry policy, one lock order for the whole
campaign, and the engine's internals free to change. What a campaign gives every monitor alike (the
package, the policy, the ports) is ``Givens``, a value.

Deliberately left out: any rule of the campaign (waves, halting, gates: ``domain.campaign``) and any
adapter (the ports arrive in ``Givens``, built by ``orchestrator.wiring``).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.device_lease import DeviceLease
from orchestrator.domain.boot import BootDecision, BootIdentity, decide_reboot, parse_identity
from orchestrator.domain.campaign import CampaignPolicy, Step, resume_step, window_deferral
from orchestrator.domain.clinical import Deferral, may_disturb
from orchestrator.domain.devices import DeliveryPath, Device
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.failures import FailureReason as F
from orchestrator.domain.handson import confirmation_move
from orchestrator.domain.lease import HELD_ELSEWHERE, Lease, lease_ttl
from orchestrator.domain.lifecycle import ALLOWED, TERMINAL, DeviceState
from orchestrator.domain.profile import DeviceProfile
from orchestrator.domain.status import DeviceStatus
from orchestrator.domain.trust.verified import VerifiedPackage
from orchestrator.errors import (
    PermanentTransportError,
    TransientTransportError,
    TransportError,
    UsageError,
)
from orchestrator.ports import (
    Clock,
    DeviceSession,
    DeviceTransport,
    NetworkObserver,
    Trigger,
    Verification,
    WorkOrders,
)

S = DeviceState


class Stop(Exception):
    """Stop driving this monitor now (interrupt); its journalled state stays as it is."""

    message = "interrupted; state kept for resume"


class LeaseLost(Stop):
    """Another campaign holds this monitor's lease now (ours ran out between steps)."""

    message = "lease lost to another campaign; state kept, this monitor is left alone"


class DeviceSeam(Protocol):
    """What one monitor's steps may ask of the campaign driving it (the engine implements it, bound to
    that monitor). Every write goes through ``record``/``move``: the journal first, then the action."""

    name: str

    def state(self) -> DeviceState:
        """The monitor's journalled state now."""
        ...

    def status(self) -> DeviceStatus:
        """The monitor's projection of the journal (firmware read, technician, rechecks...)."""
        ...

    def records(self) -> Iterator[JournalRecord]:
        """The campaign's journal, oldest first (the flow filters its own monitor's records)."""
        ...

    def record(self, kind: EventKind, data: dict[str, Any], *, campaign_wide: bool = False) -> None:
        """Journal an event about this monitor (``campaign_wide``: about the campaign, no device)."""
        ...

    def move(self, to: DeviceState, reason: str = "", **extra: Any) -> None:
        """Journal a state change; an out-of-order one raises ``IllegalTransition`` (a bug)."""
        ...

    def fail(self, reason: str) -> None: ...

    def defer(self, reason: str) -> None: ...

    def retry(self, step: str, fn: Callable[[int], Any], *, once: bool = False) -> Any:
        """``fn(attempt)`` under the campaign's retry policy, each attempt journalled."""
        ...

    def check_stop(self) -> None:
        """Raise ``Stop`` when the campaign was interrupted."""
        ...

    def technician_trigger(self) -> Trigger:
        """A trigger a technician exercises by hand when asked (``technician.TechnicianDesk``)."""
        ...

    def answered_by(self) -> Mapping[str, str]:
        """{trigger: technician who exercised it} for this monitor."""
        ...

    def expected_files(self) -> Mapping[str, str] | None:
        """The package's binaries' hashes (read once for the campaign), None when unknown."""
        ...


@dataclass(frozen=True)
class Givens:
    """What a campaign gives each of its monitors alike."""

    campaign_id: str
    package: VerifiedPackage
    policy: CampaignPolicy
    controller: str  # this process, as leases name it
    verification: Verification
    clock: Clock  # the reboot's patience
    observer: NetworkObserver | None = None
    work_orders: WorkOrders | None = None


def drive(seam: DeviceSeam, device: Device, profile: DeviceProfile, givens: Givens,
          transport: DeviceTransport | None, time_of_day: Any) -> None:
    """Take one monitor as far as it can go now, from the state its journal holds."""
    if device.delivery is DeliveryPath.MANUAL:
        drive_manual(seam, device, profile, givens)
    else:
        drive_network(seam, device, profile, givens, transport, time_of_day)


def drive_network(seam: DeviceSeam, device: Device, profile: DeviceProfile, givens: Givens,
                  transport: DeviceTransport | None, time_of_day: Any) -> None:
    step = resume_step(seam.state())
    if step is Step.NONE:
        return
    if transport is None:
        raise UsageError(f"no transport for delivery path {device.delivery.value}", reason=F.NO_TRANSPORT)
    if step is Step.START and (why := window_deferral(givens.policy, device, time_of_day)) is not None:
        seam.defer(why.value)
        return
    try:
        session = seam.retry("connect", lambda attempt: transport.open(device))
    except TransientTransportError as exc:
        raise TransportError(exc.message, reason=F.UNREACHABLE) from exc
    try:
        flow = DeviceFlow(seam, device, session, profile, givens)
        flow.leased(step)
    finally:
        with contextlib.suppress(Exception):
            session.close()


def drive_manual(seam: DeviceSeam, device: Device, profile: DeviceProfile, givens: Givens) -> None:
    state = seam.state()
    if state in (S.PENDING, S.DEFERRED):
        order, files = ({}, []) if givens.work_orders is None else givens.work_orders.issue(
            device, campaign=givens.campaign_id, package=givens.package, profile=profile)
        seam.record(EventKind.WORK_ORDER, {"order": order, "files": files})
        seam.move(S.AWAITING_TECHNICIAN, "work-order-issued")
    elif (move := confirmation_move(state, seam.status().technician)) is not None:
        seam.move(*move)  # its bench session verifies it (``domain.handson``), not this run


def verify(seam: DeviceSeam, device: Device, profile: DeviceProfile, givens: Givens,
           session: DeviceSession | None, *, already: bool = False) -> None:
    """Run the verification engineer's checks; patched only when every CVE verdict is fixed.

    ``already``: the monitor runs the target version before we touched it; it is skipped as
    "already-patched" only if the evidence agrees, otherwise it fails like any other."""
    trigger, no_trigger = trigger_for(seam, device, profile, givens, session)
    result = givens.verification.verify(
        session, device, profile=profile, expected_version=givens.package.target_version,
        observer=givens.observer, trigger=trigger, no_trigger_reason=no_trigger,
        window=givens.policy.observation_window, expected_files=seam.expected_files())
    seam.check_stop()  # a verification cut short is not evidence: the resumed run verifies again
    for event in result.events(givens.campaign_id, by_trigger=seam.answered_by()):
        seam.record(event.kind, event.data, campaign_wide=event.device is None)
    if result.all_fixed:
        if already:
            seam.move(S.SKIPPED, "already-patched")
        else:
            seam.move(S.PATCHED, "verified")
    else:
        seam.fail(F.BACKDOOR_STILL_PRESENT if result.any_vulnerable else F.VERIFICATION_INCONCLUSIVE)


def trigger_for(seam: DeviceSeam, device: Device, profile: DeviceProfile, givens: Givens,
                session: DeviceSession | None) -> tuple[Trigger | None, str]:
    """Who presses the hidden-mount triggers on this monitor, or why nobody does."""
    policy = givens.policy
    if not policy.exercise_triggers:
        return None, "triggers switched off for this campaign (--no-triggers)"
    service = {t for t, command in profile.triggers.items() if command is not None}
    # A trigger the profile has no service command for is the technician's, whatever trigger_by says.
    technician = device.delivery is DeliveryPath.MANUAL or policy.trigger_by == "technician" or not service
    if not technician:
        if session is None:
            return None, "no service session to run the trigger command"
        by_command = givens.verification.service_trigger(session, profile)
        if len(service) == len(profile.triggers):
            return by_command, ""
        by_hand = seam.technician_trigger()
        return (lambda name: (by_command if name in service else by_hand)(name)), ""
    if session is None and not device.address:
        return None, "nothing could observe a trigger (no service access and no network address)"
    return seam.technician_trigger(), ""


class DeviceFlow:
    """The network path for one monitor over one session, from a given resume step."""

    def __init__(self, seam: DeviceSeam, device: Device, session: DeviceSession, profile: DeviceProfile,
                 givens: Givens) -> None:
        self.seam = seam
        self.device = device
        self.name = device.name
        self.session = session
        self.givens = givens
        self.pkg = givens.package
        self.policy = givens.policy
        self.profile = profile  # the monitor's commands, grammar, codes (domain.profile)
        self.upload_dir = self.policy.upload_dir or self.profile.upload_dir
        self.remote = f"{self.upload_dir.rstrip('/')}/{self.pkg.package_name}"
        timeouts = self.profile.timeouts
        self.command_timeout = timeouts.command or self.policy.command_timeout
        self.install_timeout = timeouts.install or self.policy.install_timeout
        self.reboot_timeout = timeouts.reboot or self.policy.reboot_timeout
        self.resumed_in = seam.state()  # where an earlier run left this monitor
        self.lease: DeviceLease | None = None  # held while the steps run (``leased``)

    def leased(self, step: Step) -> None:
        """Run the steps under this monitor's lease (``domain.lease``): taken before anything is done to
        the monitor, renewed between steps (``renew_lease``), given back once the monitor is settled."""
        p = self.policy
        lease = DeviceLease(
            campaign=self.givens.campaign_id, upload_dir=self.upload_dir, holder=self.givens.controller,
            ttl=lease_ttl(p.reboot_timeout, p.install_timeout, p.command_timeout,
                          p.observation_window + 2 * p.trigger_timeout),
            run=lambda command: self._run("lease", command),
            log=lambda level, message, data: self.seam.record(
                EventKind.LOG, {"level": level, "message": message, "lease": data}))
        other = lease.acquire()
        if other is not None:
            self.held_elsewhere(other)
            return
        self.lease = lease
        try:
            self.run(step)
        except Stop:
            raise  # mid-flight: the lease stays, the resumed campaign takes it back
        except BaseException:
            lease.release()
            raise
        finally:
            self.lease = None
        if self.seam.state() in TERMINAL or self.seam.state() is S.DEFERRED:
            lease.release()

    def renew_lease(self) -> None:
        """Between two steps: extend this monitor's lease, or stop if another campaign holds it now."""
        if self.lease is not None and (other := self.lease.renew()) is not None:
            self.held_elsewhere(other)
            raise LeaseLost()

    def held_elsewhere(self, other: Lease) -> None:
        """Another campaign holds a live lease on this monitor: leave it alone and say who."""
        held_by = other.to_dict()
        if S.DEFERRED in ALLOWED[self.seam.state()]:
            self.seam.move(S.DEFERRED, HELD_ELSEWHERE, held_by=held_by)
        else:  # mid-flight in this campaign: keep the journalled state for a later resume
            self.seam.record(EventKind.LOG, {"level": "warning", "held_by": held_by,
                                             "message": f"left alone: {other.describe()} holds this monitor"})

    def _run(self, step: str, command: str, timeout: float | None = None) -> Any:
        """One command with retries; on a transient error the session is reopened before the next try."""

        def attempt(n: int) -> Any:
            if n > 1:
                self.session.reconnect(timeout=self.command_timeout)
            return self.session.run(command, timeout=timeout or self.command_timeout)

        return self.seam.retry(step, attempt)

    def firmware(self, when: str) -> str:
        result = self._run(f"read-firmware-{when}", self.profile.command("firmware_read"))
        version = result.text.strip().splitlines()[0].strip() if result.ok and result.text.strip() else ""
        self.seam.record(EventKind.FIRMWARE_READ, {"version": version, "when": when})
        return version

    def run(self, step: Step) -> None:
        if step is Step.START:
            if not self.start():
                return
            step = Step.UPLOAD
        elif step is Step.UPLOAD and not self.clear_to_disturb("upload"):
            return  # resumed mid-upload: start()'s check is from another run, ask again
        self._between_steps()
        if step is Step.UPLOAD:
            self.upload()
            step = Step.CHECK_INSTALLED
        self._between_steps()
        if step is Step.CHECK_INSTALLED:
            if not self.clear_to_disturb("install"):
                return
            self.install()
            step = Step.REBOOT
        self._between_steps()
        if step is Step.REBOOT:
            if not self.rebooted_before_interruption():
                if not self.clear_to_disturb("reboot"):
                    return
                self.reboot()
            step = Step.VERIFY
        self.renew_lease()  # the lease is in the persistent upload dir: it outlives a reboot
        if step is Step.VERIFY:
            self.verify()

    def _between_steps(self) -> None:
        """Stop here if interrupted; otherwise renew this monitor's lease (stops if another holds it)."""
        self.seam.check_stop()
        self.renew_lease()

    def clinical(self) -> Deferral | None:
        """The clinical gate (``domain.clinical.may_disturb``) on this monitor's status command now, read
        with its profile's grammar; a command that fails is an unknown status, hence a deferral."""
        result = self._run("clinical-check", self.profile.command("clinical_status"))
        return may_disturb(result.text if result.ok else None, self.profile.status).reason

    def clear_to_disturb(self, action: str) -> bool:
        """Ask the monitor again right before a resumed upload, an install or a reboot: an upload or an
        interruption may have lasted long enough for a patient to be connected since the first check."""
        why = self.clinical()
        if why is None:
            return True
        if S.DEFERRED in ALLOWED[self.seam.state()]:  # uploading or uploaded: nothing irreversible yet
            self.seam.defer(why.value)  # re-checked like any deferral
        else:  # installed, not rebooted: leave it as journalled; `run --resume` asks again
            self.seam.record(EventKind.LOG, {"level": "warning",
                                          "message": f"{action} postponed: {why.value}; resume later"})
        return False

    def start(self) -> bool:
        """Clinical check, firmware, applicability. False when the monitor must not go further now."""
        why = self.clinical()
        if why is not None:
            self.seam.defer(why.value)
            return False
        before = self.firmware("before")
        applies = self.pkg.applies_to(self.device.model, before)
        if applies == "already-installed":
            verify(self.seam, self.device, self.profile, self.givens, self.session, already=True)
            return False
        if applies is not None:
            self.seam.fail(applies)
            return False
        return True

    def upload(self) -> None:
        for round_ in (1, 2):  # a hash mismatch deletes and re-uploads once, then fails
            self.seam.move(S.UPLOADING, "" if round_ == 1 else "hash-mismatch-reupload")
            self.seam.retry("upload", self._put_attempt)
            result = self._run("hash-check", self.profile.command("hash_file", path=self.remote))
            seen = result.text.split()[0] if result.ok and result.text.split() else ""
            if seen == self.pkg.sha256:
                self.seam.move(S.UPLOADED, "", sha256=seen)
                return
            self.seam.record(
                EventKind.LOG,
                {
                    "level": "warning",
                    "message": f"hash on the monitor {seen or '(none)'} differs from the "
                    f"manifest's {self.pkg.sha256}",
                })
            self._run("delete-upload", self.profile.command("remove_file", path=self.remote))
        raise PermanentTransportError(
            f"{self.name}: uploaded file's hash does not match the manifest",
            reason=F.HASH_MISMATCH,
            host=self.name,
        )

    def _put_attempt(self, n: int) -> None:
        if n > 1:
            self.session.reconnect(timeout=self.command_timeout)
        self.session.put(self.pkg.package, self.remote)

    def install(self) -> None:
        if self.seam.state() is S.INSTALLING:
            # Resumed: the install may have run before the interruption. Look before installing again.
            if self.firmware("check") == self.pkg.target_version:
                self.seam.record(
                    EventKind.LOG,
                    {"level": "info", "message": "install already applied before the interruption"})
                self.seam.move(S.REBOOTING, "")
                return
        else:
            self.seam.move(S.INSTALLING, "")
        result = self._run("install", self.profile.command("install", path=self.remote),
                           timeout=self.install_timeout)
        message = result.stderr.decode("utf-8", "replace").strip() or f"exit {result.exit_status}"
        reason = self.profile.installer.outcome(result.exit_status, message if not result.ok else "")
        if reason != "ok":  # the profile's exit codes and words (today: 6 or "space" is disk-full)
            installer = self.profile.commands["install"].split()[0]
            self.seam.record(EventKind.LOG, {"level": "error", "message": f"{installer}: {message}"})
            raise PermanentTransportError(f"{self.name}: {message}", reason=reason, host=self.name)
        self.seam.move(S.REBOOTING, "")

    def reboot(self) -> None:
        """Reboot, then prove it: the monitor is verified only once its boot identity changed.

        ``reboot_timeout`` is the patience from the ``reboot`` command to that proof. The session is
        waited on to drop (a monitor may keep it a while, running the old system), then reopened and the
        identity read; the same boot means the old system still runs, so the new session is waited on to
        drop in turn, until the timeout. Fast when the monitor behaves: one drop, one reconnect, one read.
        """
        marker = secrets.token_hex(8)  # written to the monitor's tmpfs with the identity read
        result = self._run("boot-identity", self.profile.identity_command(marker))
        before = parse_identity(result.text if result.ok else None)
        self._journal_boot("before", before, marker)

        def attempt(n: int) -> None:
            with contextlib.suppress(TransientTransportError):  # the reboot drops the connection
                self.session.run(self.profile.command("reboot"), timeout=10.0)

        self.seam.retry("reboot", attempt, once=True)
        timeout = self.reboot_timeout
        clock = self.givens.clock
        deadline = clock.now() + timeout
        dropped = self.session.wait_disconnect(timeout)
        while True:
            if dropped:
                self._reconnect(max(1.0, deadline - clock.now()))
            decision = self._observe_boot("after", before, marker)
            if decision.rebooted:
                break
            remaining = deadline - clock.now()
            if remaining <= 0 or decision.reason == "no-identity-before":  # waiting cannot prove it
                message = f"no reboot observed ({timeout:g} s allowed): {decision.why}"
                self.seam.record(EventKind.LOG, {"level": "error", "message": message})
                raise PermanentTransportError(f"{self.name}: {message}", reason=F.REBOOT_NOT_OBSERVED,
                                              host=self.name)
            dropped = self.session.wait_disconnect(remaining)
        self.seam.move(S.VERIFYING, "")

    def _reconnect(self, timeout: float) -> None:
        try:  # one attempt: the timeout *is* the patience; retrying would multiply it
            self.seam.retry("reconnect", lambda n: self.session.reconnect(timeout=timeout),
                          once=True)
        except TransientTransportError as exc:
            raise PermanentTransportError(
                f"{self.name}: did not come back after reboot", reason=F.REBOOT_TIMEOUT, host=self.name
            ) from exc

    def _observe_boot(self, when: str, before: BootIdentity | None, marker: str) -> BootDecision:
        """Read the boot identity over the session as it is now, decide, journal both. One try: a
        session the reboot is cutting reads as unreadable, which proves nothing (the caller waits on)."""
        try:
            result = self.session.run(self.profile.identity_command(), timeout=self.command_timeout)
            now = parse_identity(result.text if result.ok else None)
        except TransientTransportError:
            now = BootIdentity()
        decision = decide_reboot(before, now, marker)
        self._journal_boot(when, now, marker, decision)
        return decision

    def rebooted_before_interruption(self) -> bool:
        """Resumed in REBOOTING: if the journal holds the identity read before this monitor's reboot and
        the monitor now shows another boot, the reboot happened before the interruption. It goes on to
        verification without a second reboot; anything else (no identity journalled, the same boot,
        unproven) reboots as a fresh run would."""
        if self.resumed_in is not S.REBOOTING:  # installed by this run: nothing to look up
            return False
        before, marker = self._journalled_boot()
        if before is None:
            return False
        if not self._observe_boot("resume", before, marker).rebooted:
            return False
        self.seam.record(EventKind.LOG, {"level": "info", "message": "rebooted before the interruption "
                                      "(boot identity changed): not rebooted again"})
        self.seam.move(S.VERIFYING, "rebooted-before-interruption")
        return True

    def _journalled_boot(self) -> tuple[BootIdentity | None, str]:
        """The identity journalled before this monitor's latest reboot (and its marker), if any."""
        found: tuple[BootIdentity | None, str] = (None, "")
        for record in self.seam.records():
            if record.device != self.name:
                continue
            if record.kind is EventKind.STATE_CHANGED and record.data.get("to") == S.REBOOTING.value:
                found = (None, "")  # only what follows the latest move to rebooting counts
            elif record.kind is EventKind.BOOT_IDENTITY and record.data.get("when") == "before":
                found = (BootIdentity.from_dict(record.data.get("identity")),
                         str(record.data.get("marker", "")))
        return found

    def _journal_boot(self, when: str, identity: BootIdentity, marker: str,
                      decision: BootDecision | None = None) -> None:
        data: dict[str, Any] = {"when": when, "identity": identity.to_dict(), "marker": marker}
        if decision is not None:
            data["decision"] = decision.to_dict()
        self.seam.record(EventKind.BOOT_IDENTITY, data)

    def verify(self) -> None:
        after = self.firmware("after")
        if after != self.pkg.target_version:
            before = self.seam.status().firmware_before
            reason = F.SILENT_ROLLBACK if after == before or not after else F.UNEXPECTED_VERSION
            raise PermanentTransportError(
                f"{self.name}: runs {after!r} after reboot, not {self.pkg.target_version!r}",
                reason=reason,
                host=self.name,
            )
        verify(self.seam, self.device, self.profile, self.givens, self.session)
