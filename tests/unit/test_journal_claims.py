"""One campaign at a time drives a monitor: claims beside the journal, live while their campaign's lock
is held (the kernel's fact, released when the process dies), refused on overlap, stale ones taken over."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from orchestrator.adapters.journal_claims import Claims
from orchestrator.errors import CampaignLocked


def test_a_campaign_on_monitors_another_live_campaign_drives_is_refused_naming_it(tmp_path: Path) -> None:
    claims = Claims(tmp_path / "j.db")
    with claims.hold("c-first", ["bed1", "bed2"], "host:1"):
        with pytest.raises(CampaignLocked, match=r"campaign c-first \(host:1, since .*bed2"), \
                claims.hold("c-second", ["bed2", "bed3"], "host:2"):
            pass
        with claims.hold("c-third", ["bed3"], "host:3") as taken_over:  # disjoint: allowed
            assert taken_over == []


def test_the_same_campaign_twice_is_refused_naming_who_runs_it(tmp_path: Path) -> None:
    claims = Claims(tmp_path / "j.db")
    with claims.hold("c-1", ["bed1"], "host:1"), pytest.raises(CampaignLocked, match=r"host:1"), \
            Claims(tmp_path / "j.db").hold("c-1", ["bed1"], "host:2"):
        pass


def test_a_claim_released_is_gone_so_the_next_campaign_may_drive_those_monitors(tmp_path: Path) -> None:
    claims = Claims(tmp_path / "j.db")
    with claims.hold("c-1", ["bed1"], "host:1"):
        pass
    with claims.hold("c-2", ["bed1"], "host:2") as taken_over:
        assert taken_over == []
    assert json.loads(claims.path.read_text()) == []


def _hold_and_die(journal: Path, ready: object) -> None:
    import os

    claims = Claims(journal)
    with claims.hold("c-dead", ["bed1", "bed2"], "host:dead"):
        ready.set()  # type: ignore[attr-defined]
        os._exit(9)  # like kill -9: no cleanup, the claim stays in the file; the kernel drops the lock


def test_the_claim_of_a_process_that_died_is_taken_over_and_reported(tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    child = ctx.Process(target=_hold_and_die, args=(journal, ready))
    child.start()
    child.join(timeout=30)
    assert ready.is_set() and child.exitcode == 9
    assert "c-dead" in Claims(journal).path.read_text()
    with Claims(journal).hold("c-new", ["bed2"], "host:new") as taken_over:
        assert [c.campaign for c in taken_over] == ["c-dead"]


@pytest.mark.parametrize("garbled", ['[{"campaign": "c-1", "campaign": "c-2"}]', "{not json", '{"a": 1}'])
def test_a_claims_file_that_does_not_read_is_refused_never_taken_for_no_claims(tmp_path: Path,
                                                                                garbled: str) -> None:
    from orchestrator.errors import JournalCorrupt

    claims = Claims(tmp_path / "j.db")
    claims.path.write_text(garbled)
    with pytest.raises(JournalCorrupt) as err, claims.hold("c-3", ["bed1"], "host:3"):
        pass
    assert err.value.reason == "claims-unreadable"
