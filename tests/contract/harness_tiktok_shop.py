"""The contract suite's view of TikTok Shop: the connector against the mock platform."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from connectors.base import Connector, InboundRequest
from connectors.tiktok_shop import api
from connectors.tiktok_shop.connector import TikTokShopConnector
from connectors.tiktok_shop.mock import TikTokShopMock


class TikTokShopHarness:
    """Implements ``connectors.testing.PlatformHarness``; one mock shop per harness."""

    platform = "tiktok_shop"
    channel = "tiktok-shop-room-1"
    listed_skus: tuple[str, ...] = ("lipstick", "mascara")
    unlisted_sku = "blush"

    def __init__(self) -> None:
        self._mock = TikTokShopMock()
        for sku in self.listed_skus:
            self._mock.add_listing(sku, 0)
        self._connectors: list[TikTokShopConnector] = []

    @property
    def secrets(self) -> tuple[str, ...]:
        """The credentials the connector is given; no message or repr may show them."""
        options = self._mock.connector_options()
        return (options["app_secret"], options["access_token"])

    @property
    def mock(self) -> TikTokShopMock:
        """The platform itself, for checks beyond the harness protocol."""
        return self._mock

    async def start(self) -> None:
        await self._mock.start()

    async def connector(self) -> Connector:
        connector = TikTokShopConnector.from_options(
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
        """The attacker points the event at another order and keeps the signature."""
        envelope = orjson.loads(request.body)
        envelope["data"]["order_id"] = "5770000000000000666"
        return InboundRequest(
            headers=request.headers,
            body=orjson.dumps(envelope),
            query=request.query,
            received_at_s=request.received_at_s,
        )

    def stale_time_s(self, now_s: float) -> float:
        return now_s + api.TIMESTAMP_PAST_WINDOW_S + 1

    def ack_accepted(self) -> Mapping[str, object] | bytes:
        """TikTok Shop documents only the status (200); the body is not read."""
        return b""

    async def close(self) -> None:
        for connector in self._connectors:
            await connector.close()
        self._connectors.clear()
        await self._mock.stop()
