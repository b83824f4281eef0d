"""A reader that leaves early (`cmspatch inventory list | head -1`) is not a bug: no 'internal error'."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_a_reader_that_leaves_early_is_not_an_internal_error(tmp_path: Path) -> None:
    hosts = "\n".join(
        f"            ward-bed{i:04d}: {{serial_number: 'SN{i:05d}', bed: '{i}', delivery: manual}}"
        for i in range(3000))  # far more lines than a pipe holds
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        "all:\n  vars: {model: CMS8000}\n  children:\n    north:\n      vars: {site: north}\n"
        f"      children:\n        icu:\n          vars: {{ward: icu}}\n          hosts:\n{hosts}\n")
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli.main", "inventory", "list",
                             "-i", str(inventory)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.read(10)
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert b"internal error" not in err and b"Traceback" not in err, err
    assert proc.returncode == 141  # as a shell tool stopped by SIGPIPE ends
