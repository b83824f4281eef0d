"""The one retry policy of cmspatch: tenacity, configured here and nowhere else.

Only ``TransientTransportError`` is retried (refused, reset, timeout, a dropped upload): exponential
backoff with jitter and a cap, a bounded number of attempts. Everything else is final on the first
attempt, on purpose: a retry cannot fix a wrong host key, a refused login, a refused package, a full
disk, a failed installer or a failed verification, and retrying some of those (host key, login) would
look like an attack to the monitor's owner.

Every attempt is reported to ``record(attempt, outcome, error)`` so the engine journals it as an
``attempt`` event: "ok", "retry" (a transient error, another attempt follows) or "error" (final).
The sleep between attempts is injectable so an aborting engine can cut it short.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from orchestrator.errors import CmspatchError, TransientTransportError

T = TypeVar("T")
Record = Callable[[int, str, CmspatchError | None], None]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    initial: float = 1.0  # seconds before the second attempt
    maximum: float = 30.0  # cap on one wait
    jitter: float = 1.0  # up to this many seconds added at random (spreads a fleet's retries)


def call_with_retry(fn: Callable[[int], T], *, policy: RetryPolicy, record: Record,
                    sleep: Callable[[float], None] | None = None) -> T:
    """Call ``fn(attempt_number)`` until it succeeds, raises a non-transient error, or attempts run out.

    The last error is re-raised as is (tenacity's RetryError never escapes)."""
    retrying = Retrying(
        stop=stop_after_attempt(max(1, policy.attempts)),
        wait=wait_exponential_jitter(multiplier=policy.initial, max=policy.maximum, jitter=policy.jitter),
        retry=retry_if_exception_type(TransientTransportError),
        reraise=True,
        sleep=sleep or time.sleep,
    )
    for attempt in retrying:
        with attempt:
            number = attempt.retry_state.attempt_number
            try:
                result = fn(number)
            except TransientTransportError as exc:
                record(number, "retry" if number < policy.attempts else "error", exc)
                raise
            except CmspatchError as exc:
                record(number, "error", exc)
                raise
            record(number, "ok", None)
        if not attempt.retry_state.outcome or not attempt.retry_state.outcome.failed:
            return result
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover
