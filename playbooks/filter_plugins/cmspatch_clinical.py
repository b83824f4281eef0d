"""Ansible filter ``cmspatch_clinical``: cmspatch's one clinical gate, for the playbooks.

``{{ cmspatch_status | cmspatch_clinical(grammar) }}`` takes the registered result of the profile's status
command (``grammar``: the host's profile's, from ``cmspatch_profile_commands``; none: the shipped one) and
returns ``{"allowed": bool, "reason": "<Deferral>" or "", "why_not": "plain words"}``, decided by
``orchestrator.domain.clinical.may_disturb``, the function the engine, survey and verify call. A
command that failed (rc != 0), was skipped or never reached the monitor counts as no output at all:
the status is unknown, so the monitor is not disturbed. Nothing is parsed here: a second parser of
``cms-status`` is how a playbook once read "unreadable" as "proceed".

Ansible loads this file because it sits in ``filter_plugins/`` next to the playbooks (ansible-playbook,
ansible-runner and AWX alike). The gate is imported from the repository this file ships in (the AWX
project, a checkout), falling back to an installed cmspatch; it is pure Python with no dependency.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[2]
if (_REPO / "orchestrator" / "domain" / "clinical.py").is_file() and str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from orchestrator.domain.clinical import DEFAULT_GRAMMAR, StatusGrammar, StatusKey, may_disturb  # noqa: E402


def _grammar(spec: Mapping[str, Any] | None) -> StatusGrammar:
    if not spec:
        return DEFAULT_GRAMMAR
    keys = {role: StatusKey(str(spec[role]["key"]), str(spec[role]["clear"]),
                            tuple(str(b) for b in spec[role]["busy"])) for role in ("patient", "alarm")}
    return StatusGrammar(patient=keys["patient"], alarm=keys["alarm"])


def cmspatch_clinical(result: Any, grammar: Mapping[str, Any] | None = None) -> dict[str, Any]:
    ran = (isinstance(result, Mapping) and result.get("rc") == 0 and not result.get("unreachable")
           and not result.get("skipped") and isinstance(result.get("stdout"), str))
    gate = may_disturb(str(result["stdout"]) if ran else None, _grammar(grammar))
    return {"allowed": gate.allowed, "reason": gate.reason.value if gate.reason else "",
            "why_not": gate.why_not}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"cmspatch_clinical": cmspatch_clinical}
