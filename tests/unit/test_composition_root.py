"""The front ends that drive a campaign (cmspatch run, the TUI, the demo, the benchmark) get their
transports and their sinkhole from the composition root (``orchestrator.wiring``), never by building an
adapter themselves: a second copy is how front ends drifted apart before (issue 14)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FRONT_ENDS = ("orchestrator/cli/campaign.py", "orchestrator/cli/tui.py", "orchestrator/demo.py",
              "bench/bench_campaign.py")
BUILT_IN_WIRING = {"Sinkhole", "SshTransport", "AnsibleTransport", "ManualTransport"}
# Not a campaign: enrolment reads host keys for a person to check, over a transport of its own.
ALLOWED = {("orchestrator/cli/campaign.py", "cmd_enroll", "SshTransport")}


def _constructions(path: str) -> list[tuple[str, str, int]]:
    """(enclosing function, class built, line) of each call of an adapter class in ``path``."""
    tree = ast.parse((REPO / path).read_text(encoding="utf-8"))
    found: list[tuple[str, str, int]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if isinstance(child, ast.Call):
                callee = child.func
                called = callee.id if isinstance(callee, ast.Name) else \
                    callee.attr if isinstance(callee, ast.Attribute) else ""
                if called in BUILT_IN_WIRING:
                    found.append((function, called, child.lineno))
            visit(child, name)

    visit(tree, "<module>")
    return found


@pytest.mark.parametrize("path", FRONT_ENDS)
def test_a_front_end_builds_no_transport_or_sinkhole_of_its_own(path: str) -> None:
    built = [(f, c, line) for f, c, line in _constructions(path) if (path, f, c) not in ALLOWED]
    assert built == [], f"{path} builds {built}: ask orchestrator.wiring (transports, sinkhole)"
