"""The contract suite's view of Shopify: the connector against the mock platform."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from connectors.base import Connector, InboundRequest
from connectors.shopify.connector import DEFAULT_WEBHOOK_WINDOW_S, ShopifyConnector
from connectors.shopify.mock import ShopifyMock

ACCESS_TOKEN = "shpat_contract_0c7d5e9a41f2b386"
CLIENT_SECRET = "shpss_contract_client_secret_58ae"


class ShopifyHarness:
    """Implements ``connectors.testing.PlatformHarness``; one mock shop per harness."""

    platform = "shopify"
    channel = "shopify-live-1"
    listed_skus: tuple[str, ...] = ("lipstick", "mascara")
    unlisted_sku = "blush"

    def __init__(self) -> None:
        self._mock = ShopifyMock(access_token=ACCESS_TOKEN, client_secret=CLIENT_SECRET)
        for sku in self.listed_skus:
            self._mock.add_listing(sku, 0)
        self._connectors: list[ShopifyConnector] = []

    @property
    def secrets(self) -> tuple[str, ...]:
        """The credentials the connector is given; no message or repr may show them."""
        return (ACCESS_TOKEN, CLIENT_SECRET)

    @property
    def mock(self) -> ShopifyMock:
        """The platform itself, for checks beyond the harness protocol."""
        return self._mock

    async def start(self) -> None:
        await self._mock.start()

    async def connector(self) -> Connector:
        connector = ShopifyConnector.from_options(
            self._mock.connector_options(), self._mock.listings()
        )
        await connector.start()
        self._connectors.append(connector)
        return connector

    def set_displayed(self, sku: str, quantity: int) -> None:
        self._mock.set_displayed(sku, quantity)

    def displayed(self, sku: str) -> int:
        return self._mock.displayed(sku)

    def buy(self, sku: str, quantity: int, *, buyer: str, region: str | None) -> str | None:
        return self._mock.buy(sku, quantity, buyer=buyer, region=region)

    def pay(self, order_id: str) -> None:
        self._mock.pay(order_id)

    def cancel(self, order_id: str) -> None:
        self._mock.cancel(order_id)

    def throttle_next(self, calls: int) -> None:
        self._mock.throttle_next(calls)

    def fail_next(self, calls: int) -> None:
        self._mock.fail_next(calls)

    def webhook(self, order_id: str, *, now_s: float) -> InboundRequest:
        return self._mock.webhook(order_id, now_s)

    def forged(self, request: InboundRequest) -> InboundRequest:
        """The attacker raises every line's quantity and keeps the signature."""
        order = orjson.loads(request.body)
        for line in order.get("line_items", []):
            line["quantity"] += 100
        return InboundRequest(
            headers=request.headers,
            body=orjson.dumps(order),
            query=request.query,
            received_at_s=request.received_at_s,
        )

    def stale_time_s(self, now_s: float) -> float:
        return now_s + DEFAULT_WEBHOOK_WINDOW_S + 1

    def ack_accepted(self) -> Mapping[str, object] | bytes:
        """Shopify reads only the status (any 2xx); the body is empty."""
        return b""

    async def close(self) -> None:
        for connector in self._connectors:
            await connector.close()
        self._connectors.clear()
        await self._mock.stop()
