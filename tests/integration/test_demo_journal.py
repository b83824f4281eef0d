"""``make demo`` says where its journal is, keeps it when asked (``KEEP=1`` / ``cmspatch demo --keep``)
and ends naming the journal and the commands that read it; without the flag it says the journal went.

A real demo (one emulated monitor over SSH, headless, fast timings), in its own temporary directory."""

from __future__ import annotations

import re
import socket
import tempfile
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from tests.integration.conftest import unique_prefixes


def _demo(keep: bool, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    prefix, indicator_map, _ = unique_prefixes()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    args = ["demo", "--headless", "--fast", "--monitors", "1", "--address-prefix", prefix,
            "--port", str(port), "--indicator-prefix", indicator_map.loopback_prefix,
            *(["--keep"] if keep else [])]
    main(args)
    err = capsys.readouterr().err
    found = re.search(r"cmspatch demo: journal (\S+) \(", err)
    assert found, err
    return Path(found.group(1)), err


def test_a_kept_demo_names_its_journal_and_the_export_that_reads_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the demo's own directory lands here
    journal, err = _demo(True, capsys)
    assert f"journal {journal} (kept after the demo)" in err
    assert journal.is_file() and journal.is_relative_to(tmp_path)
    command = re.search(r"report: cmspatch (export --journal \S+ --format html --out \S+)", err)
    assert command, err
    out = tmp_path / "report.html"
    words = command.group(1).split()
    words[words.index("--out") + 1] = str(out)
    assert main(words) == 0  # the command it printed works as printed
    assert "campaign" in out.read_text()
    watch = re.search(r"watch:  cmspatch tui --journal (\S+) --campaign (\S+) --read-only", err)
    assert watch and watch.group(1) == str(journal) and watch.group(2).startswith("c-"), err


def test_a_demo_not_kept_says_its_journal_went_and_how_to_keep_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    journal, err = _demo(False, capsys)
    assert "removed when the demo ends: keep it with make demo KEEP=1" in err
    assert f"the journal {journal} went with the demo; to keep it: make demo KEEP=1" in err
    assert not journal.exists()
