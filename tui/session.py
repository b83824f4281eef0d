"""What the TUI holds of a campaign: the engine (or a journal being watched) and the operator's decisions.

The TUI contains no campaign logic. A ``Session`` only
- verifies the package through the trust API before anything can start,
- builds an engine through a factory handed in by the caller (``cmspatch tui`` / ``cmspatch demo``),
- forwards every journal record into the UI's ``Inbox`` (``Engine.subscribe``) or polls the journal,
- passes decisions (approve, pause, resume, abort, confirm manual) to the engine, refusing every one
  of them in a read-only session,
- runs a hands-on unit's bench session through the runner handed in (``bench_station.run_station``,
  wired by ``cmspatch tui``), refused in a read-only session too.

It imports no Textual, so the rules here are checked by plain unit tests. ``EngineLike`` is the part of
the documented Engine API the TUI uses; coding against a Protocol lets the TUI's tests drive a real
engine and its screens be checked against recorded journals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from orchestrator.domain.campaign import Ending
from orchestrator.domain.devices import Device
from orchestrator.domain.events import JournalRecord
from orchestrator.domain.verdicts import CveVerdict
from orchestrator.errors import CampaignError, CmspatchError
from orchestrator.ports import Prompter
from tui.model import Inbox


class ReadOnlyRefused(CmspatchError):
    """A read-only session was asked to act: watching is allowed, deciding is not."""

    reason = "read-only"


class OutcomeLike(Protocol):
    """What a campaign run ends with (``orchestrator.engine.CampaignOutcome``): the TUI says ``message``,
    in words; the exit code is the CLI's business."""

    @property
    def campaign_id(self) -> str: ...

    @property
    def ending(self) -> Ending: ...

    @property
    def message(self) -> str: ...


class EngineLike(Protocol):
    campaign_id: str

    def run(self, *, auto_approve: bool = False) -> OutcomeLike: ...

    def subscribe(self, callback: Callable[[JournalRecord], None]) -> None: ...

    def approve(self, wave: int, approver: str) -> None: ...

    def pause(self, by: str) -> None: ...

    def resume_run(self, by: str) -> None: ...

    def abort(self, by: str, reason: str) -> None: ...

    def confirm_manual(self, device: str, technician: str, note: str = "",
                       version: str | None = None) -> None:
        ...

    def answer_trigger(self, device: str, trigger: str, by: str, *, done: bool = True,
                       note: str = "") -> None: ...


class BenchResultLike(Protocol):
    """What a bench session ends with (``bench_session.BenchResult``): the outcome at bench level."""

    @property
    def outcome(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def verdicts(self) -> tuple[CveVerdict, ...]: ...


# bench(campaign, device, technician, prompter, on_record): one bench session, its records handed to
# ``on_record`` once journalled (the view's journal never sees another writer's records by itself)
BenchRunner = Callable[[str, str, str, Prompter, Callable[[JournalRecord], None]], BenchResultLike]


class ReportLike(Protocol):
    """The part of ``package_verify.VerificationReport`` the TUI shows."""

    accepted: bool
    reason: str | None
    message: str

    def to_dict(self) -> dict[str, Any]: ...

    def require(self) -> Any: ...


@dataclass
class SessionConfig:
    """Everything the front end (cli/tui.py, demo) wires in; each part optional so the TUI can also
    just watch a journal.

    - ``verify``: runs the trust checks and returns the report (called in a worker thread).
    - ``new_engine(verified_package)``: a fresh campaign.
    - ``resume_engine(verified_package)``: ``Engine.resume`` of ``campaign_id`` from the journal.
    - ``read_journal(since_seq)``: records of the watched campaign after ``since_seq`` (journal poll).
    - ``export(format, out, campaign)``: ``cmspatch export``'s own function over this window's journal
      (``cli.export.write_export``), returning what it wrote in words; ``export_formats`` its formats.
    """

    operator: str
    devices: tuple[Device, ...] = ()
    verify: Callable[[], ReportLike] | None = None
    new_engine: Callable[[Any], EngineLike] | None = None
    resume_engine: Callable[[Any], EngineLike] | None = None
    read_journal: Callable[[int], Iterable[JournalRecord]] | None = None
    campaign_id: str | None = None
    read_only: bool = False
    auto_approve: bool = False
    title: str = "cmspatch"
    on_exit: Callable[[], None] | None = None
    # Emulation only (``cmspatch demo``): the technician's hands. Called with (device, trigger) when the
    # person at the keyboard says a trigger was exercised, before the answer is recorded, so the emulated
    # monitor gets the key press a real technician would have made at the bed. None on a real fleet.
    technician_hands: Callable[[str, str], None] | None = None
    # ``bench``: a hands-on unit's bench session (``BenchRunner``; blocks for its whole window: call from
    # a worker). Its own writer of the journal, the campaign's sinkhole when one runs in this window.
    bench: BenchRunner | None = None
    export: Callable[[str, Path, str | None], str] | None = None
    export_formats: tuple[str, ...] = ()


class Session:
    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self.inbox = Inbox()
        self.engine: EngineLike | None = None
        self.report: ReportLike | None = None
        self.verified: Any = None
        self.outcome: OutcomeLike | None = None
        self._lock = threading.Lock()

    @property
    def read_only(self) -> bool:
        return self.config.read_only

    @property
    def operator(self) -> str:
        return self.config.operator

    # -- package -------------------------------------------------------------------------------
    def verify_package(self) -> ReportLike | None:
        """Run the trust checks (blocking: call from a worker). Keeps the verified package if accepted."""
        if self.config.verify is None:
            return None
        report = self.config.verify()
        self.report = report
        self.verified = report.require() if report.accepted else None
        return report

    @property
    def can_start(self) -> bool:
        """A refused package never starts; neither does a read-only session or one already running."""
        if self.read_only or self.engine is not None or self.verified is None:
            return False
        factory = self.config.resume_engine if self.config.campaign_id else self.config.new_engine
        return factory is not None

    def start(self) -> EngineLike:
        """Build the engine (new campaign, or resume the watched one) and subscribe the inbox to it."""
        self._refuse_if_read_only("start a campaign")
        with self._lock:
            if self.engine is not None:
                raise CampaignError("the campaign is already running in this window",
                                    reason="already-running")
            if self.verified is None:
                reason = self.report.message if self.report is not None else "the package was not verified"
                raise CampaignError(f"the campaign cannot start: {reason}", reason="package-refused")
            if self.config.campaign_id:
                if self.config.resume_engine is None:
                    raise CampaignError("this window can only watch the campaign", reason="watch-only")
                engine = self.config.resume_engine(self.verified)
            else:
                if self.config.new_engine is None:
                    raise CampaignError("no engine is configured", reason="no-engine")
                engine = self.config.new_engine(self.verified)
            engine.subscribe(self.inbox.put)
            self.engine = engine
            return engine

    def run(self) -> OutcomeLike:
        """Blocking: the engine's campaign loop. The app calls this from a thread worker."""
        engine = self.engine
        if engine is None:
            raise CampaignError("the campaign has not been started", reason="not-started")
        self.outcome = engine.run(auto_approve=self.config.auto_approve)
        return self.outcome

    def poll_journal(self, since_seq: int) -> list[JournalRecord]:
        if self.config.read_journal is None:
            return []
        return list(self.config.read_journal(since_seq))

    # -- decisions -----------------------------------------------------------------------------
    def approve(self, wave: int) -> None:
        self._engine("approve a wave").approve(wave, self.operator)

    def pause(self) -> None:
        self._engine("pause").pause(self.operator)

    def resume_run(self) -> None:
        self._engine("resume").resume_run(self.operator)

    def abort(self, reason: str) -> None:
        self._engine("abort").abort(self.operator, reason)

    def confirm_manual(self, device: str, technician: str, note: str = "",
                       version: str | None = None) -> None:
        """Blocks while the engine verifies the unit (its observation window): call from a worker."""
        self._engine("confirm a hands-on unit").confirm_manual(device, technician, note, version)

    def answer_trigger(self, device: str, trigger: str, technician: str, *, done: bool,
                       note: str = "") -> None:
        """Record the technician's answer to a trigger request (the engine's verification is waiting)."""
        engine = self._engine("answer a technician request")
        if done and self.config.technician_hands is not None:
            self.config.technician_hands(device, trigger)
        engine.answer_trigger(device, trigger, technician, done=done, note=note)

    def bench(self, campaign: str, device: str, technician: str, prompter: Prompter) -> BenchResultLike:
        """Blocking: one bench session of ``device``; the technician is the person named on the screen."""
        self._refuse_if_read_only("run a bench session")
        if self.config.bench is None:
            raise CampaignError("this window has no bench station (open it with cmspatch tui --journal)",
                                reason="no-bench")
        return self.config.bench(campaign, device, technician, prompter, self.inbox.put)

    def export(self, fmt: str, out: Path, campaign: str | None) -> str:
        """Write an export of the journal (blocking: call from a worker). Not a decision: an export only
        reads the journal, so a read-only window may make one too."""
        if self.config.export is None:
            raise CampaignError("this window has no journal to export from", reason="no-journal")
        return self.config.export(fmt, out, campaign)

    def stop(self) -> None:
        """Leaving the window: the engine stops at its next step boundary (``Engine.interrupt``), the
        journal stays consistent and the campaign resumable. Not a decision, so allowed read-only."""
        engine = self.engine
        interrupt = getattr(engine, "interrupt", None)
        if callable(interrupt):
            interrupt(f"{self.operator} (closed the TUI)")

    def _refuse_if_read_only(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyRefused(f"refused: this is a read-only session, it may not {what}")

    def _engine(self, what: str) -> EngineLike:
        self._refuse_if_read_only(what)
        if self.engine is None:
            raise CampaignError(f"cannot {what}: the campaign is not running in this window "
                                "(start it, or resume it from the journal)", reason="not-running")
        return self.engine
