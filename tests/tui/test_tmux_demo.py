"""End to end, as a person would: ``cmspatch demo`` in a real terminal (tmux), keys sent, the screen
read back. Waits on text appearing on the screen, with a timeout, never on fixed sleeps."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import unique_prefixes

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (make deps)")
CMSPATCH = str(Path(sys.executable).with_name("cmspatch"))


class Terminal:
    def __init__(self, name: str) -> None:
        self.name = name

    def screen(self) -> str:
        out = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True,
                             check=False)
        return out.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, text: str, timeout: float = 30.0) -> float:
        start = time.monotonic()
        while text not in " ".join(self.screen().split()):  # a wrapped line still reads the same
            if time.monotonic() - start > timeout:
                pytest.fail(f"{text!r} did not appear within {timeout}s; screen:\n{self.screen()}")
            time.sleep(0.1)  # polling the screen, bounded by the timeout above
        return time.monotonic() - start


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[tuple[Terminal, Path, str, int]]:
    prefix, indicator_map, _ = unique_prefixes()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    name = f"cmspatch-test-{port}"
    workdir = tmp_path / "demo"
    command = (f"{CMSPATCH} demo --fast --monitors 6 --workdir {workdir} --address-prefix {prefix} "
               f"--port {port} --indicator-prefix {indicator_map.loopback_prefix}; echo EXITED $?; sleep 120")
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "160", "-y", "50", command], check=True)
    subprocess.run(["tmux", "resize-window", "-t", name, "-x", "160", "-y", "50"], check=False)
    try:
        yield Terminal(name), workdir, prefix, port
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], check=False, capture_output=True)


def test_demo_in_a_real_terminal_starts_approves_and_cleans_up(
        terminal: tuple[Terminal, Path, str, int]) -> None:
    term, workdir, prefix, port = terminal
    first_screen = term.wait_for("7 monitors:")
    print(f"first screen after {first_screen:.1f}s")  # reported, not asserted: timing belongs to bench/
    term.keys("p")
    term.wait_for("PACKAGE ACCEPTED")
    term.keys("s")
    term.wait_for("Start the campaign?")
    term.keys("Tab", "Enter")  # focus starts on Cancel: the safe choice
    term.wait_for("wave 2 needs approval")
    assert "✔ done 1/1" in term.screen()
    term.keys("a")
    term.wait_for("Approve wave 2?")
    term.keys("Tab", "Enter")
    term.wait_for("wave 2 approved by")
    term.keys("f")
    term.wait_for("✔ patched")
    term.keys("C-q")
    term.wait_for("Quit while the campaign runs?")
    term.keys("Tab", "Enter")
    term.wait_for("EXITED 0")
    with socket.socket() as s:  # the fleet is gone: nothing listens on the first monitor any more
        assert s.connect_ex((f"{prefix}.0.1", port)) != 0
    assert (workdir / "journal.db").exists()  # --workdir keeps the journal for audit/resume
