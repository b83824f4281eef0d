"""Every reason a monitor can end failed with is a ``FailureReason`` with its sentence, like the trust
reasons: the transports' reason codes, the playbooks' ``cmspatch-reason=`` codes, the device profile's
installer outcomes and the unreachable reasons the failure budget sets apart. The journal keeps the code
as it always was; ``cmspatch status`` says what each failure means."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.cli.campaign import render_status
from orchestrator.domain.campaign import UNREACHABLE_REASONS
from orchestrator.domain.events import Event, EventKind
from orchestrator.domain.failures import EXPLANATIONS, FailureReason, explain
from orchestrator.domain.profile import INSTALL_REASONS
from orchestrator.domain.status import project
from orchestrator.domain.trust.reasons import Reason

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("orchestrator/adapters/ssh.py", "orchestrator/adapters/ansible.py",
           "orchestrator/adapters/ansible_events.py", "orchestrator/adapters/manual.py",
           "orchestrator/device_flow.py")
ANSIBLE_STEPS = ("upload", "reconnect")  # the steps adapters.ansible reports a failed task of


def _transport_reasons(path: str) -> set[str]:
    """Reason codes given to a *TransportError in ``path``, or assigned to a ``reason`` that one gets."""
    found: set[str] = set()
    for node in ast.walk(ast.parse((REPO / path).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if str(name).endswith("TransportError"):
                found |= {kw.value.value for kw in node.keywords
                          if kw.arg == "reason" and isinstance(kw.value, ast.Constant)}
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "reason"
                                                    for t in node.targets):
            found |= set(_values(node.value))
    return found


def _values(node: ast.expr) -> list[str]:
    """The strings an expression can give (``a if c else b``, ``a or b``); a condition's words are not."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _values(node.body) + _values(node.orelse)
    if isinstance(node, ast.BoolOp):
        return [v for value in node.values for v in _values(value)]
    if isinstance(node, ast.JoinedStr):  # the Ansible path's f"{step}-failed", for each step it names
        return [f"{step}-failed" for step in ANSIBLE_STEPS]
    return []


def test_every_failure_a_monitor_can_end_with_is_explained() -> None:
    codes = set().union(*(_transport_reasons(p) for p in SOURCES))
    playbooks = {m for f in (REPO / "playbooks").rglob("*.yml")
                 for m in re.findall(r"cmspatch-reason=([a-z0-9-]+)", f.read_text(encoding="utf-8"))}
    codes |= (playbooks - {"usage"}) | (set(INSTALL_REASONS) - {"ok"}) | set(UNREACHABLE_REASONS)
    assert codes - set(FailureReason) == set()
    assert set(EXPLANATIONS) == set(FailureReason)
    assert explain(Reason.WRONG_MODEL) == "the package is not approved for this monitor model"
    assert explain("something-new") == "something-new"


def test_status_says_what_each_failure_means() -> None:
    campaign = "c-1"
    header = {"waves": [["bed01", "bed02"]], "devices": {}, "policy": {}}
    events = [Event(campaign, EventKind.CAMPAIGN_CREATED, header)]
    for name, path in (("bed01", ["uploading", "failed"]), ("bed02", ["failed"])):
        current = "pending"
        for to in path:
            reason = "hash-mismatch" if to == "failed" else ""
            move = {"from": current, "to": to, "reason": reason, "wave": 0}
            events.append(Event(campaign, EventKind.STATE_CHANGED, move, name))
            current = to
    with SqliteJournal(":memory:") as journal:
        for event in events:
            journal.append(event)
        text = render_status(project(journal.records(campaign), campaign))
    assert f"  hash-mismatch (2): {EXPLANATIONS[FailureReason.HASH_MISMATCH]}" in text
