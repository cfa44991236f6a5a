"""What every connector's HTTP side shares: its session, ``Retry-After``, number options.

Part of the SDK (a flat module, not a platform): it imports only aiohttp, the standard
library and ``connectors.base``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Final

import aiohttp

from connectors.base import Rejected

DEFAULT_RETRY_AFTER_S: Final = 1.0
"""The wait when a throttled answer gives no usable hint: it still means "slow down"."""


class SessionClient:
    """Base of a connector's HTTP client: owns one ``aiohttp.ClientSession``.

    ``start`` opens the session, ``close`` closes it for good: a closed client never
    opens another, and both are idempotent. A subclass makes its calls on ``session()``,
    which refuses (``Rejected``, a ``ConnectorError`` so callers' error handling stays
    total) before ``start`` and after ``close``.
    """

    def __init__(self, *, timeout_s: float, name: str) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._name = name
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    async def start(self) -> None:
        if self._session is None and not self._closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def close(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def session(self) -> aiohttp.ClientSession:
        """The open session; a call before ``start`` or after ``close`` breaks the
        connector's contract, and is refused."""
        if self._session is None:
            raise Rejected(f"{self._name} connector is not started or already closed")
        return self._session


def parse_retry_after(
    value: str | None, *, now_s: float | None = None, default: float = DEFAULT_RETRY_AFTER_S
) -> float:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds, or an HTTP-date
    counted from ``now_s`` (read only when ``now_s`` is given).

    A missing or unreadable header yields ``default`` rather than zero; a time already
    past yields zero.
    """
    if value is None or not value.strip():
        return default
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else default
    if now_s is None:
        return default
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - now_s)


def number_option(options: Mapping[str, str], name: str, default: float) -> float:
    """The option ``name`` read as a number; ``default`` when absent or blank.

    An unreadable value is a ``ValueError`` naming the option, so a bad configuration
    fails at startup.
    """
    text = options.get(name)
    if text is None or not text.strip():
        return default
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"option {name!r} must be a number, got {text!r}") from None


def seconds_option(options: Mapping[str, str], name: str, default: float) -> float:
    """``number_option`` for a duration: it must also be positive and finite."""
    value = number_option(options, name, default)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"option {name!r} must be a positive number of seconds, got {value}")
    return value
