"""``cmspatch profile check``'s judgement: does a monitor answer its profile's read-only commands the way
the profile says? Pure: the CLI runs the commands and passes what came back.

Only read-only commands are judged (the status, firmware and free-space reads, the boot identity read
without its marker): the check runs the day a vendor's procedure arrives, on monitors that may be in
clinical use, so nothing here installs, removes, reboots or triggers. The status is read with the one
clinical parser and the profile's grammar; its answer (clear or why not) is reported, never acted on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orchestrator.domain.boot import parse_identity
from orchestrator.domain.clinical import may_disturb
from orchestrator.domain.profile import DeviceProfile

SHOWN = 400  # characters of each output kept in the report
_NOT_FOUND = re.compile(r"not found|no such file|cannot execute|permission denied", re.I)
_DF_ROW = re.compile(r"^\S+\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+%\s+(\S+)\s*$")


@dataclass(frozen=True)
class Answer:
    step: str
    command: str
    exit_status: int | None
    output: str  # stdout, then stderr, cut to SHOWN characters
    parses: bool  # the answer is what the profile says it should be
    meaning: str  # what it says, or why it does not parse

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "command": self.command, "exit_status": self.exit_status,
                "output": self.output, "parses": self.parses, "meaning": self.meaning}


def judge(profile: DeviceProfile, step: str, command: str, exit_status: int | None, stdout: str,
          stderr: str) -> Answer:
    """One command's answer against the profile."""
    output = (stdout + (("\n" + stderr) if stderr.strip() else "")).strip()[:SHOWN]

    def answer(parses: bool, meaning: str) -> Answer:
        return Answer(step, command, exit_status, output, parses, meaning)

    said = stderr.strip()[:120] or "no message"
    if exit_status == 127 or (exit_status not in (0, None) and _NOT_FOUND.search(stderr)):
        return answer(False, f"the command is missing on the monitor (exit {exit_status}): {said}")
    if exit_status != 0:
        return answer(False, f"the command failed (exit {exit_status}): {said}")
    if step == "clinical_status":
        gate = may_disturb(stdout, profile.status)
        if gate.status is None:
            g = profile.status
            return answer(False, f"does not say {g.patient.key}={g.patient.clear}|{'|'.join(g.patient.busy)} "
                          f"and {g.alarm.key}={g.alarm.clear}|{'|'.join(g.alarm.busy)} unambiguously: a "
                          "campaign would never disturb this monitor")
        return answer(True, "clear to disturb" if gate.allowed else f"not now: {gate.why_not}")
    if step == "firmware_read":
        first = stdout.strip().splitlines()[0].strip() if stdout.strip() else ""
        return answer(bool(first), f"version {first!r}" if first else "printed no version")
    if step == "free_space":
        rows = [m for line in stdout.splitlines() if (m := _DF_ROW.match(line.strip()))]
        if not rows:
            return answer(False, "no df-style row (filesystem, 1K-blocks, used, available, use%, mount)")
        return answer(True, f"{int(rows[-1].group(3))} KiB free on {rows[-1].group(4)}")
    if step == "boot_identity":
        identity = parse_identity(stdout)
        if not identity.readable:
            return answer(False, "neither a boot id nor an uptime: a reboot could never be proven")
        return answer(True, f"boot id {identity.boot_id or '(none)'}, uptime {identity.uptime}")
    return answer(True, "answered")
