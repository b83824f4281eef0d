"""An in-process monitor answered from its device profile: what httpx's ``MockTransport`` is to a client.

``ScriptedFleet`` holds one ``ScriptedMonitor`` per inventory device; its ``transport`` opens
``ScriptedSession``s (``ports.DeviceSession``) on them, its ``observer`` (``ports.NetworkObserver``) is
the sinkhole's stand-in, and its ``prober`` answers the UDP probe. The engine, the device flow, the
lease, the clinical gate and the verification run unchanged on top: only the wire is replaced, so an
engine rule (gate, halt, resume, defer, re-check, lease) is a unit test in milliseconds.

How a command is answered: by the monitor's own device profile (``domain.profile``), never by a copy of
its commands here. The monitor builds what the profile, the check catalogue (``checks.device_commands``),
the check batch (``domain.check_batch``), the boot identity (``domain.boot``) and the lease scripts
(``domain.lease``) would send and answers exactly those strings from a small model: firmware version,
installed binaries (their bytes: the checks grep and hash them as on a device), patient and alarm,
uploaded files, the installer's exit code, boot id and marker, eth0 and mounts. Anything else gets what a
shell gives an unknown command (exit 127) and is kept in ``unknown_commands``, so a test sees an engine
that started sending something no profile describes.

Behaviour follows the installed binaries, as on the device: a binary that carries the hidden mount
command answers the UDP probe, listens on UDP 51000, and, when its trigger is exercised, brings eth0 up,
mounts 202.114.4.119:/pm and "sends" the portmapper and MOUNT calls to the observer. An install replaces
the files at once and the running system at the next reboot (unless the monitor rolls back silently).

Failure injection is data or a hook: ``patient``/``alarm``/``status_text``, ``install_exit``,
``reboot_returns`` (False: never comes back), ``reboot_ignored`` (the old system keeps running),
``rollback``, ``unreachable``, ``flaky_runs`` (transient errors), ``corrupt_uploads``, and
``on(event, fn)`` for "a patient connects mid-upload" and the like ("install" and "reboot" fire once
the step is done on the monitor, so a hook that raises there is a crash after the fact).

Deliberately left out: a shell. The scripted monitor matches whole commands; it does not interpret
pipes or quoting beyond the profile's one-word placeholders. Timing is not modelled either: nothing here
sleeps except ``wait_disconnect`` on a session the monitor never drops (it waits its timeout, as a real
session would). The emulator and the OpenSSH fleet remain the proof that the real transports work.
"""

from __future__ import annotations

import hashlib
import io
import re
import shlex
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.domain import checks
from orchestrator.domain.checks import ProbeResult
from orchestrator.domain.devices import Device
from orchestrator.domain.indicators import CMS_SERVER, MOUNT_STRING, NFS_PORT, PORTMAPPER_PORT, IndicatorMap
from orchestrator.domain.lease import LEASE_NAME
from orchestrator.domain.profile import DeviceProfile
from orchestrator.errors import PermanentTransportError, TransientTransportError
from orchestrator.ports import CommandResult, Observation, ProgressCallback

VULNERABLE_VERSION = "CMS7.820.075.08/0.74(0.75)"  # one CISA names affected (checks.KNOWN_AFFECTED_VERSIONS)
# A build carrying the hidden mount command and the indicator address, as the affected firmware does.
VULNERABLE_BINARY = (b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + b"monitor build 0.74\x00" + MOUNT_STRING
                     + b"\x00telemetry to " + str(CMS_SERVER).encode() + b":515\x00")
SUSPECT_UDP_PORT = 51000  # the emulator's CVE-2024-12248 listener (checks.DEFAULT_UDP_PROBE_PORTS)
PACKAGE_MEMBER_LIMIT = 64 << 20  # bytes read from one member of an uploaded package
Hook = Callable[["ScriptedMonitor"], None]
EVENTS = ("connect", "upload", "install", "reboot", "trigger", "command")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _result(command: str, status: int = 0, out: str | bytes = b"", err: str | bytes = b"") -> CommandResult:
    def encode(value: str | bytes) -> bytes:
        return value.encode() if isinstance(value, str) else value

    return CommandResult(command, status, encode(out), encode(err))


def _hex_le(address: str, port: int) -> str:
    packed = bytes(int(p) for p in address.split("."))
    return f"{int.from_bytes(packed, 'little'):08X}:{port:04X}"


def backdoored(binary: bytes) -> bool:
    """The hidden mount command is in the binary: the build behaves as the affected firmware does."""
    return MOUNT_STRING in binary


@dataclass
class ScriptedMonitor:
    """One monitor's state and its answers. Thread-safe: the engine's workers and the test share it."""

    device: Device
    profile: DeviceProfile
    observer: ScriptedObserver | None = None
    version: str = VULNERABLE_VERSION
    monitor_bin: bytes = VULNERABLE_BINARY
    update_bin: bytes = VULNERABLE_BINARY
    patient: bool = False
    alarm: bool = False
    status_text: str | None = None  # what the status command prints instead (None: from patient/alarm)
    status_exit: int = 0
    install_exit: int = 0
    install_message: str = ""
    reboot_returns: bool = True
    reboot_ignored: bool = False
    rollback: bool = False
    unreachable: bool = False
    flaky_runs: int = 0  # the next N commands fail with a transient error (a dropped connection)
    corrupt_uploads: int = 0  # the next N uploads arrive with a flipped byte
    mac: str = "00:1a:2b:00:00:01"
    boot_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    files: dict[str, bytes] = field(default_factory=dict)
    activity: list[tuple[str, str]] = field(default_factory=list)  # (kind, detail), oldest first
    unknown_commands: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._hooks: dict[str, list[Hook]] = {e: [] for e in EVENTS}
        self._booted = time.monotonic() - 3 * 86400.0  # monitors run for days between reboots
        self._marker = ""
        self._backup: tuple[str, bytes, bytes] | None = None  # what the installer replaced (a rollback)
        self._running = (backdoored(self.monitor_bin), backdoored(self.update_bin))  # derived at boot
        self.eth0 = "down"
        self.nfs_mounted = False
        self.online = True
        p = self.profile
        # Only the checks the profile declares: a unit that cannot run one has no answer for it.
        self._checks = checks.device_commands(p.command("clinical_status"), p.command("firmware_read"),
                                              p.binaries, p.device_checks)

    # --- the test's handles -----------------------------------------------------------------------

    def on(self, event: str, hook: Hook) -> ScriptedMonitor:
        """Call ``hook(monitor)`` at ``event`` (one of ``EVENTS``; "upload" fires half way through)."""
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r} (known: {', '.join(EVENTS)})")
        self._hooks[event].append(hook)
        return self

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(1 for k, _ in self.activity if k == kind)

    def flash(self, version: str, monitor_bin: bytes, update_bin: bytes) -> ScriptedMonitor:
        """Run this firmware from now on, as if it had been installed and booted before the test."""
        with self._lock:
            self.version, self.monitor_bin, self.update_bin = version, monitor_bin, update_bin
            self._running = (backdoored(monitor_bin), backdoored(update_bin))
        return self

    def disk_full(self) -> ScriptedMonitor:
        """The installer will report a full disk, with the exit code the profile gives that reason."""
        codes = [c for c, reason in self.profile.installer.exit_codes.items() if reason == "disk-full"]
        self.install_exit = codes[0] if codes else 1
        self.install_message = "No space left on device"
        return self

    def leak(self, kind: str = "cms-telemetry", port: int = 515, *, patient_record: bool = False) -> None:
        """This monitor reaches for the indicator network now (the observer sees it from its address)."""
        self._send(f"{CMS_SERVER}:{port}", "tcp", kind, f"{kind} contact", patient_record=patient_record)

    @property
    def lease_path(self) -> str:
        return f"{self.profile.upload_dir.rstrip('/')}/{LEASE_NAME}"

    # --- what a session calls -------------------------------------------------------------------------

    def _fire(self, event: str) -> None:
        for hook in list(self._hooks[event]):
            hook(self)

    def connect(self) -> str:
        """Open a connection: the boot id it reaches, or a transient error when nothing answers."""
        self._fire("connect")
        with self._lock:
            if self.unreachable or not self.online:
                raise TransientTransportError(f"{self.device.name}: connection refused",
                                              reason="connection-refused", host=self.device.name)
            self.activity.append(("connect", self.boot_id))
            return self.boot_id

    def run(self, command: str) -> CommandResult:
        self._fire("command")
        with self._lock:
            if self.flaky_runs > 0:
                self.flaky_runs -= 1
                raise TransientTransportError(f"{self.device.name}: connection reset",
                                              reason="connection-reset", host=self.device.name)
            self.activity.append(("command", command))
        if command.startswith("exec 3>&1\n"):
            return self._batch(command)
        result = self._answer(command)
        if result is None:
            with self._lock:
                self.unknown_commands.append(command)
            return _result(command, 127, err=f"sh: {command.split()[0] if command.split() else ''}: "
                                             "not found (not a command of this profile)\n")
        return result

    def receive(self, data: bytes, remote: str, progress: ProgressCallback | None) -> None:
        half = len(data) // 2
        if progress is not None:
            progress(half, len(data))
        self._fire("upload")  # half way through: what happens during an upload happens now
        with self._lock:
            if self.corrupt_uploads > 0 and data:
                self.corrupt_uploads -= 1
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            self.files[remote] = data
            self.activity.append(("upload", remote))
        if progress is not None:
            progress(len(data), len(data))

    # --- answers ------------------------------------------------------------------------------------

    def _answer(self, command: str) -> CommandResult | None:
        p = self.profile
        plain: dict[str, Callable[[], CommandResult]] = {
            p.command("clinical_status"): self._status,
            p.command("firmware_read"): lambda: _result(command, 0, self.version + "\n"),
            p.command("reboot"): self._reboot,
        }
        if command in plain:
            return plain[command]()
        for trigger, template in p.triggers.items():
            if template is not None and command == template:
                return self._trigger(command, trigger)
        templated = (("hash_file", self._hash), ("remove_file", self._remove), ("install", self._install),
                     ("free_space", self._df))
        for step, answer in templated:
            value = _placeholder(p.commands[step], command)
            if value is not None:
                return answer(command, value)
        if (identity := self._identity(command)) is not None:
            return identity
        if (lease := self._lease(command)) is not None:
            return lease
        names = [name for name, c in self._checks.items() if c == command]
        return self._check(command, names[0]) if names else None

    def _status(self) -> CommandResult:
        command = self.profile.command("clinical_status")
        with self._lock:
            if self.status_text is not None:
                return _result(command, self.status_exit, self.status_text)
            grammar = self.profile.status
            patient = grammar.patient.busy[0] if self.patient else grammar.patient.clear
            alarm = grammar.alarm.busy[0] if self.alarm else grammar.alarm.clear
            return _result(command, self.status_exit,
                           f"{grammar.patient.key}={patient}\n{grammar.alarm.key}={alarm}\n")

    def _hash(self, command: str, path: str) -> CommandResult:
        with self._lock:
            data = self.files.get(path)
        if data is None:
            return _result(command, 1, err=f"sha256sum: {path}: No such file or directory\n")
        return _result(command, 0, f"{hashlib.sha256(data).hexdigest()}  {path}\n")

    def _remove(self, command: str, path: str) -> CommandResult:
        with self._lock:
            self.files.pop(path, None)
        return _result(command)

    def _df(self, command: str, directory: str) -> CommandResult:
        return _result(command, 0, "Filesystem 1K-blocks Used Available Use% Mounted on\n"
                                   f"/dev/mtdblock3 65536 1024 64512 2% {directory}\n")

    def _install(self, command: str, path: str) -> CommandResult:
        with self._lock:
            self.activity.append(("install-run", path))
            if self.install_exit != 0:
                return _result(command, self.install_exit, err=self.install_message or "install failed\n")
            data = self.files.get(path)
            if data is None:
                return _result(command, 1, err=f"{path}: No such file or directory\n")
            try:
                new = _read_package(data)
            except (tarfile.TarError, KeyError, ValueError) as exc:
                return _result(command, 1, err=f"{path}: not an upgrade package ({exc})\n")
            # The files change now; the running system only at the next boot (as on the device).
            self._backup = (self.version, self.monitor_bin, self.update_bin)
            self.version, self.monitor_bin, self.update_bin = new
            self.activity.append(("install", path))
        self._fire("install")  # after the install: a crash here leaves it applied, not journalled
        return _result(command, 0, "installed; takes effect at the next reboot\n")

    def _reboot(self) -> CommandResult:
        with self._lock:
            self.activity.append(("reboot", self.boot_id))
            if self.reboot_ignored:  # the old system keeps running: no drop, same boot
                return _result(self.profile.command("reboot"))
            self.boot_id = str(uuid.uuid4())
            self._booted = time.monotonic()
            self._marker, self.eth0, self.nfs_mounted = "", "down", False  # tmpfs and runtime state
            if self._backup is not None and self.rollback:  # the boot restores the old system silently
                self.version, self.monitor_bin, self.update_bin = self._backup
            self._backup = None
            self._running = (backdoored(self.monitor_bin), backdoored(self.update_bin))
            self.online = self.reboot_returns
        self._fire("reboot")  # after the reboot: a crash here leaves it done, not journalled
        return _result(self.profile.command("reboot"))

    def _trigger(self, command: str, trigger: str) -> CommandResult:
        started = self.press(trigger)
        return _result(command, 0, f"{trigger}: {'update started' if started else 'nothing to do'}\n")

    def press(self, trigger: str) -> bool:
        """The trigger exercised (by its service command, or by a technician's hands at the bed): an
        infected build brings eth0 up, mounts the share and calls the portmapper and MOUNT. True if so."""
        self._fire("trigger")
        with self._lock:
            self.activity.append(("trigger", trigger))
            if not self._running[0 if trigger == "menu-update" else 1]:
                return False
            self.eth0, self.nfs_mounted = "up", True
        self._send(f"{CMS_SERVER}:{PORTMAPPER_PORT}", "udp", "rpc", "portmapper GETPORT mountd")
        self._send(f"{CMS_SERVER}:{NFS_PORT}", "udp", "rpc-mount", 'MNT "/pm"')
        return True

    def _identity(self, command: str) -> CommandResult | None:
        marker = ""
        match = re.match(r"echo ([0-9a-f]{8,64}) > ", command)
        if match is not None:
            marker = match.group(1)
        if command != self.profile.identity_command(marker):
            return None
        with self._lock:
            if marker:
                self._marker = marker
            uptime = time.monotonic() - self._booted
            return _result(command, 0,
                           f"boot_id={self.boot_id}\nuptime={uptime:.2f}\nmarker={self._marker}\n")

    def _lease(self, command: str) -> CommandResult | None:
        """The lease scripts of ``domain.lease`` (read, take, renew, take over, release), by their shape."""
        quoted = r"'([^']*)'"
        with self._lock:
            if m := re.fullmatch(r"echo @ok; cat (\S+) 2>/dev/null; true", command):
                return self._lease_answer(command, "@ok", m.group(1))
            if m := re.match(rf"printf '%s\\n' {quoted} > \S+ && \[ \"\$\(cat (\S+) 2>/dev/null\)\" = "
                             rf"{quoted} \] && mv -f ", command):
                new, path, old = m.groups()
                ok = self._lease_line(path) == old
                if ok:
                    self.files[path] = (new + "\n").encode()
                return self._lease_answer(command, "@ok" if ok else "@conflict", path)
            if m := re.match(rf"mkdir -p \S+; printf '%s\\n' {quoted} > \S+ && ln \S+ (\S+) ", command):
                new, path = m.groups()
                ok = path not in self.files
                if ok:
                    self.files[path] = (new + "\n").encode()
                return self._lease_answer(command, "@ok" if ok else "@conflict", path)
            if m := re.match(rf"if mv (\S+) \S+ 2>/dev/null; then if \[ \"\$\(cat \S+\)\" = {quoted} \]; "
                             r"then rm -f \S+; (.*)else ln ", command):
                path, old, then = m.groups()
                if self._lease_line(path) != old:
                    return self._lease_answer(command, "@conflict", path)
                self.files.pop(path, None)
                if (new := re.match(rf"printf '%s\\n' {quoted} > ", then)) is not None:
                    self.files[path] = (new.group(1) + "\n").encode()
                return self._lease_answer(command, "@ok", path)
        return None

    def _lease_line(self, path: str) -> str | None:
        data = self.files.get(path)
        return data.decode("utf-8", "replace").strip() if data is not None else None

    def _lease_answer(self, command: str, head: str, path: str) -> CommandResult:
        return _result(command, 0, f"{head}\n" + self.files.get(path, b"").decode("utf-8", "replace"))

    def _batch(self, script: str) -> CommandResult:
        """``check_batch.batch_script`` run as BusyBox sh would: each check framed by the nonce markers."""
        lines = script.split("\n")
        out = b""
        i = 1
        while i + 3 < len(lines):
            head = re.fullmatch(r"printf '\\n%s begin %s\\n' ([0-9a-f]+) (\S+)", lines[i])
            if head is None or not lines[i + 1].startswith("e=$( { "):
                break
            nonce, name = head.groups()
            result = self.run(lines[i + 1][len("e=$( { "):])
            out += (f"\n{nonce} begin {name}\n".encode() + result.stdout
                    + f"\n{nonce} stderr {name}\n".encode() + result.stderr
                    + f" {result.exit_status}\n{nonce} end {name}\n".encode())
            i += 4
        return _result(script, 0, out)

    def _check(self, command: str, name: str) -> CommandResult:
        binaries = self.profile.binaries
        with self._lock:
            mon, upd = self.monitor_bin, self.update_bin
            address, infected = self.device.address or "0.0.0.0", self._running[0]
            if name in ("monitor-mount-string", "update-mount-string", "monitor-indicator-address",
                        "update-indicator-address"):  # grep -o -E on the binary's bytes
                binary = mon if name.startswith("monitor-") else upd
                ere = checks.MOUNT_ERE if name.endswith("mount-string") else checks.ADDRESS_ERE
                matches = [m.group(0) for m in re.finditer(ere.encode(), binary, flags=re.M)]
                return _result(command, 0 if matches else 1, b"".join(m + b"\n" for m in matches))
            if name == "binary-hashes":
                return _result(command, 0, f"{hashlib.sha256(mon).hexdigest()}  {binaries['monitor']}\n"
                                           f"{hashlib.sha256(upd).hexdigest()}  {binaries['update']}\n")
            if name.startswith("nfs-mount"):
                mounts = "rootfs / rootfs rw 0 0\n/dev/mtdblock3 /data jffs2 rw 0 0\n"
                if self.nfs_mounted:
                    mounts += f"{CMS_SERVER}:/pm /mnt nfs ro,nolock,addr={CMS_SERVER} 0 0\n"
                return _result(command, 0, mounts)
            if name == "indicator-route":
                gateway = _hex_le(".".join([*address.split(".")[:3], "1"]), 0).split(":")[0]
                return _result(command, 0, "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
                                           f"eth0\t00000000\t{gateway}\t0003\t0\t0\t0\t00000000\n")
            udp = "  sl  local_address rem_address   st\n"
            if infected:
                udp += f"   0: {_hex_le('0.0.0.0', SUSPECT_UDP_PORT)} 00000000:0000 07\n"
            if name == "indicator-socket":
                return _result(command, 0, "  sl  local_address rem_address   st\n" + udp)
            if name == "udp-listener":
                return _result(command, 0, udp)
            if name.startswith("eth0"):
                return _result(command, 0, self.eth0 + "\n")
            if name == "patient-status":
                return self._status()
            if name == "interface-identity":
                return _result(command, 0, f"eth0      Link encap:Ethernet  HWaddr {self.mac.upper()}\n"
                                           f"          inet addr:{address}  Mask:255.255.255.0\n"
                                           "lo        Link encap:Local Loopback\n"
                                           "          inet addr:127.0.0.1  Mask:255.0.0.0\n")
        with self._lock:
            self.unknown_commands.append(command)
        return _result(command, 127, err=f"scripted monitor: no answer for check {name}\n")

    def probe(self, ports: Sequence[int]) -> list[ProbeResult]:
        """The benign UDP datagram: an infected build's listener answers it; a fixed one refuses."""
        with self._lock:
            self.activity.append(("udp-probe", ",".join(map(str, ports))))
            infected = self._running[0]
        return [ProbeResult(p, "answered" if infected and p == SUSPECT_UDP_PORT else "refused")
                for p in ports]

    def _send(self, target: str, protocol: str, kind: str, summary: str, *, patient_record: bool = False
              ) -> None:
        if self.observer is None or not self.device.address:
            return
        at = now_iso()
        self.observer.record(Observation(
            at=at, source=f"{self.device.address}:{40000 + len(self.activity) % 20000}", target=target,
            protocol=protocol, kind=kind, summary=summary, patient_record=patient_record,
            sha256=hashlib.sha256(f"{at} {target} {kind}".encode()).hexdigest()))


def _placeholder(template: str, command: str) -> str | None:
    """The one value ``command`` fills into ``template``'s placeholder (shlex-quoted), or None."""
    parts = re.split(r"\{[a-z]+\}", template)
    if len(parts) != 2:
        return None
    match = re.fullmatch(re.escape(parts[0]) + r"(\S+|'[^']*')" + re.escape(parts[1]), command)
    if match is None:
        return None
    words = shlex.split(match.group(1))
    return words[0] if len(words) == 1 else None


def _read_package(data: bytes) -> tuple[str, bytes, bytes]:
    """(VERSION, bin/monitor, bin/update) of an uploaded vendor package, each member read bounded."""
    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        for info in archive:
            name = info.name.removeprefix("./")
            if name in ("VERSION", "bin/monitor", "bin/update") and info.isfile():
                handle = archive.extractfile(info)
                if handle is not None:
                    members[name] = handle.read(PACKAGE_MEMBER_LIMIT)
    version = members["VERSION"].decode("utf-8", "replace").strip()
    return version, members["bin/monitor"], members["bin/update"]


class ScriptedSession:
    """``ports.DeviceSession`` on a scripted monitor. A reboot ends it; ``reconnect`` opens the next."""

    def __init__(self, monitor: ScriptedMonitor) -> None:
        self.device = monitor.device
        self._monitor = monitor
        self._boot: str | None = monitor.connect()

    def _alive(self) -> ScriptedMonitor:
        m = self._monitor
        if self._boot is None or not m.online or m.boot_id != self._boot:
            raise TransientTransportError(f"{self.device.name}: connection lost", reason="connection-lost",
                                          host=self.device.name)
        return m

    def run(self, command: str, *, timeout: float = 30.0) -> CommandResult:
        return self._alive().run(command)

    def put(self, local: Path, remote: str, *, progress: ProgressCallback | None = None) -> None:
        monitor = self._alive()
        try:
            data = local.read_bytes()
        except OSError as exc:  # only our errors leave a session (ports)
            raise PermanentTransportError(f"{self.device.name}: cannot read {local}: {exc}",
                                          reason="upload-failed", host=self.device.name) from exc
        monitor.receive(data, remote, progress)

    def wait_disconnect(self, timeout: float) -> bool:
        try:
            self._alive()
        except TransientTransportError:
            return True
        time.sleep(timeout)  # a monitor that keeps this session keeps it for the whole wait
        return False

    def reconnect(self, *, timeout: float) -> None:
        self._boot = None
        self._boot = self._monitor.connect()

    def close(self) -> None:
        self._boot = None


class ScriptedTransport:
    """``ports.DeviceTransport`` over a scripted fleet (``name`` says which delivery path it stands for)."""

    def __init__(self, fleet: ScriptedFleet, name: str = "ssh") -> None:
        self.name = name
        self._fleet = fleet

    def open(self, device: Device) -> ScriptedSession:
        return ScriptedSession(self._fleet.monitor(device.name))


class ScriptedObserver:
    """``ports.NetworkObserver``: a live sinkhole stand-in fed by the scripted monitors (and tests)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seen: list[Observation] = []

    @property
    def recorded(self) -> bool:
        return False

    @property
    def indicator_map(self) -> IndicatorMap | None:
        return None  # the scripted monitors name 202.114.4.0/24 itself: nothing is mapped

    def record(self, observation: Observation) -> None:
        with self._cond:
            self._seen.append(observation)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Observation], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        checked = 0
        with self._cond:
            while True:
                if any(predicate(o) for o in self._seen[checked:]):
                    return True
                checked = len(self._seen)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)

    def observations(self, *, since: str | None = None, until: str | None = None,
                     source: str | None = None) -> list[Observation]:
        with self._cond:
            items = list(self._seen)
        return [o for o in items if (since is None or o.at >= since) and (until is None or o.at <= until)
                and (source is None or o.source == source or o.source.rsplit(":", 1)[0] == source)]


class ScriptedFleet:
    """Scripted monitors for ``devices`` (each answering its own profile), one observer, one transport."""

    def __init__(self, devices: Iterable[Device], profile_of: Callable[[Device], DeviceProfile],
                 **monitor_defaults: Any) -> None:
        self.observer = ScriptedObserver()
        self.monitors: dict[str, ScriptedMonitor] = {}
        for index, device in enumerate(devices, start=1):
            self.monitors[device.name] = ScriptedMonitor(
                device, profile_of(device), self.observer,
                mac=f"00:1a:2b:00:{index >> 8:02x}:{index & 255:02x}", **monitor_defaults)
        self.transport = ScriptedTransport(self)

    def monitor(self, name: str) -> ScriptedMonitor:
        try:
            return self.monitors[name]
        except KeyError:
            raise TransientTransportError(f"{name}: no such host", reason="unreachable", host=name) from None

    def prober(self, address: str, ports: Sequence[int]) -> list[ProbeResult]:
        """``verification.Prober``: the datagram reaches the scripted monitor at ``address``, if any."""
        for m in self.monitors.values():
            if m.device.address == address:
                return m.probe(ports)
        return [ProbeResult(p, "silent") for p in ports]
