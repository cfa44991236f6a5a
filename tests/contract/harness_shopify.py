"""The contract suite's view of Shopify: the connector against the mock platform."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from connectors.base import InboundRequest
from connectors.shopify.connector import DEFAULT_WEBHOOK_WINDOW_S, ShopifyConnector
from connectors.shopify.mock import ShopifyMock
from tests.contract.mock_harness import MockHarness

ACCESS_TOKEN = "shpat_contract_0c7d5e9a41f2b386"
CLIENT_SECRET = "shpss_contract_client_secret_58ae"


class ShopifyHarness(MockHarness[ShopifyMock, ShopifyConnector]):
    """Implements ``connectors.testing.PlatformHarness``; one mock shop per harness."""

    platform = "shopify"
    channel = "shopify-live-1"

    def __init__(self) -> None:
        super().__init__(ShopifyMock(access_token=ACCESS_TOKEN, client_secret=CLIENT_SECRET))

    def lose_next_answer(self) -> None:
        self.mock.lose_next_write_answers(1)

    def secret_options(self) -> tuple[str, ...]:
        return ("access_token", "client_secret")

    def build_connector(
        self, options: Mapping[str, str], listings: Mapping[str, str]
    ) -> ShopifyConnector:
        return ShopifyConnector.from_options(options, listings)

    def forged(self, request: InboundRequest) -> InboundRequest:
        """The attacker raises every line's quantity and keeps the signature."""
        order = orjson.loads(request.body)
        for line in order.get("line_items", []):
            line["quantity"] += 100
        return self.tampered(request, orjson.dumps(order))

    def stale_time_s(self, now_s: float) -> float:
        return now_s + DEFAULT_WEBHOOK_WINDOW_S + 1

    def ack_accepted(self) -> Mapping[str, object] | bytes:
        """Shopify reads only the status (any 2xx); the body is empty."""
        return b""
