"""The mock platform's endpoints, as functions of the shop's books and a parsed request.

Each returns the answer's ``data`` or raises ``ApiError`` with the code to answer. Shapes
follow the 202309 reference pages (Inventory Search, Update Inventory, Get Order Detail,
Search Returns); where they leave something open the choice is noted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from connectors.tiktok_shop import api
from connectors.tiktok_shop.mock_gate import MockStats
from connectors.tiktok_shop.mock_state import Listing, Order, ShopBooks

JsonObject = dict[str, Any]


class ApiError(Exception):
    """A refusal by an endpoint: a non-zero code, on HTTP 200 as the platform answers
    business errors unless ``http_status`` says otherwise."""

    def __init__(self, code: int, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


def json_body(body: bytes) -> JsonObject:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(api.INVALID_FORMAT, "Invalid request format. Body is not JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(api.INVALID_PARAMETER, "Invalid parameter. Body must be a JSON object.")
    return data


def search_inventory(books: ShopBooks, body: JsonObject, stats: MockStats) -> JsonObject:
    """By SKU ids (up to 600) or product ids (up to 100); SKU ids win when both are given.
    Unknown ids are left out of the answer."""
    stats.inventory_reads += 1
    sku_ids = _id_list(body, "sku_ids", api.MAX_SEARCH_SKU_IDS)
    if sku_ids:
        listings = [books.by_sku_id[i] for i in dict.fromkeys(sku_ids) if i in books.by_sku_id]
    else:
        product_ids = _id_list(body, "product_ids", api.MAX_SEARCH_PRODUCT_IDS)
        if not product_ids:
            raise ApiError(api.INVALID_PARAMETER, "Invalid parameter. Pass sku_ids or product_ids.")
        listings = [
            listing for pid in dict.fromkeys(product_ids) for listing in books.products.get(pid, [])
        ]
    by_product: dict[str, list[JsonObject]] = {}
    for listing in listings:
        by_product.setdefault(listing.product_id, []).append(_sku_inventory(listing))
    return {"inventory": [{"product_id": pid, "skus": skus} for pid, skus in by_product.items()]}


def update_inventory(
    books: ShopBooks, product_id: str, body: JsonObject, stats: MockStats
) -> JsonObject:
    """Absolute per warehouse. The whole request is validated first (a bad quantity refuses
    it all); then each SKU either lands or is reported in ``data.errors`` (code 0)."""
    skus = _updates(body)
    listings = books.products.get(product_id)
    if listings is None:
        raise ApiError(api.PRODUCT_NOT_FOUND, f"Product {product_id} does not exist.")
    errors: list[JsonObject] = []
    for sku_id, inventory in skus:
        listing = next((each for each in listings if each.sku_id == sku_id), None)
        if listing is None:
            errors.append(
                _sku_error(api.SKU_NOT_FOUND, f"SKU {sku_id} is not in the product.", sku_id)
            )
            continue
        if not listing.live:
            errors.append(_sku_error(api.SKU_NOT_LIVE, "Only live SKUs can be updated.", sku_id))
            continue
        extra = [
            error
            for warehouse_id, quantity in inventory
            if (error := _set(listing, warehouse_id, quantity)) is not None
        ]
        stats.writes_applied += len(inventory) - len(extra)
        if extra:
            errors.append(_sku_error(extra[0]["code"], "Update failed.", sku_id, extra))
    stats.writes_failed += len(errors)
    return {"errors": errors} if errors else {}


def order_detail(books: ShopBooks, ids_param: str | None, stats: MockStats) -> JsonObject:
    """``ids`` is a comma-separated list (a JSON array is accepted too [U]); unknown ids
    are left out."""
    stats.order_reads += 1
    ids = _query_ids(ids_param)
    if not ids:
        raise ApiError(api.INVALID_PARAMETER, "Invalid parameter. ids is required.")
    if len(ids) > api.MAX_ORDER_IDS:
        raise ApiError(
            api.INVALID_PARAMETER, f"Invalid parameter. At most {api.MAX_ORDER_IDS} ids."
        )
    return {"orders": [_order(books.orders[i]) for i in ids if i in books.orders]}


def search_returns(books: ShopBooks, body: JsonObject, stats: MockStats) -> JsonObject:
    """Filters by ``order_ids`` and ``return_ids``; one page holds everything the mock has."""
    stats.return_reads += 1
    order_ids = set(_id_list(body, "order_ids", 10_000))
    return_ids = set(_id_list(body, "return_ids", 10_000))
    records = [
        record
        for record in books.returns
        if (not order_ids or record.order_id in order_ids)
        and (not return_ids or record.return_id in return_ids)
    ]
    return {
        "return_orders": [
            {
                "order_id": record.order_id,
                "return_id": record.return_id,
                "return_type": record.return_type,
                "return_status": record.return_status,
                "role": "BUYER",
                "create_time": record.create_time,
                "update_time": record.create_time,
                "return_line_items": [
                    {"return_line_item_id": f"{line_id}-r", "order_line_item_id": line_id}
                    for line_id in record.line_item_ids
                ],
            }
            for record in records
        ],
        "total_count": len(records),
        "next_page_token": "",
    }


def _updates(body: JsonObject) -> list[tuple[str, list[tuple[str | None, int]]]]:
    skus = body.get("skus")
    if not isinstance(skus, list) or not skus:
        raise ApiError(api.INVALID_PARAMETER, "Invalid parameter. skus must be a non-empty list.")
    updates = []
    for sku in skus:
        sku_id = sku.get("id") if isinstance(sku, dict) else None
        inventory = sku.get("inventory") if isinstance(sku, dict) else None
        if not isinstance(sku_id, str) or not sku_id:
            raise ApiError(api.INVALID_PARAMETER, "Invalid parameter. skus[].id is required.")
        if not isinstance(inventory, list) or not inventory:
            raise ApiError(
                api.INVALID_PARAMETER, "Invalid parameter. skus[].inventory is required."
            )
        updates.append((sku_id, [_warehouse_quantity(entry) for entry in inventory]))
    return updates


def _warehouse_quantity(entry: object) -> tuple[str | None, int]:
    if not isinstance(entry, dict):
        raise ApiError(api.INVALID_PARAMETER, "Invalid parameter. inventory[] must be objects.")
    quantity = entry.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise ApiError(api.INVALID_PARAMETER, "Invalid parameter. quantity must be an integer.")
    if not 0 <= quantity <= api.MAX_QUANTITY:
        raise ApiError(
            api.INVALID_PARAMETER,
            "Invalid parameter. quantity should be non-negative and less than 99999.",
        )
    warehouse_id = entry.get("warehouse_id")
    if warehouse_id is not None and (not isinstance(warehouse_id, str) or not warehouse_id):
        raise ApiError(api.INVALID_PARAMETER, "Invalid parameter. warehouse_id must be a string.")
    return warehouse_id, quantity


def _set(listing: Listing, warehouse_id: str | None, quantity: int) -> JsonObject | None:
    """Set one warehouse's quantity; the ``extra_errors`` entry when it cannot."""
    if warehouse_id is None and not listing.in_default_warehouse:
        return _warehouse_error(
            api.WAREHOUSE_REQUIRED, "warehouse_id is required for this SKU.", ""
        )
    if warehouse_id is not None and warehouse_id != listing.warehouse_id:
        return _warehouse_error(
            api.WAREHOUSE_NOT_FOUND, "The SKU is not stocked in this warehouse.", warehouse_id
        )
    listing.available = quantity
    return None


def _warehouse_error(code: int, message: str, warehouse_id: str) -> JsonObject:
    return {"warehouse_id": warehouse_id, "code": code, "message": message}


def _sku_error(
    code: int, message: str, sku_id: str, extra: list[JsonObject] | None = None
) -> JsonObject:
    return {
        "code": code,
        "message": message,
        "detail": {"sku_id": sku_id, "extra_errors": extra or []},
    }


def _sku_inventory(listing: Listing) -> JsonObject:
    return {
        "id": listing.sku_id,
        "seller_sku": listing.seller_sku,
        "total_available_quantity": listing.available,
        "total_committed_quantity": listing.committed,
        "warehouse_inventory": [
            {
                "warehouse_id": listing.warehouse_id,
                "available_quantity": listing.available,
                "committed_quantity": listing.committed,
            }
        ],
    }


def _order(order: Order) -> JsonObject:
    data: JsonObject = {
        "id": order.id,
        "status": order.status,
        "user_id": order.buyer,
        "create_time": order.create_time,
        "update_time": order.update_time,
        "warehouse_id": order.lines[0].listing.warehouse_id,
        "is_on_hold_order": False,
        "line_items": [
            {
                "id": line.id,
                "product_id": line.listing.product_id,
                "sku_id": line.listing.sku_id,
                "seller_sku": line.listing.seller_sku,
                "display_status": line.display_status,
                "sku_type": "NORMAL",
                "is_gift": False,
            }
            for line in order.lines
        ],
    }
    if order.paid_time is not None:
        data["paid_time"] = order.paid_time
    if order.cancel_time is not None:
        data["cancel_time"] = order.cancel_time
    # "recipient_address is not available under unpaid and on hold status" [D].
    if order.region is not None and order.status not in (api.UNPAID, api.ON_HOLD):
        data["recipient_address"] = {"region_code": order.region}
    return data


def _id_list(body: Mapping[str, Any], name: str, limit: int) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(each, str) for each in value):
        raise ApiError(api.INVALID_PARAMETER, f"Invalid parameter. {name} must be string ids.")
    if len(value) > limit:
        raise ApiError(api.INVALID_PARAMETER, f"Invalid parameter. At most {limit} {name}.")
    return value


def _query_ids(param: str | None) -> list[str]:
    if not param:
        return []
    if param.startswith("["):
        try:
            parsed = orjson.loads(param)
        except orjson.JSONDecodeError:
            raise ApiError(api.INVALID_PARAMETER, "Invalid parameter. ids is malformed.") from None
        return [str(each) for each in parsed] if isinstance(parsed, list) else []
    return [each.strip() for each in param.split(",") if each.strip()]
