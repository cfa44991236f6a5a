"""The mock shop's own books: listings, ``available`` counts, orders and their history.

Follows Shopify's inventory model as far as a live room sees it: an order takes its
units off ``available`` when it is placed, a cancellation restocks them, a refund alone
does not. Every change of an order is recorded as the webhook event Shopify would emit,
carrying the REST payload as it stood at that moment (redeliveries resend the original).
No I/O here: the HTTP side (``mock``) and the webhook sender (``mock_webhooks``) read it.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connectors.shopify import api
from connectors.shopify.mock_payloads import order_payload, refund_payload


@dataclass(frozen=True, slots=True)
class MockListing:
    """A variant of its own product, its inventory item stocked at one location."""

    sku: str
    product_id: int
    variant_id: int
    item_id: int
    location_id: int

    def reference(self) -> str:
        """The connector's listing reference, ``<inventory_item_id>@<location_id>``."""
        return f"{self.item_id}@{self.location_id}"


@dataclass(slots=True)
class MockLine:
    line_id: int
    listing: MockListing
    quantity: int


@dataclass(slots=True)
class MockOrder:
    order_id: int
    number: int
    customer_id: int
    buyer: str
    region: str | None
    lines: list[MockLine]
    created_at_s: float
    updated_at_s: float
    financial_status: str = "pending"
    cancelled_at_s: float | None = None
    refunds: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One change as Shopify announces it; ``webhook_id`` is the same on every retry."""

    topic: str
    order_id: int
    payload: dict[str, Any]
    webhook_id: str
    event_id: str


class ShopBooks:
    """Counts by inventory item and location, and orders by id."""

    def __init__(self, location_id: int, *, clock: Callable[[], float] = time.time) -> None:
        self.location_id = location_id
        self._clock = clock
        self._listings: dict[str, MockListing] = {}
        self._available: dict[tuple[int, int], int] = {}
        self._orders: dict[int, MockOrder] = {}
        self._customers: dict[str, int] = {}
        self.events: list[WebhookEvent] = []
        self._ids = itertools.count(1)

    # --- catalogue and counts ---------------------------------------------------------

    def add_listing(self, sku: str, available: int) -> MockListing:
        if sku in self._listings:
            raise ValueError(f"SKU {sku!r} is already listed")
        n = next(self._ids)
        listing = MockListing(
            sku, 7_700_000_000 + n, 4_400_000_000 + n, 8_800_000_000 + n, self.location_id
        )
        self._listings[sku] = listing
        self._available[(listing.item_id, listing.location_id)] = _count(available)
        return listing

    def listing(self, sku: str) -> MockListing:
        try:
            return self._listings[sku]
        except KeyError:
            raise KeyError(f"SKU {sku!r} is not listed on the mock shop") from None

    def listings(self) -> dict[str, MockListing]:
        return dict(self._listings)

    def knows_item(self, item_id: int) -> bool:
        return any(listing.item_id == item_id for listing in self._listings.values())

    def available(self, item_id: int, location_id: int) -> int | None:
        """The count, or None when the item is not stocked at the location."""
        return self._available.get((item_id, location_id))

    def set_available(self, item_id: int, location_id: int, quantity: int) -> None:
        self._available[(item_id, location_id)] = _count(quantity)

    def displayed(self, sku: str) -> int:
        listing = self.listing(sku)
        return self._available[(listing.item_id, listing.location_id)]

    def set_displayed(self, sku: str, quantity: int) -> None:
        listing = self.listing(sku)
        self.set_available(listing.item_id, listing.location_id, quantity)

    # --- buyers -----------------------------------------------------------------------

    def buy(self, sku: str, quantity: int, buyer: str, region: str | None) -> MockOrder | None:
        """A checkout: refused (None) when fewer than ``quantity`` are available, as a shop
        that does not sell out of stock does."""
        if quantity <= 0:
            raise ValueError(f"quantity must be positive, got {quantity}")
        listing = self.listing(sku)
        key = (listing.item_id, listing.location_id)
        if self._available[key] < quantity:
            return None
        self._available[key] -= quantity
        n = next(self._ids)
        now = self._now()
        customer = self._customers.setdefault(buyer, 6_600_000_000 + len(self._customers) + 1)
        line = MockLine(13_000_000_000 + n, listing, quantity)
        order = MockOrder(
            5_500_000_000_000 + n, 1000 + n, customer, buyer, region, [line], now, now
        )
        self._orders[order.order_id] = order
        self._announce(api.ORDERS_CREATE, order)
        return order

    def pay(self, order_id: int) -> None:
        order = self.order(order_id)
        if order.cancelled_at_s is not None:
            raise ValueError(f"order {order_id} is cancelled")
        order.financial_status = "paid"
        self._touch(order)
        self._announce(api.ORDERS_PAID, order)

    def cancel(self, order_id: int) -> None:
        """Cancelled with restock: the units go back on ``available``. An unpaid order's
        authorisation is voided, a paid one is refunded in full."""
        order = self.order(order_id)
        if order.cancelled_at_s is not None:
            return
        for line in order.lines:
            self._available[(line.listing.item_id, line.listing.location_id)] += line.quantity
        order.financial_status = "refunded" if order.financial_status == "paid" else "voided"
        order.cancelled_at_s = self._touch(order)
        self._announce(api.ORDERS_CANCELLED, order)

    def refund(self, order_id: int) -> None:
        """A refund of every line without restocking: the goods stay with the buyer."""
        order = self.order(order_id)
        order.financial_status = "refunded"
        refund = refund_payload(
            order, refund_id=9_900_000_000 + next(self._ids), at_s=self._touch(order)
        )
        order.refunds.append(refund)
        self._record(api.REFUNDS_CREATE, order.order_id, refund)

    def customer_id(self, buyer: str) -> int:
        try:
            return self._customers[buyer]
        except KeyError:
            raise KeyError(f"{buyer!r} has not bought on the mock shop") from None

    def order(self, order_id: int) -> MockOrder:
        try:
            return self._orders[order_id]
        except KeyError:
            raise KeyError(f"no order {order_id} on the mock shop") from None

    def find_order(self, order_id: int) -> MockOrder | None:
        return self._orders.get(order_id)

    def last_event(self, order_id: int) -> WebhookEvent:
        for event in reversed(self.events):
            if event.order_id == order_id:
                return event
        raise KeyError(f"no webhook event for order {order_id}")

    def _announce(self, topic: str, order: MockOrder) -> None:
        self._record(topic, order.order_id, order_payload(order))

    def _record(self, topic: str, order_id: int, payload: dict[str, Any]) -> None:
        self.events.append(
            WebhookEvent(topic, order_id, payload, str(uuid.uuid4()), str(uuid.uuid4()))
        )

    def _touch(self, order: MockOrder) -> float:
        order.updated_at_s = max(self._now(), order.updated_at_s)
        return order.updated_at_s

    def _now(self) -> float:
        return self._clock()


def _count(quantity: int) -> int:
    if quantity < 0:
        raise ValueError(f"a count can not be negative, got {quantity}")
    return quantity
