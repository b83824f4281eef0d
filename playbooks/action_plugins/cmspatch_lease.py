"""Ansible action ``cmspatch_lease``: the monitor's lease, for the playbooks, with cmspatch's own code.

    - cmspatch_lease: {state: acquire, campaign: "{{ cmspatch_campaign }}",
                       upload_dir: "{{ cmspatch_cmd.upload_dir }}"}   # the device profile's
      register: cmspatch_lease
    - cmspatch_lease: {state: renew|release, campaign: ..., upload_dir: ...,
                       held: "{{ cmspatch_lease.held }}"}

One driver per monitor: an AWX job and a cmspatch campaign (or two jobs) must not both push to a
monitor, so ``playbooks/patch.yml`` holds the same lease the engine holds (``.cmspatch-lease`` in the
upload directory). The decisions and the BusyBox scripts are ``orchestrator.device_lease.DeviceLease``
and ``orchestrator.domain.lease``, the engine's; this plugin only runs each script over the task's
connection, exactly as ``raw`` does (``_low_level_execute_command``: no module, no Python on the
monitor), and returns ``held`` (the lease line, to hand back to renew/release), ``held_by`` (another
campaign's live lease, in words, when the monitor must be left alone) and ``taken_over``.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

_REPO = Path(__file__).resolve().parents[2]
if (_REPO / "orchestrator" / "device_lease.py").is_file() and str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from orchestrator.device_lease import DeviceLease  # noqa: E402
from orchestrator.domain.lease import lease_ttl, parse_lease  # noqa: E402
from orchestrator.errors import CmspatchError  # noqa: E402


@dataclass(frozen=True)
class _Result:
    ok: bool
    text: str


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset({"state", "campaign", "upload_dir", "ttl", "held"})

    def run(self, tmp: Any = None, task_vars: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        args = self._task.args
        state = str(args.get("state", "acquire"))
        campaign = str(args.get("campaign") or "")
        upload_dir = str(args.get("upload_dir") or "")  # the device profile's (cmspatch_cmd.upload_dir)
        if state not in ("acquire", "renew", "release") or not campaign or not upload_dir:
            return {**result, "failed": True, "msg": "cmspatch-reason=usage: cmspatch_lease needs state "
                    "acquire|renew|release, campaign and upload_dir"}
        notes: list[str] = []

        def run(command: str) -> _Result:
            done = self._low_level_execute_command(command, executable=False)
            return _Result(done.get("rc") == 0, str(done.get("stdout", "")))

        lease = DeviceLease(campaign=campaign, upload_dir=upload_dir,
                            ttl=int(args.get("ttl") or lease_ttl(900.0)), run=run,
                            log=lambda level, message, data: notes.append(message),
                            holder=f"ansible:{socket.gethostname()}")
        lease.held = parse_lease(str(args.get("held") or "")) if state != "acquire" else None
        try:
            if state == "acquire":
                other = lease.acquire()
                if other is not None:
                    return {**result, "changed": False, "held": "", "taken_over": False,
                            "held_by": other.describe(), "msg": f"held by {other.describe()}"}
            elif state == "renew":
                lost = lease.renew()
                if lost is not None:
                    return {**result, "failed": True, "held": "", "held_by": lost.describe(),
                            "msg": f"cmspatch-reason=lease-lost: the monitor now names {lost.describe()}"}
            else:
                lease.release()
        except CmspatchError as exc:
            return {**result, "failed": True, "msg": f"cmspatch-reason={exc.reason}: {exc.message}"}
        return {**result, "changed": state != "renew", "held": lease.held.line() if lease.held else "",
                "held_by": "", "taken_over": any("taken over" in n for n in notes), "notes": notes}
