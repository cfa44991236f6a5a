"""Douyin payloads <-> SDK models, on hand-written payloads in the platform's shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.base import OrderStatus, RateLimited, Rejected, TransientError
from connectors.douyin import api
from connectors.douyin.answers import UnreadableAnswer, decode_answer, error_for
from connectors.douyin.mapping import (
    Listing,
    ShapeError,
    drain_idempotent_id,
    idempotent_id,
    order_of_detail,
    order_status,
    parse_listing,
    stock_of_detail,
    stocks_of_list,
    sync_stock_params,
)
from connectors.douyin.options import DouyinOptions, parse_write_modes
from connectors.douyin.push import notifications, parse_push
from connectors.douyin.signing import canonical_param_json

PRODUCT = "3500000000000000001"
SKU = "1700000000000000001"


def test_listing_ids_stay_exact_text() -> None:
    listing = parse_listing("lipstick", f" {PRODUCT}:{SKU} ")
    assert listing == Listing(PRODUCT, SKU)
    assert listing.reference == f"{PRODUCT}:{SKU}"
    params = sync_stock_params(listing, stock_num=-3, incremental=True, idempotent="k")
    assert canonical_param_json(params) == (
        f'{{"idempotent_id":"k","incremental":true,"product_id":{PRODUCT},'
        f'"sku_id":{SKU},"stock_num":-3}}'
    )


@pytest.mark.parametrize(
    "reference",
    [
        "",
        PRODUCT,
        f"{PRODUCT}:",
        f"{PRODUCT}:abc",
        f"{PRODUCT}:{SKU}:1",
        "0:1",
        "-1:2",
        f"{PRODUCT}:99999999999999999999",
        "3.5e18:1",
    ],
)
def test_bad_listings_name_the_sku(reference: str) -> None:
    with pytest.raises(ValueError, match="'lipstick'"):
        parse_listing("lipstick", reference)


def test_idempotent_ids_are_deterministic_and_plain() -> None:
    assert idempotent_id("douyin-room-1:lipstick:5-7") == "douyin-room-1:lipstick:5-7"
    hashed = idempotent_id("room/1:CASE 12:5-7")
    assert hashed == idempotent_id("room/1:CASE 12:5-7")
    assert hashed.startswith("sc-")
    assert len(hashed) <= 64
    assert idempotent_id("x" * 65) != "x" * 65
    assert drain_idempotent_id("k") == drain_idempotent_id("k") != idempotent_id("k")


def test_options_need_every_credential_and_read_the_rest() -> None:
    full = {
        "base_url": "http://127.0.0.1:1",
        "app_key": "1",
        "app_secret": "s3cret",
        "access_token": "t0ken",
        "shop_id": "42",
    }
    for name in full:
        with pytest.raises(ValueError, match=repr(name)):
            DouyinOptions.parse({**full, name: " "})
    options = DouyinOptions.parse({**full, "timeout_s": "2.5", "sign_method": "MD5"})
    assert (options.timeout_s, options.sign_method) == (2.5, "md5")
    assert options.webhook_window_s == 72 * 3600
    assert DouyinOptions.parse({**full, "webhook_window_s": "600"}).webhook_window_s == 600
    assert "s3cret" not in repr(options)
    assert "t0ken" not in repr(options)
    for bad in (
        {"timeout_s": "0"},
        {"timeout_s": "x"},
        {"sign_method": "sha1"},
        {"shop_id": "shop-1"},
        {"throttle_wait_s": "inf"},
        {"webhook_window_s": "0"},
        {"webhook_window_s": "a day"},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            DouyinOptions.parse({**full, **bad})


def test_write_modes_option() -> None:
    assert parse_write_modes("delta, absolute") == {"delta", "absolute"}
    for bad in ("compare_and_swap", "delta,cas", ""):
        with pytest.raises(ValueError, match="write_modes"):
            parse_write_modes(bad)


# --- answers ----------------------------------------------------------------------------


def answer(code: int, sub_code: str = "", sub_msg: str = "", msg: str = "") -> bytes:
    envelope = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg, "data": {}}
    return json.dumps(envelope, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (answer(10000), None),
        (answer(50002, "isv.business-failed:2010401", "2010401:系统繁忙"), RateLimited),
        (answer(60000, "isv.traffic-limited", "请求太频繁"), RateLimited),
        (answer(50002, "isv.business-failed:9", msg="触发限流"), RateLimited),
        (answer(20000, "isp.service-error"), TransientError),
        (answer(40004, "isv.parameter-invalid:40004", "系统错误:获取区域仓失败"), TransientError),
        (answer(50002, "isv.business-failed:20004"), TransientError),
        (answer(40004, "isv.parameter-invalid:5", "找不到对应的sku"), Rejected),
        (answer(40003, "isv.signature-invalid"), Rejected),
        (answer(40003, "isv.access-token-expired"), Rejected),
        (answer(30001, "dop.authorization-no-existed"), Rejected),
    ],
)
def test_answers_map_onto_the_error_tree(body: bytes, expected: type | None) -> None:
    error = error_for(decode_answer(body), "sku.syncStock", throttle_wait_s=0.5)
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected
    if isinstance(error, RateLimited):
        assert error.retry_after == 0.5


def test_duplicate_and_short_answers_are_recognised() -> None:
    duplicate = decode_answer(answer(40004, api.DUPLICATE_IDEMPOTENT_ID_SUB_CODE))
    short = decode_answer(answer(50002, "isv.business-failed", "系统错误:更新库存数失败: 库存不足"))
    assert duplicate.duplicate
    assert not duplicate.stock_short
    assert short.stock_short
    assert not short.duplicate


@pytest.mark.parametrize("body", [b"", b"<html>", b"[]", b'{"code":"10000"}', b'{"msg":"x"}'])
def test_unreadable_envelopes(body: bytes) -> None:
    with pytest.raises(UnreadableAnswer):
        decode_answer(body)


def test_stock_counts() -> None:
    record = {"id": int(SKU), "product_id": int(PRODUCT), "stock_num": 7}
    assert stock_of_detail(record) == 7
    assert stocks_of_list([record]) == {SKU: 7}
    assert stocks_of_list({"data": [record]}) == {SKU: 7}
    with pytest.raises(ShapeError):
        stocks_of_list({"data": None})
    with pytest.raises(ShapeError):
        stock_of_detail({"stock_num": "7"})


# --- pushes -----------------------------------------------------------------------------


def test_push_messages_accept_string_and_object_data() -> None:
    body = json.dumps(
        [
            {
                "tag": "100",
                "msg_id": "m1",
                "data": json.dumps({"p_id": 6920000000000000001, "shop_id": 42, "create_time": 7}),
            },
            {"tag": 101, "msgId": 2, "data": {"p_id": "6920000000000000001", "pay_time": 9}},
            {"tag": "10000", "msg_id": "m3", "data": "{}"},
            {"tag": "106", "msg_id": "m4", "data": {"p_id": 6920000000000000101}},
        ]
    ).encode()
    found = notifications(parse_push(body), default_shop_id="42")
    assert [(n.notification_id, n.order_id, n.shop_id, n.occurred_at_ms) for n in found] == [
        ("m1", "6920000000000000001", "42", 7000),
        ("2", "6920000000000000001", "42", 9000),
        ("m4", "6920000000000000101", "42", 9000),  # no time of its own: the delivery's
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b"[1]",
        b'[{"msg_id":"1","data":"{}"}]',
        b'[{"tag":"100","data":"{}"}]',
        b'[{"tag":"100","msg_id":"1","data":"not json"}]',
        b'[{"tag":"100","msg_id":"1","data":"[]"}]',
    ],
)
def test_malformed_pushes(body: bytes) -> None:
    with pytest.raises(ShapeError):
        parse_push(body)


def test_an_order_message_without_p_id_is_malformed() -> None:
    with pytest.raises(ShapeError, match="p_id"):
        notifications(parse_push(b'[{"tag":"100","msg_id":"1","data":{"p_id":1.5}}]'), "42")


# --- orders -----------------------------------------------------------------------------


def detail(**overrides: Any) -> dict[str, Any]:
    line = {
        "order_id": "6920000000000000001",
        "parent_order_id": "6920000000000000001",
        "product_id": int(PRODUCT),
        "sku_id": int(SKU),
        "out_sku_id": "0",
        "code": "LIP-RED",
        "item_num": 2,
        "after_sale_info": {"after_sale_status": 0, "refund_status": 0},
    }
    order = {
        "order_id": "6920000000000000001",
        "order_status": 105,
        "main_status": 105,
        "create_time": 100,
        "pay_time": 110,
        "update_time": 120,
        "doudian_open_id": "1@#buyer",
        "post_addr": {"province": {"name": "浙江省", "id": "33"}},
        "sku_order_list": [line],
    }
    lines = overrides.pop("lines", None)
    order.update(overrides)
    if lines is not None:
        order["sku_order_list"] = [{**line, **changes} for changes in lines]
    return {"shop_order_detail": order}


def resolve(product_id: str | None, sku_id: str) -> str | None:
    return "lipstick" if (product_id, sku_id) == (PRODUCT, SKU) else None


def test_order_detail_maps_onto_a_platform_order() -> None:
    order = order_of_detail(detail(), resolve)
    assert order.order_id == "6920000000000000001"
    assert order.status is OrderStatus.PAID
    assert (order.buyer_id, order.region, order.updated_at_ms) == ("1@#buyer", "浙江省", 120_000)
    (line,) = order.lines
    assert (line.line_id, line.sku, line.quantity) == ("6920000000000000001", "lipstick", 2)
    assert line.platform_sku == f"{PRODUCT}:{SKU}"


def test_lines_fall_back_to_the_seller_sku() -> None:
    order = order_of_detail(
        detail(
            lines=[
                {"sku_id": 11, "out_sku_id": "OUT-1", "order_id": "1"},
                {"sku_id": 12, "out_sku_id": 0, "code": "CODE-2", "order_id": "2"},
                {"sku_id": 13, "out_sku_id": "", "code": "", "order_id": "3"},
            ]
        ),
        resolve,
    )
    assert [line.sku for line in order.lines] == ["OUT-1", "CODE-2", None]


@pytest.mark.parametrize(
    ("status", "main", "expected"),
    [
        (1, 1, OrderStatus.AWAITING_PAYMENT),
        (1, 103, OrderStatus.AWAITING_PAYMENT),
        (105, 105, OrderStatus.PAID),
        (2, 2, OrderStatus.PAID),
        (101, 101, OrderStatus.PAID),
        (3, 3, OrderStatus.PAID),
        (5, 5, OrderStatus.PAID),
        (4, 4, OrderStatus.CANCELLED),
        (4, 21, OrderStatus.REFUNDED),
        (5, 39, OrderStatus.REFUNDED),
        (3, None, OrderStatus.PAID),
    ],
)
def test_status_table(status: int, main: int | None, expected: OrderStatus) -> None:
    assert order_status(status, main) is expected


def test_an_order_whose_every_line_is_refunded_is_refunded() -> None:
    refunded = {"after_sale_info": {"after_sale_status": 12, "refund_status": 3}}
    assert order_of_detail(detail(lines=[refunded]), resolve).status is OrderStatus.REFUNDED
    partly = [refunded, {"order_id": "2"}]
    assert order_of_detail(detail(lines=partly), resolve).status is OrderStatus.PAID


@pytest.mark.parametrize(
    "broken",
    [
        {"order_status": 999},
        {"sku_order_list": []},
        {"lines": [{"item_num": 0}]},
        {"lines": [{"sku_id": 1.7e18}]},
        {"order_id": None},
    ],
)
def test_misshapen_order_details(broken: dict[str, Any]) -> None:
    with pytest.raises(ShapeError):
        order_of_detail(detail(**broken), resolve)
