"""``PlatformHarness`` for the Douyin connector, on top of ``DouyinMock``."""

from __future__ import annotations

from collections.abc import Mapping

from connectors.base import InboundRequest
from connectors.douyin.api import WEBHOOK_ACK
from connectors.douyin.connector import DouyinConnector
from connectors.douyin.mock import DouyinMock
from connectors.douyin.options import DEFAULT_WEBHOOK_WINDOW_S
from tests.contract.mock_harness import MockHarness


class DouyinHarness(MockHarness[DouyinMock, DouyinConnector]):
    """A ``DouyinMock`` shop with two listed SKUs (one product each) and one unlisted."""

    platform = "douyin"
    channel = "douyin-room-1"

    def __init__(self) -> None:
        super().__init__(DouyinMock())

    def secret_options(self) -> tuple[str, ...]:
        return ("app_secret", "access_token")

    def build_connector(
        self, options: Mapping[str, str], listings: Mapping[str, str]
    ) -> DouyinConnector:
        return DouyinConnector.from_options(options, listings)

    def forged(self, request: InboundRequest) -> InboundRequest:
        """One more message smuggled into the signed array; ``event-sign`` kept."""
        extra = b',{"tag":"106","msg_id":"forged-1","data":"{\\"p_id\\":1,\\"cancel_time\\":1}"}]'
        return self.tampered(request, request.body.rstrip()[:-1] + extra)

    def stale_time_s(self, now_s: float) -> float:
        """Past the 72-hour window the connector gives pushes by default."""
        return now_s + DEFAULT_WEBHOOK_WINDOW_S + 1

    def ack_accepted(self) -> Mapping[str, object] | bytes:
        return WEBHOOK_ACK
