"""One error root for everything cmspatch refuses or fails at.

Every error carries a stable, machine-readable ``reason`` code (kept stable across releases because
exports, the journal and scripts match on it) and a plain-language ``message`` for the engineer.
Adapters wrap third-party exceptions (``raise ... from exc``) so callers only ever see these.

    CmspatchError (reason, message)
    +-- UsageError                 bad command line, missing file              -> exit 2
    +-- InventoryError             every problem of an inventory at once        -> exit 2
    +-- TrustError                 a package or manifest is refused             -> exit 3
    +-- TransportError             talking to a monitor failed
    |   +-- TransientTransportError   worth a retry (refused, reset, timeout, upload dropped)
    |   +-- PermanentTransportError   never retried (host key, auth, disk full, installer failed)
    +-- CampaignError              campaign rules: locked, halted
    |   +-- CampaignLocked            another cmspatch process runs this campaign
    +-- JournalError               the journal cannot be trusted                -> exit 7
    |   +-- NotAJournal               missing, empty, not SQLite, no journal table  -> exit 2
    |   +-- JournalUnverified         hash chain, anchors or an export disagree     -> exit 7
    |   +-- JournalCorrupt            SQLite cannot read it (a damaged page)        -> exit 8
    |   +-- JournalWriteFailed        disk full, read-only or I/O error on write    -> exit 9
    |   +-- JournalLocked             the database stayed locked past the wait      -> exit 6
    +-- EmulatorError              the emulated fleet refuses a configuration
    +-- ExportError                an export could not be produced or verified

    InternalError (not a CmspatchError)  a bug in cmspatch                     -> exit 70
    +-- IllegalTransition          an out-of-order step: a programming error, not a state

A bug is kept out of the ``CmspatchError`` tree on purpose: the engine ends one monitor on any of our
errors (a refusal, a device's failure), and a bug caught that way would read as one failed monitor and
the campaign would go on. An ``InternalError`` propagates to the CLI, which says "internal error" and
exits 70 with the journal consistent and the campaign resumable.

``exit_code_for`` is the one place that maps errors to CLI exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes of the ``cmspatch`` command (see README)."""

    OK = 0  # everything asked for is done: all patched / verified / valid
    INCOMPLETE = 1  # some monitors failed, were deferred, or are inconclusive
    USAGE = 2  # usage error, bad inventory, unreadable input
    REFUSED = 3  # package or manifest refused by the trust policy
    HALTED = 4  # a campaign halted on its failure rules, or was aborted
    AWAITING_APPROVAL = 5  # headless run stopped at a wave gate (no --yes)
    LOCKED = 6  # another process holds the campaign, or the journal stayed locked
    JOURNAL = 7  # the journal does not verify: hash chain, anchors (a cut tail) or an export disagree
    JOURNAL_CORRUPT = 8  # the journal file is damaged: SQLite cannot read a page of it
    JOURNAL_WRITE = 9  # the journal could not be written (disk full, read-only, I/O): stopped safely
    INTERNAL = 70  # a bug: reported with a short message, details in the log
    INTERRUPTED = 130  # Ctrl-C: stopped cleanly, resumable


class CmspatchError(Exception):
    """Root of every error cmspatch raises on purpose."""

    reason: str = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason

    def __str__(self) -> str:
        return f"{self.message} [{self.reason}]"


class UsageError(CmspatchError):
    reason = "usage"


@dataclass(frozen=True)
class Problem:
    """One problem found in an input file, located so a person can fix it."""

    file: str
    line: int  # 1-based; 0 when the problem is about the file as a whole
    message: str
    code: str = "invalid"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class InventoryError(CmspatchError):
    """All problems of an inventory at once: an engineer should fix them in one pass."""

    reason = "inventory-invalid"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(f"the inventory has {len(self.problems)} problem(s):\n{lines}")


class TrustError(CmspatchError):
    """A package, manifest or policy is refused. ``reason`` says which rule refused it."""

    reason = "refused"


class TransportError(CmspatchError):
    reason = "transport"

    def __init__(self, message: str, *, reason: str | None = None, host: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.host = host


class TransientTransportError(TransportError):
    """Worth retrying: the retry policy in the engine retries exactly this class."""

    reason = "transient"


class PermanentTransportError(TransportError):
    """Never retried: a retry cannot change a wrong host key, a refused login or a full disk."""

    reason = "permanent"


class CampaignError(CmspatchError):
    reason = "campaign"


class InternalError(Exception):
    """A bug in cmspatch (never the user's input nor a device's answer): not caught as a failure."""

    reason: str = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IllegalTransition(InternalError):
    """A step the lifecycle does not allow (``domain.lifecycle.check_transition``)."""

    reason = "illegal-transition"


class CampaignLocked(CampaignError):
    reason = "campaign-locked"


class CampaignHalted(CampaignError):
    reason = "campaign-halted"


class JournalError(CmspatchError):
    reason = "journal"


class NotAJournal(JournalError):
    """The file given as a journal is none: missing, empty, not SQLite, or without the journal's table.
    Bad input (exit 2), unless its anchor file shows it held records: then it is ``JournalUnverified``."""

    reason = "not-a-journal"


class JournalUnverified(JournalError):
    """The journal reads but cannot be trusted: its chain is broken, or its anchors or an export name
    records it no longer holds (a cut tail, a truncation, a copy without its ``-wal``)."""

    reason = "chain-broken"


class JournalCorrupt(JournalError):
    """SQLite cannot read the journal file (``database disk image is malformed``, an I/O error)."""

    reason = "journal-corrupt"


class JournalWriteFailed(JournalError):
    """An append did not reach the disk: nothing half-written, the campaign stops and resumes later."""

    reason = "journal-write"


class JournalLocked(JournalError):
    """Another process kept the journal's database locked for longer than cmspatch waits."""

    reason = "journal-locked"


class EmulatorError(CmspatchError):
    reason = "emulator"


class ExportError(CmspatchError):
    reason = "export"


def exit_code_for(error: BaseException) -> ExitCode:
    """Map an error to the documented exit code. The CLI calls this and nothing else does."""
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(error, UsageError | InventoryError):
        return ExitCode.USAGE
    if isinstance(error, TrustError):
        return ExitCode.REFUSED
    if isinstance(error, CampaignLocked | JournalLocked):
        return ExitCode.LOCKED
    if isinstance(error, CampaignHalted):
        return ExitCode.HALTED
    if isinstance(error, NotAJournal):
        return ExitCode.USAGE
    if isinstance(error, JournalCorrupt):
        return ExitCode.JOURNAL_CORRUPT
    if isinstance(error, JournalWriteFailed):
        return ExitCode.JOURNAL_WRITE
    if isinstance(error, JournalError):
        return ExitCode.JOURNAL
    if isinstance(error, CmspatchError):
        return ExitCode.INCOMPLETE
    return ExitCode.INTERNAL
