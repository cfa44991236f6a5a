"""A mock Shopify shop (Admin API 2026-04 and webhooks) serving one shop on 127.0.0.1.

It plays the platform as its documents describe it: ``POST /admin/api/<version>/
graphql.json`` guarded by ``X-Shopify-Access-Token`` (Shopify signs no API request: the
token is the whole proof, and a bad one gets the documented 401), ``inventorySetQuantities``
with ``changeFromQuantity`` compare-and-swap and the mandatory ``@idempotent`` key (a
resent key replays the first answer, a reused key with another payload is refused), the
cost-based leaky bucket answering ``THROTTLED`` on HTTP 200 with ``extensions.cost``
(present on every answer), the REST order read with its 429 + ``Retry-After``, and
full-order webhooks signed with the client secret, retried on non-2xx. Its own counters
move when simulated buyers buy, so a connector that writes blindly over them is caught.

Books live in ``mock_state``, the API's front door in ``mock_gateway``, GraphQL in
``mock_graphql``, limits in ``mock_bucket`` and deliveries in ``mock_webhooks``; this
module puts them together and offers the test-facing API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from connectors.base import InboundRequest
from connectors.mock_support import DEFAULT_BASE_DELAY_S, LocalServer, WebhookSender
from connectors.shopify import api
from connectors.shopify.mock_bucket import CostBucket, RestBucket
from connectors.shopify.mock_gateway import AdminGateway, MockStats
from connectors.shopify.mock_graphql import MUTATION_COST
from connectors.shopify.mock_payloads import order_payload
from connectors.shopify.mock_state import ShopBooks, WebhookEvent
from connectors.shopify.mock_webhooks import DELIVERY_TIMEOUT, Delivery, signed_delivery

DEFAULT_SHOP_ID: Final = "stockcast-demo.myshopify.com"
DEFAULT_LOCATION_ID: Final = "65544149100"


class ShopifyMock:
    """One shop of one app. Start it, list SKUs, hand ``connector_options()`` and
    ``listings()`` to the connector, then buy, pay and cancel as the shop's buyers.

    The cost bucket is the Standard plan's (``restore_rate`` 100 points a second,
    ``maximum_available`` 2000). ``rate_limit_per_s`` instead sizes it to that many stock
    writes a second (a write costs 10 points), one second's worth in the bucket, so a
    burst runs into ``THROTTLED`` quickly. ``clock`` is the wall clock of order times and
    deliveries; ``monotonic`` drives the buckets.
    """

    def __init__(
        self,
        shop_id: str = DEFAULT_SHOP_ID,
        access_token: str = "shpat_mock_0f3a9c5e7d21b84c",
        client_secret: str = "shpss_mock_client_secret_7e42",
        location_id: str = DEFAULT_LOCATION_ID,
        rate_limit_per_s: float | None = None,
        *,
        api_version: str = api.API_VERSION,
        restore_rate: float = api.STANDARD_RESTORE_RATE,
        maximum_available: float = api.STANDARD_MAXIMUM_AVAILABLE,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        delivery_base_delay_s: float = DEFAULT_BASE_DELAY_S,
    ) -> None:
        if rate_limit_per_s is not None:
            restore_rate = rate_limit_per_s * MUTATION_COST
            maximum_available = max(restore_rate, MUTATION_COST)
        self.stats = MockStats()
        self._shop_id = shop_id
        self._access_token = access_token
        self._client_secret = client_secret
        self._api_version = api_version
        self._clock = clock
        self._books = ShopBooks(int(location_id), clock=clock)
        self._gateway = AdminGateway(
            self._books,
            self.stats,
            access_token=access_token,
            api_version=api_version,
            bucket=CostBucket(
                maximum_available=maximum_available, restore_rate=restore_rate, clock=monotonic
            ),
            rest_bucket=RestBucket(clock=monotonic),
        )
        self._webhooks = WebhookSender(
            self.stats.deliveries, base_delay_s=delivery_base_delay_s, timeout=DELIVERY_TIMEOUT
        )
        self._announced = 0
        self._server = LocalServer(self._gateway.app)

    def __repr__(self) -> str:
        return f"ShopifyMock(shop_id={self._shop_id!r}, url={self._server.url_if_started!r})"

    @property
    def shop_id(self) -> str:
        return self._shop_id

    @property
    def url(self) -> str:
        return self._server.url

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> str:
        """Serve on 127.0.0.1 at a free port; returns the base URL."""
        return await self._server.start()

    async def stop(self) -> None:
        """Stop serving and cancel deliveries still pending; idempotent."""
        await self._webhooks.close()
        await self._server.stop()

    # --- the merchant -----------------------------------------------------------------

    def add_listing(self, sku: str, displayed: int = 0) -> str:
        """A product with one variant whose seller SKU is ``sku``, stocked at the shop's
        location; returns the connector's listing reference."""
        return self._books.add_listing(sku, displayed).reference()

    def listings(self) -> dict[str, str]:
        return {sku: listing.reference() for sku, listing in self._books.listings().items()}

    def variant_id(self, sku: str) -> str:
        return str(self._books.listing(sku).variant_id)

    def connector_options(self) -> dict[str, str]:
        return {
            "base_url": self.url,
            "access_token": self._access_token,
            "client_secret": self._client_secret,
            "shop_id": self._shop_id,
            "location_id": str(self._books.location_id),
            "api_version": self._api_version,
        }

    def displayed(self, sku: str) -> int:
        return self._books.displayed(sku)

    def set_displayed(self, sku: str, quantity: int) -> None:
        self._books.set_displayed(sku, quantity)

    # --- buyers -----------------------------------------------------------------------

    def buy(self, sku: str, quantity: int, *, buyer: str, region: str | None) -> str | None:
        order = self._books.buy(sku, quantity, buyer, region)
        self._announce()
        return None if order is None else str(order.order_id)

    def pay(self, order_id: str) -> None:
        self._books.pay(int(order_id))
        self._announce()

    def cancel(self, order_id: str) -> None:
        self._books.cancel(int(order_id))
        self._announce()

    def refund(self, order_id: str) -> None:
        self._books.refund(int(order_id))
        self._announce()

    def order(self, order_id: str) -> dict[str, Any]:
        """The order as ``orders/<id>.json`` shows it now."""
        return order_payload(self._books.order(int(order_id)))

    def customer_id(self, buyer: str) -> str:
        """The customer id Shopify gave ``buyer`` at their first checkout."""
        return str(self._books.customer_id(buyer))

    # --- webhooks ---------------------------------------------------------------------

    def webhook(self, order_id: str, now_s: float) -> InboundRequest:
        """The signed delivery of the order's latest change, triggered at ``now_s``."""
        event = self._books.last_event(int(order_id))
        return self._delivery(event, now_s).as_received(received_at_s=now_s)

    def deliver_to(self, url: str | None) -> None:
        """From now on POST every change's delivery to ``url``, retrying non-2xx answers
        with backoff (``None`` stops)."""
        self._webhooks.deliver_to(url)

    async def drain_deliveries(self) -> None:
        await self._webhooks.drain()

    def _announce(self) -> None:
        events = self._books.events[self._announced :]
        self._announced = len(self._books.events)
        for event in events:
            delivery = self._delivery(event, self._clock())
            self._webhooks.send(delivery.headers, delivery.body)

    def _delivery(self, event: WebhookEvent, triggered_at_s: float) -> Delivery:
        return signed_delivery(
            event,
            client_secret=self._client_secret,
            shop_domain=self._shop_id,
            api_version=self._api_version,
            triggered_at_s=triggered_at_s,
        )

    # --- faults -----------------------------------------------------------------------

    def throttle_next(self, calls: int) -> None:
        """The next ``calls`` API calls are throttled: GraphQL as THROTTLED with a dry
        bucket in ``extensions.cost``, REST as 429 with ``Retry-After``."""
        self._gateway.throttles += calls

    def fail_next(self, calls: int) -> None:
        """The next ``calls`` API calls answer 503."""
        self._gateway.failures += calls

    def lose_next_write_answers(self, writes: int) -> None:
        """The next ``writes`` stock sets are applied, but answered 504 as if the gateway
        gave up waiting: the connector can not tell whether they landed."""
        self._gateway.lost_answers += writes

    def forget_idempotency_keys(self) -> None:
        """Forget every ``@idempotent`` key seen, as the platform does once they expire."""
        self._gateway.graphql.forget_keys()

    def before_next_write(self, action: Callable[[], object]) -> None:
        """Run ``action`` (a buyer's checkout, say) just before the next stock set runs:
        the race between a read and its compare-and-swap."""
        self._gateway.before_write.append(action)
