"""The SSH side of an emulated monitor: login, exec/shell in the monitor's BusyBox chroot, and SFTP/SCP.

One asyncssh server per monitor address, all on the fleet's single event loop. Commands run as a real
BusyBox ``sh`` chrooted into the monitor's root, as an unprivileged uid per monitor (the login is the
service account; running the shell as real root would let ``kill -1`` or ``ifconfig eth0 down`` reach the
host). Without root, ``unshare --user --map-root-user`` provides the chroot instead.
SFTP is confined to the same root (symlinks resolving outside it are refused) and is where the upload
faults act: a drop at a byte offset, a bandwidth cap, a full data partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import posixpath
import signal
import struct
import termios
from typing import TYPE_CHECKING, Any

import asyncssh

if TYPE_CHECKING:
    from orchestrator.emulator.monitor import EmulatedMonitor

SHELL_PATH = "/usr/sbin:/usr/bin:/sbin:/bin:/opt/cms/bin"
_READ_ONLY = (b"/bin", b"/sbin", b"/usr", b"/proc", b"/sys", b"/dev", b"/var/lib/cms")
_DRAIN_SECONDS = 1.0  # output still buffered when the command exits (background jobs keep pipes open)


class MonitorSSHServer(asyncssh.SSHServer):
    def __init__(self, monitor: EmulatedMonitor) -> None:
        self._monitor = monitor
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._monitor.connection_opened(conn)
        sock = conn.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(6, 1, 1)  # TCP_NODELAY: a device answering commands should not wait

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._monitor.connection_closed(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        ok = self._monitor.accepts_key(username, key)
        self._monitor.record("login", user=username, method="publickey", accepted=ok)
        return ok

    def password_auth_supported(self) -> bool:
        return self._monitor.has_fault("default-password")

    def validate_password(self, username: str, password: str) -> bool:
        ok = self._monitor.accepts_password(username, password)
        self._monitor.record("login", user=username, method="password", accepted=ok)
        return ok


def _set_winsize(fd: int, size: tuple[int, int, int, int]) -> None:
    cols, rows = size[0] or 80, size[1] or 24
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, size[2], size[3]))


async def _pump_stream(reader: asyncio.StreamReader, writer: Any) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncssh.Error, BrokenPipeError):
        pass


async def _pump_pty(master: int, writer: Any) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    def ready() -> None:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every holder of the slave side has gone
            data = b""
        if not data:
            loop.remove_reader(master)
        queue.put_nowait(data)

    loop.add_reader(master, ready)
    try:
        while data := await queue.get():
            writer.write(data)
            await writer.drain()
    except (OSError, asyncssh.Error):
        pass
    finally:
        loop.remove_reader(master)


async def _feed_stdin(process: asyncssh.SSHServerProcess[bytes], pgid: int, write: Any,
                      close: Any, winsize_fd: int | None) -> None:
    while True:
        try:
            data = await process.stdin.read(65536)
        except asyncssh.TerminalSizeChanged as change:
            if winsize_fd is not None:
                with contextlib.suppress(OSError):
                    _set_winsize(winsize_fd, (change.width, change.height, change.pixwidth, change.pixheight))
            continue
        except asyncssh.SignalReceived as sig:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                os.killpg(pgid, getattr(signal, "SIG" + str(sig.signal)))
            continue
        except asyncssh.BreakReceived:
            continue
        except (OSError, asyncssh.Error):
            data = b""
        if not data:
            close()
            return
        try:
            await write(data)
        except OSError:
            return


async def handle_process(monitor: EmulatedMonitor, process: asyncssh.SSHServerProcess[bytes]) -> None:
    """Run one exec request or shell session in the monitor's chroot, relaying its I/O."""
    command = process.command
    term = process.get_terminal_type()
    env = {"PATH": SHELL_PATH, "HOME": "/root", "USER": process.get_extra_info("username") or "service",
           "LOGNAME": process.get_extra_info("username") or "service", "SHELL": "/bin/sh"}
    if term:
        env["TERM"] = term
    args = ["/bin/sh", "-c", command] if command is not None else (["/bin/sh", "-l"] if term else ["/bin/sh"])
    argv = monitor.shell_argv(args)
    monitor.record("command", command=command if command is not None else "<shell>", pty=bool(term))
    monitor.process_started()
    proc: asyncio.subprocess.Process | None = None
    master = -1
    try:
        if term:
            master, slave = os.openpty()
            with contextlib.suppress(OSError):
                _set_winsize(slave, process.get_terminal_size())
            os.set_blocking(master, False)
            # setsid -c: a session of its own with the pty as controlling terminal (Ctrl-C works).
            proc = await asyncio.create_subprocess_exec("setsid", "-c", *argv, stdin=slave, stdout=slave,
                                                        stderr=slave, env=env, close_fds=True)
            os.close(slave)
            pumps = [asyncio.ensure_future(_pump_pty(master, process.stdout))]
            pty_fd = master

            async def write_pty(data: bytes) -> None:
                view = memoryview(data)
                while view:
                    try:
                        view = view[os.write(pty_fd, view):]
                    except BlockingIOError:
                        await asyncio.sleep(0.01)

            feeder = asyncio.ensure_future(_feed_stdin(process, proc.pid, write_pty, lambda: None, master))
        else:
            proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE,
                                                        stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE, env=env,
                                                        start_new_session=True)
            assert proc.stdin and proc.stdout and proc.stderr
            pumps = [asyncio.ensure_future(_pump_stream(proc.stdout, process.stdout)),
                     asyncio.ensure_future(_pump_stream(proc.stderr, process.stderr))]
            stdin = proc.stdin

            async def write_pipe(data: bytes) -> None:
                stdin.write(data)
                await stdin.drain()

            def close_pipe() -> None:
                with contextlib.suppress(OSError):
                    stdin.close()

            feeder = asyncio.ensure_future(_feed_stdin(process, proc.pid, write_pipe, close_pipe, None))
        monitor.process_groups.add(proc.pid)
        status = await proc.wait()
        _, pending = await asyncio.wait(pumps, timeout=_DRAIN_SECONDS)
        for task in (*pending, feeder):
            task.cancel()
        with contextlib.suppress(Exception):
            if status < 0:
                process.exit_with_signal(signal.Signals(-status).name[3:])
            else:
                process.exit(status)
        monitor.record("command-exit", command=command if command is not None else "<shell>", status=status)
    finally:
        if proc is not None:
            monitor.process_groups.discard(proc.pid)
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await proc.wait()
        if master >= 0:
            with contextlib.suppress(OSError):
                os.close(master)
        monitor.process_finished()


class MonitorSFTPServer(asyncssh.SFTPServer):
    """SFTP confined to the monitor's root, with the upload faults applied to writes."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], monitor: EmulatedMonitor) -> None:
        super().__init__(chan, chroot=str(monitor.root).encode())
        self._monitor = monitor
        self._uploads: dict[int, dict[str, Any]] = {}
        self._dropped = False

    def map_path(self, path: bytes) -> bytes:
        local = super().map_path(path)
        real = os.path.realpath(local)
        root = str(self._monitor.root).encode()
        if real != root and not real.startswith(root + b"/"):
            raise asyncssh.SFTPPermissionDenied("path leaves the monitor's filesystem")
        return local

    @staticmethod
    def _norm(path: bytes) -> bytes:
        return posixpath.normpath(posixpath.join(b"/", path))

    def _check_writable(self, path: bytes) -> None:
        norm = self._norm(path)
        if any(norm == d or norm.startswith(d + b"/") for d in _READ_ONLY):
            raise asyncssh.SFTPPermissionDenied("read-only file system")

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        writing = bool(pflags & (asyncssh.FXF_WRITE | asyncssh.FXF_APPEND | asyncssh.FXF_CREAT))
        if writing:
            self._check_writable(path)
        local = self.map_path(path)
        existed = os.path.exists(local)
        file_obj = super().open(path, pflags, attrs)
        if writing:
            fd = file_obj.fileno()  # type: ignore[attr-defined]
            if not existed and self._monitor.owner is not None:
                os.fchown(fd, *self._monitor.owner)
            norm = self._norm(path)
            data = str(self._monitor.root / "data").encode()  # through a profile's link to /data too
            real = os.path.realpath(local)
            on_data = real == data or real.startswith(data + b"/")
            self._uploads[id(file_obj)] = {
                "path": norm.decode(errors="replace"), "bytes": 0, "high": os.fstat(fd).st_size,
                "start_size": os.fstat(fd).st_size,
                "free": self._monitor.data_free() if on_data else None,
            }
        return file_obj

    async def write(self, file_obj: object, offset: int, data: bytes) -> int:
        upload = self._uploads.get(id(file_obj))
        if upload is None:
            return await _maybe_await(super().write(file_obj, offset, data))
        if self._dropped:  # pipelined writes still queued behind the one that dropped the link
            raise asyncssh.SFTPConnectionLost("connection dropped")
        end = offset + len(data)
        drop_at = self._monitor.upload_drop_offset()
        if drop_at is not None and end > drop_at:
            keep = max(0, drop_at - offset)
            if keep:
                await _maybe_await(super().write(file_obj, offset, data[:keep]))
            upload["bytes"] += keep
            self._dropped = True
            self._monitor.upload_dropped(upload["path"], drop_at)
            self.connection.abort()
            raise asyncssh.SFTPConnectionLost("connection dropped")
        if upload["free"] is not None and end - upload["start_size"] > upload["free"]:
            self._monitor.record("upload-refused", path=upload["path"], reason="no space left on device")
            raise asyncssh.SFTPFailure("No space left on device")
        await self._monitor.throttle(len(data))
        written = await _maybe_await(super().write(file_obj, offset, data))
        upload["bytes"] += len(data)
        upload["high"] = max(upload["high"], end)
        return written

    def close(self, file_obj: object) -> Any:
        upload = self._uploads.pop(id(file_obj), None)
        result = super().close(file_obj)
        if upload is not None:
            self._monitor.record("upload", path=upload["path"], bytes=upload["bytes"])
        return result

    def exit(self) -> None:
        # OpenSSH's sftp-server session ends with exit-status 0; scp (SFTP mode) fails without it.
        with contextlib.suppress(Exception):
            self.channel.exit(0)
        super().exit()

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> Any:
        self._check_writable(path)
        result = super().mkdir(path, attrs)
        if self._monitor.owner is not None:
            with contextlib.suppress(OSError):
                os.lchown(self.map_path(path), *self._monitor.owner)
        return result

    def remove(self, path: bytes) -> Any:
        self._check_writable(path)
        return super().remove(path)

    def rmdir(self, path: bytes) -> Any:
        self._check_writable(path)
        return super().rmdir(path)

    def rename(self, oldpath: bytes, newpath: bytes) -> Any:
        self._check_writable(oldpath)
        self._check_writable(newpath)
        return super().rename(oldpath, newpath)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> Any:
        self._check_writable(oldpath)
        self._check_writable(newpath)
        return super().posix_rename(oldpath, newpath)

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> Any:
        self._check_writable(path)
        attrs.uid = attrs.gid = None  # ownership is the device's business
        return super().setstat(path, attrs)

    def symlink(self, oldpath: bytes, newpath: bytes) -> Any:
        self._check_writable(newpath)
        return super().symlink(oldpath, newpath)


async def _maybe_await(value: Any) -> Any:
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value
    return value
