"""The mock platform's message push: signed deliveries, and a deliverer that retries.

A delivery is acknowledged by a 2xx answer whose body is the documented
``{"code":0,"msg":"success"}``; anything else is retried with exponential back-off on a
compressed schedule (0.05 s, 0.1 s, 0.2 s…, 8 tries in all), then abandoned.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Final

import aiohttp

from connectors.base import InboundRequest
from connectors.douyin.api import (
    SIGN_METHOD_MD5,
    WEBHOOK_APP_ID_HEADER,
    WEBHOOK_SIGN_HEADER,
    WEBHOOK_SIGN_METHOD_HEADER,
)
from connectors.douyin.mock_gateway import MockStats
from connectors.douyin.signing import event_sign

DELIVERY_ATTEMPTS: Final = 8
DELIVERY_BASE_DELAY_S: Final = 0.05
DELIVERY_TIMEOUT_S: Final = 3.0

log = logging.getLogger(__name__)


def signed_headers(
    app_key: str, app_secret: str, body: bytes, sign_method: str = SIGN_METHOD_MD5
) -> dict[str, str]:
    """The headers of a push, lower-case as our ingress hands them over."""
    headers = {
        "content-type": "application/json",
        WEBHOOK_APP_ID_HEADER: app_key,
        WEBHOOK_SIGN_HEADER: event_sign(app_key, app_secret, body, sign_method),
    }
    if sign_method != SIGN_METHOD_MD5:
        headers[WEBHOOK_SIGN_METHOD_HEADER] = sign_method
    return headers


def inbound(headers: Mapping[str, str], body: bytes, received_at_s: float) -> InboundRequest:
    return InboundRequest(headers=dict(headers), body=body, received_at_s=received_at_s)


class Deliverer:
    """Posts deliveries to one URL in background tasks; ``close`` cancels the pending."""

    def __init__(
        self,
        url: str,
        stats: MockStats,
        *,
        attempts: int = DELIVERY_ATTEMPTS,
        base_delay_s: float = DELIVERY_BASE_DELAY_S,
    ) -> None:
        self.url = url
        self._stats = stats
        self._attempts = attempts
        self._base_delay_s = base_delay_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def send(self, headers: Mapping[str, str], body: bytes) -> None:
        """Deliver in the background; needs a running event loop."""
        task = asyncio.get_running_loop().create_task(self._deliver(dict(headers), body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait until every delivery so far is acknowledged or abandoned."""
        while pending := [task for task in self._tasks if not task.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _deliver(self, headers: dict[str, str], body: bytes) -> None:
        for attempt in range(self._attempts):
            if attempt:
                self._stats.deliveries_retried += 1
                await asyncio.sleep(self._base_delay_s * 2 ** (attempt - 1))
            self._stats.deliveries_sent += 1
            if await self._post(headers, body):
                self._stats.deliveries_acked += 1
                return
        self._stats.deliveries_abandoned += 1
        log.warning("mock douyin gave up a delivery to %s after %d tries", self.url, self._attempts)

    async def _post(self, headers: dict[str, str], body: bytes) -> bool:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_S)
            self._session = aiohttp.ClientSession(timeout=timeout)
        try:
            async with self._session.post(self.url, data=body, headers=headers) as response:
                answer = await response.read()
                return 200 <= response.status < 300 and _acknowledged(answer)
        except (aiohttp.ClientError, TimeoutError):
            return False


def _acknowledged(answer: bytes) -> bool:
    try:
        parsed = json.loads(answer)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("code") == 0
