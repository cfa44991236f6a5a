"""The REST resources the mock shop sends: the order (webhooks and ``orders/{id}.json``)
and the refund (``refunds/create``), in the documented field names and types.

Ids are JSON integers (they exceed 2**53 on the real platform: readers keep them as
text), money is decimal text, times are ISO 8601 in the shop's time zone, to the second.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Final

from connectors.shopify import api

if TYPE_CHECKING:
    from connectors.shopify.mock_state import MockLine, MockOrder

SHOP_TIME_ZONE: Final = timezone(timedelta(hours=-5))
"""The mock shop keeps Eastern Standard Time, so readers meet a real offset."""
UNIT_PRICE: Final = "19.90"


def shop_time(at_s: float) -> str:
    """``2024-01-01T10:00:00-05:00``, as the REST resources write times."""
    return datetime.fromtimestamp(at_s, UTC).astimezone(SHOP_TIME_ZONE).isoformat("T", "seconds")


def order_payload(order: MockOrder) -> dict[str, Any]:
    cancelled = order.cancelled_at_s is not None
    address = (
        None
        if order.region is None
        else {"country_code": order.region, "province_code": None, "city": "Springfield"}
    )
    return {
        "id": order.order_id,
        "admin_graphql_api_id": f"{api.ORDER_GID}{order.order_id}",
        "name": f"#{order.number}",
        "order_number": order.number,
        "email": f"{order.buyer}@example.com",
        "created_at": shop_time(order.created_at_s),
        "updated_at": shop_time(order.updated_at_s),
        "processed_at": shop_time(order.created_at_s),
        "cancelled_at": None if order.cancelled_at_s is None else shop_time(order.cancelled_at_s),
        "cancel_reason": "customer" if cancelled else None,
        "financial_status": order.financial_status,
        "fulfillment_status": None,
        "currency": "USD",
        "total_price": _price(sum(line.quantity for line in order.lines)),
        "customer": {"id": order.customer_id, "email": f"{order.buyer}@example.com"},
        "shipping_address": address,
        "line_items": [_line_item(line, cancelled) for line in order.lines],
        "refunds": list(order.refunds),
    }


def refund_payload(order: MockOrder, *, refund_id: int, at_s: float) -> dict[str, Any]:
    return {
        "id": refund_id,
        "order_id": order.order_id,
        "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
        "created_at": shop_time(at_s),
        "processed_at": shop_time(at_s),
        "note": None,
        "restock": False,
        "refund_line_items": [
            {
                "id": refund_id + index + 1,
                "line_item_id": line.line_id,
                "quantity": line.quantity,
                "restock_type": "no_restock",
                "location_id": None,
                "subtotal": float(_price(line.quantity)),
                "line_item": _line_item(line, cancelled=False),
            }
            for index, line in enumerate(order.lines)
        ],
        "transactions": [],
    }


def _line_item(line: MockLine, cancelled: bool) -> dict[str, Any]:
    return {
        "id": line.line_id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{line.line_id}",
        "product_id": line.listing.product_id,
        "variant_id": line.listing.variant_id,
        "sku": line.listing.sku,
        "title": line.listing.sku,
        "quantity": line.quantity,
        "fulfillable_quantity": 0 if cancelled else line.quantity,
        "price": UNIT_PRICE,
        "requires_shipping": True,
    }


def _price(quantity: int) -> str:
    cents = round(float(UNIT_PRICE) * 100) * quantity
    return f"{cents // 100}.{cents % 100:02d}"
