"""How stockcast retries a platform call: the same policy for pushes and hydrations.

Exponential back-off with jitter, never sooner than the platform asked (``Retry-After``
and its in-band equivalents arrive as ``RateLimited.retry_after``); only errors the SDK
marks as retryable are retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from connectors.base import RateLimited, TransientError

ATTEMPTS: Final = 5
_backoff = wait_exponential_jitter(multiplier=0.05, max=5.0, jitter=0.05)


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    hint = error.retry_after if isinstance(error, RateLimited) else 0.0
    return max(hint, _backoff(state))


def platform_retrying(
    *,
    attempts: int = ATTEMPTS,
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> AsyncRetrying:
    """Retries TransientError and RateLimited up to ``attempts`` tries in all, then
    re-raises the last error."""
    return AsyncRetrying(
        retry=retry_if_exception_type((TransientError, RateLimited)),
        wait=_wait,
        stop=stop_after_attempt(attempts),
        before_sleep=before_sleep,
        reraise=True,
    )
