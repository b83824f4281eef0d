"""The one retry policy: only transient transport errors are retried, every attempt is reported."""

from __future__ import annotations

import pytest

from orchestrator.errors import CmspatchError, PermanentTransportError, TransientTransportError
from orchestrator.retry import Record, RetryPolicy, call_with_retry

FAST = RetryPolicy(attempts=3, initial=0.001, maximum=0.002, jitter=0.0)


def _recorder() -> tuple[list[tuple[int, str, str | None]], Record]:
    log: list[tuple[int, str, str | None]] = []

    def record(attempt: int, outcome: str, error: CmspatchError | None) -> None:
        log.append((attempt, outcome, error.reason if error else None))
    return log, record


def test_a_transient_error_is_retried_until_success() -> None:
    log, record = _recorder()
    calls = iter([TransientTransportError("x", reason="timeout"), None])

    def fn(attempt: int) -> str:
        if (exc := next(calls)) is not None:
            raise exc
        return "done"
    assert call_with_retry(fn, policy=FAST, record=record) == "done"
    assert log == [(1, "retry", "timeout"), (2, "ok", None)]


def test_a_transient_error_gives_up_after_the_last_attempt() -> None:
    log, record = _recorder()

    def fn(attempt: int) -> None:
        raise TransientTransportError("x", reason="connection-refused")
    with pytest.raises(TransientTransportError):
        call_with_retry(fn, policy=FAST, record=record)
    assert [o for _, o, _ in log] == ["retry", "retry", "error"]


@pytest.mark.parametrize("reason", ["host-key-mismatch", "auth-refused", "disk-full", "installer-failed"])
def test_a_permanent_error_is_never_retried(reason: str) -> None:
    log, record = _recorder()

    def fn(attempt: int) -> None:
        raise PermanentTransportError("x", reason=reason)
    with pytest.raises(PermanentTransportError):
        call_with_retry(fn, policy=FAST, record=record)
    assert log == [(1, "error", reason)]


def test_a_bug_is_not_retried_either() -> None:
    log, record = _recorder()

    def fn(attempt: int) -> None:
        raise KeyError("bug")
    with pytest.raises(KeyError):
        call_with_retry(fn, policy=FAST, record=record)
    assert log == []


def test_the_wait_between_attempts_goes_through_the_injected_sleep() -> None:
    waits: list[float] = []
    _, record = _recorder()

    def fn(attempt: int) -> None:
        raise TransientTransportError("x", reason="timeout")
    with pytest.raises(TransientTransportError):
        call_with_retry(fn, policy=RetryPolicy(attempts=4, initial=1.0, maximum=3.0, jitter=0.0),
                        record=record, sleep=waits.append)
    assert waits == [1.0, 2.0, 3.0]  # exponential, capped
