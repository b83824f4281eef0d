"""The network-push delivery path: paramiko over the monitor's service SSH port.

One ``SshSession`` is one TCP connection to one monitor, reused for every step of its campaign (a fresh
login costs ~80 ms and ~10 ms of CPU here; see PERFORMANCE.md). The socket gets ``TCP_NODELAY``, which
paramiko never sets (44 ms -> 4 ms per command); ``aes128-gcm`` and ``curve25519`` key exchange are
preferred (the fastest cipher here; the post-quantum hybrid costs ~110 ms of client CPU per login).

Host keys are pinned, never learnt: the inventory's ``host_key`` fingerprint and/or the known_hosts
file must match, otherwise the login is refused with ``host-key-mismatch`` (or ``host-key-unknown`` when
nothing is pinned). Recording keys is a separate, explicit step (``cmspatch enroll``,
``fetch_host_key`` below) that shows the fingerprints to a person.

No socket is opened before the network guard has checked every address the monitor's name resolves to
(``guarded_net.connect_checked``); paramiko gets that socket and never connects by itself. A refusal is
a ``PermanentTransportError`` with reason ``indicator-address``: never retried, one failed monitor.

Every paramiko/socket exception is wrapped: ``TransientTransportError`` for what a retry can fix
(refused, reset, timeout, dropped upload), ``PermanentTransportError`` for what it cannot (host key,
auth, disk full). Retrying is not done here: the policy lives in ``orchestrator.retry``.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko

from orchestrator.adapters.guarded_net import as_transport_error, connect_checked
from orchestrator.domain.devices import Device
from orchestrator.domain.netguard import IndicatorAddressRefused
from orchestrator.errors import PermanentTransportError, TransientTransportError, TransportError
from orchestrator.ports import CommandResult, ProgressCallback

PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes128-ctr", "aes256-gcm@openssh.com", "aes256-ctr")
PREFERRED_KEX = ("curve25519-sha256@libssh.org", "curve25519-sha256", "ecdh-sha2-nistp256",
                 "mlkem768x25519-sha256", "diffie-hellman-group16-sha512", "diffie-hellman-group14-sha256")
CHUNK = 256 * 1024
RECONNECT_FIRST_PAUSE = 0.05  # s between reconnect probes at first, doubling up to reconnect_interval
PROBE_TIMEOUT = 1.0  # s for one TCP probe: a fresh SYN then, not the kernel's 1-3-7 s retransmissions
_NO_SPACE_WORDS = ("no space", "disk full", "quota", "no_space", "space left")


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:...`` exactly as ``ssh-keygen -lf`` prints it (unpadded base64)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _known_hosts_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


def _wrap(exc: BaseException, device: Device, what: str) -> TransportError:
    """Map a third-party exception onto our two transport classes."""
    host = device.name
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, IndicatorAddressRefused):
        return as_transport_error(exc, host)
    if isinstance(exc, paramiko.AuthenticationException):
        return PermanentTransportError(f"{host}: login refused ({exc})", reason="auth-refused", host=host)
    if isinstance(exc, paramiko.BadHostKeyException):
        return PermanentTransportError(f"{host}: host key does not match", reason="host-key-mismatch",
                                       host=host)
    text = str(exc).lower()
    if isinstance(exc, OSError) and (exc.errno == errno.ENOSPC or any(w in text for w in _NO_SPACE_WORDS)):
        return PermanentTransportError(f"{host}: {what}: no space left on the monitor", reason="disk-full",
                                       host=host)
    if isinstance(exc, ConnectionRefusedError):
        reason = "connection-refused"
    elif isinstance(exc, TimeoutError | socket.timeout):
        reason = "timeout"
    elif isinstance(exc, ConnectionResetError | EOFError | BrokenPipeError):
        reason = "connection-dropped"
    else:
        reason = "connection-failed"
    return TransientTransportError(f"{host}: {what}: {type(exc).__name__}: {exc}", reason=reason, host=host)


class SshTransport:
    """Opens pinned, tuned paramiko sessions. Thread-safe: it holds configuration only."""

    name = "ssh"

    def __init__(self, *, known_hosts: str | None = None, connect_timeout: float = 10.0,
                 reconnect_interval: float = 0.25) -> None:
        self.known_hosts = known_hosts
        self.connect_timeout = connect_timeout
        self.reconnect_interval = reconnect_interval
        self._host_keys = paramiko.HostKeys()
        if known_hosts and Path(known_hosts).exists():
            try:
                self._host_keys.load(known_hosts)
            except (OSError, paramiko.SSHException) as exc:
                raise PermanentTransportError(f"known_hosts {known_hosts} is unreadable: {exc}",
                                              reason="known-hosts-unreadable") from exc

    def open(self, device: Device) -> SshSession:
        session = SshSession(self, device)
        session.connect()
        return session

    def expected_keys(self, device: Device) -> tuple[list[str], dict[str, paramiko.PKey]]:
        """(pinned fingerprints, known_hosts keys by type) for one monitor."""
        pins = [device.host_key] if device.host_key else []
        entry = self._host_keys.lookup(_known_hosts_name(device.address, device.port))
        known = {t: entry[t] for t in entry} if entry is not None else {}
        return pins, known

    def check_host_key(self, device: Device, key: paramiko.PKey) -> None:
        pins, known = self.expected_keys(device)
        if not pins and not known:
            raise PermanentTransportError(
                f"{device.name}: no pinned host key (inventory host_key or known_hosts); "
                f"run `cmspatch enroll` to record it after checking {fingerprint(key)}",
                reason="host-key-unknown", host=device.name)
        seen = fingerprint(key)
        if pins and seen not in pins:
            raise PermanentTransportError(
                f"{device.name}: host key {seen} does not match the pinned {pins[0]}; refused",
                reason="host-key-mismatch", host=device.name)
        if known:
            same_type = known.get(key.get_name())
            if same_type is None or same_type.asbytes() != key.asbytes():
                raise PermanentTransportError(
                    f"{device.name}: host key {seen} does not match known_hosts; refused",
                    reason="host-key-mismatch", host=device.name)


def _credential_keys(device: Device) -> list[paramiko.PKey]:
    if device.credential.key_file:
        try:
            return [paramiko.PKey.from_path(device.credential.key_file)]
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise PermanentTransportError(
                f"{device.name}: key file {device.credential.key_file} is unusable: {exc}",
                reason="credential-unusable", host=device.name) from exc
    if device.credential.agent:
        return list(paramiko.Agent().get_keys())
    raise PermanentTransportError(f"{device.name}: no credential configured", reason="credential-missing",
                                  host=device.name)


def open_transport(device: Device, timeout: float, sock: socket.socket | None = None) -> paramiko.Transport:
    """TCP connect (after the network guard) with TCP_NODELAY, tuned negotiation, and SSH handshake; no
    host-key check yet. ``sock``: a connection ``connect_checked`` already opened (reconnect's probe)."""
    if sock is None:
        try:
            sock = connect_checked(device.address, device.port, timeout=timeout)
        except (OSError, IndicatorAddressRefused) as exc:
            raise _wrap(exc, device, "connect") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport: paramiko.Transport | None = None
    try:
        transport = paramiko.Transport(sock)
        options = transport.get_security_options()
        options.ciphers = tuple(c for c in PREFERRED_CIPHERS if c in options.ciphers) + tuple(
            c for c in options.ciphers if c not in PREFERRED_CIPHERS)
        options.kex = tuple(k for k in PREFERRED_KEX if k in options.kex) + tuple(
            k for k in options.kex if k not in PREFERRED_KEX)
        transport.start_client(timeout=timeout)
        return transport
    except (paramiko.SSHException, OSError, EOFError) as exc:
        if transport is not None:
            transport.close()
        sock.close()
        raise _wrap(exc, device, "handshake") from exc


def fetch_host_key(device: Device, *, timeout: float = 10.0) -> paramiko.PKey:
    """The key a monitor presents, for `cmspatch enroll` only (a person confirms the fingerprint)."""
    transport = open_transport(device, timeout)
    try:
        return transport.get_remote_server_key()
    finally:
        transport.close()


class SshSession:
    """One authenticated connection to one monitor (implements ``ports.DeviceSession``)."""

    def __init__(self, owner: SshTransport, device: Device) -> None:
        self.device = device
        self._owner = owner
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None

    def connect(self, sock: socket.socket | None = None) -> None:
        transport = open_transport(self.device, self._owner.connect_timeout, sock)
        try:
            self._owner.check_host_key(self.device, transport.get_remote_server_key())
            keys = _credential_keys(self.device)
            last: BaseException | None = None
            for key in keys:
                try:
                    transport.auth_publickey(self.device.user, key)
                    break
                except paramiko.AuthenticationException as exc:
                    last = exc
            if not transport.is_authenticated():
                raise PermanentTransportError(f"{self.device.name}: login refused ({last})",
                                              reason="auth-refused", host=self.device.name)
        except BaseException as exc:
            transport.close()
            if isinstance(exc, paramiko.SSHException | OSError | EOFError | ValueError):
                raise _wrap(exc, self.device, "login") from exc  # ValueError: a malformed key reply
            raise
        self._transport = transport

    def _live(self) -> paramiko.Transport:
        if self._transport is None or not self._transport.is_active():
            raise TransientTransportError(f"{self.device.name}: connection lost", reason="connection-dropped",
                                          host=self.device.name)
        return self._transport

    def run(self, command: str, *, timeout: float = 30.0) -> CommandResult:
        try:
            channel = self._live().open_session(timeout=timeout)
            channel.settimeout(timeout)
            channel.exec_command(command)
            out = bytearray()
            while data := channel.recv(65536):
                out += data
            err = bytearray()
            while data := channel.recv_stderr(65536):
                err += data
            status = channel.recv_exit_status()
            channel.close()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise _wrap(exc, self.device, f"run {command.split()[0] if command else ''}") from exc
        if status == -1:  # the connection went away before the command reported back
            raise TransientTransportError(f"{self.device.name}: connection dropped during {command!r}",
                                          reason="connection-dropped", host=self.device.name)
        return CommandResult(command=command, exit_status=status, stdout=bytes(out), stderr=bytes(err))

    def _sftp_client(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            client = paramiko.SFTPClient.from_transport(self._live())
            if client is None:
                raise TransientTransportError(f"{self.device.name}: SFTP unavailable", reason="sftp-failed",
                                              host=self.device.name)
            self._sftp = client
        return self._sftp

    def put(self, local: Path, remote: str, *, progress: ProgressCallback | None = None) -> None:
        """Pipelined upload that continues from the size of a partial remote file left by a drop."""
        try:
            total = local.stat().st_size
        except OSError as exc:  # our side: no retry brings the package back
            raise PermanentTransportError(f"{self.device.name}: upload: cannot read {local}: {exc}",
                                          reason="package-unreadable", host=self.device.name) from exc
        try:
            sftp = self._sftp_client()
            try:
                offset = sftp.stat(remote).st_size or 0
            except FileNotFoundError:
                offset = 0
            if offset > total:
                offset = 0
            if offset == total and total > 0:
                if progress:
                    progress(total, total)
                return
            # r+ and an explicit seek rather than append mode: the offset written at is then ours.
            mode = "r+b" if offset else "wb"
            with local.open("rb") as src, sftp.open(remote, mode) as dst:
                dst.set_pipelined(True)
                dst.seek(offset)
                src.seek(offset)
                sent = offset
                chunk = src.read(CHUNK)
                while chunk:
                    following = src.read(CHUNK)
                    if not following:
                        # paramiko drops the status of pipelined writes it never waits for (close()
                        # does not), so a "no space" reply would be lost: the last chunk goes
                        # unpipelined, which makes paramiko read every outstanding reply first.
                        dst.set_pipelined(False)
                    dst.write(chunk)
                    sent += len(chunk)
                    if progress:
                        progress(sent, total)
                    chunk = following
                dst.flush()
            size = sftp.stat(remote).st_size
            if size != total:
                raise TransientTransportError(f"{self.device.name}: upload ended at {size} of {total} bytes",
                                              reason="upload-incomplete", host=self.device.name)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._drop_sftp()
            raise _wrap(exc, self.device, "upload") from exc

    def _drop_sftp(self) -> None:
        if self._sftp is not None:
            with contextlib.suppress(Exception):
                self._sftp.close()
            self._sftp = None

    def reconnect(self, *, timeout: float) -> None:
        """Wait until the monitor's port answers, then log in once on that connection; host-key and auth
        refusals end it at once.

        The wait is a bare TCP connect through the network guard (no key exchange while the monitor is
        down), repeated after pauses from 50 ms doubling up to ``reconnect_interval``, never past
        ``timeout``: a monitor back after a reboot is seen within one pause, at the floor's speed."""
        self.close()
        deadline = time.monotonic() + timeout
        pause = min(RECONNECT_FIRST_PAUSE, self._owner.reconnect_interval)
        last: TransportError | None = None
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                sock = connect_checked(self.device.address, self.device.port,
                                       timeout=min(PROBE_TIMEOUT, remaining))
            except (OSError, IndicatorAddressRefused) as exc:
                last = _wrap(exc, self.device, "connect")
                if isinstance(last, PermanentTransportError):
                    raise last from exc
            else:
                try:
                    self.connect(sock)
                    return
                except TransientTransportError as exc:
                    last = exc
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, self._owner.reconnect_interval)
        why = last.reason if last else "no answer"
        raise TransientTransportError(
            f"{self.device.name}: did not come back within {timeout:g} s ({why})",
            reason="reconnect-timeout", host=self.device.name)

    def wait_disconnect(self, timeout: float) -> bool:
        """After `reboot`: wait until the monitor drops this connection (True) or ``timeout`` passes.

        Reconnecting before the drop would reach the old, still-running system and read its state."""
        transport = self._transport
        if transport is None:
            return True
        deadline = time.monotonic() + timeout
        while transport.is_active() and time.monotonic() < deadline:
            time.sleep(0.02)
        return not transport.is_active()

    def close(self) -> None:
        self._drop_sftp()
        if self._transport is not None:
            with contextlib.suppress(Exception):
                self._transport.close()
            self._transport = None


def iter_enroll(transport: SshTransport, devices: tuple[Device, ...],
                timeout: float = 10.0) -> Iterator[tuple[Device, str | None, paramiko.PKey | None, str]]:
    """(device, fingerprint, key, note) for each monitor, for `cmspatch enroll` to show and record."""
    for device in devices:
        if not device.address:
            yield device, None, None, "no network address (manual unit)"
            continue
        try:
            key = fetch_host_key(device, timeout=timeout)
        except TransportError as exc:
            why = "refused" if exc.reason == "indicator-address" else "unreachable"
            yield device, None, None, f"{why}: {exc.reason}"
            continue
        seen = fingerprint(key)
        if device.host_key and device.host_key != seen:
            yield device, seen, key, "MISMATCH with the inventory's host_key: not recorded"
        else:
            yield device, seen, key, "ok"


def record_known_hosts(path: str | Path, found: list[tuple[Device, paramiko.PKey]]) -> tuple[int, list[str]]:
    """Append enrolled keys to known_hosts (temp file + rename). A different key already recorded for
    a host is never replaced: returned as a conflict for a person to investigate."""
    target = Path(path)
    existing = paramiko.HostKeys()
    if target.exists():
        existing.load(str(target))
    text = target.read_text(encoding="utf-8") if target.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    added, conflicts = 0, []
    for device, key in found:
        name = _known_hosts_name(device.address, device.port)
        entry = existing.lookup(name)
        if entry is not None and key.get_name() in entry:
            if entry[key.get_name()].asbytes() != key.asbytes():
                conflicts.append(device.name)
            continue
        text += f"{name} {key.get_name()} {key.get_base64()}\n"
        existing.add(name, key.get_name(), key)
        added += 1
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return added, conflicts
