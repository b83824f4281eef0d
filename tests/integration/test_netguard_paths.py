"""Every path that could reach a monitor refuses an indicator address before any socket is opened.

The paths: the SSH transport, ``cmspatch enroll``, the UDP probe, the Ansible transport, ``cmspatch
inventory check`` and ``cmspatch run`` (refused up front by the inventory), and a campaign whose monitor
is refused at the transport (one failed monitor, reason ``indicator-address``, never retried).

Safety of the tests themselves: the ``spy`` fixture is installed first in every test and makes any
connect or sendto towards a non-loopback address, 202.114.4.0/24 or the test's stand-in network raise
before the kernel sees it, and records the attempt: a guard that let one through fails the test without
a packet ever leaving (or reaching a sinkhole).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

from orchestrator.adapters.ansible import AnsibleRunner, AnsibleTransport
from orchestrator.adapters.ssh import SshTransport
from orchestrator.adapters.udp_probe import probe_udp
from orchestrator.cli.main import main
from orchestrator.domain import netguard
from orchestrator.domain.devices import CredentialRef, DeliveryPath, Device
from orchestrator.domain.events import EventKind
from orchestrator.domain.indicators import INDICATOR_NETWORK
from orchestrator.domain.lifecycle import DeviceState
from orchestrator.domain.netguard import DEFAULT_GUARD, NetworkGuard, install_guard
from orchestrator.errors import PermanentTransportError, UsageError
from tests.integration.engine_rig import fast_policy, rig

KEY = "SHA256:SmPuBF7qMMRDB6S+4mSPJa6pTyWClJof6Wk3TuQ14CE"
STAND_IN = "127.114.77"  # this file's loopback stand-in of 202.114.4 (no sinkhole listens on it)
EVIL_NAME = "bed07.icu.example"  # a name our fake resolver maps onto 202.114.4.119


class Spy:
    """Records every connect/sendto target; refuses (raises) the ones no test may ever reach."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, int]] = []
        self.refused_nets = [INDICATOR_NETWORK, ipaddress.IPv4Network(f"{STAND_IN}.0/24")]
        self.watched: set[str] = set()

    def check(self, address: Any) -> None:
        if not isinstance(address, tuple):
            return  # AF_UNIX (ssh control sockets, the journal): not the network
        host, port = str(address[0]), int(address[1])
        ip = ipaddress.ip_address(host.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if host in self.watched or not ip.is_loopback or any(ip in n for n in self.refused_nets
                                                             if ip.version == n.version):
            self.attempts.append((host, port))
            raise OSError(f"test spy: connection to {host}:{port} stopped before the kernel")


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Spy]:
    watcher = Spy()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_sendto = socket.socket.sendto

    def connect(self: socket.socket, address: Any) -> None:
        watcher.check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        watcher.check(address)
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: bytes, *args: Any) -> int:
        watcher.check(args[-1])
        return real_sendto(self, data, *args)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == EVIL_NAME:  # a temporary hosts entry, in-process
            return real_getaddrinfo("202.114.4.119", port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    saved = netguard._current[0]  # the guard is process-wide and add-only: restore it for the next test
    netguard._current[0] = DEFAULT_GUARD
    yield watcher
    netguard._current[0] = saved


def device(address: str, *, delivery: DeliveryPath = DeliveryPath.SSH) -> Device:
    return Device(name="bed07", model="CMS8000", serial="S-7", site="North", ward="ICU", bed="07",
                  address=address, port=2222, user="service", host_key=KEY, delivery=delivery,
                  credential=CredentialRef(key_file="/nonexistent"))


def inventory(tmp_path: Path, address: str) -> tuple[Path, int]:
    """A valid one-monitor inventory; returns its path and the line of ansible_host."""
    text = f"""\
all:
  vars:
    ansible_user: service
    ansible_ssh_private_key_file: keys/fleet_ed25519
    cmspatch_known_hosts: known_hosts
  hosts:
    bed07:
      ansible_host: {address}
      ansible_port: 2222
      model: CMS8000
      serial_number: "S-7"
      site: North
      ward: ICU
      bed: "07"
      host_key: "{KEY}"
"""
    path = tmp_path / "inventory.yml"
    path.write_text(text, encoding="utf-8")
    return path, 8


@pytest.mark.parametrize("address", ["202.114.4.119", "::ffff:202.114.4.119", EVIL_NAME])
def test_ssh_transport_refuses_an_indicator_address_before_any_socket(spy: Spy, address: str) -> None:
    with pytest.raises(PermanentTransportError) as caught:
        SshTransport().open(device(address))
    assert caught.value.reason == "indicator-address"
    assert spy.attempts == []


def test_ssh_transport_refuses_the_installed_loopback_stand_ins(spy: Spy) -> None:
    install_guard(NetworkGuard.with_indicator_maps([STAND_IN]))
    with pytest.raises(PermanentTransportError) as caught:
        SshTransport().open(device(f"{STAND_IN}.119"))
    assert caught.value.reason == "indicator-address"
    assert spy.attempts == []


def test_enroll_refuses_an_inventory_pointing_at_an_indicator_address(
        spy: Spy, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, line = inventory(tmp_path, "202.114.4.119")
    code = main(["enroll", "-i", str(path), "--yes"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{path}:{line}: " in err and "indicator network" in err
    assert spy.attempts == []
    assert not (tmp_path / "known_hosts").exists()


def test_enroll_refuses_a_name_that_resolves_to_an_indicator_address(
        spy: Spy, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = inventory(tmp_path, EVIL_NAME)
    code = main(["enroll", "-i", str(path), "--yes"])
    out = capsys.readouterr().out
    assert code == 1 and "refused: indicator-address" in out
    assert spy.attempts == []
    assert not (tmp_path / "known_hosts").exists()


def test_udp_probe_sends_nothing_to_an_indicator_address_or_its_stand_in(spy: Spy) -> None:
    install_guard(NetworkGuard.with_indicator_maps([STAND_IN]))
    for address in ("202.114.4.119", f"{STAND_IN}.119"):
        results = probe_udp(address, [111, 2049], timeout=0.05)
        assert [r.outcome for r in results] == ["not-run", "not-run"]
        assert all("indicator-address" in r.detail for r in results)
    assert spy.attempts == []


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """ansible-runner and every subprocess (ssh -O ...) record their start and refuse to run."""
    started: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        started.append(repr(args or kwargs)[:80])
        raise AssertionError("must not start before the network guard refused")

    monkeypatch.setattr(ansible_runner, "run", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)
    return started


@pytest.mark.parametrize("address", ["202.114.4.119", EVIL_NAME])
def test_ansible_transport_refuses_before_ansible_runner_starts(
        spy: Spy, tmp_path: Path, nothing_starts: list[str], address: str) -> None:
    path, _ = inventory(tmp_path, "127.77.0.7")
    transport = AnsibleTransport(path)
    with pytest.raises(PermanentTransportError) as caught:
        transport.open(device(address, delivery=DeliveryPath.ANSIBLE))
    assert caught.value.reason == "indicator-address"
    runner = AnsibleRunner(path)
    with pytest.raises(PermanentTransportError):
        runner.run_playbook("run.yml", device=device(address, delivery=DeliveryPath.ANSIBLE), extravars={})
    assert nothing_starts == [] and spy.attempts == []


def test_inventory_check_exits_2_naming_the_line_of_the_indicator_address(
        spy: Spy, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, line = inventory(tmp_path, "202.114.4.119")
    assert main(["inventory", "check", "-i", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:{line}: host 'bed07': ansible_host points at 202.114.4.119" in err


def test_run_refuses_an_inventory_with_an_indicator_address_up_front(
        spy: Spy, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, line = inventory(tmp_path, "202.114.4.119")
    journal = tmp_path / "journal.db"
    code = main(["run", "-i", str(path), "--package", "p.tar.gz", "--manifest", "m.json", "--policy", "p.yml",
                 "--journal", str(journal), "--no-sinkhole", "--yes"])
    assert code == 2
    assert f"{path}:{line}: " in capsys.readouterr().err
    assert not journal.exists() and spy.attempts == []


def test_a_campaign_fails_a_refused_monitor_for_good_and_patches_the_others(spy: Spy, tmp_path: Path) -> None:
    """The address became an indicator after the inventory was read (a configured network): the
    transport refuses it, the engine records one permanent failure and does not retry it."""
    with rig(tmp_path, monitors=2) as r, r.journal() as journal:
        engine = r.engine(journal, policy=fast_policy(waves=("100%",), canary_must_pass=False))
        refused, other = r.fleet.monitors[0], r.fleet.monitors[1]
        spy.watched.add(refused.address)
        install_guard(NetworkGuard.with_networks([f"{refused.address}/32"]))
        engine.run(auto_approve=True)
        status = engine.status.devices
        assert (status[refused.name].state, status[refused.name].reason) == (DeviceState.FAILED,
                                                                              "indicator-address")
        assert status[other.name].state is DeviceState.PATCHED
        connects = [rec for rec in journal.records(engine.campaign_id)
                    if rec.kind is EventKind.ATTEMPT and rec.device == refused.name]
        assert [rec.data["step"] for rec in connects] == ["connect"]  # one attempt, never retried
    assert spy.attempts == []


def test_run_refuses_a_monitor_on_its_own_sinkhole_stand_ins(
        spy: Spy, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI installs --indicator-prefix as refused before it reads the inventory."""
    path, line = inventory(tmp_path, f"{STAND_IN}.5")
    code = main(["run", "-i", str(path), "--package", "p.tar.gz", "--manifest", "m.json", "--policy", "p.yml",
                 "--journal", str(tmp_path / "journal.db"), "--indicator-prefix", STAND_IN, "--yes"])
    assert code == 2
    assert f"{path}:{line}: host 'bed07': ansible_host points at {STAND_IN}.5" in capsys.readouterr().err
    assert spy.attempts == []


@pytest.mark.parametrize("directory", ["host_vars", "group_vars"])
def test_ansible_transport_refuses_variables_the_inventory_checks_never_saw(
        tmp_path: Path, nothing_starts: list[str], directory: str) -> None:
    path, _ = inventory(tmp_path, "127.77.0.7")
    (tmp_path / directory).mkdir()
    (tmp_path / directory / "bed07.yml").write_text("ansible_host: 202.114.4.119\n", encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        AnsibleTransport(path)
    assert caught.value.reason == "inventory-vars-dir" and nothing_starts == []


def test_the_patch_playbook_fails_an_indicator_host_before_anything_connects(tmp_path: Path) -> None:
    """AWX runs playbooks/patch.yml without cmspatch: the play asks the same guard (filter plugin)."""
    path, _ = inventory(tmp_path, "202.114.4.119")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    calls = tmp_path / "ssh-calls"
    for tool in ("ssh", "sftp", "scp"):  # record any attempt to reach the monitor, and reach nothing
        script = f"#!/bin/sh\necho {tool} \"$@\" >> {calls}\nexit 255\n"
        (fake_bin / tool).write_text(script, encoding="utf-8")
        (fake_bin / tool).chmod(0o755)
    (tmp_path / "runner").mkdir()
    events: list[dict[str, Any]] = []
    ansible_runner.run(
        private_data_dir=str(tmp_path / "runner"), project_dir=str(tmp_path), inventory=str(path),
        playbook=str(Path(__file__).resolve().parents[2] / "playbooks" / "patch.yml"), quiet=True,
        extravars={"cmspatch_package": str(tmp_path / "p.tar.gz"), "cmspatch_sha256": "0" * 64,
                   "cmspatch_target_version": "2.0"},
        envvars={"PATH": f"{fake_bin}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
                 "ANSIBLE_NOCOLOR": "True"},
        event_handler=lambda e: events.append(e) is not None,
    )
    failed = [e["event_data"] for e in events if e.get("event") == "runner_on_failed"]
    assert [f["task"] for f in failed] == ["cmspatch:network-guard"]
    assert "cmspatch-reason=indicator-address" in failed[0]["res"]["msg"]
    assert not calls.exists()
