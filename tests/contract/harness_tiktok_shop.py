"""The contract suite's view of TikTok Shop: the connector against the mock platform."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from connectors.base import InboundRequest
from connectors.tiktok_shop.connector import DEFAULT_WEBHOOK_WINDOW_S, TikTokShopConnector
from connectors.tiktok_shop.mock import TikTokShopMock
from tests.contract.mock_harness import MockHarness


class TikTokShopHarness(MockHarness[TikTokShopMock, TikTokShopConnector]):
    """Implements ``connectors.testing.PlatformHarness``; one mock shop per harness."""

    platform = "tiktok_shop"
    channel = "tiktok-shop-room-1"

    def __init__(self) -> None:
        super().__init__(TikTokShopMock())

    def lose_next_answer(self) -> None:
        self.mock.lose_next_write_answers(1)

    def secret_options(self) -> tuple[str, ...]:
        return ("app_secret", "access_token")

    def build_connector(
        self, options: Mapping[str, str], listings: Mapping[str, str]
    ) -> TikTokShopConnector:
        return TikTokShopConnector.from_options(options, listings)

    def forged(self, request: InboundRequest) -> InboundRequest:
        """The attacker points the event at another order and keeps the signature."""
        envelope = orjson.loads(request.body)
        envelope["data"]["order_id"] = "5770000000000000666"
        return self.tampered(request, orjson.dumps(envelope))

    def stale_time_s(self, now_s: float) -> float:
        """Past the 72-hour redelivery window (the +30 s future skew is not what is tried)."""
        return now_s + DEFAULT_WEBHOOK_WINDOW_S + 1

    def ack_accepted(self) -> Mapping[str, object] | bytes:
        """TikTok Shop documents only the status (200); the body is not read."""
        return b""
