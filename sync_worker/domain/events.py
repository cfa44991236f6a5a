"""The canonical events of stockcast: what happened to a SKU, and what stockcast decided.

These dataclasses are the public contract. Their JSON form (``type`` discriminator,
``schema_version``) is published as JSON Schema under ``sync_worker/schemas``; a
change to a field is a change to the contract and bumps ``SCHEMA_VERSION``.

Stdlib only: validation against the contract happens at the edge
(``sync_worker.streaming.codecs``), so the domain receives well-formed values.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderLinePlaced:
    """A buyer placed an order line on a platform; stock must be decided for it."""

    type: Literal["order_line.placed"] = "order_line.placed"
    schema_version: Literal[1] = 1
    event_id: str
    platform: str
    channel: str
    order_id: str
    line_id: str
    sku: str
    quantity: int
    buyer_id: str
    region: str | None = None
    event_time_ms: int

    @property
    def line_key(self) -> str:
        return line_key(self.platform, self.order_id, self.line_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderLineCancelled:
    """The buyer or the platform cancelled an order line (including unpaid timeout)."""

    type: Literal["order_line.cancelled"] = "order_line.cancelled"
    schema_version: Literal[1] = 1
    event_id: str
    platform: str
    channel: str
    order_id: str
    line_id: str
    sku: str
    reason: str
    event_time_ms: int

    @property
    def line_key(self) -> str:
        return line_key(self.platform, self.order_id, self.line_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class StockCounted:
    """A physical count: on hand becomes exactly ``quantity``."""

    type: Literal["stock.counted"] = "stock.counted"
    schema_version: Literal[1] = 1
    event_id: str
    sku: str
    quantity: int
    actor: str
    event_time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StockReceived:
    """Units arrived and are on hand now: on hand grows by ``quantity``."""

    type: Literal["stock.received"] = "stock.received"
    schema_version: Literal[1] = 1
    event_id: str
    sku: str
    quantity: int
    actor: str
    event_time_ms: int


SkuEvent = OrderLinePlaced | OrderLineCancelled | StockCounted | StockReceived
"""Everything that arrives on the SKU-keyed input topic."""


class RejectReason(StrEnum):
    INSUFFICIENT_STOCK = "insufficient_stock"
    UNKNOWN_SKU = "unknown_sku"
    ALREADY_CANCELLED = "already_cancelled"


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderLineDecided:
    """stockcast's answer to one order-line event; a rejection asks the platform to cancel."""

    type: Literal["order_line.decided"] = "order_line.decided"
    schema_version: Literal[1] = 1
    event_id: str
    platform: str
    channel: str
    order_id: str
    line_id: str
    sku: str
    quantity: int
    outcome: Outcome
    reason: RejectReason | None = None
    position_version: int
    event_time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StockLevelChanged:
    """The SKU's position after a change; ``version`` orders pushes so stale ones are dropped."""

    type: Literal["stock.level_changed"] = "stock.level_changed"
    schema_version: Literal[1] = 1
    sku: str
    on_hand: int
    committed: int
    safety_reserve: int
    sellable: int
    version: int
    cause_event_id: str
    event_time_ms: int


def line_key(platform: str, order_id: str, line_id: str) -> str:
    """Order and line ids are only unique within a platform, so the key carries all three."""
    return f"{platform}\x1f{order_id}\x1f{line_id}"
