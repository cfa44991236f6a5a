"""The mock shop's webhook deliveries: signed as Shopify signs them, retried as it retries.

A delivery is the event's payload as it stood when it happened, with every
``X-Shopify-*`` header; its signature is base64 HMAC-SHA256 of the raw body keyed with
the app's client secret. A non-2xx answer (or none within 5 s) is retried with the same
body and webhook id, backing off exponentially; the real schedule spans 4 hours over 8
tries, the mock compresses it to ``base_delay_s * 2**n``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Final

import aiohttp
import orjson

from connectors.base import InboundRequest
from connectors.shopify.mock_state import WebhookEvent
from connectors.shopify.signing import format_triggered_at, webhook_signature

MAX_TRIES: Final = 8
BASE_DELAY_S: Final = 0.05
DELIVERY_TIMEOUT_S: Final = 5.0

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook POST: canonical header names, the raw body."""

    headers: dict[str, str]
    body: bytes

    def as_received(self, received_at_s: float = 0.0) -> InboundRequest:
        """As our ingress hands it over: lower-case header names."""
        headers = {name.lower(): value for name, value in self.headers.items()}
        return InboundRequest(headers=headers, body=self.body, received_at_s=received_at_s)


def signed_delivery(
    event: WebhookEvent,
    *,
    client_secret: str,
    shop_domain: str,
    api_version: str,
    triggered_at_s: float,
) -> Delivery:
    body = orjson.dumps(event.payload)
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": event.topic,
        "X-Shopify-Hmac-Sha256": webhook_signature(client_secret, body),
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-API-Version": api_version,
        "X-Shopify-Webhook-Id": event.webhook_id,
        "X-Shopify-Triggered-At": format_triggered_at(triggered_at_s),
        "X-Shopify-Event-Id": event.event_id,
    }
    return Delivery(headers, body)


@dataclass(slots=True)
class DeliveryStats:
    deliveries_sent: int = 0
    """Deliveries the receiver acknowledged with a 2xx."""
    deliveries_failed: int = 0
    """Deliveries given up after the last try."""
    delivery_attempts: int = 0


class WebhookSender:
    """POSTs deliveries to one URL in background tasks, retrying until acknowledged."""

    def __init__(
        self,
        stats: DeliveryStats,
        *,
        max_tries: int = MAX_TRIES,
        base_delay_s: float = BASE_DELAY_S,
    ) -> None:
        self._stats = stats
        self._max_tries = max_tries
        self._base_delay_s = base_delay_s
        self._url: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str | None:
        return self._url

    def target(self, url: str | None) -> None:
        """Send every later delivery to ``url`` (None: stop sending)."""
        self._url = url

    def send(self, delivery: Delivery) -> None:
        if self._url is None:
            return
        task = asyncio.get_running_loop().create_task(self._deliver(self._url, delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every delivery under way has been acknowledged or given up."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel pending deliveries; a later ``send`` starts afresh."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _deliver(self, url: str, delivery: Delivery) -> None:
        session = self._open()
        for attempt in range(self._max_tries):
            self._stats.delivery_attempts += 1
            try:
                async with session.post(
                    url, data=delivery.body, headers=delivery.headers
                ) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        self._stats.deliveries_sent += 1
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.debug("webhook delivery to %s failed: %r", url, exc)
            if attempt + 1 < self._max_tries:
                await asyncio.sleep(self._base_delay_s * 2**attempt)
        self._stats.deliveries_failed += 1

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_S, connect=1.0)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session
