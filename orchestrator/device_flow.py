"""One monitor's network path over one service session, from whatever step a resumed run starts at.

Split from ``engine.py`` so the campaign loop (waves, gates, halting, threads) and the per-monitor steps
(clinical check, upload with resume, hash on the device, install, reboot, wait, verify) read on their own.
The flow still journals through its engine (``_event``, ``_move``, ``_fail``) and retries through it
(``_retry``): one journal, one retry policy, one lock order for the whole campaign.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from typing import TYPE_CHECKING, Any

from orchestrator.domain.boot import BootDecision, BootIdentity, decide_reboot, parse_identity
from orchestrator.domain.campaign import Step
from orchestrator.domain.clinical import Deferral, may_disturb
from orchestrator.domain.devices import Device
from orchestrator.domain.events import EventKind
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.errors import PermanentTransportError, TransientTransportError
from orchestrator.ports import DeviceSession

if TYPE_CHECKING:
    from orchestrator.engine import Engine

S = DeviceState


class DeviceFlow:
    """The network path for one monitor over one session, from a given resume step."""

    def __init__(self, engine: Engine, device: Device, session: DeviceSession) -> None:
        self.e = engine
        self.device = device
        self.name = device.name
        self.session = session
        self.pkg = engine.package
        self.policy = engine.policy
        self.profile = engine.profile_of(device)  # the monitor's commands, grammar, codes (domain.profile)
        self.upload_dir = self.policy.upload_dir or self.profile.upload_dir
        self.remote = f"{self.upload_dir.rstrip('/')}/{self.pkg.package_name}"
        timeouts = self.profile.timeouts
        self.command_timeout = timeouts.command or self.policy.command_timeout
        self.install_timeout = timeouts.install or self.policy.install_timeout
        self.reboot_timeout = timeouts.reboot or self.policy.reboot_timeout
        self.resumed_in = engine._state(device.name)  # where an earlier run left this monitor

    def _run(self, step: str, command: str, timeout: float | None = None) -> Any:
        """One command with retries; on a transient error the session is reopened before the next try."""

        def attempt(n: int) -> Any:
            if n > 1:
                self.session.reconnect(timeout=self.command_timeout)
            return self.session.run(command, timeout=timeout or self.command_timeout)

        return self.e._retry(self.name, step, attempt)

    def firmware(self, when: str) -> str:
        result = self._run(f"read-firmware-{when}", self.profile.command("firmware_read"))
        version = result.text.strip().splitlines()[0].strip() if result.ok and result.text.strip() else ""
        self.e._event(EventKind.FIRMWARE_READ, {"version": version, "when": when}, self.name)
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
        self.e._renew_lease(self.name)  # the lease is in the persistent upload dir: it outlives a reboot
        if step is Step.VERIFY:
            self.verify()

    def _between_steps(self) -> None:
        """Stop here if interrupted; otherwise renew this monitor's lease (stops if another holds it)."""
        self.e._check_stop()
        self.e._renew_lease(self.name)

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
        if self.e._state(self.name) is S.UPLOADED:
            self.e._defer(self.name, why.value)  # nothing irreversible yet: re-checked like any deferral
        else:  # installed, not rebooted: leave it as journalled; `run --resume` asks again
            self.e._event(EventKind.LOG, {"level": "warning",
                                          "message": f"{action} postponed: {why.value}; resume later"},
                          self.name)
        return False

    def start(self) -> bool:
        """Clinical check, firmware, applicability. False when the monitor must not go further now."""
        why = self.clinical()
        if why is not None:
            self.e._defer(self.name, why.value)
            return False
        before = self.firmware("before")
        applies = self.pkg.applies_to(self.device.model, before)
        if applies == "already-installed":
            self.e._verify(self.device, self.session, already=True)
            return False
        if applies is not None:
            self.e._fail(self.name, applies)
            return False
        return True

    def upload(self) -> None:
        for round_ in (1, 2):  # a hash mismatch deletes and re-uploads once, then fails
            self.e._move(self.name, S.UPLOADING, "" if round_ == 1 else "hash-mismatch-reupload")
            self.e._retry(self.name, "upload", self._put_attempt)
            result = self._run("hash-check", self.profile.command("hash_file", path=self.remote))
            seen = result.text.split()[0] if result.ok and result.text.split() else ""
            if seen == self.pkg.sha256:
                self.e._move(self.name, S.UPLOADED, "", sha256=seen)
                return
            self.e._event(
                EventKind.LOG,
                {
                    "level": "warning",
                    "message": f"hash on the monitor {seen or '(none)'} differs from the "
                    f"manifest's {self.pkg.sha256}",
                },
                self.name,
            )
            self._run("delete-upload", self.profile.command("remove_file", path=self.remote))
        raise PermanentTransportError(
            f"{self.name}: uploaded file's hash does not match the manifest",
            reason="hash-mismatch",
            host=self.name,
        )

    def _put_attempt(self, n: int) -> None:
        if n > 1:
            self.session.reconnect(timeout=self.command_timeout)
        self.session.put(self.pkg.package, self.remote)

    def install(self) -> None:
        if self.e._state(self.name) is S.INSTALLING:
            # Resumed: the install may have run before the interruption. Look before installing again.
            if self.firmware("check") == self.pkg.target_version:
                self.e._event(
                    EventKind.LOG,
                    {"level": "info", "message": "install already applied before the interruption"},
                    self.name,
                )
                self.e._move(self.name, S.REBOOTING, "")
                return
        else:
            self.e._move(self.name, S.INSTALLING, "")
        result = self._run("install", self.profile.command("install", path=self.remote),
                           timeout=self.install_timeout)
        message = result.stderr.decode("utf-8", "replace").strip() or f"exit {result.exit_status}"
        reason = self.profile.installer.outcome(result.exit_status, message if not result.ok else "")
        if reason != "ok":  # the profile's exit codes and words (today: 6 or "space" is disk-full)
            installer = self.profile.commands["install"].split()[0]
            self.e._event(EventKind.LOG, {"level": "error", "message": f"{installer}: {message}"}, self.name)
            raise PermanentTransportError(f"{self.name}: {message}", reason=reason, host=self.name)
        self.e._move(self.name, S.REBOOTING, "")

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

        self.e._retry(self.name, "reboot", attempt, once=True)
        timeout = self.reboot_timeout
        deadline = time.monotonic() + timeout
        dropped = self.session.wait_disconnect(timeout)
        while True:
            if dropped:
                self._reconnect(max(1.0, deadline - time.monotonic()))
            decision = self._observe_boot("after", before, marker)
            if decision.rebooted:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 or decision.reason == "no-identity-before":  # waiting cannot prove it
                message = f"no reboot observed ({timeout:g} s allowed): {decision.why}"
                self.e._event(EventKind.LOG, {"level": "error", "message": message}, self.name)
                raise PermanentTransportError(f"{self.name}: {message}", reason="reboot-not-observed",
                                              host=self.name)
            dropped = self.session.wait_disconnect(remaining)
        self.e._move(self.name, S.VERIFYING, "")

    def _reconnect(self, timeout: float) -> None:
        try:  # one attempt: the timeout *is* the patience; retrying would multiply it
            self.e._retry(self.name, "reconnect", lambda n: self.session.reconnect(timeout=timeout),
                          once=True)
        except TransientTransportError as exc:
            raise PermanentTransportError(
                f"{self.name}: did not come back after reboot", reason="reboot-timeout", host=self.name
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
        self.e._event(EventKind.LOG, {"level": "info", "message": "rebooted before the interruption "
                                      "(boot identity changed): not rebooted again"}, self.name)
        self.e._move(self.name, S.VERIFYING, "rebooted-before-interruption")
        return True

    def _journalled_boot(self) -> tuple[BootIdentity | None, str]:
        """The identity journalled before this monitor's latest reboot (and its marker), if any."""
        found: tuple[BootIdentity | None, str] = (None, "")
        for record in self.e.journal.records(self.e.campaign_id):
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
        self.e._event(EventKind.BOOT_IDENTITY, data, self.name)

    def verify(self) -> None:
        after = self.firmware("after")
        if after != self.pkg.target_version:
            before = self.e.status.devices[self.name].firmware_before
            reason = "silent-rollback" if after == before or not after else "unexpected-version"
            raise PermanentTransportError(
                f"{self.name}: runs {after!r} after reboot, not {self.pkg.target_version!r}",
                reason=reason,
                host=self.name,
            )
        self.e._verify(self.device, self.session)
