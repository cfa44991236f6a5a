"""The mock platform's webhook side: signed deliveries, and redelivery until acknowledged.

A delivery is one event in the documented envelope, signed in ``Authorization`` with
HMAC-SHA256(app_secret, app_key + body). The platform's retry schedule is not published
[U]; the mock redelivers the same bytes on a compressed exponential schedule (base
``base_delay_s``, doubling, ``max_tries`` in all), which keeps the at-least-once shape
without making tests wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
import orjson

from connectors.base import InboundRequest
from connectors.tiktok_shop.mock_gate import AppCredentials, MockStats
from connectors.tiktok_shop.mock_state import Event
from connectors.tiktok_shop.signing import webhook_signature

DEFAULT_BASE_DELAY_S = 0.05
DEFAULT_MAX_TRIES = 8

log = logging.getLogger(__name__)


def delivery(
    credentials: AppCredentials, shop_id: str, event: Event, timestamp: int
) -> InboundRequest:
    """``event`` as our ingress receives it: raw body, lower-case header names."""
    body = orjson.dumps(
        {
            "type": event.type,
            "tts_notification_id": event.notification_id,
            "shop_id": shop_id,
            "timestamp": timestamp,
            "data": event.data,
        }
    )
    signature = webhook_signature(credentials.app_key, credentials.app_secret, body)
    return InboundRequest(
        headers={"authorization": signature, "content-type": "application/json"},
        body=body,
        received_at_s=float(timestamp),
    )


class WebhookSender:
    """POSTs deliveries to one address in background tasks; ``close`` cancels the rest."""

    def __init__(
        self,
        stats: MockStats,
        *,
        base_delay_s: float = DEFAULT_BASE_DELAY_S,
        max_tries: int = DEFAULT_MAX_TRIES,
    ) -> None:
        self._stats = stats
        self._base_delay_s = base_delay_s
        self._max_tries = max_tries
        self._url: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def target(self) -> str | None:
        return self._url

    def deliver_to(self, url: str | None) -> None:
        self._url = url

    def send(self, request: InboundRequest) -> None:
        """Deliver in the background; needs a running event loop. No-op without a target."""
        if self._url is None:
            return
        task = asyncio.get_running_loop().create_task(self._deliver(self._url, request))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait until every delivery so far was acknowledged or abandoned."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._pending)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _deliver(self, url: str, request: InboundRequest) -> None:
        headers = {
            "Authorization": request.headers["authorization"],
            "Content-Type": "application/json",
        }
        for attempt in range(self._max_tries):
            if attempt:
                await asyncio.sleep(self._base_delay_s * 2 ** (attempt - 1))
            self._stats.deliveries_sent += 1
            try:
                async with self._client().post(url, data=request.body, headers=headers) as answer:
                    if 200 <= answer.status < 300:
                        self._stats.deliveries_acknowledged += 1
                        return
                    log.debug("delivery refused with %d (try %d)", answer.status, attempt + 1)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.debug("delivery failed: %s (try %d)", type(exc).__name__, attempt + 1)
        self._stats.deliveries_abandoned += 1

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        return self._session
