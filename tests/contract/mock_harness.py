"""A ``PlatformHarness`` over a platform mock: what every mock-backed harness shares.

A subclass names its platform, builds its mock and its connector, and says what only
that platform knows: how to forge a delivery, when one is stale, and what its
acknowledgement looks like.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar, Generic, Protocol, TypeVar

from connectors.base import Connector, InboundRequest


class PlatformMock(Protocol):
    """What the harness drives on a mock (every platform mock offers it)."""

    async def start(self) -> str: ...
    async def stop(self) -> None: ...
    def add_listing(self, sku: str, displayed: int = 0) -> str: ...
    def listings(self) -> dict[str, str]: ...
    def connector_options(self) -> dict[str, str]: ...
    def set_displayed(self, sku: str, quantity: int) -> None: ...
    def displayed(self, sku: str) -> int: ...
    def buy(self, sku: str, quantity: int, *, buyer: str, region: str | None) -> str | None: ...
    def pay(self, order_id: str) -> None: ...
    def cancel(self, order_id: str) -> None: ...
    def throttle_next(self, calls: int) -> None: ...
    def fail_next(self, calls: int) -> None: ...
    def webhook(self, order_id: str, now_s: float) -> InboundRequest: ...


MockT = TypeVar("MockT", bound=PlatformMock)
ConnectorT = TypeVar("ConnectorT", bound=Connector)


class MockHarness(ABC, Generic[MockT, ConnectorT]):
    """Implements ``connectors.testing.PlatformHarness`` over one mock shop.

    The listed SKUs are listed at zero when the harness is built; every connector it
    hands out is started, and closed by ``close``, which also stops the mock.
    """

    platform: ClassVar[str]
    channel: ClassVar[str]
    listed_skus: tuple[str, ...] = ("lipstick", "mascara")
    unlisted_sku = "blush"

    def __init__(self, mock: MockT) -> None:
        self._mock = mock
        for sku in self.listed_skus:
            mock.add_listing(sku, 0)
        self._connectors: list[ConnectorT] = []

    @property
    def mock(self) -> MockT:
        """The platform itself, for checks beyond the harness protocol."""
        return self._mock

    @property
    def secrets(self) -> tuple[str, ...]:
        """The credentials the connector is given; no message or repr may show them."""
        options = self._mock.connector_options()
        return tuple(options[name] for name in self.secret_options())

    @abstractmethod
    def secret_options(self) -> tuple[str, ...]:
        """The names of the options that hold secrets."""

    @abstractmethod
    def build_connector(
        self, options: Mapping[str, str], listings: Mapping[str, str]
    ) -> ConnectorT:
        """The platform's connector, built from options as ``stockcast.toml`` gives them."""

    @abstractmethod
    def forged(self, request: InboundRequest) -> InboundRequest:
        """``request`` with its body tampered and its signature kept."""

    @abstractmethod
    def stale_time_s(self, now_s: float) -> float:
        """A time at which a delivery signed ``now_s`` is outside the connector's window."""

    @abstractmethod
    def ack_accepted(self) -> Mapping[str, object] | bytes:
        """The body of the acknowledgement of an accepted delivery."""

    async def start(self) -> None:
        await self._mock.start()

    async def connector(self) -> ConnectorT:
        connector = self.build_connector(self._mock.connector_options(), self._mock.listings())
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

    def tampered(self, request: InboundRequest, body: bytes) -> InboundRequest:
        """``request`` with another body, every header (the signature too) kept."""
        return InboundRequest(
            headers=request.headers,
            body=body,
            query=request.query,
            received_at_s=request.received_at_s,
        )

    async def close(self) -> None:
        for connector in self._connectors:
            await connector.close()
        self._connectors.clear()
        await self._mock.stop()
