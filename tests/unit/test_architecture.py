"""Headless modules must not load Textual: the CLI runs on machines without a terminal UI.

import-linter (pyproject) proves the static imports; these tests prove it at run time, where a lazy
import inside a function or a plugin loaded by a dependency would show too (as Harlequin's
``test_import_hygiene`` does)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import orchestrator

# Modules allowed to load Textual on import (the TUI's own front end would be one):
FRONT_END_OF_THE_TUI: set[str] = set()  # none today: orchestrator.cli.tui imports tui only when run


def headless_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(orchestrator.__path__, "orchestrator.")]
    return sorted(n for n in names if n not in FRONT_END_OF_THE_TUI)


def test_importing_the_headless_cli_loads_no_textual() -> None:
    code = (
        "import sys, orchestrator.cli.main as m; m.build_parser(); "
        "bad = [n for n in sys.modules if n == 'textual' or n.startswith('textual.')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_headless_module_loads_textual() -> None:
    """Each module imported in turn in one fresh interpreter; the first that brings Textual is named."""
    modules = headless_modules()
    assert "orchestrator.engine" in modules and "orchestrator.wiring" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "    if any(n == 'textual' or n.startswith('textual.') for n in sys.modules):\n"
        "        print(name); sys.exit(1)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                            timeout=120)
    assert result.returncode == 0, f"loads textual: {result.stdout}{result.stderr}"


def test_the_engine_loads_no_adapter_at_run_time() -> None:
    """Importing the engine and a monitor's steps loads no ``orchestrator.adapters`` module, nor the
    verification that probes the network: they arrive as ports from ``orchestrator.wiring``."""
    code = (
        "import sys, orchestrator.engine, orchestrator.device_flow\n"
        "bad = sorted(n for n in sys.modules if n.startswith(('orchestrator.adapters', "
        "'orchestrator.verification', 'paramiko', 'textual')))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
