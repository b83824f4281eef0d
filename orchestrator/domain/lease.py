"""A lease held on the monitor itself: one controller, one campaign drives a monitor at a time.

A journal's claims only stop campaigns that share that journal. Two engineers with two journals (or a
copied journal, or a second laptop) would both push to the same monitors, and one campaign's reboot cuts
the other's verification. So the monitor carries the truth: a file in its upload directory (persistent,
so it survives the reboot) naming the campaign, the controller and the time the lease runs out.

The only atomic primitives a BusyBox monitor offers over a service shell are ``link`` (fails when the
name exists) and ``rename``; every operation is one shell script built here:

- **take** (no lease): write a temp file, ``ln`` it to the lease name. The content is complete the
  moment the name exists, and of two controllers racing, exactly one link succeeds.
- **renew** (ours): check the content is still ours, ``mv`` a new file over it (no instant without one).
- **take over** (someone else's, expired) and **release** (ours): ``mv`` the lease aside to a name only
  this shell uses (one of two racers gets it), compare what was moved with what was decided on; on a
  mismatch put it back with ``ln`` (never over a newer lease) and report a conflict.

Every script prints ``@ok`` or ``@conflict`` followed by the lease file as it now is, so the caller
decides again from fresh facts (``decide``) after a conflict.

Times are seconds since the epoch on the controller's clock (passed in: no clock here). Whose lease it
is goes by campaign: a resumed campaign (a new process, maybe another host with the journal) takes its
own lease back; the journal's claims make sure only one process drives one campaign.

Deliberately left out: no I/O and no clock; no fencing token (a controller that stalls past the expiry
while a step runs can still finish that step: the TTL is sized from the policy's step timeouts so a
lease outlives any one step by far, and the lease is renewed between steps).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

LEASE_NAME = ".cmspatch-lease"
MAGIC = "cmspatch-lease/1"
HELD_ELSEWHERE = "held-by-another-controller"  # deferral reason when another controller holds the lease

_SAFE = re.compile(r"[^A-Za-z0-9._:@+-]")
_FIELD = re.compile(r"(\w+)=(\S*)")


def lease_path(upload_dir: str) -> str:
    return f"{upload_dir.rstrip('/')}/{LEASE_NAME}"


def lease_ttl(*step_timeouts: float) -> int:
    """Seconds a lease lasts: twice the longest step plus a margin, never under ten minutes."""
    return int(max(600.0, 2 * max(step_timeouts, default=0.0) + 60.0))


@dataclass(frozen=True)
class Lease:
    campaign: str
    holder: str  # who runs that campaign: "host:pid"
    expires: int  # epoch seconds, controller clock
    raw: str = ""  # the line as read from the monitor (empty for a lease made here)

    def text(self) -> str:
        """The one line written to the monitor (shell-safe: no quotes, no blanks inside a value)."""
        return f"{MAGIC} campaign={_safe(self.campaign)} holder={_safe(self.holder)} expires={self.expires}"

    def line(self) -> str:
        """The line on the monitor this value stands for (for comparing before replacing it)."""
        return self.raw or self.text()

    def live(self, now: float) -> bool:
        return now < self.expires

    def to_dict(self) -> dict[str, Any]:
        return {"campaign": self.campaign, "holder": self.holder, "expires": self.expires,
                "expires_at": _iso(self.expires)}

    def describe(self) -> str:
        return f"campaign {self.campaign} on {self.holder}, lease until {_iso(self.expires)}"


def new_lease(campaign: str, holder: str, now: float, ttl: int) -> Lease:
    return Lease(campaign=campaign, holder=holder, expires=int(now) + ttl)


def parse_lease(text: str) -> Lease | None:
    """The lease a monitor holds, from the file's content; ``None`` when there is none.

    A file that is there but does not read as a lease (foreign, damaged) is an expired lease of an
    unknown holder: it may be taken over (and that is journalled with the raw content), never ignored."""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not line:
        return None
    fields = dict(_FIELD.findall(line))
    if not line.startswith(MAGIC + " ") or not fields.get("expires", "").isdigit():
        return Lease(campaign="(unreadable lease)", holder="(unknown)", expires=0, raw=line)
    return Lease(campaign=fields.get("campaign", ""), holder=fields.get("holder", ""),
                 expires=int(fields["expires"]), raw=line)


class LeaseAction(StrEnum):
    TAKE = "take"  # no lease: take it
    RENEW = "renew"  # our campaign's lease (this run's, or an interrupted run's): renew it
    TAKE_OVER = "take-over"  # another campaign's lease ran out: take it over and say so
    HELD = "held"  # another campaign holds a live lease: leave the monitor alone


def decide(current: Lease | None, campaign: str, now: float) -> LeaseAction:
    if current is None:
        return LeaseAction.TAKE
    if current.campaign == _safe(campaign):
        return LeaseAction.RENEW
    return LeaseAction.HELD if current.live(now) else LeaseAction.TAKE_OVER


@dataclass(frozen=True)
class LeaseResult:
    ok: bool
    current: Lease | None  # the lease on the monitor after the script ran


def parse_result(output: str) -> LeaseResult:
    """Read a script's answer: ``@ok`` or ``@conflict``, then the lease file as it now is.

    Anything else (the command did not run, a shell that prints something unexpected) is a conflict
    with an unknown lease: the caller reads again rather than assume it holds the monitor."""
    lines = output.splitlines()
    head = lines[0].strip() if lines else ""
    rest = "\n".join(lines[1:])
    return LeaseResult(ok=head == "@ok", current=parse_lease(rest))


def read_command(path: str) -> str:
    return f"echo @ok; cat {path} 2>/dev/null; true"


def take_command(path: str, new: Lease) -> str:
    return f"mkdir -p {_dir(path)}; " + _link_new(path, new) + _answer(path)


def renew_command(path: str, old: Lease, new: Lease) -> str:
    tmp = f"{path}.new.$$"
    return (f"printf '%s\\n' {shlex.quote(new.text())} > {tmp} "
            f"&& [ \"$(cat {path} 2>/dev/null)\" = {shlex.quote(old.line())} ] "
            f"&& mv -f {tmp} {path} && R=@ok || {{ rm -f {tmp}; R=@conflict; }}; " + _answer(path))


def take_over_command(path: str, old: Lease, new: Lease) -> str:
    return _swap(path, old, _link_new(path, new))


def release_command(path: str, old: Lease) -> str:
    return _swap(path, old, "R=@ok; ")


def _swap(path: str, old: Lease, then: str) -> str:
    """Move the lease aside (atomic: one racer gets it); if it is the one decided on, ``then``;
    otherwise put it back without replacing a newer one."""
    aside = f"{path}.aside.$$"
    return (f"if mv {path} {aside} 2>/dev/null; then "
            f"if [ \"$(cat {aside})\" = {shlex.quote(old.line())} ]; then rm -f {aside}; {then}"
            f"else ln {aside} {path} 2>/dev/null; rm -f {aside}; R=@conflict; fi; "
            f"else R=@conflict; fi; " + _answer(path))


def _link_new(path: str, new: Lease) -> str:
    tmp = f"{path}.new.$$"
    return (f"printf '%s\\n' {shlex.quote(new.text())} > {tmp} && ln {tmp} {path} 2>/dev/null "
            f"&& R=@ok || R=@conflict; rm -f {tmp}; ")


def _answer(path: str) -> str:
    return f"echo $R; cat {path} 2>/dev/null; true"


def _dir(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def _safe(value: str) -> str:
    return _SAFE.sub("_", value) or "_"


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
