"""The reusable contract suite every connector passes, and what it needs from a platform.

A connector's tests provide a harness (a mock platform plus ways to act as its merchant and
its buyers); the checks here play the same scenarios against every one of them, so each
connector is held to the SDK's promises (``connectors.base``) rather than to its author's
reading of them. A third-party author runs the suite from their own tests::

    @pytest.mark.parametrize("check", OUTBOUND_CHECKS, ids=check_name)
    async def test_outbound_contract(check: OutboundCheck) -> None:
        harness = MyHarness()
        await harness.start()
        try:
            await check(harness)
        except NotApplicable as reason:
            pytest.skip(str(reason))
        finally:
            await harness.close()

and likewise ``INBOUND_CHECKS`` with a ``PlatformHarness`` when the connector takes
webhooks. Each check wants a freshly started harness (listed SKUs at 0, no write seen yet):
its versions start at 1. Failures are plain ``AssertionError``s, so no test framework is
needed here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from connectors.base import Connector, InboundRequest
from connectors.testing_inbound import (
    check_acknowledgement,
    check_bought_order_awaits_payment,
    check_buyers_are_told_apart,
    check_cancelled_order_is_cancelled,
    check_forged_delivery_is_refused,
    check_hydrating_an_unknown_order_fails_cleanly,
    check_inbound_errors_keep_secrets,
    check_malformed_delivery_is_refused,
    check_paid_order_is_paid,
    check_stale_delivery_is_refused,
)
from connectors.testing_outbound import (
    check_close_is_idempotent,
    check_increase_lands,
    check_is_a_registered_connector,
    check_outbound_errors_keep_secrets,
    check_read_stock,
    check_reduction_lands,
    check_reduction_racing_a_sale,
    check_retry_after_a_lost_answer_applies_once,
    check_retry_applies_once,
    check_throttled_push_then_retry,
    check_transient_failure_then_retry,
    check_unlisted_sku_is_rejected,
    check_write_modes,
)
from connectors.testing_support import HarnessSecrets, LosesAnswers, NotApplicable

__all__ = [
    "INBOUND_CHECKS",
    "OUTBOUND_CHECKS",
    "HarnessSecrets",
    "InboundCheck",
    "LosesAnswers",
    "NotApplicable",
    "OutboundCheck",
    "OutboundHarness",
    "PlatformHarness",
    "check_name",
    "has_inbound_side",
]


class OutboundHarness(Protocol):
    """A connector under test and the mock platform it writes to.

    ``start`` serves the mock on 127.0.0.1 (free port); ``connector`` builds the
    connector the way ``stockcast.toml`` would (``from_options`` with the mock's base URL,
    credentials and ``listings``) and starts it. SKUs are stockcast SKUs; the harness
    maps them to platform listings. ``channel`` is the channel name the connector serves;
    ``platform`` is the name the connector is registered under.
    """

    platform: str
    channel: str
    listed_skus: tuple[str, ...]
    """At least two SKUs listed on the mock, each starting at 0."""

    @property
    def unlisted_sku(self) -> str | None:
        """A stockcast SKU with no listing on this channel; None where the platform lists
        every SKU it is sent (the simulator), so the unlisted-SKU checks do not apply."""
        ...

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

    def throttle_next(self, calls: int) -> None:
        """The next ``calls`` API calls are throttled in the platform's documented shape."""
        ...

    def fail_next(self, calls: int) -> None:
        """The next ``calls`` API calls fail as a transient server error (5xx or the
        platform's retryable code)."""
        ...

    async def close(self) -> None: ...


class PlatformHarness(OutboundHarness, Protocol):
    """An ``OutboundHarness`` whose platform also delivers order webhooks."""

    unlisted_sku: str
    """A stockcast SKU with no listing on this channel."""

    def pay(self, order_id: str) -> None: ...

    def cancel(self, order_id: str) -> None:
        """The order is cancelled on the platform; its units go back on display."""
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


_INBOUND_MEMBERS = ("pay", "cancel", "webhook", "forged", "stale_time_s", "ack_accepted")


def has_inbound_side(harness: object) -> bool:
    """Whether ``harness`` (an instance or its class) is a ``PlatformHarness``, so the
    inbound checks can run on it."""
    return all(callable(getattr(harness, name, None)) for name in _INBOUND_MEMBERS)


OutboundCheck = Callable[[OutboundHarness], Awaitable[None]]
InboundCheck = Callable[[PlatformHarness], Awaitable[None]]


def check_name(check: Callable[..., object]) -> str:
    """A check's name for test ids: ``check_increase_lands`` -> ``increase_lands``."""
    return getattr(check, "__name__", repr(check)).removeprefix("check_")


OUTBOUND_CHECKS: tuple[OutboundCheck, ...] = (
    check_write_modes,
    check_is_a_registered_connector,
    check_increase_lands,
    check_reduction_lands,
    check_retry_applies_once,
    check_retry_after_a_lost_answer_applies_once,
    check_reduction_racing_a_sale,
    check_throttled_push_then_retry,
    check_transient_failure_then_retry,
    check_unlisted_sku_is_rejected,
    check_read_stock,
    check_close_is_idempotent,
    check_outbound_errors_keep_secrets,
)
"""Every check of a connector's outbound side; each wants a freshly started harness."""

INBOUND_CHECKS: tuple[InboundCheck, ...] = (
    check_bought_order_awaits_payment,
    check_paid_order_is_paid,
    check_cancelled_order_is_cancelled,
    check_buyers_are_told_apart,
    check_forged_delivery_is_refused,
    check_stale_delivery_is_refused,
    check_malformed_delivery_is_refused,
    check_acknowledgement,
    check_hydrating_an_unknown_order_fails_cleanly,
    check_inbound_errors_keep_secrets,
)
"""Every check of a connector's inbound side; they apply only to an ``InboundConnector``
and a ``PlatformHarness``, and each wants a freshly started harness."""
