"""Anchors: the journal's chain head written outside the database, so a cut tail is seen.

The hash chain proves that no record before the head was edited, removed or reordered. It cannot show
that records were cut from the end: the shorter journal is still a valid chain, and so is a journal copied
without its ``-wal`` after a crash. An anchor is the head (seq, hash, campaign, kind, time) at a moment
that matters (the first record, a campaign or survey created, a wave finished, a gate, a pause, a
campaign's end), appended as one JSON line to ``JOURNAL.anchors`` beside the journal: opened
``O_APPEND``, written in one ``write``, fsynced before ``append`` returns. A journal that no longer holds
an anchored record, or holds another record at that seq, has lost its tail.

Ordering, so a ``kill -9`` never raises a false alarm: an anchor is written after its record commits (the
anchors never name a record the journal did not keep; a kill between the two leaves the anchors one
behind), and the anchor file is created, empty and fsynced, before the journal's schema (a journal with
records but no anchor file lost it, or predates anchors: then a cut tail cannot be detected, and the
commands say so). A torn line (power lost inside the one write) is ignored and reported; the next
writer starts a new line after it. Any other line that is not an anchor is ignored too, and makes
``audit verify`` say it cannot vouch for the anchors (exit 1): deleting lines hides more than garbling
them, so an unreadable line is no proof of a cut.

Deliberately left out: the anchor file is neither signed nor chained. Whoever can rewrite the journal can
rewrite this file too; it catches accidents (a truncated copy, a lost ``-wal``, a restored old file) and
careless tampering. The proof an auditor keeps is a signed export, which carries the same (seq, hash)
(``cmspatch audit verify --against EXPORT``), or a copy of the anchor file kept elsewhere.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.strict_load import Limits, StrictLoadError, load_json
from orchestrator.errors import JournalWriteFailed

MAX_ANCHOR_BYTES = 64 << 20  # ~250,000 anchors: decades of campaigns
_HASH = re.compile(r"[0-9a-f]{64}")

ANCHORED_KINDS = frozenset({
    EventKind.CAMPAIGN_CREATED,
    EventKind.SURVEY_STARTED,
    EventKind.WAVE_FINISHED,
    EventKind.GATE_WAITING,
    EventKind.GATE_APPROVED,
    EventKind.CAMPAIGN_PAUSED,
    EventKind.CAMPAIGN_RESUMED,
    EventKind.CAMPAIGN_HALTED,
    EventKind.CAMPAIGN_ABORTED,
    EventKind.CAMPAIGN_FINISHED,
})


@dataclass(frozen=True)
class Anchor:
    """A record the journal must still hold. ``seq`` is None when a source named only the hash."""

    seq: int | None
    hash: str
    source: str  # where the claim comes from, for the message: "j.db.anchors line 4", "export r.csv.sig"
    kind: str = ""
    campaign: str = ""
    at: str = ""

    def describe(self) -> str:
        what = " ".join(p for p in (self.kind, f"of campaign {self.campaign}" if self.campaign else "") if p)
        when = f" at {self.at}" if self.at else ""
        return f"{what}{when}" if what else f"hash {self.hash[:16]}..."


@dataclass(frozen=True)
class AnchorFile:
    path: Path
    exists: bool
    anchors: tuple[Anchor, ...] = ()
    unreadable: str = ""  # why the file, or some line of it, could not be used (the anchors are partial)
    note: str = ""  # torn lines, ignored

    @property
    def newest(self) -> Anchor | None:
        return max(self.anchors, key=lambda a: a.seq or 0, default=None)


ANCHOR_LINE = Limits("anchor line", 4096, max_depth=4, max_nodes=64, max_aliases=0)


def anchor_path(journal: Path) -> Path:
    return journal.with_name(f"{journal.name}.anchors")


def is_anchored(kind: EventKind, seq: int) -> bool:
    return seq == 1 or kind in ANCHORED_KINDS


def create_anchor_file(path: Path) -> None:
    """Create the (empty) anchor file durably, before the journal's schema exists; no-op if present."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise _write_failed(path, exc, "cannot create the anchor file") from exc
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_dir(path.parent)


def write_anchor(path: Path, record: JournalRecord) -> None:
    """Append the record as the newest anchor: one ``write`` on an ``O_APPEND`` descriptor, then fsync."""
    data = json.dumps(
        {"seq": record.seq, "hash": record.hash, "campaign": record.campaign, "kind": record.kind.value,
         "at": record.at, "anchored_at": datetime.now(UTC).isoformat(timespec="seconds")},
        sort_keys=True, separators=(",", ":"), ensure_ascii=True,
    ).encode("ascii") + b"\n"
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            size = os.fstat(fd).st_size
            torn_before = size and os.pread(fd, 1, size - 1) != b"\n"
            line = b"\n" + data if torn_before else data
            if os.write(fd, line) != len(line):
                raise OSError(errno.EIO, "short write")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _write_failed(path, exc, f"record {record.seq} is in the journal but its anchor could not "
                                       "be written") from exc


def read_anchors(path: Path) -> AnchorFile:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_ANCHOR_BYTES + 1)
    except FileNotFoundError:
        return AnchorFile(path, exists=False)
    except OSError as exc:
        return AnchorFile(path, exists=True, unreadable=f"{path} cannot be read: {exc.strerror or exc}")
    if len(raw) > MAX_ANCHOR_BYTES:
        return AnchorFile(path, exists=True, unreadable=f"{path} is larger than {MAX_ANCHOR_BYTES} bytes")
    anchors: list[Anchor] = []
    torn: list[int] = []
    bad: list[int] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        anchor = _parse(line, f"{path.name} line {number}") if line.strip() else None
        if anchor is not None:
            anchors.append(anchor)
        elif line.strip():
            (torn if _torn(line) else bad).append(number)
    return AnchorFile(
        path, True, tuple(anchors),
        unreadable=f"{path} line(s) {_numbers(bad)} are not anchors (edited?): ignored" if bad else "",
        note=f"{path} line(s) {_numbers(torn)} were cut short by a crash: ignored" if torn else "")


def contradiction(anchors: Iterable[Anchor], by_seq: Mapping[int, str]) -> tuple[str, str] | None:
    """The (reason, plain words) of the claim the journal's records contradict most, or None.

    A record beyond the journal's end means its tail was cut (the newest such anchor says how much at
    least); a different hash at an anchored seq, or an unknown hash, means it was cut and written again,
    or is another journal altogether."""
    end = max(by_seq, default=0)
    claims = list(anchors)
    beyond = [a for a in claims if a.seq is not None and a.seq > end]
    if beyond:
        a = max(beyond, key=lambda x: x.seq or 0)
        assert a.seq is not None
        return ("journal-cut",
                f"{a.source} names record {a.seq} ({a.describe()}) but the journal ends at record {end}: at "
                f"least {a.seq - end} record(s) were cut from its end (truncated, an old copy, or copied "
                "without its -wal after a crash)")
    known = set(by_seq.values())
    for a in sorted(claims, key=lambda x: x.seq or 0):
        if a.seq is None:
            if a.hash not in known:
                return ("anchor-mismatch",
                        f"{a.source} names chain head {a.hash[:16]}..., which is not in this journal: its "
                        "tail was cut, or it is another journal")
        elif by_seq.get(a.seq) != a.hash:
            found = by_seq.get(a.seq)
            held = f"hash {found[:16]}..." if found else "no record"
            return ("anchor-mismatch",
                    f"{a.source} names record {a.seq} ({a.describe()}) with hash {a.hash[:16]}..., the "
                    f"journal holds {held} there: its tail was cut and written again, or it was replaced")
    return None


def _parse(line: bytes, source: str) -> Anchor | None:
    try:  # the one strict reader: a line with a key given twice (a spoofed "hash") is no anchor
        doc = load_json(line, source, ANCHOR_LINE)
    except StrictLoadError:
        return None
    if not isinstance(doc, dict):
        return None
    seq, digest = doc.get("seq"), doc.get("hash")
    if type(seq) is not int or seq < 1 or not isinstance(digest, str) or not _HASH.fullmatch(digest):
        return None
    return Anchor(seq, digest, source, str(doc.get("kind", "")), str(doc.get("campaign", "")),
                  str(doc.get("at", "")))


def _torn(line: bytes) -> bool:
    """What power lost inside a write leaves: zeros, or the start of an anchor line without its end."""
    return not line.strip(b"\x00") or (line.startswith(b'{"') and not line.rstrip().endswith(b"}"))


def _numbers(lines: list[int]) -> str:
    return ", ".join(map(str, lines[:5])) + (f" and {len(lines) - 5} more" if len(lines) > 5 else "")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return  # some file systems refuse to open a directory; the file's own fsync is what we have
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_failed(path: Path, exc: OSError, doing: str) -> JournalWriteFailed:
    if exc.errno == errno.ENOSPC:
        return JournalWriteFailed(f"{doing} ({path}): the disk is full; free space, then "
                                  "`cmspatch run --resume`", reason="disk-full")
    return JournalWriteFailed(f"{doing} ({path}): {exc.strerror or exc}", reason="anchor-write")
