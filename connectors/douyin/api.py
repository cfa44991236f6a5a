# ruff: noqa: RUF001  (the platform's own texts use full-width punctuation)
"""What the Douyin 抖店 open platform publishes, as constants both sides share.

The connector and the mock platform agree on method names, paths, codes and windows
through this module only; payload shapes are read by ``mapping`` on the connector side and
built by the ``mock_*`` modules on the platform side, so a misread shape fails a test.

Tags follow the research notes (shared/research/platform-apis.md §2): [S] from the
official Go SDK and the generated SDKs that carry the documents' error tables, [U] where no
public copy confirmed it (kept configurable or tolerant on both sides).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

API_VERSION: Final = "2"
SIGN_METHOD_HMAC_SHA256: Final = "hmac-sha256"
SIGN_METHOD_MD5: Final = "md5"
SIGN_METHODS: Final = frozenset({SIGN_METHOD_HMAC_SHA256, SIGN_METHOD_MD5})

SYNC_STOCK: Final = "sku.syncStock"
"""Sets (incremental=false) or adjusts (incremental=true + idempotent_id) one SKU's stock."""
SKU_DETAIL: Final = "sku.detail"
"""One SKU, by ``sku_id``: ``data.stock_num`` is its count (sku_type 0, normal stock)."""
SKU_LIST: Final = "sku.list"
"""Every SKU of one product, by ``product_id``: the batch read."""
ORDER_DETAIL: Final = "order.orderDetail"
"""One shop order, by ``shop_order_id`` (a string): ``data.shop_order_detail``."""


def path_of(method: str) -> str:
    """``sku.syncStock`` -> ``/sku/syncStock``: the gateway routes by the dotted name [S]."""
    return "/" + method.replace(".", "/")


def method_of(path: str) -> str:
    return path.lstrip("/").replace("/", ".")


REQUEST_WINDOW_S: Final = 600
"""A request timestamp more than 10 minutes off the platform's clock is refused [D]."""

WEBHOOK_WINDOW_S: Final = 72 * 3600
"""How old a push may be and still be taken: the default of the connector's
``webhook_window_s`` option. Pushes carry no timestamp header, so the connector judges a
delivery by the newest Unix time inside its messages. The platform redelivers a push it
got no ``{"code":0}`` for, with the original messages, but its retry horizon is not
published [U]; refusing such a redelivery would lose the order, while a replay inside
the window is harmless (events are deterministic and the ledger answers duplicates). So
the window is generous: the 72 hours TikTok documents for its own webhooks."""

WEBHOOK_SIGN_HEADER: Final = "event-sign"
WEBHOOK_APP_ID_HEADER: Final = "app-id"
WEBHOOK_SIGN_METHOD_HEADER: Final = "sign-method"
"""Present only when the push is signed with HMAC-SHA256 instead of MD5 [U]."""

WEBHOOK_ACK: Final = b'{"code":0,"msg":"success"}'
WEBHOOK_NACK: Final = b'{"code":1,"msg":"fail"}'

# Push message tags [S]: the order ones; every other tag is acknowledged and dropped.
TAG_TRADE_CREATE: Final = "100"
TAG_TRADE_PAID: Final = "101"
TAG_TRADE_SUCCESS: Final = "103"
TAG_TRADE_CANCELED: Final = "106"
TAG_TRADE_PENDING: Final = "110"
TAG_REFUND_CREATED: Final = "200"
TAG_REFUND_AGREED: Final = "201"
TAG_REFUND_SUCCESS: Final = "206"
ORDER_TAGS: Final = frozenset(
    {
        TAG_TRADE_CREATE,
        TAG_TRADE_PAID,
        TAG_TRADE_SUCCESS,
        TAG_TRADE_CANCELED,
        TAG_TRADE_PENDING,
        TAG_REFUND_CREATED,
        TAG_REFUND_AGREED,
        TAG_REFUND_SUCCESS,
    }
)
MESSAGE_TIME_FIELDS: Final = (
    "create_time",
    "pay_time",
    "cancel_time",
    "complete_time",
    "update_time",
    "apply_time",
    "agree_time",
    "success_time",
)
"""Unix-second fields of a message's ``data`` that say when the change happened [S]."""

# shop_order_detail.order_status [S]: 1 awaiting payment, 105 paid, 2 preparing,
# 101 partly shipped, 3 shipped, 4 cancelled, 5 completed.
ORDER_AWAITING_PAYMENT: Final = 1
ORDER_PAID: Final = 105
ORDER_PREPARING: Final = 2
ORDER_PARTLY_SHIPPED: Final = 101
ORDER_SHIPPED: Final = 3
ORDER_CANCELLED: Final = 4
ORDER_COMPLETED: Final = 5
MAIN_PARTLY_PAID: Final = 103
MAIN_REFUNDED_STATUSES: Final = frozenset({21, 22, 39})
"""main_status: refund completed before shipping, after shipping, after receipt [S]."""
REFUND_STATUS_SUCCEEDED: Final = 3
"""sku_order_list[].after_sale_info.refund_status: 1 pending, 3 refunded, 4 failed [S]."""

SUCCESS: Final = 10000


@dataclass(frozen=True, slots=True)
class ApiError:
    """One documented non-success answer: the envelope's ``code``, ``msg``, ``sub_code``
    and ``sub_msg``."""

    code: int
    msg: str
    sub_code: str
    sub_msg: str


# Gateway codes [S] (the documents' common table, as SDKs carry it).
SERVICE_ERROR: Final = ApiError(
    20000, "服务不可用", "isp.service-error", "服务调用失败，请稍后重试"
)
PARAMETER_MISSING: Final = ApiError(40001, "缺少必选参数", "isv.parameter-missing", "缺少参数")
SIGNATURE_MISSING: Final = ApiError(
    40001, "缺少必选参数", "isv.signature-missing", "获取签名失败，请根据文档确保参数拼装正确"
)
APP_KEY_MISSING: Final = ApiError(
    40001, "缺少必选参数", "isv.app-id-missing", "认证失败，app_key不存在"
)
ACCESS_TOKEN_MISSING: Final = ApiError(
    40001, "缺少必选参数", "isv.access-token-missing", "认证失败，access_token不能为空"
)
SIGNATURE_INVALID: Final = ApiError(40003, "非法的参数", "isv.signature-invalid", "签名校验失败")
ACCESS_TOKEN_UNKNOWN: Final = ApiError(
    40003,
    "非法的参数",
    "isv.access-token-no-existed",
    "access_token不存在，请使用最新的access_token访问",
)
TIMESTAMP_INVALID: Final = ApiError(40003, "非法的参数", "isv.timestamp-invalid", "时间戳不合法")
TIMESTAMP_FORMAT_ERROR: Final = ApiError(
    40003, "非法的参数", "isv.timestamp-format-error", "时间戳格式错误"
)
PARAMETER_INVALID: Final = ApiError(40003, "非法的参数", "isv.parameter-invalid", "参数错误")
TRAFFIC_LIMITED: Final = ApiError(
    60000, "触发限流，请稍后重试", "isv.traffic-limited", "请求太频繁，请稍后重试"
)

# sku.syncStock [S] (the document's own table).
SYSTEM_BUSY: Final = ApiError(
    50002, "业务处理失败", "isv.business-failed:2010401", "2010401:系统繁忙，请稍后再试"
)
"""Documented as retryable; the default shape of the mock's throttling, since the
flow-control code itself is [U]."""
DUPLICATE_IDEMPOTENT_ID_SUB_CODE: Final = "isv.parameter-invalid:40010"
DUPLICATE_IDEMPOTENT_ID: Final = ApiError(
    40004, "非法的参数", DUPLICATE_IDEMPOTENT_ID_SUB_CODE, "[idempotent_id]重复，操作已执行"
)
SKU_NOT_FOUND_SUB_CODE: Final = "isv.parameter-invalid:5"
WAREHOUSE_TIMEOUT_SUB_CODE: Final = "isv.parameter-invalid:40004"
STOCK_SHORT_MARKER: Final = "库存不足"
"""An incremental reduction below 0 is refused with "系统错误:更新库存数失败: 库存不足" [S];
the code and sub_code of that answer are [U], so both sides key on this text."""
STOCK_SHORT: Final = ApiError(
    50002, "业务处理失败", "isv.business-failed", "系统错误:更新库存数失败: 库存不足"
)

# sku.list [S].
PRODUCT_NOT_OWNED: Final = ApiError(
    40004, "非法的参数", "isv.parameter-invalid:4", "该商品不属于你"
)

# order.orderDetail [S].
ORDER_NOT_FOUND: Final = ApiError(40004, "非法的参数", "isv.parameter-invalid:20001", "订单不存在")
RETRYABLE_SUB_CODES: Final = frozenset(
    {
        WAREHOUSE_TIMEOUT_SUB_CODE,  # sku.syncStock: 获取区域仓失败, a timeout
        "isv.business-failed:20004",
        "isv.business-failed:20045",
        "isv.business-failed:20055",
        "isv.business-failed:7",  # sku.list: 获取库存数失败, 请稍后重试
    }
)
