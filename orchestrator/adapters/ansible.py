"""The Ansible delivery path: a typed facade over ansible-runner, and ``AnsibleTransport``.

Sites that already run Ansible / AWX get exactly the steps of ``playbooks/``, driven one step at a
time by the engine through the same ``DeviceTransport`` port as the paramiko path:

- ``run``       -> ``playbooks/run.yml`` (``raw``: a monitor has no Python)
- ``put``       -> ``playbooks/upload.yml`` (delegated OpenSSH sftp with resume, sha256sum on the monitor)
- ``reconnect`` -> ``playbooks/wait.yml`` (delegated ``wait_for`` on the port, then a ``raw`` retry loop)
- ``open``      -> ends any old ControlPersist master, then one ``raw true``: errors surface at open,
                   as with paramiko (host key, login, unreachable)

Every call is one ansible-runner invocation in a private temporary data directory, removed when it
returns: ansible-runner's artifacts (which include the environment and the extra vars) never outlive
the call and never land in the repository. Nothing secret is passed anyway: credentials are the
inventory's key *path* or the agent, never a password or key material (``ssh_key`` is never used).
Job events are collected in memory through the event handler and not written to disk.

Network guard: before ansible-runner starts, the monitor's ``ansible_host`` is resolved and every
address checked (``guarded_net.resolve_checked``); a refusal is a ``PermanentTransportError`` with reason
``indicator-address`` and Ansible never runs. The inventory has already refused indicator addresses in
``ansible_host``, ``ansible_ssh_host`` and ssh options; this check catches names that resolve to one.
A ``host_vars/`` or ``group_vars/`` directory beside the inventory is refused: Ansible would read it,
cmspatch's inventory checks would not.

Host keys stay pinned: ``ANSIBLE_HOST_KEY_CHECKING`` is true and the inventory's
``ansible_ssh_common_args`` name the known_hosts file with ``StrictHostKeyChecking=yes``. One
ControlPersist master per monitor (in a private control directory) is shared by all the calls of a
session, so only the first step pays the SSH handshake; ``Compression=no`` replaces Ansible's ``-C``.

Deliberately left out: retries (the engine owns them; this module only says whether an error is
transient) and process isolation / execution environments (AWX runs ``playbooks/patch.yml`` in the
image built from ``execution-environment.yml``; here ansible runs from the venv).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
from ansible_runner.exceptions import AnsibleRunnerException

from orchestrator.adapters.ansible_events import TaskResult, classify_unreachable, task_result
from orchestrator.adapters.guarded_net import as_transport_error, resolve_checked
from orchestrator.domain.devices import Device
from orchestrator.domain.inventory import Inventory
from orchestrator.domain.netguard import IndicatorAddressRefused
from orchestrator.errors import PermanentTransportError, TransientTransportError, UsageError
from orchestrator.ports import CommandResult, ProgressCallback

PLAYBOOKS_DIR = Path(os.environ.get("CMSPATCH_PLAYBOOKS", Path(__file__).resolve().parents[2] / "playbooks"))

# Reasons a failed upload step reports (``cmspatch-reason=...`` in playbooks/tasks/upload.yml).
_PERMANENT_REASONS = frozenset({"host-key-mismatch", "host-key-unknown", "auth-refused", "disk-full",
                                "package-missing"})


@dataclass(frozen=True)
class PlaybookRun:
    """What one ansible-runner invocation did: its status, rc and the per-host task results."""

    status: str  # successful | failed | timeout | canceled
    rc: int
    results: tuple[TaskResult, ...] = ()
    stdout_tail: str = ""

    def for_host(self, host: str) -> tuple[TaskResult, ...]:
        return tuple(r for r in self.results if r.host == host)

    def last(self, host: str, task: str | None = None) -> TaskResult | None:
        found = [r for r in self.for_host(host) if task is None or r.task == task]
        return found[-1] if found else None

    def failure(self, host: str) -> TaskResult | None:
        """The first failed or unreachable result of ``host`` that the play did not ignore."""
        for r in self.for_host(host):
            if r.status == "unreachable" and not r.ignored:
                return r
            if r.status == "failed" and not r.ignored:
                return r
        return None


@dataclass
class AnsibleRunner:
    """Runs playbooks of ``playbooks/`` against one inventory file with cmspatch's settings."""

    inventory: Path
    playbooks_dir: Path = PLAYBOOKS_DIR
    forks: int = 50
    control_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cmsp-cp-")))

    def __post_init__(self) -> None:
        self.inventory = Path(self.inventory).resolve()
        if not self.inventory.is_file():
            raise UsageError(f"inventory not found: {self.inventory}", reason="inventory-missing")
        for extra in ("host_vars", "group_vars"):
            # Ansible would read these beside the inventory; cmspatch's checks (the network guard among
            # them) would not, and the two could disagree on where a monitor is.
            if (self.inventory.parent / extra).exists():
                shutil.rmtree(self.control_dir, ignore_errors=True)
                raise UsageError(f"{self.inventory.parent / extra}: Ansible would read variables cmspatch "
                                 "does not check; put them in the inventory file",
                                 reason="inventory-vars-dir")
        os.chmod(self.control_dir, 0o700)

    def envvars(self) -> dict[str, str]:
        venv_bin = str(Path(sys.executable).parent)
        return {
            "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s -o Compression=no",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.control_dir),
            "ANSIBLE_SSH_CONTROL_PATH": "%(directory)s/%%C",
            "ANSIBLE_SSH_USETTY": "False",
            "ANSIBLE_FORKS": str(self.forks),
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "True",
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            "ANSIBLE_LOCALHOST_WARNING": "False",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        }

    def run_playbook(self, playbook: str, *, device: Device, extravars: Mapping[str, Any],
                     timeout: float | None = None) -> PlaybookRun:
        """Run ``playbooks/<playbook>`` limited to ``device``; never raises for a failed host, only for one
        the network guard refuses (before ansible-runner starts)."""
        path = self.playbooks_dir / playbook
        if not path.is_file():
            raise UsageError(f"playbook not found: {path}", reason="playbook-missing")
        refuse_unsafe_target(device)
        results: list[TaskResult] = []
        lines: list[str] = []

        def on_event(event: dict[str, Any]) -> bool:
            result = task_result(event)
            if result is not None:
                results.append(result)
            if event.get("stdout"):
                lines.append(str(event["stdout"]))
                del lines[:-20]
            return False  # collected in memory: nothing written to the artifact directory

        try:
            private = tempfile.mkdtemp(prefix="cmsp-runner-")
        except OSError as exc:
            raise PermanentTransportError(f"{device.name}: ansible-runner has no work directory: {exc}",
                                          reason="runner-failed", host=device.name) from exc
        try:
            runner = ansible_runner.run(
                private_data_dir=private,
                project_dir=str(self.inventory.parent),  # relative key/known_hosts paths resolve here
                playbook=str(path),
                inventory=str(self.inventory),
                limit=device.name,
                extravars=dict(extravars),
                envvars=self.envvars(),
                quiet=True,
                event_handler=on_event,
                cancel_callback=lambda: False,  # callable from any thread (no signal handler)
                timeout=int(timeout) if timeout else None,
                rotate_artifacts=1,
            )
            return PlaybookRun(status=str(runner.status), rc=int(runner.rc or 0), results=tuple(results),
                               stdout_tail="\n".join(lines))
        except (OSError, AnsibleRunnerException) as exc:
            # ansible-runner could not start or follow the run (no ansible-playbook, a broken config):
            # the host was never reached, and the same run would fail again
            raise PermanentTransportError(f"{device.name}: ansible-runner failed: {exc}",
                                          reason="runner-failed", host=device.name) from exc
        finally:
            shutil.rmtree(private, ignore_errors=True)

    def master_alive(self, device: Device) -> bool:
        """Whether the ControlPersist master to ``device`` still holds its connection."""
        result = subprocess.run(
            ["ssh", "-O", "check", "-o", f"ControlPath={self.control_dir}/%C", "-p", str(device.port),
             f"{device.user}@{device.address}"],
            capture_output=True, check=False, timeout=10,
        )
        return result.returncode == 0

    def drop_connection(self, device: Device) -> None:
        """Close the ControlPersist master of one monitor (if any), so nothing lingers."""
        subprocess.run(
            ["ssh", "-O", "exit", "-o", f"ControlPath={self.control_dir}/%C", "-p", str(device.port),
             f"{device.user}@{device.address}"],
            capture_output=True, check=False, timeout=10,
        )

    def close(self) -> None:
        for sock in self.control_dir.glob("*"):
            subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={sock}", "x"],
                           capture_output=True, check=False, timeout=10)
        shutil.rmtree(self.control_dir, ignore_errors=True)


def refuse_unsafe_target(device: Device) -> None:
    """The network guard for the Ansible path: every address the monitor's ansible_host (and the older
    ansible_ssh_host, which Ansible also honours) resolves to.

    A name that does not resolve is left to OpenSSH, which reports it as unreachable like any other."""
    targets = dict.fromkeys(str(t) for t in (device.address, device.vars.get("ansible_ssh_host")) if t)
    for target in targets:
        try:
            resolve_checked(target, device.port)
        except IndicatorAddressRefused as exc:
            raise as_transport_error(exc, device.name) from exc
        except OSError:
            continue


def _raise_for(device: Device, failure: TaskResult, *, step: str) -> None:
    """Turn a failed or unreachable task into our typed error (never returns)."""
    if failure.status == "unreachable":
        raise classify_unreachable(failure.message, host=device.name)
    reason = failure.cmspatch_reason or f"{step}-failed"
    message = f"{device.name}: {step} via Ansible failed: {failure.message or failure.stderr}".strip()
    if reason in _PERMANENT_REASONS:
        raise PermanentTransportError(message, reason=reason, host=device.name)
    raise TransientTransportError(message, reason=reason, host=device.name)


class AnsibleSession:
    """One monitor, driven step by step through ansible-runner (implements ``ports.DeviceSession``)."""

    def __init__(self, runner: AnsibleRunner, device: Device) -> None:
        self.runner = runner
        self.device = device

    def run(self, command: str, *, timeout: float = 30.0) -> CommandResult:
        outcome = self.runner.run_playbook(
            "run.yml", device=self.device, timeout=timeout + 60,
            extravars={"cmspatch_hosts": self.device.name, "cmspatch_command": command,
                       "cmspatch_timeout": max(1, int(timeout))},
        )
        result = outcome.last(self.device.name, "cmspatch:run")
        if result is None:
            raise TransientTransportError(
                f"{self.device.name}: ansible gave no result ({outcome.status}, rc {outcome.rc}): "
                f"{outcome.stdout_tail[-300:]}", reason="ansible-no-result", host=self.device.name)
        if result.status == "unreachable":
            raise classify_unreachable(result.message, host=self.device.name)
        if result.rc is None:  # the task itself failed: timed out, or ansible refused the command
            reason = "timeout" if "timed out" in result.message else "command-failed"
            raise TransientTransportError(f"{self.device.name}: {result.message}", reason=reason,
                                          host=self.device.name)
        return CommandResult(command=command, exit_status=result.rc, stdout=result.stdout.encode(),
                             stderr=result.stderr.encode())

    def put(self, local: Path, remote: str, *, progress: ProgressCallback | None = None) -> None:
        size = local.stat().st_size
        digest = hashlib.sha256()
        with local.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        outcome = self.runner.run_playbook(
            "upload.yml", device=self.device,
            extravars={"cmspatch_hosts": self.device.name, "cmspatch_package": str(local.resolve()),
                       "cmspatch_sha256": digest.hexdigest(), "cmspatch_remote_path": remote},
        )
        failure = outcome.failure(self.device.name)
        if failure is not None:
            _raise_for(self.device, failure, step="upload")
        if outcome.last(self.device.name) is None:
            raise TransientTransportError(f"{self.device.name}: upload gave no result ({outcome.status})",
                                          reason="ansible-no-result", host=self.device.name)
        if progress is not None:
            progress(size, size)  # sftp runs as one step: the only progress Ansible can report

    def reconnect(self, *, timeout: float) -> None:
        outcome = self.runner.run_playbook(
            "wait.yml", device=self.device, timeout=timeout + 60,
            extravars={"cmspatch_hosts": self.device.name, "cmspatch_reboot_timeout": max(1, int(timeout))},
        )
        failure = outcome.failure(self.device.name)
        alive = outcome.last(self.device.name, "cmspatch:wait-shell")
        if failure is not None and failure.status != "unreachable":
            _raise_for(self.device, failure, step="reconnect")
        if alive is None or alive.status != "ok":
            detail = alive.message if alive is not None else outcome.status
            if alive is not None and alive.status == "unreachable":
                error = classify_unreachable(alive.message, host=self.device.name)
                if isinstance(error, PermanentTransportError):
                    raise error
            raise TransientTransportError(f"{self.device.name} did not come back within {timeout:.0f} s: "
                                          f"{detail}", reason="reconnect-timeout", host=self.device.name)

    def wait_disconnect(self, timeout: float) -> bool:
        """After ``reboot``: wait until the monitor drops the session's connection (True) or ``timeout``.

        The ControlPersist master is the session's connection: when the monitor goes down, the
        master exits. Waiting for that keeps ``reconnect`` from reaching the old, still-running system.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.runner.master_alive(self.device):
                return True
            time.sleep(0.1)
        return False

    def close(self) -> None:
        self.runner.drop_connection(self.device)


class AnsibleTransport:
    """Opens ``AnsibleSession``s against one inventory file (implements ``ports.DeviceTransport``).

    Thread-safe: each call is its own ansible-runner process; the engine may drive many monitors at
    once. ``close()`` ends the ControlPersist masters and removes the private control directory.
    """

    name = "ansible"

    def __init__(self, inventory: Path | str | Inventory, *, playbooks_dir: Path = PLAYBOOKS_DIR,
                 forks: int = 50) -> None:
        # ansible-runner reads the file itself: a loaded Inventory (as `cmspatch run` holds) gives its path.
        path = inventory.path if isinstance(inventory, Inventory) else inventory
        self.runner = AnsibleRunner(Path(path), playbooks_dir=playbooks_dir, forks=forks)
        self._lock = threading.Lock()

    def open(self, device: Device) -> AnsibleSession:
        """A verified session: any old ControlPersist master to the monitor is ended first, so the
        first command opens a fresh connection and checks the pinned host key (a master kept from
        before a key change would otherwise carry on unchecked)."""
        refuse_unsafe_target(device)  # before anything names the monitor, even `ssh -O exit`
        self.runner.drop_connection(device)
        session = AnsibleSession(self.runner, device)
        session.run("true", timeout=30.0)
        return session

    def close(self) -> None:
        with self._lock:
            self.runner.close()
