"""The mock platform's API methods, past the gateway: parameters validated as the
platform types them, then the shop's books read or changed.

Product and SKU ids must be JSON integers (the platform's int64): a string or a float,
which is what a client that lost precision or quoted them sends, is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from connectors.douyin import api
from connectors.douyin.api import ApiError
from connectors.douyin.mock_gateway import MockStats
from connectors.douyin.mock_payloads import order_detail, sku_record
from connectors.douyin.mock_state import MockListing, MockShop


class Refused(Exception):
    """Ends a call with a documented error answer."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.sub_msg)
        self.error = error


def invalid(sub_msg: str, sub_code: str = "isv.parameter-invalid") -> Refused:
    return Refused(ApiError(40004, "非法的参数", sub_code, sub_msg))


def missing(sub_msg: str, sub_code: str = "isv.missing-parameter") -> Refused:
    return Refused(ApiError(40002, "缺少必选参数", sub_code, sub_msg))


Handler = Callable[[MockShop, Mapping[str, Any], MockStats, str], Any]


def sync_stock(shop: MockShop, params: Mapping[str, Any], stats: MockStats, app_key: str) -> Any:
    listing = _listing(shop, params)
    stock_num = _integer(params, "stock_num")
    if stock_num is None:
        raise missing("[stock_num]不能为空")
    incremental = params.get("incremental", False)
    if not isinstance(incremental, bool):
        raise invalid("[incremental]必须是布尔值")
    if not incremental:
        if stock_num < 0:
            raise invalid("库存值不能小于0")
        shop.set_stock(listing, stock_num)
        stats.writes_applied += 1
        return {}
    idempotent_id = params.get("idempotent_id")
    if not isinstance(idempotent_id, str) or not idempotent_id:
        raise missing("incremental=true时[idempotent_id]必填")
    error = shop.adjust(listing, stock_num, idempotent_id)
    if error is None:
        stats.writes_applied += 1
        return {}
    if error.sub_code == api.DUPLICATE_IDEMPOTENT_ID_SUB_CODE:
        stats.writes_duplicate += 1
    else:
        stats.writes_refused_short += 1
    raise Refused(error)


def sku_detail(shop: MockShop, params: Mapping[str, Any], stats: MockStats, app_key: str) -> Any:
    return sku_record(_listing(shop, params), app_key)


def sku_list(shop: MockShop, params: Mapping[str, Any], stats: MockStats, app_key: str) -> Any:
    product_id = _integer(params, "product_id")
    if product_id is None:
        raise missing("[product_id]与[out_product_id]参数至少传一个", "isv.missing-parameter:3")
    listings = shop.product(product_id)
    if not listings:
        raise Refused(api.PRODUCT_NOT_OWNED)
    return [sku_record(listing, app_key) for listing in listings]


def order_detail_of(
    shop: MockShop, params: Mapping[str, Any], stats: MockStats, app_key: str
) -> Any:
    order_id = params.get("shop_order_id")
    if order_id is None or order_id == "":
        raise missing("请输入查询订单号", "isv.missing-parameter:20000")
    if not isinstance(order_id, str):
        raise invalid("[shop_order_id]必须是字符串")
    order = shop.order(order_id) if order_id.isdigit() else None
    if order is None:
        raise Refused(api.ORDER_NOT_FOUND)
    return order_detail(order, shop.shop_id)


HANDLERS: Final[Mapping[str, Handler]] = {
    api.SYNC_STOCK: sync_stock,
    api.SKU_DETAIL: sku_detail,
    api.SKU_LIST: sku_list,
    api.ORDER_DETAIL: order_detail_of,
}


def _listing(shop: MockShop, params: Mapping[str, Any]) -> MockListing:
    """The SKU a call names: ``sku_id`` (within ``product_id`` when given), or ``code``."""
    sku_id = _integer(params, "sku_id")
    product_id = _integer(params, "product_id")
    code = params.get("code")
    if sku_id is not None:
        listing = shop.find_sku(sku_id)
    elif isinstance(code, str) and code:
        listing = shop.find_code(code)
    else:
        raise missing("[sku_id]与[code]参数至少传一个")
    if listing is None or (product_id is not None and product_id != listing.product_id):
        raise invalid(f"sku_id: {sku_id}, 找不到对应的sku", api.SKU_NOT_FOUND_SUB_CODE)
    return listing


def _integer(params: Mapping[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid(f"[{name}]必须是整数")
    return value
