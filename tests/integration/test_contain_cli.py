"""The blocking rules checked by the real tools (nft check mode, iptables-restore test mode: neither
applies anything), and the `cmspatch contain rules` command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.domain.blocking_rules import BlockSpec, render


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft (Debian package nftables) is not installed")
def test_nftables_rules_pass_nft_check_mode(tmp_path: Path) -> None:
    path = tmp_path / "contec.nft"
    path.write_text(render(BlockSpec.build(monitors=["127.77.0.1", "127.77.0.2"]), "nftables"))
    done = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("iptables-restore") is None, reason="iptables is not installed")
def test_iptables_rules_pass_iptables_restore_test_mode(tmp_path: Path) -> None:
    text = render(BlockSpec.build(monitors=["127.77.0.1"]), "iptables")
    done = subprocess.run(["iptables-restore", "--test", "--noflush"], input=text, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_contain_rules_cli_writes_a_new_file_and_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "acl.txt"
    assert main(["contain", "rules", "--format", "ios", "--out", str(out)]) == 0
    assert "ip access-list extended CMSPATCH-BLOCK-CONTEC" in out.read_text()
    assert main(["contain", "rules", "--format", "cidr", "--out", str(out)]) == 2
    assert "ip access-list" in out.read_text()
