"""Douyin payloads <-> the SDK's models, pure: listings, writes, stock counts and orders.

Product, SKU and order ids are 19-digit integers on the wire, beyond what a float holds
exactly: they are parsed with the standard library (exact integers), kept as decimal text,
and turned back into JSON integers only when a request is written. Shape errors raise
``ShapeError``; the connector turns them into the SDK's errors.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from connectors.base import OrderStatus, PlatformOrder, PlatformOrderLine
from connectors.douyin.api import (
    MAIN_PARTLY_PAID,
    MAIN_REFUNDED_STATUSES,
    ORDER_AWAITING_PAYMENT,
    ORDER_CANCELLED,
    ORDER_COMPLETED,
    ORDER_PAID,
    ORDER_PARTLY_SHIPPED,
    ORDER_PREPARING,
    ORDER_SHIPPED,
    REFUND_STATUS_SUCCEEDED,
)

MAX_ID: Final = 2**63 - 1
"""Ids are int64 on the platform."""
_DIGITS = re.compile(r"[0-9]{1,19}")
_PLAIN_IDEMPOTENT_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_PAID_STATUSES: Final = frozenset(
    {ORDER_PAID, ORDER_PREPARING, ORDER_PARTLY_SHIPPED, ORDER_SHIPPED, ORDER_COMPLETED}
)


class ShapeError(ValueError):
    """A payload is not in the shape the platform documents; the message says where."""


@dataclass(frozen=True, slots=True)
class Listing:
    """Where a stockcast SKU is sold: the platform's product and SKU ids, as decimal text."""

    product_id: str
    sku_id: str

    @property
    def reference(self) -> str:
        return f"{self.product_id}:{self.sku_id}"


def parse_listing(sku: str, reference: str) -> Listing:
    """``"<product_id>:<sku_id>"`` -> a ``Listing``; ``ValueError`` naming ``sku`` if not."""
    product_id, colon, sku_id = reference.strip().partition(":")
    if not colon or not _is_id(product_id) or not _is_id(sku_id):
        raise ValueError(
            f"listing of SKU {sku!r} must be '<product_id>:<sku_id>' (decimal ids), "
            f"got {reference!r}"
        )
    return Listing(str(int(product_id)), str(int(sku_id)))


def _is_id(text: str) -> bool:
    return bool(_DIGITS.fullmatch(text)) and 0 < int(text) <= MAX_ID


def parse_listings(listings: Mapping[str, str]) -> dict[str, Listing]:
    return {sku: parse_listing(sku, reference) for sku, reference in listings.items()}


def idempotent_id(key: str) -> str:
    """The ``idempotent_id`` of a write: the key itself when it is short and plain, else a
    digest of it, so every retry of one update sends the same id.

    The platform's limits on the id are not published [U]: 64 characters of letters,
    digits and ``_.:-`` is our conservative guess.
    """
    if _PLAIN_IDEMPOTENT_ID.fullmatch(key):
        return key
    return "sc-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def drain_idempotent_id(key: str) -> str:
    """The id of the one "take what is left" reduction an update may fall back to."""
    return "sc-drain-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def sync_stock_params(
    listing: Listing, *, stock_num: int, incremental: bool, idempotent: str | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "product_id": int(listing.product_id),
        "sku_id": int(listing.sku_id),
        "incremental": incremental,
        "stock_num": stock_num,
    }
    if idempotent is not None:
        params["idempotent_id"] = idempotent
    return params


def sku_detail_params(listing: Listing) -> dict[str, Any]:
    return {"sku_id": int(listing.sku_id)}


def sku_list_params(product_id: str) -> dict[str, Any]:
    return {"product_id": int(product_id)}


def order_detail_params(order_id: str) -> dict[str, Any]:
    return {"shop_order_id": order_id}  # a string parameter, unlike the product ids


def stock_of_detail(data: object) -> int:
    """``sku.detail``'s count: ``data.stock_num`` (normal stock; regional stock is not
    supported by this connector)."""
    return _count(json_object(data, "data"), "stock_num")


def stocks_of_list(data: object) -> dict[str, int]:
    """``sku.list``: sku id -> ``stock_num``. The Go SDK reads ``data`` as the list itself,
    its sibling type as ``data.data``; both are accepted."""
    if isinstance(data, dict):
        data = data.get("data")
    if not isinstance(data, list):
        raise ShapeError(f"sku.list data must be a list, got {type(data).__name__}")
    return {decimal_id(json_object(item, "sku"), "id"): _count(item, "stock_num") for item in data}


# --- orders -------------------------------------------------------------------------

ResolveSku = Callable[[str | None, str], str | None]
"""(product_id, sku_id) -> the stockcast SKU listed there, or None."""


def order_of_detail(data: object, resolve: ResolveSku) -> PlatformOrder:
    """``order.orderDetail``'s ``data.shop_order_detail`` as a ``PlatformOrder``."""
    detail = json_object(json_object(data, "data").get("shop_order_detail"), "shop_order_detail")
    items = detail.get("sku_order_list")
    if not isinstance(items, list) or not items:
        raise ShapeError("shop_order_detail.sku_order_list must be a non-empty list")
    raw_lines = [json_object(item, "sku_order_list item") for item in items]
    status_code = _count(detail, "order_status")
    main = detail.get("main_status")
    main_status = main if isinstance(main, int) and not isinstance(main, bool) else None
    refunded = all(_line_refunded(line) for line in raw_lines)
    return PlatformOrder(
        order_id=decimal_id(detail, "order_id", "shop_order_detail"),
        status=order_status(status_code, main_status, all_lines_refunded=refunded),
        platform_status=str(main_status if main_status in MAIN_REFUNDED_STATUSES else status_code),
        buyer_id=_text(detail.get("doudian_open_id")) or _text(detail.get("open_id")),
        region=_province(detail),
        lines=tuple(_line(line, resolve) for line in raw_lines),
        updated_at_ms=_updated_at_s(detail) * 1000,
    )


def order_status(
    order_status: int, main_status: int | None, *, all_lines_refunded: bool = False
) -> OrderStatus:
    """The platform's order status in stockcast's words; every status after payment
    (preparing, shipped, completed) is PAID."""
    if main_status in MAIN_REFUNDED_STATUSES or all_lines_refunded:
        return OrderStatus.REFUNDED
    if order_status == ORDER_CANCELLED:
        return OrderStatus.CANCELLED
    if order_status == ORDER_AWAITING_PAYMENT or main_status == MAIN_PARTLY_PAID:
        return OrderStatus.AWAITING_PAYMENT
    if order_status in _PAID_STATUSES:
        return OrderStatus.PAID
    raise ShapeError(f"unknown order_status {order_status}")


def _line(item: Mapping[str, Any], resolve: ResolveSku) -> PlatformOrderLine:
    sku_id = decimal_id(item, "sku_id", "sku_order_list item")
    product = item.get("product_id")
    product_id = None if product is None else decimal_id(item, "product_id", "sku_order_list item")
    seller_sku = _seller_sku(item.get("out_sku_id")) or _text(item.get("code")) or None
    quantity = _count(item, "item_num")
    if quantity < 1:
        raise ShapeError(f"item_num must be positive, got {quantity}")
    return PlatformOrderLine(
        line_id=decimal_id(item, "order_id", "sku_order_list item"),
        sku=resolve(product_id, sku_id) or seller_sku,
        quantity=quantity,
        platform_sku=sku_id if product_id is None else f"{product_id}:{sku_id}",
    )


def _seller_sku(value: object) -> str:
    """``out_sku_id``; the platform answers 0 (or "0", or "") when the seller set none."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    return text if isinstance(text, str) and text not in ("", "0") else ""


def _line_refunded(item: Mapping[str, Any]) -> bool:
    after_sale = item.get("after_sale_info")
    return isinstance(after_sale, dict) and after_sale.get("refund_status") == (
        REFUND_STATUS_SUCCEEDED
    )


def _province(detail: Mapping[str, Any]) -> str | None:
    for field in ("post_addr", "mask_post_addr"):
        address = detail.get(field)
        province = address.get("province") if isinstance(address, dict) else None
        name = province.get("name") if isinstance(province, dict) else None
        if isinstance(name, str) and name:
            return name
    return None


def _updated_at_s(detail: Mapping[str, Any]) -> int:
    times = [
        value
        for name in ("update_time", "finish_time", "pay_time", "create_time")
        if isinstance(value := detail.get(name), int) and not isinstance(value, bool)
    ]
    return max(times, default=0)


# --- field readers (shared with ``push``) ----------------------------------------


def json_object(value: object, where: str) -> dict[str, Any]:
    """``value`` when it is a JSON object, else ``ShapeError`` naming ``where``."""
    if not isinstance(value, dict):
        raise ShapeError(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def decimal_id(data: Mapping[str, Any], name: str, where: str = "data") -> str:
    """An id field as exact decimal text; the platform sends integers, some SDKs strings."""
    value = data.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return str(int(value))
    raise ShapeError(f"{where}: {name} must be a decimal id, got {value!r}"[:200])


def _count(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ShapeError(f"{name} must be an integer, got {value!r}"[:200])
    return value


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
