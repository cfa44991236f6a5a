"""The canonical events the simulator publishes, in their published JSON wire form.

The simulator plays the platforms, which stand outside stockcast: it knows the
published format (the JSON Schemas under ``sync_worker/schemas``), not stockcast's
Python classes, so these typed dicts restate that format and the tests hold them to it.
Kafka messages are keyed by SKU so that one SKU's events stay in order.
"""

from __future__ import annotations

from typing import Literal, TypedDict

import orjson

SCHEMA_VERSION: Literal[1] = 1
CANCEL_REASON_BUYER = "buyer_cancelled"


class OrderLinePlacedEvent(TypedDict):
    type: Literal["order_line.placed"]
    schema_version: Literal[1]
    event_id: str
    platform: str
    channel: str
    order_id: str
    line_id: str
    sku: str
    quantity: int
    buyer_id: str
    region: str | None
    event_time_ms: int


class OrderLineCancelledEvent(TypedDict):
    type: Literal["order_line.cancelled"]
    schema_version: Literal[1]
    event_id: str
    platform: str
    channel: str
    order_id: str
    line_id: str
    sku: str
    reason: str
    event_time_ms: int


class StockCountedEvent(TypedDict):
    type: Literal["stock.counted"]
    schema_version: Literal[1]
    event_id: str
    sku: str
    quantity: int
    actor: str
    event_time_ms: int


CanonicalEvent = OrderLinePlacedEvent | OrderLineCancelledEvent | StockCountedEvent


def order_line_placed(
    *,
    event_id: str,
    platform: str,
    channel: str,
    order_id: str,
    line_id: str,
    sku: str,
    quantity: int,
    buyer_id: str,
    region: str | None,
    event_time_ms: int,
) -> OrderLinePlacedEvent:
    if quantity <= 0:
        raise ValueError(f"an order line's quantity must be positive, got {quantity}")
    return {
        "type": "order_line.placed",
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id,
        "platform": platform,
        "channel": channel,
        "order_id": order_id,
        "line_id": line_id,
        "sku": sku,
        "quantity": quantity,
        "buyer_id": buyer_id,
        "region": region,
        "event_time_ms": event_time_ms,
    }


def order_line_cancelled(
    *,
    event_id: str,
    platform: str,
    channel: str,
    order_id: str,
    line_id: str,
    sku: str,
    event_time_ms: int,
    reason: str = CANCEL_REASON_BUYER,
) -> OrderLineCancelledEvent:
    return {
        "type": "order_line.cancelled",
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id,
        "platform": platform,
        "channel": channel,
        "order_id": order_id,
        "line_id": line_id,
        "sku": sku,
        "reason": reason,
        "event_time_ms": event_time_ms,
    }


def stock_counted(
    *, event_id: str, sku: str, quantity: int, event_time_ms: int, actor: str = "simulator"
) -> StockCountedEvent:
    if quantity < 0:
        raise ValueError(f"a counted quantity must not be negative, got {quantity}")
    return {
        "type": "stock.counted",
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id,
        "sku": sku,
        "quantity": quantity,
        "actor": actor,
        "event_time_ms": event_time_ms,
    }


def message_key(sku: str) -> bytes:
    """The Kafka key: the SKU, so every event of one SKU lands on one partition."""
    return sku.encode()


def encode(event: CanonicalEvent) -> bytes:
    return orjson.dumps(event)
