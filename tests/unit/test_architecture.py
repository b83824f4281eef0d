"""Headless modules must not load Textual: the CLI runs on machines without a terminal UI."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_headless_cli_loads_no_textual() -> None:
    code = (
        "import sys, orchestrator.cli.main as m; m.build_parser(); "
        "bad = [n for n in sys.modules if n == 'textual' or n.startswith('textual.')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
