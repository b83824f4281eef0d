"""Files of package trust: atomic writes, bounded reads, key files, the anti-rollback state file.

Every write goes to a temporary file in the target's directory, is flushed and fsynced, then
``os.replace``d over the target, so a crash leaves either the old file or the new one, never half of
one. Private keys are created with mode 0600 from the first byte (the temporary file is opened with that
mode), so there is no moment when another user could read them. Reads are bounded: a "manifest" of
gigabytes is refused before it is loaded.

The anti-rollback state lives by default in ``$CMSPATCH_STATE_DIR/trust-state.json``, else
``$XDG_STATE_HOME/cmspatch/trust-state.json``, else ``~/.local/state/cmspatch/trust-state.json``;
``--state`` (or ``state=``) overrides it. Updates hold an exclusive ``fcntl`` lock on a sibling
``.lock`` file so two verifications cannot both record a release from the same old state.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from orchestrator.adapters.strict_files import read_capped
from orchestrator.domain.strict_load import STATE, Limits, StrictLoadError
from orchestrator.domain.trust.reasons import Reason
from orchestrator.domain.trust.rollback import RollbackState, parse_state, render_state
from orchestrator.domain.trust.signatures import SigningKey, load_private_key
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


def load_signing_key(path: Path) -> SigningKey:
    data = read_bounded(path, 64 * 1024, "private key")
    return load_private_key(data, source=str(path))


def write_private_key(path: Path, key: SigningKey) -> None:
    atomic_write(path, key.private_pem(), mode=0o600, exclusive=True)


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
