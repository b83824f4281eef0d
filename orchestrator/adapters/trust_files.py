"""Files of package trust: atomic writes, bounded reads, key files, the anti-rollback state file.

Every write goes to a temporary file in the target's directory, is flushed and fsynced, then
``os.replace``d over the target, so a crash leaves either the old file or the new one, never half of
one. Private keys are created with mode 0600 from the first byte (the temporary file is opened with that
mode), so there is no moment when another user could read them, and encrypted with a passphrase unless
the caller passes none. A passphrase or token PIN (``SecretSource``) comes from a file readable by its
owner only, an environment variable, or the terminal -- never from the command line, and it is never
printed, logged or written anywhere. Reads are bounded: a "manifest" of
gigabytes is refused before it is loaded.

The anti-rollback state lives by default in ``$CMSPATCH_STATE_DIR/trust-state.json``, else
``$XDG_STATE_HOME/cmspatch/trust-state.json``, else ``~/.local/state/cmspatch/trust-state.json``;
``--state`` (or ``state=``) overrides it. Updates hold an exclusive ``fcntl`` lock on a sibling
``.lock`` file so two verifications cannot both record a release from the same old state.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator.adapters.strict_files import read_capped
from orchestrator.domain.strict_load import STATE, Limits, StrictLoadError
from orchestrator.domain.trust.reasons import Reason
from orchestrator.domain.trust.rollback import RollbackState, parse_state, render_state
from orchestrator.domain.trust.signatures import SigningKey, is_encrypted_pem, load_private_key
from orchestrator.errors import TrustError, UsageError

STATE_FILENAME = "trust-state.json"


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` all at once. ``exclusive`` refuses to replace an existing file."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    if exclusive and path.exists():
        raise UsageError(f"{path} exists; refusing to overwrite it")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if the target appeared meanwhile; never replaces it
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except FileExistsError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise UsageError(f"{path} exists; refusing to overwrite it") from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """Read a small input file; a missing file is a usage error, a huge one is refused unread (its size
    is looked at before a byte is read)."""
    try:
        return read_capped(path, Limits(what, limit))
    except StrictLoadError as exc:
        if exc.reason != "too-large":
            raise UsageError(exc.message, reason=exc.reason) from exc
        raise TrustError(exc.message, reason=Reason.MANIFEST_INVALID if what == "manifest"
                         else Reason.POLICY_INVALID) from exc


MAX_SECRET_BYTES = 4096


@dataclass(frozen=True)
class SecretSource:
    """Where a passphrase or PIN comes from: ``file`` (first line), the variable ``env``, else a prompt."""

    what: str = "passphrase"  # "passphrase" or "PIN": the words of the prompt and of the errors
    flag: str = "--passphrase"  # the flags' stem, to name them in errors (--passphrase-file, ...)
    file: Path | None = None
    env: str | None = None


def _secret_from_file(path: Path, source: SecretSource) -> bytes:
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_IMODE(info.st_mode) & 0o077:
                raise UsageError(f"{path}: a {source.what} file must be readable by its owner only "
                                 f"(it is mode {stat.S_IMODE(info.st_mode):o}; chmod 600 {path})",
                                 reason="secret-file-exposed")
            data = handle.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the {source.what} file: {exc.strerror or exc}",
                         reason="secret-unreadable") from exc
    if len(data) > MAX_SECRET_BYTES:
        raise UsageError(f"{path}: too large to be a {source.what} file", reason="secret-unreadable")
    return data.split(b"\n", 1)[0].removesuffix(b"\r")


def _secret_from_prompt(source: SecretSource, prompt: str, confirm: bool) -> bytes:
    if not sys.stdin.isatty():
        raise UsageError(f"{prompt.rstrip(': ')}: no terminal to ask on; give {source.flag}-file FILE or "
                         f"{source.flag}-env NAME", reason="secret-needed")
    try:
        first = getpass.getpass(prompt)
        if confirm and getpass.getpass(f"again, to confirm the {source.what}: ") != first:
            raise UsageError(f"the two {source.what}s differ; nothing was written", reason="secret-mismatch")
    except EOFError as exc:
        raise UsageError(f"no {source.what} given", reason="secret-needed") from exc
    return first.encode("utf-8")


def read_secret(source: SecretSource, prompt: str, *, confirm: bool = False) -> bytes:
    """The passphrase or PIN, from the file, the environment variable or the terminal (asked twice when
    ``confirm``). Never empty; never echoed, printed or logged."""
    if source.file is not None and source.env is not None:
        raise UsageError(f"give {source.flag}-file or {source.flag}-env, not both")
    if source.file is not None:
        secret, where = _secret_from_file(source.file, source), str(source.file)
    elif source.env is not None:
        secret, where = os.environ.get(source.env, "").encode("utf-8"), f"${source.env}"
        if not secret:
            raise UsageError(f"{where} is not set or empty: it should hold the {source.what}",
                             reason="secret-needed")
    else:
        secret, where = _secret_from_prompt(source, prompt, confirm), "the prompt"
    if not secret:
        raise UsageError(f"{where}: an empty {source.what} protects nothing", reason="secret-empty")
    return secret


def load_signing_key(path: Path, secret: SecretSource | None = None) -> SigningKey:
    """A key file; an encrypted one asks ``secret`` (default: the terminal) for its passphrase."""
    data = read_bounded(path, 64 * 1024, "private key")
    if not is_encrypted_pem(data):
        return load_private_key(data, source=str(path))
    passphrase = read_secret(secret or SecretSource(), f"passphrase of {path}: ")
    return load_private_key(data, source=str(path), passphrase=passphrase)


def write_private_key(path: Path, key: SigningKey, passphrase: bytes | None = None) -> None:
    """Create ``path`` (never over an existing file), encrypted with ``passphrase`` when one is given."""
    atomic_write(path, key.private_pem(passphrase), mode=0o600, exclusive=True)


def default_state_path() -> Path:
    if os.environ.get("CMSPATCH_STATE_DIR"):
        return Path(os.environ["CMSPATCH_STATE_DIR"]) / STATE_FILENAME
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cmspatch" / STATE_FILENAME


def read_state(path: Path) -> RollbackState:
    """The recorded state; a missing file is a fresh state, an unreadable one is refused."""
    try:
        data = read_capped(path, STATE)
    except StrictLoadError as exc:
        if exc.reason == "missing":
            return RollbackState()
        raise TrustError(f"anti-rollback state {exc.message}", reason=Reason.STATE_INVALID) from exc
    try:
        return parse_state(data, str(path))
    except TrustError as exc:
        message = exc.message if str(path) in exc.message else f"{path}: {exc.message}"
        raise TrustError(message, reason=exc.reason) from exc


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def update_state(path: Path, change: Callable[[RollbackState], RollbackState]) -> RollbackState:
    """Re-read the state under the lock, apply ``change`` (which may refuse), write it atomically."""
    with _locked(path):
        current = read_state(path)
        new = change(current)
        if new != current:
            atomic_write(path, render_state(new), mode=0o644)
        return new
