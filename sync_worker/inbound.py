"""From a verified platform order to the ledger's canonical events, and the notification
record the webhook ingress stores for the worker's inbound agent.

Pure: no I/O, no clock. A platform redelivers notifications and describes the whole
order each time, so every event of a line carries an id derived from the line and the
step alone: a redelivery yields identical events. The ledger answers a second placement
of a line as a duplicate and ignores a second payment or cancellation, so replaying the
order's current state is always safe. A cancelled or refunded order yields only the
cancellation: before its placement the ledger records the line as cancelled.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any, Final

import orjson

from connectors.base import Notification, OrderStatus, PlatformOrder, PlatformOrderLine
from sync_worker.domain.events import (
    MAX_QUANTITY,
    OrderLineCancelled,
    OrderLinePaid,
    OrderLinePlaced,
    OrderLineRefunded,
    SkuEvent,
    line_key,
)

MAX_ID_CHARS: Final = 200
MAX_REGION_CHARS: Final = 64
MAX_ORDER_LINES: Final = 1000
PLATFORM_CANCELLED: Final = "platform_cancelled"
PLATFORM_REFUNDED: Final = "platform_refunded"
NOTIFICATION_FORMAT: Final = 1


@dataclass(frozen=True, slots=True)
class RejectedLine:
    """A line that cannot be expressed as events within their field limits."""

    line: PlatformOrderLine
    reason: str


@dataclass(frozen=True, slots=True)
class OrderEvents:
    """What one order state means for the ledger.

    ``unknown_lines`` sell items stockcast does not know (no SKU). ``rejected`` lines
    break the events' limits and yield no events; they still count in every placement's
    ``order_line_count``, so an all-or-nothing order with such a line never counts as
    complete, and the caller should dead-letter them for a person to look at.
    """

    events: list[SkuEvent] = field(default_factory=list)
    unknown_lines: list[PlatformOrderLine] = field(default_factory=list)
    rejected: list[RejectedLine] = field(default_factory=list)


def order_events(platform: str, channel: str, order: PlatformOrder) -> OrderEvents:
    """The events for every line of ``order`` as it stands now, line by line in order."""
    if not order.buyer_id:
        # A guest checkout names no buyer: the order itself is the only identity there is.
        order = replace(order, buyer_id=f"order:{order.order_id}")
    known = [line for line in order.lines if line.sku is not None]
    result = OrderEvents(unknown_lines=[line for line in order.lines if line.sku is None])
    problem = _order_problem(platform, channel, order, len(known))
    seen: set[str] = set()
    for line in known:
        reason = problem or _line_problem(line, seen)
        seen.add(line.line_id)
        if reason is not None:
            result.rejected.append(RejectedLine(line, reason))
        else:
            result.events.extend(_line_events(platform, channel, order, line, len(known)))
    return result


def _order_problem(platform: str, channel: str, order: PlatformOrder, known: int) -> str | None:
    for name, value in (
        ("platform", platform),
        ("channel", channel),
        ("order_id", order.order_id),
        ("buyer_id", order.buyer_id),
    ):
        if not _fits_id(value):
            return f"{name}_length"
    if order.region is not None and len(order.region) > MAX_REGION_CHARS:
        return "region_length"
    if order.updated_at_ms < 0:
        return "negative_event_time"
    if known > MAX_ORDER_LINES:
        return "too_many_lines"
    return None


def _line_problem(line: PlatformOrderLine, seen: set[str]) -> str | None:
    if not _fits_id(line.line_id):
        return "line_id_length"
    if line.line_id in seen:  # same ids, same events: the ledger would see one line
        return "duplicate_line_id"
    if line.sku is None or not _fits_id(line.sku):
        return "sku_length"
    if not 1 <= line.quantity <= MAX_QUANTITY:
        return "quantity_out_of_range"
    return None


def _fits_id(value: str) -> bool:
    return 1 <= len(value) <= MAX_ID_CHARS


def _line_events(
    platform: str, channel: str, order: PlatformOrder, line: PlatformOrderLine, line_count: int
) -> list[SkuEvent]:
    assert line.sku is not None  # unknown lines never get here
    key = line_key(platform, order.order_id, line.line_id)
    identity: dict[str, Any] = {
        "sku": line.sku,
        "event_time_ms": order.updated_at_ms,
        "platform": platform,
        "channel": channel,
        "order_id": order.order_id,
        "line_id": line.line_id,
    }
    match order.status:
        # A cancel or refund alone: before its placement the ledger records the line as
        # cancelled (a late placement is refused as such), after it the units return.
        # Sending the placement first could commit units only to release them again.
        case OrderStatus.CANCELLED:
            return [
                OrderLineCancelled(
                    **identity, event_id=event_id(key, "cancelled"), reason=PLATFORM_CANCELLED
                )
            ]
        case OrderStatus.REFUNDED:
            return [
                OrderLineRefunded(
                    **identity, event_id=event_id(key, "refunded"), reason=PLATFORM_REFUNDED
                )
            ]
    placed = OrderLinePlaced(
        **identity,
        event_id=event_id(key, "placed"),
        quantity=line.quantity,
        buyer_id=order.buyer_id,
        region=order.region,
        order_line_count=line_count,
    )
    if order.status is OrderStatus.PAID:
        return [placed, OrderLinePaid(**identity, event_id=event_id(key, "paid"))]
    return [placed]


def event_id(line: str, step: str) -> str:
    """``<line key>:<step>``; the line key is length-prefixed, so no id content makes two
    lines collide. A key too long for an event id is replaced by its SHA-256."""
    natural = f"{line}:{step}"
    if len(natural) <= MAX_ID_CHARS:
        return natural
    return f"sha256:{hashlib.sha256(line.encode()).hexdigest()}:{step}"


# --- the stored notification ------------------------------------------------------------


class InvalidNotification(ValueError):
    """A stored notification record that is not exactly what ``encode_notification`` writes."""


def encode_notification(channel: str, platform: str, notification: Notification) -> bytes:
    """The record the ingress stores once a delivery is verified and routed."""
    order = notification.order
    return orjson.dumps(
        {
            "format": NOTIFICATION_FORMAT,
            "channel": channel,
            "platform": platform,
            "notification_id": notification.notification_id,
            "shop_id": notification.shop_id,
            "order_id": notification.order_id,
            "occurred_at_ms": notification.occurred_at_ms,
            "order": None if order is None else _order_json(order),
        }
    )


def _order_json(order: PlatformOrder) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "status": order.status.value,
        "platform_status": order.platform_status,
        "buyer_id": order.buyer_id,
        "region": order.region,
        "lines": [
            {
                "line_id": line.line_id,
                "sku": line.sku,
                "quantity": line.quantity,
                "platform_sku": line.platform_sku,
            }
            for line in order.lines
        ],
        "updated_at_ms": order.updated_at_ms,
    }


_RECORD_KEYS = frozenset(
    {"format", "channel", "platform", "notification_id", "shop_id", "order_id"}
    | {"occurred_at_ms", "order"}
)
_ORDER_KEYS = frozenset(
    {"order_id", "status", "platform_status", "buyer_id", "region", "lines", "updated_at_ms"}
)
_LINE_KEYS = frozenset({"line_id", "sku", "quantity", "platform_sku"})


def decode_notification(data: bytes) -> tuple[str, str, Notification]:
    """``(channel, platform, notification)`` from a stored record; raises
    ``InvalidNotification`` saying what is wrong with anything else."""
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise InvalidNotification(f"notification record is not JSON: {error}") from None
    _expect_keys(record, _RECORD_KEYS, "notification record")
    if record["format"] != NOTIFICATION_FORMAT or isinstance(record["format"], bool):
        raise InvalidNotification(f"unsupported notification format {record['format']!r}")
    order = record["order"]
    notification = Notification(
        notification_id=_text(record, "notification_id"),
        shop_id=_text(record, "shop_id"),
        order_id=_text(record, "order_id"),
        occurred_at_ms=_integer(record, "occurred_at_ms"),
        order=None if order is None else _decode_order(order),
    )
    return _text(record, "channel"), _text(record, "platform"), notification


def _decode_order(order: Any) -> PlatformOrder:
    _expect_keys(order, _ORDER_KEYS, "order")
    try:
        status = OrderStatus(order["status"])
    except ValueError:
        raise InvalidNotification(f"unknown order status {order['status']!r}") from None
    lines = order["lines"]
    if not isinstance(lines, list):
        raise InvalidNotification("order.lines must be a list")
    return PlatformOrder(
        order_id=_text(order, "order_id"),
        status=status,
        platform_status=_text(order, "platform_status"),
        buyer_id=_text(order, "buyer_id"),
        region=_optional_text(order, "region"),
        lines=tuple(_decode_line(line) for line in lines),
        updated_at_ms=_integer(order, "updated_at_ms"),
    )


def _decode_line(line: Any) -> PlatformOrderLine:
    _expect_keys(line, _LINE_KEYS, "order line")
    return PlatformOrderLine(
        line_id=_text(line, "line_id"),
        sku=_optional_text(line, "sku"),
        quantity=_integer(line, "quantity"),
        platform_sku=_text(line, "platform_sku"),
    )


def _expect_keys(value: Any, keys: frozenset[str], what: str) -> None:
    if not isinstance(value, dict):
        raise InvalidNotification(f"{what} must be an object, not {type(value).__name__}")
    if missing := keys - value.keys():
        raise InvalidNotification(f"{what} lacks {', '.join(sorted(missing))}")
    if extra := value.keys() - keys:
        raise InvalidNotification(f"{what} has unexpected {', '.join(sorted(extra))}")


def _text(value: dict[str, Any], key: str) -> str:
    found = value[key]
    if isinstance(found, str):
        return found
    raise InvalidNotification(f"{key} must be a string, not {type(found).__name__}")


def _optional_text(value: dict[str, Any], key: str) -> str | None:
    return None if value[key] is None else _text(value, key)


def _integer(value: dict[str, Any], key: str) -> int:
    found = value[key]
    if isinstance(found, int) and not isinstance(found, bool):
        return found
    raise InvalidNotification(f"{key} must be an integer, not {type(found).__name__}")
