"""The outbound connector for the simulated platforms: one PUT per stock update.

Registered as the ``simulator`` entry point like any third-party connector. Every
failure leaves as a ``ConnectorError`` subclass so the publisher can decide between
retrying, backing off and giving up without knowing HTTP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import ClassVar, Final, Self

import aiohttp
from yarl import URL

from connectors.base import (
    ConnectorError,
    RateLimited,
    Rejected,
    StockUpdate,
    TransientError,
)
from connectors.simulator.stock_api import StockPush, encode_push, parse_retry_after, stock_path

DEFAULT_TIMEOUT_S: Final = 5.0
_MAX_DETAIL_CHARS: Final = 200

log = logging.getLogger(__name__)


class SimulatorConnector:
    """Pushes counts to a simulator server at ``base_url``; serves every simulated channel.

    Options: ``base_url`` (required), ``timeout_s`` (total per request, default 5).
    """

    platform: ClassVar[str] = "simulator"

    def __init__(self, base_url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self._base_url = URL(base_url)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Self:
        base_url = options.get("base_url")
        if not base_url:
            raise ValueError("the simulator connector needs the option 'base_url'")
        timeout = options.get("timeout_s")
        return cls(base_url, timeout_s=DEFAULT_TIMEOUT_S if timeout is None else float(timeout))

    async def start(self) -> None:
        if self._session is None and not self._closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def push_stock(self, update: StockUpdate) -> None:
        """PUT the update; a stale version is answered ``applied: false``, which is fine."""
        if self._session is None:
            # A contract breach by the caller, still raised as a ConnectorError so the
            # publisher's error handling stays total.
            raise Rejected("simulator connector is not started or already closed")
        url = self._base_url.joinpath(stock_path(update.channel, update.sku), encoded=True)
        body = encode_push(StockPush(update.quantity, update.version, update.event_time_ms))
        headers = {"Content-Type": "application/json"}
        try:
            async with self._session.put(url, data=body, headers=headers) as response:
                detail = (await response.text(errors="replace"))[:_MAX_DETAIL_CHARS]
                error = error_for_status(
                    response.status, detail, response.headers.get("Retry-After"), time.time()
                )
        except aiohttp.InvalidURL as exc:
            raise Rejected(f"invalid simulator URL: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"PUT {url} failed: {exc!r}") from exc
        if error is not None:
            raise error
        log.debug("pushed %s/%s v%d: %s", update.channel, update.sku, update.version, detail)

    async def close(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def error_for_status(
    status: int, detail: str, retry_after: str | None, now_s: float
) -> ConnectorError | None:
    """Map an HTTP answer to the SDK's error tree; None for success."""
    if 200 <= status < 300:
        return None
    message = f"simulator answered {status}: {detail}"
    if status == 429:
        return RateLimited(message, retry_after=parse_retry_after(retry_after, now_s=now_s))
    if status >= 500:
        return TransientError(message)
    return Rejected(message)
