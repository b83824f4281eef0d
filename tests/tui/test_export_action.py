"""The TUI's export action: a key, a modal (format, file), ``cmspatch export``'s own function over the
window's journal, written atomically; a refusal is shown in words, never a traceback.

The campaign is real (engine, journal file, verification) on scripted monitors; the window is wired by
``cli.tui`` as ``cmspatch tui --journal J --campaign C --read-only`` wires it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Select

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.cli.main import main
from orchestrator.cli.tui import _exports
from tests.tui.conftest import wait_for
from tests.unit.engine_rules_rig import Rules, device, policy, signed_package
from tui.app import CmspatchApp
from tui.screens.modals import ExportModal
from tui.session import Session, SessionConfig

SIZE = (100, 30)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    package = signed_package(tmp_path_factory.mktemp("package"))
    rules = Rules(tmp_path_factory.mktemp("campaign"), package, (device(1), device(2)), durable=True)
    rules.monitor(2).install_exit = 5  # one failed, so the counts say something
    try:
        engine, _ = rules.run(policy(canary_must_pass=False))
        yield rules.journal_path, engine.campaign_id
    finally:
        rules.close()


def _app(journal_path: Path, campaign_id: str) -> tuple[CmspatchApp, SqliteJournal]:
    journal = SqliteJournal(journal_path, read_only=True)
    config = SessionConfig(operator="a.rossi", read_only=True, campaign_id=campaign_id)
    config.read_journal = lambda since: journal.records(since_seq=since)
    _exports(config, journal_path)
    return CmspatchApp(Session(config)), journal


def _notes(app: CmspatchApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def _export(app: CmspatchApp, pilot: Any, fmt: str, out: str) -> None:
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(app.screen, ExportModal), what="the export modal")
    app.screen.query_one("#export-format", Select).value = fmt
    await pilot.pause()
    app.screen.query_one("#export-out", Input).value = out
    await pilot.click("#export-yes")


async def test_the_export_key_writes_what_cmspatch_export_writes(campaign: tuple[Path, str],
                                                                 tmp_path: Path) -> None:
    journal_path, campaign_id = campaign
    app, journal = _app(journal_path, campaign_id)
    out = tmp_path / "from-tui.json"
    with journal:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.model.campaign_id == campaign_id, what="the journal read")
            await _export(app, pilot, "json", str(out))
            await wait_for(pilot, lambda: any("wrote" in n for n in _notes(app)), what="the export")
            assert any(f"wrote {out} (json" in n and "2 monitors" in n for n in _notes(app))
    assert main(["export", "--journal", str(journal_path), "--format", "json",
                 "--out", str(tmp_path / "from-cli.json")]) == 0
    tui_doc, cli_doc = (json.loads(p.read_text()) for p in (out, tmp_path / "from-cli.json"))
    for doc in (tui_doc, cli_doc):
        doc.pop("generated_at", None)
        doc.get("document", {}).pop("generated_at", None)
    assert tui_doc == cli_doc  # one export function: the same document, whoever asked
    assert sorted(p.name for p in tmp_path.iterdir()) == ["from-cli.json", "from-tui.json"]  # no temp left


async def test_an_export_to_a_missing_directory_is_refused_in_words(campaign: tuple[Path, str],
                                                                    tmp_path: Path) -> None:
    journal_path, campaign_id = campaign
    app, journal = _app(journal_path, campaign_id)
    with journal:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.model.campaign_id == campaign_id, what="the journal read")
            await _export(app, pilot, "csv", str(tmp_path / "nowhere" / "x.csv"))
            await wait_for(pilot, lambda: any("no such directory" in n for n in _notes(app)),
                           what="the refusal")
            assert not any("internal error" in n or "Traceback" in n for n in _notes(app))
            assert app.is_running and not isinstance(app.screen, ExportModal)
    assert not (tmp_path / "nowhere").exists()
