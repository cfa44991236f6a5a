"""TikTok Shop payloads to the SDK's models, pure: webhooks, orders, inventory answers.

Webhook problems raise ``MalformedPayload`` (verified, but not the documented shape); API
answer problems raise ``InvalidAnswer``, which the client turns into a retryable error
because a garbled answer may be a glitch of one response.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

import orjson

from connectors.base import (
    MalformedPayload,
    Notification,
    OrderStatus,
    PlatformOrder,
    PlatformOrderLine,
)
from connectors.tiktok_shop import api


class InvalidAnswer(ValueError):
    """An API answer is not in the documented shape; the message says where."""


class UnknownStatus(InvalidAnswer):
    """An order status this connector does not know: retrying will not teach it."""


ORDER_STATUSES: Final[Mapping[str, OrderStatus]] = {
    api.UNPAID: OrderStatus.AWAITING_PAYMENT,
    # ON_HOLD is paid: the buyer may still cancel without the seller's approval.
    api.ON_HOLD: OrderStatus.PAID,
    api.AWAITING_SHIPMENT: OrderStatus.PAID,
    api.PARTIALLY_SHIPPING: OrderStatus.PAID,
    api.AWAITING_COLLECTION: OrderStatus.PAID,
    api.IN_TRANSIT: OrderStatus.PAID,
    api.DELIVERED: OrderStatus.PAID,
    api.COMPLETED: OrderStatus.PAID,
    api.CANCELLED: OrderStatus.CANCELLED,
}


def order_status(platform_status: str) -> OrderStatus:
    try:
        return ORDER_STATUSES[platform_status]
    except KeyError:
        raise UnknownStatus(f"unknown order status {platform_status!r}") from None


# --- webhooks -------------------------------------------------------------------------


def delivery_timestamp(body: bytes) -> int | None:
    """The envelope's ``timestamp`` (Unix seconds), None when there is none to read."""
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(envelope, dict):
        return None
    timestamp = envelope.get("timestamp")
    return timestamp if _is_int(timestamp) else None


def decode_notifications(body: bytes) -> list[Notification]:
    """The order notification in a delivery; other event types give an empty list.

    One delivery carries one event. Its time is the event's own (``update_time``, else
    ``create_time``), falling back to the envelope's send time.
    """
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedPayload(f"delivery is not JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise MalformedPayload("delivery is not a JSON object")
    event_type = envelope.get("type")
    if not _is_int(event_type):
        raise MalformedPayload(f"delivery type must be an integer, got {event_type!r}")
    if event_type not in api.ORDER_EVENT_TYPES:
        return []
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise MalformedPayload("order event without a data object")
    occurred_s = _first_int(data, "update_time", "create_time")
    if occurred_s is None:
        occurred_s = envelope.get("timestamp")
    if not _is_int(occurred_s):
        raise MalformedPayload("order event without update_time, create_time or timestamp")
    return [
        Notification(
            notification_id=_id(envelope, "tts_notification_id", MalformedPayload),
            shop_id=_id(envelope, "shop_id", MalformedPayload),
            order_id=_id(data, "order_id", MalformedPayload),
            occurred_at_ms=occurred_s * 1000,
        )
    ]


# --- API answers ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Envelope:
    """Every answer's wrapper: ``code`` 0 is success, ``data`` the endpoint's payload."""

    code: int
    message: str
    request_id: str
    data: Mapping[str, Any]


def decode_envelope(body: bytes) -> Envelope:
    data = _object(body)
    code = data.get("code")
    if not _is_int(code):
        raise InvalidAnswer(f"answer without an integer code: {code!r}")
    payload = data.get("data")
    message = data.get("message")
    request_id = data.get("request_id")
    return Envelope(
        code=code,
        message=message if isinstance(message, str) else "",
        request_id=request_id if isinstance(request_id, str) else "",
        data=payload if isinstance(payload, dict) else {},
    )


@dataclass(frozen=True, slots=True)
class SkuInventory:
    """One SKU's available units: in total and per warehouse."""

    sku_id: str
    total: int
    by_warehouse: Mapping[str, int]

    def available(self, warehouse_id: str | None) -> int | None:
        """In one warehouse, or in total when none is named; None for an unknown warehouse."""
        return self.total if warehouse_id is None else self.by_warehouse.get(warehouse_id)


def decode_inventory(data: Mapping[str, Any]) -> dict[str, SkuInventory]:
    """An inventory search answer's SKUs by SKU id."""
    found: dict[str, SkuInventory] = {}
    for product in _list(data, "inventory"):
        for sku in _list(_dict(product, "inventory[]"), "skus"):
            sku = _dict(sku, "skus[]")
            sku_id = _id(sku, "id", InvalidAnswer)
            by_warehouse = {
                _id(stock, "warehouse_id", InvalidAnswer): _int(stock, "available_quantity")
                for stock in map(_as_dict, _list(sku, "warehouse_inventory"))
            }
            found[sku_id] = SkuInventory(
                sku_id, _int(sku, "total_available_quantity"), by_warehouse
            )
    return found


@dataclass(frozen=True, slots=True)
class SkuError:
    """One failure reported inside a successful (code 0) inventory update."""

    code: int
    message: str
    sku_id: str | None


def decode_update_errors(data: Mapping[str, Any]) -> list[SkuError]:
    """The per-SKU (and per-warehouse) failures of an inventory update answer."""
    errors: list[SkuError] = []
    for error in data.get("errors") or []:
        error = _dict(error, "errors[]")
        detail = error.get("detail")
        detail = detail if isinstance(detail, dict) else {}
        sku_id = detail.get("sku_id") if isinstance(detail.get("sku_id"), str) else None
        extra = [e for e in detail.get("extra_errors") or [] if isinstance(e, dict)]
        for warehouse_error in extra:
            errors.append(
                SkuError(_int(warehouse_error, "code"), _text(warehouse_error, "message"), sku_id)
            )
        if not extra:
            errors.append(SkuError(_int(error, "code"), _text(error, "message"), sku_id))
    return errors


def decode_orders(data: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A Get Order Detail answer's orders by id, undecoded (see ``decode_order``)."""
    orders = (_dict(order, "orders[]") for order in _list(data, "orders"))
    return {_id(order, "id", InvalidAnswer): order for order in orders}


def decode_order(
    order: Mapping[str, Any], skus: Mapping[str, str], refunded_lines: frozenset[str]
) -> PlatformOrder:
    """One order of Get Order Detail as stockcast sees it.

    ``skus`` maps the platform's SKU id to stockcast's SKU; a line of another SKU keeps
    its ``seller_sku``. Line items carry no quantity: each one is one unit. The order
    counts as refunded once completed refunds (``refunded_lines``, by line item id) cover
    every line: a partial refund leaves it paid.
    """
    platform_status = _text(order, "status")
    status = order_status(platform_status)
    lines = tuple(_line(_dict(item, "line_items[]"), skus) for item in _list(order, "line_items"))
    if status is OrderStatus.PAID and lines and {line.line_id for line in lines} <= refunded_lines:
        status = OrderStatus.REFUNDED
    address = order.get("recipient_address")
    region = address.get("region_code") if isinstance(address, dict) else None
    buyer = order.get("user_id")
    updated_s = _first_int(order, "update_time", "create_time")
    return PlatformOrder(
        order_id=_id(order, "id", InvalidAnswer),
        status=status,
        platform_status=platform_status,
        buyer_id=str(buyer) if isinstance(buyer, str | int) else "",
        region=region if isinstance(region, str) and region else None,
        lines=lines,
        updated_at_ms=(updated_s or 0) * 1000,
    )


def decode_refunded_lines(data: Mapping[str, Any]) -> frozenset[str]:
    """The order line item ids a Search Returns answer shows refunded for good."""
    refunded: set[str] = set()
    for record in _list(data, "return_orders"):
        record = _dict(record, "return_orders[]")
        if (
            record.get("return_type") in api.REFUND_RETURN_TYPES
            and record.get("return_status") == api.RETURN_COMPLETE
        ):
            for item in _list(record, "return_line_items"):
                refunded.add(_id(_dict(item, "return_line_items[]"), "order_line_item_id"))
    return frozenset(refunded)


def _line(item: Mapping[str, Any], skus: Mapping[str, str]) -> PlatformOrderLine:
    sku_id = _id(item, "sku_id", InvalidAnswer)
    seller_sku = item.get("seller_sku")
    sku = skus.get(sku_id) or (seller_sku if isinstance(seller_sku, str) and seller_sku else None)
    return PlatformOrderLine(
        line_id=_id(item, "id", InvalidAnswer), sku=sku, quantity=1, platform_sku=sku_id
    )


# --- shape helpers --------------------------------------------------------------------


def _is_int(value: object) -> TypeGuard[int]:
    # bool is an int in Python, but `true` is not a number in JSON.
    return isinstance(value, int) and not isinstance(value, bool)


def _object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidAnswer(f"answer is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidAnswer("answer is not a JSON object")
    return data


def _dict(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidAnswer(f"{where} is not an object")
    return value


def _as_dict(value: object) -> dict[str, Any]:
    return _dict(value, "warehouse_inventory[]")


def _list(data: Mapping[str, Any], name: str) -> list[Any]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidAnswer(f"{name} is not a list")
    return value


def _int(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if not _is_int(value):
        raise InvalidAnswer(f"{name} must be an integer, got {value!r}")
    return value


def _first_int(data: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = data.get(name)
        if _is_int(value):
            return value
    return None


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


def _id(
    data: Mapping[str, Any],
    name: str,
    error: type[MalformedPayload] | type[InvalidAnswer] = InvalidAnswer,
) -> str:
    """An id field: a non-empty string, or an integer (ids exceed 2**53; keep them whole)."""
    value = data.get(name)
    if isinstance(value, str) and value:
        return value
    if _is_int(value):
        return str(value)
    raise error(f"{name} must be a non-empty id, got {value!r}")
