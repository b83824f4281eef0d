"""The monitor lease's decisions and its shell scripts (run by real BusyBox ``sh``, as on a monitor)."""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from orchestrator.domain.lease import (
    LeaseAction,
    decide,
    lease_path,
    new_lease,
    parse_lease,
    parse_result,
    read_command,
    release_command,
    renew_command,
    take_command,
    take_over_command,
)

BUSYBOX = shutil.which("busybox")
needs_busybox = pytest.mark.skipif(BUSYBOX is None, reason="BusyBox not installed")


def sh(command: str) -> str:
    assert BUSYBOX is not None
    return subprocess.run([BUSYBOX, "sh", "-c", command], capture_output=True, text=True, check=True).stdout


def test_no_lease_is_taken_ours_is_renewed_a_live_other_is_held_an_expired_other_is_taken_over() -> None:
    other = new_lease("c-other", "host:1", now=1000, ttl=600)
    assert decide(None, "c-me", 1000) is LeaseAction.TAKE
    assert decide(new_lease("c-me", "elsewhere:9", 1000, 600), "c-me", 1599) is LeaseAction.RENEW
    assert decide(other, "c-me", 1599) is LeaseAction.HELD
    assert decide(other, "c-me", 1600) is LeaseAction.TAKE_OVER


def test_a_file_that_is_not_a_lease_counts_as_an_expired_one_never_as_no_lease() -> None:
    foreign = parse_lease("somebody's notes\n")
    assert foreign is not None and foreign.expires == 0
    assert decide(foreign, "c-me", 1) is LeaseAction.TAKE_OVER
    assert parse_lease("") is None and parse_lease("\n\n") is None


def test_a_lease_line_reads_back_as_written_and_carries_nothing_the_shell_would_expand() -> None:
    lease = new_lease("c-1 $(reboot)", "host'x:2", now=5, ttl=10)
    back = parse_lease(lease.text())
    assert back is not None and back.expires == 15
    assert not set("$'\"` ;") & set(back.campaign + back.holder)


def test_an_unexpected_answer_is_a_conflict() -> None:
    assert not parse_result("").ok
    assert not parse_result("Permission denied\n").ok


@needs_busybox
def test_the_scripts_take_renew_refuse_and_release_on_a_busybox_shell(tmp_path: Path) -> None:
    path = lease_path(str(tmp_path / "upgrade"))
    a, b = new_lease("c-A", "h:1", 1000, 600), new_lease("c-B", "h:2", 1000, 600)
    assert parse_result(sh(read_command(path))).current is None
    assert parse_result(sh(take_command(path, a))).ok
    refused = parse_result(sh(take_command(path, b)))
    assert not refused.ok and refused.current is not None and refused.current.campaign == "c-A"
    a2 = new_lease("c-A", "h:1", 1100, 600)
    assert parse_result(sh(renew_command(path, a, a2))).ok
    assert not parse_result(sh(renew_command(path, a, a2))).ok  # renewing from a stale view is refused
    assert not parse_result(sh(release_command(path, a))).ok  # so is releasing a lease that changed
    assert parse_result(sh(take_over_command(path, a2, b))).ok
    assert parse_result(sh(release_command(path, b))).ok
    assert sorted(p.name for p in (tmp_path / "upgrade").iterdir()) == []


@needs_busybox
def test_of_controllers_racing_for_a_free_or_an_expired_lease_exactly_one_wins(tmp_path: Path) -> None:
    path = lease_path(str(tmp_path / "upgrade"))
    with ThreadPoolExecutor(4) as pool:
        for _ in range(15):
            takes = list(pool.map(lambda n: parse_result(sh(take_command(path, new_lease(
                f"c-{n}", "h", 1000, 600)))), range(4)))
            assert sum(r.ok for r in takes) == 1
            expired = parse_lease(sh(f"cat {path}"))
            assert expired is not None
            overs = list(pool.map(lambda n, old=expired: parse_result(sh(take_over_command(
                path, old, new_lease(f"c-t{n}", "h", 2000, 600)))), range(4)))
            assert sum(r.ok for r in overs) == 1
            winner = next(n for n, r in enumerate(overs) if r.ok)
            now = parse_lease(sh(f"cat {path}"))
            assert now is not None and now.campaign == f"c-t{winner}"
            sh(f"rm -f {path}")
