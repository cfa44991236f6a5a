"""What the mock platform says, in the platform's shapes [S]: SKU records, the order
detail, push messages and the answer envelope.

Built independently of the connector's ``mapping`` (which reads these shapes), so a
misread field fails a test instead of agreeing with itself. Ids go out as JSON integers
where the platform's SDK types them int64, and as strings where it types them string
(order ids in the order detail).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from connectors.douyin.api import (
    ORDER_AWAITING_PAYMENT,
    ORDER_CANCELLED,
    ORDER_PAID,
    SUCCESS,
    TAG_REFUND_SUCCESS,
    TAG_TRADE_CANCELED,
    TAG_TRADE_CREATE,
    TAG_TRADE_PAID,
    ApiError,
)
from connectors.douyin.mock_state import (
    MAIN_REFUNDED_BEFORE_SHIPPING,
    Change,
    MockLine,
    MockListing,
    MockOrder,
)

ORDER_STATUS_DESC: Final = {
    ORDER_AWAITING_PAYMENT: "待支付",
    ORDER_PAID: "已支付",
    ORDER_CANCELLED: "已取消",
    MAIN_REFUNDED_BEFORE_SHIPPING: "发货前退款完结",
}
AFTER_SALE_SUCCEEDED: Final = 12
AFTER_SALE_REFUND_UNSHIPPED: Final = 2
REFUND_SUCCEEDED: Final = 3
BIZ_SHOP: Final = 2
PAY_TYPE_WECHAT: Final = 1


def envelope(log_id: str, data: Any = None, error: ApiError | None = None) -> bytes:
    """The answer every call gets, on HTTP 200."""
    if error is None:
        head = {"code": SUCCESS, "msg": "success", "sub_code": "", "sub_msg": ""}
    else:
        head = {
            "code": error.code,
            "msg": error.msg,
            "sub_code": error.sub_code,
            "sub_msg": error.sub_msg,
        }
    body = {**head, "log_id": log_id, "data": {} if data is None and error is None else data}
    return json.dumps(body, ensure_ascii=False).encode()


def sku_record(listing: MockListing, app_key: str) -> dict[str, Any]:
    """One SKU as ``sku.detail`` and ``sku.list`` describe it (normal stock, sku_type 0)."""
    return {
        "id": listing.sku_id,
        "open_user_id": int(app_key) if app_key.isdigit() else 0,
        "out_sku_id": 0,
        "product_id": listing.product_id,
        "product_id_str": str(listing.product_id),
        "code": listing.code,
        "sku_type": 0,
        "stock_num": listing.stock_num,
        "prehold_stock_num": 0,
        "prom_stock_num": 0,
        "step_stock_num": 0,
        "price": 9900,
        "spec_detail_name1": listing.sku,
    }


def order_detail(order: MockOrder, shop_id: int) -> dict[str, Any]:
    """``order.orderDetail``'s ``data``."""
    status_desc = ORDER_STATUS_DESC.get(order.order_status, "")
    main_desc = ORDER_STATUS_DESC.get(order.main_status, status_desc)
    province = {"name": order.region or "", "id": ""}
    return {
        "shop_order_detail": {
            "shop_id": shop_id,
            "order_id": str(order.order_id),
            "order_level": 2,
            "order_status": order.order_status,
            "order_status_desc": status_desc,
            "main_status": order.main_status,
            "main_status_desc": main_desc,
            "create_time": order.create_time,
            "pay_time": order.pay_time,
            "update_time": order.update_time,
            "cancel_reason": "买家取消" if order.cancel_time else "",
            "doudian_open_id": order.buyer,
            "post_addr": {"province": province, "city": {"name": "", "id": ""}},
            "sku_order_list": [_sku_order(order, line) for line in order.lines],
        }
    }


def _sku_order(order: MockOrder, line: MockLine) -> dict[str, Any]:
    after_sale = (
        {
            "after_sale_status": AFTER_SALE_SUCCEEDED,
            "after_sale_type": AFTER_SALE_REFUND_UNSHIPPED,
            "refund_status": REFUND_SUCCEEDED,
        }
        if line.refunded
        else {"after_sale_status": 0, "after_sale_type": 0, "refund_status": 0}
    )
    return {
        "order_id": str(line.line_id),
        "parent_order_id": str(order.order_id),
        "order_level": 3,
        "order_status": order.order_status,
        "main_status": order.main_status,
        "product_id": line.listing.product_id,
        "product_id_str": str(line.listing.product_id),
        "sku_id": line.listing.sku_id,
        "out_sku_id": "",
        "code": line.listing.code,
        "item_num": line.quantity,
        "after_sale_info": after_sale,
    }


def messages(order: MockOrder, change: Change, shop_id: int, at_s: int) -> list[dict[str, Any]]:
    """The push messages of ``change``, timed ``at_s``; ``data`` is a JSON string, as the
    official Go SDK types it."""
    return [
        {"tag": change.tag, "msg_id": msg_id, "data": _compact(data)}
        for msg_id, data in zip(
            change.msg_ids, _message_data(order, change.tag, shop_id, at_s), strict=True
        )
    ]


def _message_data(order: MockOrder, tag: str, shop_id: int, at_s: int) -> list[dict[str, Any]]:
    common = {
        "biz": BIZ_SHOP,
        "order_type": 0,
        "p_id": order.order_id,
        "s_ids": [line.line_id for line in order.lines],
        "shop_id": shop_id,
    }
    if tag == TAG_TRADE_CREATE:
        return [{**common, "create_time": at_s, "order_status": ORDER_AWAITING_PAYMENT}]
    if tag == TAG_TRADE_PAID:
        paid = {"order_status": ORDER_PAID, "pay_time": at_s, "pay_type": PAY_TYPE_WECHAT}
        return [{**common, **paid, "pay_amount": 0}]
    if tag == TAG_TRADE_CANCELED:
        cancelled = {"order_status": ORDER_CANCELLED, "cancel_time": at_s}
        return [{**common, **cancelled, "cancel_reason": "买家取消"}]
    if tag == TAG_REFUND_SUCCESS:
        return [_refund_data(order, line, shop_id, at_s) for line in order.lines]
    raise ValueError(f"the mock sends no tag {tag!r}")


def _refund_data(order: MockOrder, line: MockLine, shop_id: int, at_s: int) -> dict[str, Any]:
    return {
        "aftersale_id": line.line_id + 1_000_000_000,
        "aftersale_status": AFTER_SALE_SUCCEEDED,
        "aftersale_type": AFTER_SALE_REFUND_UNSHIPPED,
        "p_id": order.order_id,
        "s_id": line.line_id,
        "shop_id": shop_id,
        "refund_amount": 0,
        "success_time": at_s,
    }


def _compact(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def push_body(items: Sequence[dict[str, Any]]) -> bytes:
    """A push: the messages as a compact JSON array."""
    return json.dumps(list(items), ensure_ascii=False, separators=(",", ":")).encode()
