"""Several read-only device checks in ONE round trip: a BusyBox ``sh`` script and the parser of its output.

Each check's command (``checks.CATALOGUE``) is run exactly as it would be on its own, and what it wrote
comes back framed by marker lines that carry a nonce the caller draws at random for this batch, so
whatever a monitor's files or binaries contain cannot end or forge a check's section: a marker without
the nonce is just output. (A device whose shell is compromised could read the nonce from our own command
line and forge anything; so could it fake any single command's output. The nonce is against *data*
that looks like a marker, not against a lying shell.)

Per check the script prints (``\\n`` a newline)::

    \\n<nonce> begin <check>\\n <stdout> \\n<nonce> stderr <check>\\n <stderr> <space><exit status>
    \\n<nonce> end <check>\\n

stdout goes straight through (byte for byte, NULs included); stderr is captured by the shell
(``$(...)``), so the exit status is appended after a space to keep its trailing newlines, and a NUL in
it would be lost (BusyBox error messages have none). The caller therefore sees, per check, the same
stdout, stderr and exit status as from a command of its own, and the evidence parsed from it (and the
hash of its raw output) is the same.

Pure: the nonce is the caller's (``secrets.token_hex``), nothing here touches a device.
Deliberately left out: anything that writes on the device (no temporary files; the capture is in the
shell) and running checks concurrently on the monitor (they are cheap; one shell keeps it predictable).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator.domain.checks import CATALOGUE

_NONCE = re.compile(r"[0-9a-f]{16,64}")
_STATUS = re.compile(rb"[0-9]{1,3}")


@dataclass(frozen=True)
class CheckOutput:
    stdout: bytes
    stderr: bytes
    exit_status: int


def _marker(nonce: str, kind: str, check: str) -> bytes:
    return f"\n{nonce} {kind} {check}\n".encode()


def batch_script(names: Sequence[str], nonce: str, commands: Mapping[str, str] | None = None) -> str:
    """One BusyBox ``sh`` script running the device checks ``names`` in order (see the module doc);
    ``commands``: the device profile's (``checks.device_commands``), default the catalogue's."""
    if not _NONCE.fullmatch(nonce):
        raise ValueError("nonce must be 16-64 lowercase hex digits")
    if len(set(names)) != len(names):
        raise ValueError("a check may appear only once in a batch")
    lines = ["exec 3>&1"]  # fd 3: the real stdout, while stdout of $(...) collects a check's stderr
    for name in names:
        spec = CATALOGUE.get(name)
        if spec is None or spec.command is None:
            raise ValueError(f"{name!r} is not a device check")
        command = (commands or {}).get(name, spec.command)
        lines += [
            f"printf '\\n%s begin %s\\n' {nonce} {name}",
            f"e=$( {{ {command}",
            "} 2>&1 >&3 3>&-; printf ' %d' \"$?\" )",
            f"printf '\\n%s stderr %s\\n%s\\n%s end %s\\n' {nonce} {name} \"$e\" {nonce} {name}",
        ]
    return "\n".join(lines) + "\n"


def split_batch(output: bytes, nonce: str, names: Sequence[str]) -> Mapping[str, CheckOutput]:
    """The batch's stdout cut back into each check's output. A check whose section is incomplete (the
    shell died, the output was cut) is absent: it did not run as far as we can tell."""
    found: dict[str, CheckOutput] = {}
    pos = 0
    for name in names:
        begin, middle, end = (_marker(nonce, kind, name) for kind in ("begin", "stderr", "end"))
        start = output.find(begin, pos)
        if start < 0:
            continue
        body = start + len(begin)
        mid = output.find(middle, body)
        if mid < 0:
            continue
        tail = mid + len(middle)
        stop = output.find(end, tail)
        if stop < 0:
            continue
        stderr, _, status = output[tail:stop].rpartition(b" ")
        if not _STATUS.fullmatch(status):
            continue
        found[name] = CheckOutput(output[body:mid], stderr, int(status))
        pos = stop + len(end)
    return found
