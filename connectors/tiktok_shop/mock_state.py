"""The mock TikTok Shop's books, pure: listings with their counters, orders, returns, and
the events the platform would announce by webhook.

Counters follow the platform's inventory model: ``available`` is what buyers can still
order (what an inventory update sets and the search reports), ``committed`` what orders
hold until the parcel leaves. A buyer's order moves units from the one to the other at
once; a cancellation moves them back; shipping lets them go.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from connectors.tiktok_shop import api

DEFAULT_WAREHOUSE_ID = "7200000000000000001"
_CANCELLABLE = frozenset({api.UNPAID, api.ON_HOLD, api.AWAITING_SHIPMENT})


@dataclass(slots=True)
class Listing:
    """One SKU of one product in one warehouse, with its counters."""

    seller_sku: str
    product_id: str
    sku_id: str
    warehouse_id: str
    in_default_warehouse: bool
    available: int
    committed: int = 0
    live: bool = True

    @property
    def reference(self) -> api.ListingRef:
        warehouse = None if self.in_default_warehouse else self.warehouse_id
        return api.ListingRef(self.product_id, self.sku_id, warehouse)


@dataclass(frozen=True, slots=True)
class Event:
    """A webhook event as the platform stores it; the envelope adds shop and send time."""

    notification_id: str
    type: int
    data: dict[str, Any]


@dataclass(slots=True)
class LineItem:
    id: str
    listing: Listing
    display_status: str


@dataclass(slots=True)
class Order:
    id: str
    buyer: str
    region: str | None
    status: str
    lines: list[LineItem]
    create_time: int
    update_time: int
    paid_time: int | None = None
    cancel_time: int | None = None
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReturnRecord:
    return_id: str
    order_id: str
    return_type: str
    return_status: str
    line_item_ids: tuple[str, ...]
    create_time: int


class ShopBooks:
    """Everything one shop knows; the HTTP layer reads and writes through it."""

    def __init__(self, shop_id: str, clock: Callable[[], float]) -> None:
        self.shop_id = shop_id
        self._clock = clock
        self._ids: Iterator[int] = itertools.count(1)
        self.listings: dict[str, Listing] = {}
        """By seller SKU (= stockcast SKU)."""
        self.by_sku_id: dict[str, Listing] = {}
        self.products: dict[str, list[Listing]] = {}
        self.orders: dict[str, Order] = {}
        self.returns: list[ReturnRecord] = []

    def _id(self, prefix: str) -> str:
        # TikTok ids are 18-19 digit numbers sent as strings; the prefix keeps kinds apart.
        return f"{prefix}{next(self._ids):015d}"

    def now_s(self) -> int:
        return int(self._clock())

    # --- the merchant's back office ---------------------------------------------------

    def add_listing(
        self,
        seller_sku: str,
        available: int,
        *,
        product_id: str | None = None,
        warehouse_id: str | None = None,
    ) -> Listing:
        if seller_sku in self.listings:
            raise ValueError(f"SKU {seller_sku!r} is already listed")
        if not 0 <= available <= api.MAX_QUANTITY:
            raise ValueError(f"available must be 0..{api.MAX_QUANTITY}, got {available}")
        if product_id is not None and product_id not in self.products:
            raise ValueError(f"no product {product_id!r}")
        listing = Listing(
            seller_sku=seller_sku,
            product_id=product_id or self._id("173"),
            sku_id=self._id("174"),
            warehouse_id=warehouse_id or DEFAULT_WAREHOUSE_ID,
            in_default_warehouse=warehouse_id is None,
            available=available,
        )
        self.listings[seller_sku] = listing
        self.by_sku_id[listing.sku_id] = listing
        self.products.setdefault(listing.product_id, []).append(listing)
        return listing

    def listing(self, seller_sku: str) -> Listing:
        try:
            return self.listings[seller_sku]
        except KeyError:
            raise KeyError(f"SKU {seller_sku!r} is not listed on the mock") from None

    # --- buyers -----------------------------------------------------------------------

    def buy(self, seller_sku: str, quantity: int, buyer: str, region: str | None) -> Order | None:
        """Place an order: one line item per unit, the units committed at once."""
        if quantity <= 0:
            raise ValueError(f"quantity must be positive, got {quantity}")
        listing = self.listing(seller_sku)
        if not listing.live or listing.available < quantity:
            return None
        listing.available -= quantity
        listing.committed += quantity
        now = self.now_s()
        lines = [LineItem(self._id("576"), listing, api.UNPAID) for _ in range(quantity)]
        order = Order(self._id("577"), buyer, region, api.UNPAID, lines, now, now)
        self.orders[order.id] = order
        self._status_changed(order, api.UNPAID)
        return order

    def pay(self, order_id: str) -> None:
        order = self._order(order_id, {api.UNPAID})
        order.paid_time = self.now_s()
        self._status_changed(order, api.AWAITING_SHIPMENT)

    def cancel(self, order_id: str) -> None:
        """The order is cancelled and its units go back on sale. A paid order's buyer asks
        first (a cancellation event), then the order turns CANCELLED."""
        order = self._order(order_id, _CANCELLABLE)
        if order.status != api.UNPAID:
            self._announce(
                order,
                api.CANCELLATION_STATUS_CHANGE,
                {
                    "order_id": order.id,
                    "cancellations_role": "BUYER",
                    "cancel_status": "CANCELLATION_REQUEST_COMPLETE",
                    "cancel_id": self._id("578"),
                    "create_time": self.now_s(),
                },
            )
        for line in order.lines:
            line.listing.committed -= 1
            line.listing.available += 1
        order.cancel_time = self.now_s()
        self._status_changed(order, api.CANCELLED)

    def ship(self, order_id: str) -> None:
        order = self._order(order_id, {api.AWAITING_SHIPMENT})
        for line in order.lines:
            line.listing.committed -= 1
        self._status_changed(order, api.IN_TRANSIT)

    def deliver(self, order_id: str) -> None:
        self._status_changed(self._order(order_id, {api.IN_TRANSIT}), api.DELIVERED)

    def refund(self, order_id: str) -> None:
        """A returnless refund of every line, completed; the goods stay with the buyer, so
        nothing goes back on sale."""
        order = self._order(order_id, api.SHIPPED_STATUSES)
        now = self.now_s()
        record = ReturnRecord(
            return_id=self._id("579"),
            order_id=order.id,
            return_type="REFUND",
            return_status=api.RETURN_COMPLETE,
            line_item_ids=tuple(line.id for line in order.lines),
            create_time=now,
        )
        self.returns.append(record)
        order.update_time = now
        self._announce(
            order,
            api.RETURN_STATUS_CHANGE,
            {
                "order_id": order.id,
                "return_role": "BUYER",
                "return_type": record.return_type,
                "return_status": record.return_status,
                "return_id": record.return_id,
                "create_time": now,
                "update_time": now,
            },
        )

    def _order(self, order_id: str, allowed: frozenset[str] | set[str]) -> Order:
        try:
            order = self.orders[order_id]
        except KeyError:
            raise KeyError(f"no order {order_id!r} on the mock") from None
        if order.status not in allowed:
            raise ValueError(f"order {order_id} is {order.status}, expected one of {allowed}")
        return order

    def _status_changed(self, order: Order, status: str) -> None:
        order.status = status
        order.update_time = self.now_s()
        for line in order.lines:
            line.display_status = status
        self._announce(
            order,
            api.ORDER_STATUS_CHANGE,
            {
                "order_id": order.id,
                "order_status": status,
                "is_on_hold_order": False,
                "update_time": order.update_time,
            },
        )

    def _announce(self, order: Order, event_type: int, data: dict[str, Any]) -> None:
        order.events.append(Event(self._id("750"), event_type, data))
