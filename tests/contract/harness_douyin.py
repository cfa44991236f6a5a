"""``PlatformHarness`` for the Douyin connector, on top of ``DouyinMock``."""

from __future__ import annotations

from collections.abc import Mapping

from connectors.base import Connector, InboundRequest
from connectors.douyin.api import WEBHOOK_ACK, WEBHOOK_WINDOW_S
from connectors.douyin.connector import DouyinConnector
from connectors.douyin.mock import DouyinMock


class DouyinHarness:
    """A ``DouyinMock`` shop with two listed SKUs (one product each) and one unlisted."""

    platform = "douyin"
    channel = "douyin-room-1"
    listed_skus: tuple[str, ...] = ("lipstick", "mascara")
    unlisted_sku = "blush"

    def __init__(self) -> None:
        self.mock = DouyinMock()
        self._connectors: list[DouyinConnector] = []

    @property
    def secrets(self) -> tuple[str, ...]:
        """The credentials the connector is given; no message or repr may show them."""
        options = self.mock.connector_options()
        return (options["app_secret"], options["access_token"])

    async def start(self) -> None:
        await self.mock.start()
        for sku in self.listed_skus:
            self.mock.add_listing(sku, 0)

    async def connector(self) -> Connector:
        connector = DouyinConnector.from_options(
            self.mock.connector_options(), self.mock.listings()
        )
        await connector.start()
        self._connectors.append(connector)
        return connector

    def set_displayed(self, sku: str, quantity: int) -> None:
        self.mock.set_displayed(sku, quantity)

    def displayed(self, sku: str) -> int:
        return self.mock.displayed(sku)

    def buy(self, sku: str, quantity: int, *, buyer: str, region: str | None) -> str | None:
        return self.mock.buy(sku, quantity, buyer=buyer, region=region)

    def pay(self, order_id: str) -> None:
        self.mock.pay(order_id)

    def cancel(self, order_id: str) -> None:
        self.mock.cancel(order_id)

    def throttle_next(self, calls: int) -> None:
        self.mock.throttle_next(calls)

    def fail_next(self, calls: int) -> None:
        self.mock.fail_next(calls)

    def webhook(self, order_id: str, *, now_s: float) -> InboundRequest:
        return self.mock.webhook(order_id, now_s)

    def forged(self, request: InboundRequest) -> InboundRequest:
        """One more message smuggled into the signed array; ``event-sign`` kept."""
        extra = b',{"tag":"106","msg_id":"forged-1","data":"{\\"p_id\\":1,\\"cancel_time\\":1}"}]'
        body = request.body.rstrip()[:-1] + extra
        return InboundRequest(
            headers=request.headers,
            body=body,
            query=request.query,
            received_at_s=request.received_at_s,
        )

    def stale_time_s(self, now_s: float) -> float:
        return now_s + WEBHOOK_WINDOW_S + 1

    def ack_accepted(self) -> Mapping[str, object] | bytes:
        return WEBHOOK_ACK

    async def close(self) -> None:
        for connector in self._connectors:
            await connector.close()
        self._connectors.clear()
        await self.mock.stop()
