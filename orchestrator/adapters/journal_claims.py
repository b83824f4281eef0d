"""Which campaign drives which monitors, across every process that shares one journal.

One campaign at a time may drive a given monitor. Files beside the journal ``J``:

- ``J.<hash of the campaign>.lock``: the campaign's lock (``fcntl.flock``), held for the whole run and
  released by the kernel when the process dies, so a ``kill -9`` never leaves it stuck.
- ``J.claims``: the claims, JSON (campaign, holder, monitors, since), replaced atomically.
- ``J.claims.lock``: held only while the claims are read and rewritten (milliseconds).

A claim is live exactly while its campaign's lock is held; a claim whose lock can be taken belongs to a
process that is gone, and is taken over (the caller journals it). Liveness is never guessed from a pid or
a heartbeat: the kernel's lock is the fact.

Deliberately left out: claims do not reach other journals or other hosts' copies of this one; the lease
on the monitor (``domain.lease``) covers those. Nothing here is in the journal database itself, so
read-only commands never write to it, and a journal copied elsewhere carries no claims with it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.adapters.strict_files import read_capped
from orchestrator.domain.strict_load import Limits, StrictLoadError, load_json
from orchestrator.errors import CampaignLocked, JournalCorrupt, JournalLocked

CLAIMS = Limits("journal claims", 1 << 20, max_depth=4, max_nodes=200_000, max_aliases=0)

_NAMED = 5  # monitors named in a refusal; the rest are counted


def campaign_lock_path(journal: Path, campaign: str) -> Path:
    """The campaign lock's file: the very one ``SqliteJournal.lock`` takes, so the two exclude each other."""
    name = hashlib.sha256(campaign.encode()).hexdigest()[:16]
    return journal.with_name(f"{journal.name}.{name}.lock")


@dataclass(frozen=True)
class Claim:
    campaign: str
    holder: str  # "host:pid"
    devices: tuple[str, ...]
    since: str

    def to_dict(self) -> dict[str, Any]:
        return {"campaign": self.campaign, "holder": self.holder, "devices": list(self.devices),
                "since": self.since}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Claim:
        return cls(str(data.get("campaign", "")), str(data.get("holder", "")),
                   tuple(str(d) for d in data.get("devices", [])), str(data.get("since", "")))

    def describe(self) -> str:
        return f"campaign {self.campaign} ({self.holder}, since {self.since})"


@contextmanager
def flock(path: Path, *, wait: float | None = None) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path``. ``wait=None``: do not wait (yields False when taken)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + (wait or 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if wait is None or time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.02)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class Claims:
    """The claims of one journal (``journal``: the journal file's path)."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self.path = journal.with_name(journal.name + ".claims")
        self._mutex = journal.with_name(journal.name + ".claims.lock")

    @contextmanager
    def hold(self, campaign: str, devices: Iterable[str], holder: str) -> Iterator[list[Claim]]:
        """Run ``campaign`` on ``devices``: yields the stale claims on those monitors it took over.

        ``CampaignLocked`` (naming the running campaign) when another process runs this campaign or a
        live campaign drives any of these monitors."""
        mine = Claim(campaign, holder, tuple(devices), _now())
        with flock(campaign_lock_path(self.journal, campaign)) as ours:
            if not ours:
                running = next((c for c in self._read() if c.campaign == campaign), None)
                who = f" ({running.holder}, since {running.since})" if running else ""
                raise CampaignLocked(f"campaign {campaign} is being run by another cmspatch process{who}",
                                     reason="campaign-locked")
            with self._updating() as claims:
                taken_over = self._register(claims, mine)
            try:
                yield taken_over
            finally:
                with self._updating() as claims:
                    claims[:] = [c for c in claims if c.campaign != campaign]

    def _register(self, claims: list[Claim], mine: Claim) -> list[Claim]:
        """Drop stale claims, refuse on a live overlap, add ``mine``; return the stale ones overlapping."""
        wanted, live, stale = set(mine.devices), [], []
        for claim in claims:
            if claim.campaign == mine.campaign:
                continue  # this campaign's own claim from a process that died: ours now
            if self._alive(claim):
                live.append(claim)
            elif wanted & set(claim.devices):
                stale.append(claim)
        for claim in live:
            overlap = sorted(wanted & set(claim.devices))
            if overlap:
                named = ", ".join(overlap[:_NAMED]) + (f" and {len(overlap) - _NAMED} more"
                                                       if len(overlap) > _NAMED else "")
                raise CampaignLocked(
                    f"{claim.describe()} is driving {len(overlap)} of these monitors ({named}): wait for it "
                    f"to finish, resume it (cmspatch run --resume {claim.campaign}), or --limit this run to "
                    "other monitors", reason="campaign-locked")
        claims[:] = [*live, mine]
        return stale

    def _alive(self, claim: Claim) -> bool:
        with flock(campaign_lock_path(self.journal, claim.campaign)) as free:
            return not free

    def _read(self) -> list[Claim]:
        """The live claims. No file is no claim; a file that does not read as claims is refused, never
        taken for "nobody drives": it is replaced atomically, so only someone else's hand garbles it."""
        try:
            data = load_json(read_capped(self.path, CLAIMS), str(self.path), CLAIMS)
        except StrictLoadError as exc:
            if exc.reason == "missing":
                return []
            raise JournalCorrupt(f"the claims file {self.path} is unreadable ({exc.message}): remove it "
                                 "only once no cmspatch run uses this journal",
                                 reason="claims-unreadable") from exc
        if not isinstance(data, list):
            raise JournalCorrupt(f"the claims file {self.path} is not a list of claims",
                                 reason="claims-unreadable")
        return [Claim.from_dict(c) for c in data if isinstance(c, dict)]

    @contextmanager
    def _updating(self) -> Iterator[list[Claim]]:
        with flock(self._mutex, wait=10.0) as held:
            if not held:
                raise JournalLocked(f"the claims of {self.journal} stayed locked for 10 s",
                                    reason="journal-locked")
            claims = self._read()
            yield claims
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps([c.to_dict() for c in claims], indent=1), encoding="utf-8")
            os.replace(tmp, self.path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
