"""Shopify webhook payloads (the REST order and refund resources) -> the SDK's models, pure.

Order webhooks carry the whole order, so they decode straight into a ``PlatformOrder``;
``refunds/create`` carries the refund, which names its order but not the order's state,
so it decodes into a thin notification the connector hydrates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from connectors.base import (
    MalformedPayload,
    Notification,
    OrderStatus,
    PlatformOrder,
    PlatformOrderLine,
)
from connectors.shopify.signing import parse_timestamp

CANCELLED: Final = "cancelled"
"""``platform_status`` of an order whose ``cancelled_at`` is set, whatever it was paid."""

_STATUS_BY_FINANCIAL_STATUS: Final = {
    "pending": OrderStatus.AWAITING_PAYMENT,
    # Funds are held for the merchant to capture: the buyer has committed.
    "authorized": OrderStatus.PAID,
    "partially_paid": OrderStatus.PAID,
    "paid": OrderStatus.PAID,
    # Some money went back but the goods stay sold.
    "partially_refunded": OrderStatus.PAID,
    "refunded": OrderStatus.REFUNDED,
    "voided": OrderStatus.CANCELLED,
}


def order_status(financial_status: str | None, cancelled_at: str | None) -> OrderStatus:
    """Where an order stands. A cancellation wins over the money side: cancelling returns
    the units to stock, which is what stockcast must hear; fulfilment states never show
    here, so a shipped or delivered order stays PAID. An order not yet charged (null
    ``financial_status``) is awaiting payment."""
    if cancelled_at:
        return OrderStatus.CANCELLED
    if financial_status is None:
        return OrderStatus.AWAITING_PAYMENT
    try:
        return _STATUS_BY_FINANCIAL_STATUS[financial_status]
    except KeyError:
        raise MalformedPayload(f"unknown financial_status {financial_status!r}") from None


def decode_order(order: Mapping[str, Any], sku_by_variant: Mapping[str, str]) -> PlatformOrder:
    """A REST order resource as a ``PlatformOrder``. A line's stockcast SKU is the one the
    connector's ``variants`` option gives its variant, else its seller SKU, else None."""
    order_id = _id(order.get("id"), "id")
    financial_status = _optional_str(order.get("financial_status"), "financial_status")
    cancelled_at = _optional_str(order.get("cancelled_at"), "cancelled_at")
    line_items = order.get("line_items")
    if not isinstance(line_items, list):
        raise MalformedPayload("order without a 'line_items' list")
    return PlatformOrder(
        order_id=order_id,
        status=order_status(financial_status, cancelled_at),
        platform_status=CANCELLED if cancelled_at else (financial_status or "pending"),
        buyer_id=_buyer(order),
        region=_region(order.get("shipping_address")),
        lines=tuple(_line(item, sku_by_variant) for item in line_items),
        updated_at_ms=_time_ms(order.get("updated_at") or order.get("created_at"), "updated_at"),
    )


def order_notification(
    order: Mapping[str, Any],
    sku_by_variant: Mapping[str, str],
    *,
    notification_id: str,
    shop_id: str,
) -> Notification:
    decoded = decode_order(order, sku_by_variant)
    return Notification(
        notification_id=notification_id,
        shop_id=shop_id,
        order_id=decoded.order_id,
        occurred_at_ms=decoded.updated_at_ms,
        order=decoded,
    )


def refund_notification(
    refund: Mapping[str, Any], *, notification_id: str, shop_id: str
) -> Notification:
    """A ``refunds/create`` payload: thin, the order is hydrated."""
    return Notification(
        notification_id=notification_id,
        shop_id=shop_id,
        order_id=_id(refund.get("order_id"), "order_id"),
        occurred_at_ms=_time_ms(refund.get("created_at"), "created_at"),
    )


def _line(item: object, sku_by_variant: Mapping[str, str]) -> PlatformOrderLine:
    if not isinstance(item, dict):
        raise MalformedPayload("a line item that is not an object")
    quantity = item.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
        raise MalformedPayload("a line item without a whole, non-negative 'quantity'")
    variant = item.get("variant_id")
    variant_id = "" if variant is None else _id(variant, "variant_id")
    seller_sku = _optional_str(item.get("sku"), "sku")
    return PlatformOrderLine(
        line_id=_id(item.get("id"), "line_items[].id"),
        sku=sku_by_variant.get(variant_id) or seller_sku or None,
        quantity=quantity,
        platform_sku=variant_id,
    )


def _buyer(order: Mapping[str, Any]) -> str:
    """The customer's id; a guest checkout has none, its e-mail is the next best key."""
    customer = order.get("customer")
    if isinstance(customer, dict) and customer.get("id") is not None:
        return _id(customer["id"], "customer.id")
    if customer is not None and not isinstance(customer, dict):
        raise MalformedPayload("'customer' is not an object")
    email = order.get("email")
    return email if isinstance(email, str) else ""


def _region(address: object) -> str | None:
    if address is None:
        return None
    if not isinstance(address, dict):
        raise MalformedPayload("'shipping_address' is not an object")
    code = address.get("country_code")
    return code if isinstance(code, str) and code else None


def _id(value: object, name: str) -> str:
    """Shopify ids are integers beyond 2**53 in JSON; kept as text."""
    if isinstance(value, bool):
        raise MalformedPayload(f"{name!r} is not an id")
    if isinstance(value, int) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return value
    raise MalformedPayload(f"{name!r} is not an id")


def _optional_str(value: object, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise MalformedPayload(f"{name!r} is not text")


def _time_ms(value: object, name: str) -> int:
    if not isinstance(value, str):
        raise MalformedPayload(f"{name!r} is missing")
    try:
        return round(parse_timestamp(value) * 1000)
    except ValueError as exc:
        raise MalformedPayload(f"{name!r}: {exc}") from None
