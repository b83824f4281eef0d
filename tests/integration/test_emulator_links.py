"""The emulator's monitors share BusyBox by hard links: past the filesystem's link limit (ext4: 65,000,
about 540 monitors) the links go on from a fresh copy, so a 1,000-monitor fleet can be built."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.emulator.rootfs import _link

LINKS = 66_000  # more than ext4 allows one file (65,000)


def test_links_past_the_filesystems_limit_continue_from_a_fresh_copy(tmp_path: Path) -> None:
    source = tmp_path / "busybox"
    source.write_bytes(b"\x7fELF busybox")
    (tmp_path / "roots").mkdir()
    targets = [f"{tmp_path}/roots/{n}" for n in range(LINKS)]
    for target in targets:
        _link(str(source), target)
    inodes = {os.stat(t).st_ino for t in (targets[0], targets[-1])}
    copies = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("busybox."))
    if os.stat(source).st_nlink < LINKS + 1:  # the filesystem has a limit (ext4, xfs...): a copy took over
        assert copies == ["busybox.2"] and len(inodes) == 2
    else:  # a filesystem without one (tmpfs): no copy was needed
        assert copies == [] and len(inodes) == 1
    assert all(Path(t).read_bytes() == b"\x7fELF busybox" for t in (targets[0], targets[-1]))
