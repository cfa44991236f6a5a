"""The reusable contract suite every connector passes, and what it needs from a platform.

A connector's tests provide a ``PlatformHarness`` (a mock platform plus ways to act as its
buyers); the suite here runs the same checks against every one of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from connectors.base import Connector, InboundRequest


class PlatformHarness(Protocol):
    """A connector under test and the mock platform it talks to.

    ``start`` serves the mock on 127.0.0.1 (free port); ``connector`` builds the
    connector the way ``stockcast.toml`` would (``from_options`` with the mock's base URL,
    credentials and ``listings``) and starts it. SKUs are stockcast SKUs; the harness
    maps them to platform listings. ``channel`` is the channel name the connector serves.
    """

    platform: str
    channel: str
    listed_skus: tuple[str, ...]
    """At least two SKUs listed on the mock, each starting at 0."""
    unlisted_sku: str
    """A stockcast SKU with no listing on this channel."""

    async def start(self) -> None: ...

    async def connector(self) -> Connector: ...

    def set_displayed(self, sku: str, quantity: int) -> None:
        """Set the platform's counter directly, as the merchant's back office would."""
        ...

    def displayed(self, sku: str) -> int:
        """The platform's counter now."""
        ...

    def buy(self, sku: str, quantity: int, *, buyer: str, region: str | None) -> str | None:
        """A buyer orders on the platform: the counter drops at once (refused, None, when
        short). Returns the platform's order id."""
        ...

    def pay(self, order_id: str) -> None: ...

    def cancel(self, order_id: str) -> None:
        """The order is cancelled on the platform; its units go back on display."""
        ...

    def throttle_next(self, calls: int) -> None:
        """The next ``calls`` API calls are throttled in the platform's documented shape."""
        ...

    def fail_next(self, calls: int) -> None:
        """The next ``calls`` API calls fail as a transient server error (5xx or the
        platform's retryable code)."""
        ...

    def webhook(self, order_id: str, *, now_s: float) -> InboundRequest:
        """The signed delivery the platform sends for the order's latest change, as our
        ingress receives it (lower-case header names, raw body)."""
        ...

    def forged(self, request: InboundRequest) -> InboundRequest:
        """``request`` with its body changed by an attacker and the signature kept."""
        ...

    def stale_time_s(self, now_s: float) -> float:
        """A time at which a delivery signed ``now_s`` is outside the platform's window."""
        ...

    def ack_accepted(self) -> Mapping[str, object] | bytes:
        """The acknowledgement body the platform documents for a received delivery."""
        ...

    async def close(self) -> None: ...
