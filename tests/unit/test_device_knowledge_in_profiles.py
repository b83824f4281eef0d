"""What a monitor is asked, and where its files are, lives in the device profiles only (issue 11).

A grep with the parser's eyes: every string literal of the engine, a monitor's steps, verification and
the Ansible content (playbooks' YAML and their plugins), docstrings aside, is searched for the shipped
profiles' commands and paths and for any path on a device's filesystem. A hit is a second copy of the
vendor's procedure that a new profile would not change: read it from ``DeviceProfile`` instead.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from orchestrator.adapters.profile_file import SHIPPED, load_profile

ROOT = Path(__file__).resolve().parents[2]
SCANNED = (ROOT / "orchestrator/engine.py", ROOT / "orchestrator/device_flow.py",
           ROOT / "orchestrator/verification.py", *sorted((ROOT / "playbooks").rglob("*.py")),
           *sorted((ROOT / "playbooks").rglob("*.yml")))
# A path on a monitor's filesystem, wherever it starts (not a URL's or a relative one's tail).
DEVICE_PATH = re.compile(r"(?<![\w.~:/])/(proc|sys|data|opt|etc|tmp|usr|s?bin|overlay|var|run|mnt|dev)(/|\b)")


@functools.cache
def _needles() -> tuple[frozenset[str], frozenset[re.Pattern[str]]]:
    """The shipped profiles' commands (their fixed part) and paths; a one-word command (``reboot``) is
    looked for in a command line only (after ``;``, ``&&``, ``|``, or with options), so the step of that
    name is not a hit."""
    plain: set[str] = set()
    words: set[re.Pattern[str]] = set()
    profiles = sorted(SHIPPED.glob("*.yml"))
    assert len(profiles) >= 2
    for path in profiles:
        p = load_profile(str(path))
        for template in (*p.commands.values(), *(c for c in p.triggers.values() if c)):
            fixed = template.split("{")[0].strip()
            if re.fullmatch(r"[a-z0-9]+", fixed):
                words.add(re.compile(rf"([;&|`(]\s*{re.escape(fixed)}\b|^{re.escape(fixed)}\s+-)"))
            else:
                plain.add(fixed)
        plain |= {p.upload_dir, *p.binaries.values(), p.boot.boot_id, p.boot.uptime, p.boot.marker}
    return frozenset(plain), frozenset(words)


def _python_strings(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def _yaml_strings(node: Any) -> Iterator[tuple[int, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _yaml_strings(key)
            yield from _yaml_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _yaml_strings(value)
    elif isinstance(node, str):
        yield 0, node


def _hits(path: Path, text: str) -> list[str]:
    plain, words = _needles()
    found = [n for n in plain if n in text] + [w.pattern for w in words if w.search(text)]
    return found + [m.group(0) for m in DEVICE_PATH.finditer(text)]


def test_no_monitor_command_or_path_outside_the_profiles() -> None:
    found = []
    for path in SCANNED:
        strings = (_python_strings(path) if path.suffix == ".py"
                   else _yaml_strings(yaml.safe_load(path.read_text())))
        for line, text in strings:
            if hits := _hits(path, text):
                found.append(f"{path.relative_to(ROOT)}:{line}: {text[:80]!r} names {', '.join(hits)}")
    assert found == []


def test_the_grep_finds_what_it_looks_for() -> None:
    # A test that can't fail is a defect: each kind of copy is caught.
    for copy in ("cms-status", "sysupgrade --no-reboot x", "echo; reboot", "reboot -f", "cat /proc/mounts",
                 "/overlay/upgrade/x", "mkdir -p /data/upgrade", "/usr/lib/cms/updater"):
        assert _hits(Path("x.py"), copy), copy
    for fine in ("reboot", "no reboot observed", "{{ cmspatch_cmd.reboot }}", "https://example.org/etc/x",
                 "reboot-timeout", "installed, not rebooted"):
        assert not _hits(Path("x.py"), fine), fine
