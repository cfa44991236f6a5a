"""The mock shop's books, pure: listings and their counters, orders, and write ids.

What the platform documents, kept honestly: an incremental write that would take a
counter below 0 is refused whole ("库存不足"), never clamped; an ``idempotent_id`` is
remembered once its write has been executed (with the amount it applied), and a refused
write does not consume its id; buyers take units off the counter when they order and a
cancellation puts them back. Ids are 19-digit integers, as on the platform, so anything
that passes them through a float breaks visibly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from connectors.douyin.api import (
    DUPLICATE_IDEMPOTENT_ID,
    ORDER_AWAITING_PAYMENT,
    ORDER_CANCELLED,
    ORDER_PAID,
    STOCK_SHORT,
    TAG_REFUND_SUCCESS,
    TAG_TRADE_CANCELED,
    TAG_TRADE_CREATE,
    TAG_TRADE_PAID,
    ApiError,
)

FIRST_PRODUCT_ID: Final = 3_500_000_000_000_000_001
FIRST_SKU_ID: Final = 1_700_000_000_000_000_001
FIRST_ORDER_ID: Final = 6_920_000_000_000_000_001
ORDER_ID_STRIDE: Final = 100
"""Room for the sub-order (line) ids of one order: the first line shares the order's id,
as the platform's single-line orders do."""
FIRST_MSG_ID: Final = 7_300_000_000_000_000_001
MAIN_REFUNDED_BEFORE_SHIPPING: Final = 21


@dataclass
class MockListing:
    sku: str
    product_id: int
    sku_id: int
    code: str
    stock_num: int

    @property
    def reference(self) -> str:
        return f"{self.product_id}:{self.sku_id}"


@dataclass
class MockLine:
    line_id: int
    listing: MockListing
    quantity: int
    refunded: bool = False


@dataclass(frozen=True)
class Change:
    """One change of an order, as its push will describe it: one message per id (a refund
    is reported per line, as the platform's after-sale messages are)."""

    tag: str
    msg_ids: tuple[str, ...]
    at_s: int


@dataclass
class MockOrder:
    order_id: int
    lines: list[MockLine]
    buyer: str
    region: str | None
    create_time: int
    order_status: int = ORDER_AWAITING_PAYMENT
    main_status: int = ORDER_AWAITING_PAYMENT
    pay_time: int = 0
    cancel_time: int = 0
    update_time: int = 0
    changes: list[Change] = field(default_factory=list)


class MockShop:
    """One shop's counters and orders; every method is synchronous and does no I/O."""

    def __init__(self, shop_id: int, clock: Callable[[], float]) -> None:
        self.shop_id = shop_id
        self._clock = clock
        self._listings: dict[str, MockListing] = {}
        self._products: dict[str, int] = {}
        self._orders: dict[int, MockOrder] = {}
        self._executed: dict[str, int] = {}
        self._product_ids = itertools.count(FIRST_PRODUCT_ID)
        self._sku_ids = itertools.count(FIRST_SKU_ID)
        self._order_ids = itertools.count(FIRST_ORDER_ID, ORDER_ID_STRIDE)
        self._msg_ids = itertools.count(FIRST_MSG_ID)

    # --- listings -------------------------------------------------------------------

    def add_listing(
        self, sku: str, displayed: int = 0, *, product: str | None = None
    ) -> MockListing:
        """List ``sku`` (seller SKU code = ``sku``); listings naming the same ``product``
        are SKUs of one product, otherwise each gets a product of its own."""
        if sku in self._listings:
            raise ValueError(f"SKU {sku!r} is already listed")
        _check_count(displayed)
        group = product if product is not None else f"\0{sku}"
        if group not in self._products:
            self._products[group] = next(self._product_ids)
        listing = MockListing(sku, self._products[group], next(self._sku_ids), sku, displayed)
        self._listings[sku] = listing
        return listing

    def listing(self, sku: str) -> MockListing:
        try:
            return self._listings[sku]
        except KeyError:
            raise KeyError(f"SKU {sku!r} is not listed on the mock") from None

    def listings(self) -> list[MockListing]:
        return list(self._listings.values())

    def find_sku(self, sku_id: int) -> MockListing | None:
        return next((item for item in self._listings.values() if item.sku_id == sku_id), None)

    def find_code(self, code: str) -> MockListing | None:
        return next((item for item in self._listings.values() if item.code == code), None)

    def product(self, product_id: int) -> list[MockListing]:
        return [item for item in self._listings.values() if item.product_id == product_id]

    # --- writes ---------------------------------------------------------------------

    def adjust(self, listing: MockListing, delta: int, idempotent_id: str) -> ApiError | None:
        """An incremental write: once per id, whole or not at all."""
        if idempotent_id in self._executed:
            return DUPLICATE_IDEMPOTENT_ID
        if listing.stock_num + delta < 0:
            return STOCK_SHORT
        listing.stock_num += delta
        self._executed[idempotent_id] = delta
        return None

    def executed(self, idempotent_id: str) -> int | None:
        """What the write under ``idempotent_id`` applied; None if none was executed."""
        return self._executed.get(idempotent_id)

    def set_stock(self, listing: MockListing, count: int) -> None:
        _check_count(count)
        listing.stock_num = count

    # --- buyers ---------------------------------------------------------------------

    def place(
        self, items: Sequence[tuple[str, int]], *, buyer: str, region: str | None
    ) -> MockOrder | None:
        """An order of ``(sku, quantity)`` items; None, and nothing taken, when any is short."""
        wanted = [(self.listing(sku), quantity) for sku, quantity in items]
        if not wanted or any(quantity < 1 for _, quantity in wanted):
            raise ValueError("an order needs items of at least one unit each")
        needed: dict[str, int] = {}
        for listing, quantity in wanted:
            needed[listing.sku] = needed.get(listing.sku, 0) + quantity
        if any(self.listing(sku).stock_num < count for sku, count in needed.items()):
            return None
        order_id = next(self._order_ids)
        now = self._now()
        lines = []
        for index, (listing, quantity) in enumerate(wanted):
            listing.stock_num -= quantity
            lines.append(MockLine(order_id + index, listing, quantity))
        order = MockOrder(order_id, lines, buyer, region, create_time=now, update_time=now)
        self._orders[order_id] = order
        self._change(order, TAG_TRADE_CREATE, now)
        return order

    def order(self, order_id: int | str) -> MockOrder | None:
        try:
            return self._orders.get(int(order_id))
        except ValueError:
            return None

    def pay(self, order_id: int | str) -> MockOrder:
        order = self._order_in(order_id, {ORDER_AWAITING_PAYMENT}, "pay")
        now = self._now()
        order.order_status = order.main_status = ORDER_PAID
        order.pay_time = order.update_time = now
        self._change(order, TAG_TRADE_PAID, now)
        return order

    def cancel(self, order_id: int | str) -> MockOrder:
        """Cancelled before or after payment; the units go back on display."""
        order = self._order_in(order_id, {ORDER_AWAITING_PAYMENT, ORDER_PAID}, "cancel")
        now = self._now()
        self._restock(order)
        order.order_status = order.main_status = ORDER_CANCELLED
        order.cancel_time = order.update_time = now
        self._change(order, TAG_TRADE_CANCELED, now)
        return order

    def refund(self, order_id: int | str) -> MockOrder:
        """A paid, unshipped order refunded in full (发货前退款完结). Its units go back on
        display as on a cancellation [U]: nothing has left the shop."""
        order = self._order_in(order_id, {ORDER_PAID}, "refund")
        now = self._now()
        self._restock(order)
        for line in order.lines:
            line.refunded = True
        order.order_status = ORDER_CANCELLED
        order.main_status = MAIN_REFUNDED_BEFORE_SHIPPING
        order.update_time = now
        self._change(order, TAG_REFUND_SUCCESS, now)
        return order

    def _order_in(self, order_id: int | str, statuses: set[int], action: str) -> MockOrder:
        order = self.order(order_id)
        if order is None:
            raise KeyError(f"no order {order_id!r} on the mock")
        if order.order_status not in statuses or order.main_status not in statuses:
            raise ValueError(f"cannot {action} order {order_id} in status {order.order_status}")
        return order

    def _restock(self, order: MockOrder) -> None:
        for line in order.lines:
            line.listing.stock_num += line.quantity

    def _change(self, order: MockOrder, tag: str, at_s: int) -> None:
        messages = len(order.lines) if tag == TAG_REFUND_SUCCESS else 1
        ids = tuple(str(next(self._msg_ids)) for _ in range(messages))
        order.changes.append(Change(tag, ids, at_s))

    def _now(self) -> int:
        return int(self._clock())


def _check_count(count: int) -> None:
    if count < 0:
        raise ValueError(f"a stock count cannot be negative, got {count}")
