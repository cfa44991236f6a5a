"""Shopify's REST order and refund payloads -> the SDK's models, with plain values."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.base import MalformedPayload, OrderStatus, PlatformOrderLine
from connectors.shopify.mapping import (
    decode_order,
    order_notification,
    order_status,
    refund_notification,
)

BIG_ID = 820982911946154508  # beyond 2**53, as real order ids are


def order(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": BIG_ID,
        "financial_status": "paid",
        "cancelled_at": None,
        "updated_at": "2024-01-01T10:00:00-05:00",
        "customer": {"id": 115310627314723954},
        "shipping_address": {"country_code": "CA", "province_code": "ON"},
        "line_items": [
            {"id": 466157049, "variant_id": 39072856, "sku": "lipstick", "quantity": 2},
        ],
    }
    payload.update(overrides)
    return payload


@pytest.mark.parametrize(
    ("financial_status", "cancelled_at", "status"),
    [
        ("pending", None, OrderStatus.AWAITING_PAYMENT),
        (None, None, OrderStatus.AWAITING_PAYMENT),
        ("authorized", None, OrderStatus.PAID),
        ("partially_paid", None, OrderStatus.PAID),
        ("paid", None, OrderStatus.PAID),
        ("partially_refunded", None, OrderStatus.PAID),
        ("refunded", None, OrderStatus.REFUNDED),
        ("voided", None, OrderStatus.CANCELLED),
        ("paid", "2024-01-01T10:00:00-05:00", OrderStatus.CANCELLED),
        ("refunded", "2024-01-01T10:00:00-05:00", OrderStatus.CANCELLED),
    ],
)
def test_statuses(financial_status: str | None, cancelled_at: str | None, status: str) -> None:
    assert order_status(financial_status, cancelled_at) is status


def test_an_unknown_financial_status_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="financial_status"):
        order_status("bartered", None)


def test_an_order_decodes() -> None:
    decoded = decode_order(order(), {})

    assert decoded.order_id == str(BIG_ID)
    assert (decoded.status, decoded.platform_status) == (OrderStatus.PAID, "paid")
    assert (decoded.buyer_id, decoded.region) == ("115310627314723954", "CA")
    assert decoded.lines == (PlatformOrderLine("466157049", "lipstick", 2, "39072856"),)
    assert decoded.updated_at_ms == 1_704_121_200_000


def test_a_cancelled_order_says_so() -> None:
    decoded = decode_order(order(cancelled_at="2024-01-01T11:00:00-05:00"), {})

    assert (decoded.status, decoded.platform_status) == (OrderStatus.CANCELLED, "cancelled")


def test_line_skus_come_from_variants_then_seller_sku() -> None:
    items = [
        {"id": 1, "variant_id": 10, "sku": "seller-code", "quantity": 1},
        {"id": 2, "variant_id": 20, "sku": "mascara", "quantity": 1},
        {"id": 3, "variant_id": None, "sku": "", "quantity": 1},  # a custom line item
    ]

    decoded = decode_order(order(line_items=items), {"10": "lipstick"})

    assert [(line.sku, line.platform_sku) for line in decoded.lines] == [
        ("lipstick", "10"),
        ("mascara", "20"),
        (None, ""),
    ]


def test_a_guest_is_known_by_email_and_a_digital_order_has_no_region() -> None:
    decoded = decode_order(order(customer=None, email="g@example.com", shipping_address=None), {})

    assert (decoded.buyer_id, decoded.region) == ("g@example.com", None)


def test_string_ids_are_accepted() -> None:
    assert decode_order(order(id=str(BIG_ID)), {}).order_id == str(BIG_ID)


@pytest.mark.parametrize(
    "overrides",
    [
        {"id": None},
        {"id": True},
        {"id": -1},
        {"line_items": None},
        {"line_items": ["x"]},
        {"line_items": [{"id": 1, "variant_id": 2, "sku": "a", "quantity": "2"}]},
        {"line_items": [{"id": 1, "variant_id": 2, "sku": "a", "quantity": -1}]},
        {"line_items": [{"id": 1, "variant_id": 2, "sku": 5, "quantity": 1}]},
        {"updated_at": None, "created_at": None},
        {"updated_at": "soon"},
        {"financial_status": 3},
        {"customer": "alice"},
        {"shipping_address": "Paris"},
    ],
)
def test_malformed_orders_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(MalformedPayload):
        decode_order(order(**overrides), {})


def test_an_order_notification_carries_the_order() -> None:
    notification = order_notification(order(), {}, notification_id="w-1", shop_id="s")

    assert notification.order is not None
    assert (notification.order_id, notification.occurred_at_ms) == (str(BIG_ID), 1_704_121_200_000)


def test_a_refund_notification_is_thin() -> None:
    refund = {"id": 5, "order_id": BIG_ID, "created_at": "2024-01-02T00:00:00Z"}

    notification = refund_notification(refund, notification_id="w-2", shop_id="s")

    assert (notification.order_id, notification.order) == (str(BIG_ID), None)
    assert notification.occurred_at_ms == 1_704_153_600_000
