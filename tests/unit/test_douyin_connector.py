"""The Douyin connector against the mock platform (and a few hand-made servers) on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from connectors import registry
from connectors.base import (
    Connector,
    ConnectorError,
    InboundConnector,
    InboundRequest,
    MalformedPayload,
    Notification,
    OrderStatus,
    PushResult,
    RateLimited,
    Rejected,
    ReplayRejected,
    SignatureInvalid,
    StockUpdate,
    TransientError,
    WriteMode,
)
from connectors.douyin import api
from connectors.douyin.connector import DouyinConnector
from connectors.douyin.mapping import drain_idempotent_id, idempotent_id
from connectors.douyin.mock import DouyinMock
from connectors.douyin.mock_delivery import signed_headers
from connectors.douyin.mock_gateway import CHINA_STANDARD_TIME
from connectors.douyin.signing import sign_request
from connectors.mock_support import serve_app
from tests.contract.harness_douyin import DouyinHarness

CHANNEL = "douyin-room-1"
MakeMock = Callable[..., Awaitable[DouyinMock]]
Connect = Callable[..., Awaitable[DouyinConnector]]
Serve = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def make_mock() -> AsyncIterator[MakeMock]:
    """Mocks with ``lipstick`` and ``mascara`` (one product) and ``blush`` (another)."""
    mocks: list[DouyinMock] = []

    async def make(**kwargs: Any) -> DouyinMock:
        platform = DouyinMock(**kwargs)
        mocks.append(platform)
        await platform.start()
        platform.add_listing("lipstick", 0, product="palette")
        platform.add_listing("mascara", 0, product="palette")
        platform.add_listing("blush", 0)
        return platform

    yield make
    for platform in mocks:
        await platform.stop()


@pytest.fixture
async def mock(make_mock: MakeMock) -> DouyinMock:
    return await make_mock()


@pytest.fixture
async def connect(mock: DouyinMock) -> AsyncIterator[Connect]:
    made: list[DouyinConnector] = []

    async def make(
        platform: DouyinMock | None = None,
        *,
        listings: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        **options: str,
    ) -> DouyinConnector:
        platform = platform or mock
        connector = DouyinConnector.from_options(
            {**platform.connector_options(), **options},
            platform.listings() if listings is None else listings,
            clock=clock,
        )
        made.append(connector)
        await connector.start()
        return connector

    yield make
    for connector in made:
        await connector.close()


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner, url = await serve_app(app)
        runners.append(runner)
        return url

    yield start
    for runner in runners:
        await runner.cleanup()


def update(
    delta: int, *, sku: str = "lipstick", key: str | None = None, version: int = 1
) -> StockUpdate:
    return StockUpdate(
        channel=CHANNEL,
        sku=sku,
        quantity=max(0, delta),
        delta=delta,
        version=version,
        event_time_ms=1_700_000_000_000,
        idempotency_key=key or f"{CHANNEL}:{sku}:{version}",
    )


def one_route(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.Application:
    app = web.Application()
    app.router.add_post(api.path_of(api.SYNC_STOCK), handler)
    return app


# --- building -------------------------------------------------------------------------


async def test_the_registry_loads_it_and_it_is_both_kinds_of_connector(connect: Connect) -> None:
    assert registry.load("douyin") is DouyinConnector
    connector = await connect()
    assert isinstance(connector, Connector)
    assert isinstance(connector, InboundConnector)
    assert connector.platform == "douyin"
    assert connector.shop_id == "73521460"


async def test_options_and_listings_are_checked_at_build_time(mock: DouyinMock) -> None:
    options = mock.connector_options()
    with pytest.raises(ValueError, match="'access_token'"):
        DouyinConnector.from_options({k: v for k, v in options.items() if k != "access_token"})
    with pytest.raises(ValueError, match="'blush'"):
        DouyinConnector.from_options(options, {**mock.listings(), "blush": "3.5e18:1"})
    with pytest.raises(ValueError, match="write_modes"):
        DouyinConnector.from_options({**options, "write_modes": "compare_and_swap"})


async def test_delta_by_default_and_absolute_on_request(connect: Connect) -> None:
    assert (await connect()).write_modes == {WriteMode.DELTA}
    both = await connect(write_modes="delta,absolute")
    assert both.write_modes == {WriteMode.DELTA, WriteMode.ABSOLUTE}


# --- writes ---------------------------------------------------------------------------


async def test_delta_writes_change_the_counter(mock: DouyinMock, connect: Connect) -> None:
    connector = await connect()
    assert await connector.push_stock(update(5), WriteMode.DELTA) == PushResult(5, None)
    assert await connector.push_stock(update(-2, version=2), WriteMode.DELTA) == PushResult(
        -2, None
    )
    assert mock.displayed("lipstick") == 3
    assert mock.executed(idempotent_id(f"{CHANNEL}:lipstick:2")) == -2


async def test_a_zero_delta_sends_nothing(mock: DouyinMock, connect: Connect) -> None:
    connector = await connect()
    assert await connector.push_stock(update(0), WriteMode.DELTA) == PushResult(0, None)
    assert mock.stats.calls == {}


async def test_absolute_sets_a_fresh_read_plus_the_delta(
    mock: DouyinMock, connect: Connect
) -> None:
    connector = await connect(write_modes="delta,absolute")
    mock.set_displayed("lipstick", 10)
    assert mock.buy("lipstick", 3, buyer="b-1", region=None) is not None
    result = await connector.push_stock(update(-2), WriteMode.ABSOLUTE)
    assert result == PushResult(-2, 5)
    assert mock.displayed("lipstick") == 5
    # A retry of the same write resends the same count, without reading again.
    assert mock.buy("lipstick", 1, buyer="b-2", region=None) is not None
    assert await connector.push_stock(update(-2), WriteMode.ABSOLUTE) == result
    assert mock.displayed("lipstick") == 5
    assert mock.stats.calls[api.SKU_DETAIL] == 1


async def test_a_mode_not_declared_is_rejected(connect: Connect) -> None:
    connector = await connect()
    with pytest.raises(Rejected, match="absolute"):
        await connector.push_stock(update(1), WriteMode.ABSOLUTE)


async def test_a_retried_write_applies_once(mock: DouyinMock, connect: Connect) -> None:
    connector = await connect()
    mock.set_displayed("lipstick", 10)
    for write in (update(5), update(-4, version=2)):
        first = await connector.push_stock(write, WriteMode.DELTA)
        again = await connector.push_stock(write, WriteMode.DELTA)
        assert first == again == PushResult(write.delta, None)
    assert mock.displayed("lipstick") == 11
    assert mock.stats.writes_applied == 2
    assert mock.stats.writes_duplicate == 2


async def test_a_reduction_racing_a_sale_takes_only_what_is_left(
    mock: DouyinMock, connect: Connect
) -> None:
    connector = await connect()
    mock.set_displayed("lipstick", 8)
    assert mock.buy("lipstick", 6, buyer="b-1", region=None) is not None
    result = await connector.push_stock(update(-6), WriteMode.DELTA)
    assert result == PushResult(-2, None)
    assert mock.displayed("lipstick") == 0
    assert mock.stats.writes_refused_short == 1
    assert mock.executed(idempotent_id(f"{CHANNEL}:lipstick:1")) is None  # refused: not executed
    assert mock.executed(drain_idempotent_id(f"{CHANNEL}:lipstick:1")) == -2


async def test_a_retried_drain_never_drains_twice(mock: DouyinMock, connect: Connect) -> None:
    connector = await connect()
    mock.set_displayed("lipstick", 8)
    first_buyer = mock.buy("lipstick", 3, buyer="b-1", region=None)
    assert first_buyer is not None
    assert mock.buy("lipstick", 3, buyer="b-2", region=None) is not None
    assert await connector.push_stock(update(-6), WriteMode.DELTA) == PushResult(-2, None)
    mock.cancel(first_buyer)  # 3 units back on display before the retry
    # The retry cannot know how much the lost drain took: it reports the one unit it can
    # prove, and takes nothing more.
    assert await connector.push_stock(update(-6), WriteMode.DELTA) == PushResult(-1, None)
    assert mock.displayed("lipstick") == 3


async def test_a_reduction_with_nothing_left_applies_nothing(
    mock: DouyinMock, connect: Connect
) -> None:
    connector = await connect()
    assert await connector.push_stock(update(-3), WriteMode.DELTA) == PushResult(0, 0)
    assert mock.stats.writes_applied == 0


# --- failures -------------------------------------------------------------------------


async def test_throttling_is_rate_limited_with_the_configured_wait(
    mock: DouyinMock, connect: Connect
) -> None:
    default, patient = await connect(), await connect(throttle_wait_s="0.25")
    mock.throttle_next(2)
    with pytest.raises(RateLimited) as raised:
        await default.push_stock(update(1), WriteMode.DELTA)
    assert raised.value.retry_after == 1.0
    with pytest.raises(RateLimited) as raised:
        await patient.read_stock(CHANNEL, ["lipstick"])
    assert raised.value.retry_after == 0.25
    assert await default.push_stock(update(1), WriteMode.DELTA) == PushResult(1, None)
    assert mock.stats.throttled == 2


async def test_the_gateway_flow_control_shape_is_throttling_too(
    make_mock: MakeMock, connect: Connect
) -> None:
    platform = await make_mock(throttle_error=api.TRAFFIC_LIMITED)
    connector = await connect(platform)
    platform.throttle_next(1)
    with pytest.raises(RateLimited):
        await connector.push_stock(update(1), WriteMode.DELTA)


async def test_the_mock_rate_limit_throttles_in_band(make_mock: MakeMock, connect: Connect) -> None:
    platform = await make_mock(rate_limit_per_s=1)
    connector = await connect(platform)
    await connector.read_stock(CHANNEL, ["lipstick"])
    with pytest.raises(RateLimited, match="2010401"):
        await connector.read_stock(CHANNEL, ["lipstick"])
    assert platform.stats.throttled == 1


async def test_http_429_waits_as_told(serve: Serve, connect: Connect) -> None:
    async def too_many(request: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "7"})

    connector = await connect(base_url=await serve(one_route(too_many)))
    with pytest.raises(RateLimited) as raised:
        await connector.push_stock(update(1), WriteMode.DELTA)
    assert raised.value.retry_after == 7.0


async def test_server_failures_are_transient_and_the_retry_applies_once(
    mock: DouyinMock, connect: Connect
) -> None:
    connector = await connect()
    mock.fail_next(1)
    mock.fail_next(1, in_band=True)
    for _ in range(2):
        with pytest.raises(TransientError):
            await connector.push_stock(update(4), WriteMode.DELTA)
    assert await connector.push_stock(update(4), WriteMode.DELTA) == PushResult(4, None)
    assert mock.displayed("lipstick") == 4
    assert mock.stats.failed == 2


async def test_an_unreadable_body_is_transient(serve: Serve, connect: Connect) -> None:
    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>gateway</html>", content_type="text/html")

    connector = await connect(base_url=await serve(one_route(html)))
    with pytest.raises(TransientError, match="unreadable"):
        await connector.push_stock(update(1), WriteMode.DELTA)


async def test_a_timeout_is_transient(serve: Serve, connect: Connect) -> None:
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response()

    connector = await connect(base_url=await serve(one_route(hang)), timeout_s="0.05")
    try:
        with pytest.raises(TransientError, match="Timeout"):
            await connector.push_stock(update(1), WriteMode.DELTA)
    finally:
        never.set()  # lets the server's handler end, so its shutdown does not wait


async def test_a_refused_connection_is_transient_and_leaks_no_token(
    mock: DouyinMock, make_mock: MakeMock, connect: Connect
) -> None:
    gone = await make_mock()
    url = gone.url
    await gone.stop()
    connector = await connect(base_url=url)
    with pytest.raises(TransientError) as raised:
        await connector.push_stock(update(1), WriteMode.DELTA)
    assert mock.connector_options()["access_token"] not in str(raised.value)


async def test_a_sku_without_a_listing_is_rejected(connect: Connect) -> None:
    connector = await connect()
    with pytest.raises(Rejected, match="rouge"):
        await connector.push_stock(update(1, sku="rouge"), WriteMode.DELTA)


async def test_a_listing_unknown_to_the_platform_is_rejected(
    mock: DouyinMock, connect: Connect
) -> None:
    product = mock.listings()["lipstick"].split(":")[0]
    connector = await connect(listings={"lipstick": f"{product}:12345"})
    with pytest.raises(Rejected, match=r"isv\.parameter-invalid:5"):
        await connector.push_stock(update(1), WriteMode.DELTA)


@pytest.mark.parametrize(
    ("option", "value", "sub_code"),
    [
        ("app_secret", "wrong-secret-4f1d", "isv.signature-invalid"),
        ("access_token", "wrong-token-9a7c", "isv.access-token-no-existed"),
        ("app_key", "7000000000000000000", "isv.app-id-missing"),
    ],
)
async def test_bad_credentials_are_rejected_without_leaking_secrets(
    mock: DouyinMock, connect: Connect, option: str, value: str, sub_code: str
) -> None:
    connector = await connect(**{option: value})
    with pytest.raises(Rejected, match=sub_code) as raised:
        await connector.push_stock(update(1), WriteMode.DELTA)
    secrets = [value, *(mock.connector_options()[name] for name in ("app_secret", "access_token"))]
    for text in (str(raised.value), repr(raised.value), repr(connector)):
        assert not any(secret in text for secret in secrets)
    assert mock.displayed("lipstick") == 0


async def test_the_mock_counts_badly_signed_writes(mock: DouyinMock, connect: Connect) -> None:
    connector = await connect(app_secret="not-the-secret")
    with pytest.raises(Rejected):
        await connector.push_stock(update(1), WriteMode.DELTA)
    assert mock.stats.writes_rejected_signature == 1
    assert mock.stats.writes_applied == 0


@pytest.mark.parametrize(("skew_s", "accepted"), [(-700, False), (700, False), (-500, True)])
async def test_the_mock_enforces_the_timestamp_window(
    mock: DouyinMock, connect: Connect, skew_s: float, accepted: bool
) -> None:
    connector = await connect(clock=lambda: time.time() + skew_s)
    if accepted:
        await connector.push_stock(update(1), WriteMode.DELTA)
    else:
        with pytest.raises(Rejected, match=r"isv\.timestamp-invalid"):
            await connector.push_stock(update(1), WriteMode.DELTA)
    assert mock.stats.rejected_timestamp == (0 if accepted else 1)


async def test_md5_signed_calls_work(mock: DouyinMock, connect: Connect) -> None:
    connector = await connect(sign_method="md5")
    assert await connector.push_stock(update(2), WriteMode.DELTA) == PushResult(2, None)


# --- the mock's gateway, called by hand ---------------------------------------------------


async def raw_call(
    mock: DouyinMock, param_json: str, *, timestamp: str | None = None
) -> dict[str, Any]:
    options = mock.connector_options()
    stamp = timestamp or str(int(time.time()))
    query = {
        "app_key": options["app_key"],
        "method": api.SYNC_STOCK,
        "access_token": options["access_token"],
        "timestamp": stamp,
        "v": "2",
        "sign_method": "hmac-sha256",
        "sign": sign_request(
            options["app_key"], options["app_secret"], api.SYNC_STOCK, param_json, stamp
        ),
    }
    url = mock.url + api.path_of(api.SYNC_STOCK)
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, params=query, data=param_json.encode()) as response,
    ):
        assert response.status == 200
        answer: dict[str, Any] = json.loads(await response.read())
        return answer


def ids(mock: DouyinMock, sku: str = "lipstick") -> tuple[str, str]:
    product, sku_id = mock.listings()[sku].split(":")
    return product, sku_id


async def test_the_mock_refuses_param_json_that_is_not_canonical(mock: DouyinMock) -> None:
    product, sku_id = ids(mock)
    unsorted = f'{{"stock_num":1,"sku_id":{sku_id},"product_id":{product}}}'
    answer = await raw_call(mock, unsorted)
    assert (answer["code"], answer["sub_code"]) == (40003, "isv.signature-invalid")
    assert mock.displayed("lipstick") == 0


async def test_the_mock_refuses_ids_that_are_not_json_integers(mock: DouyinMock) -> None:
    product, sku_id = ids(mock)
    quoted = f'{{"product_id":"{product}","sku_id":{sku_id},"stock_num":1}}'
    answer = await raw_call(mock, quoted)
    assert (answer["code"], answer["sub_code"]) == (40004, "isv.parameter-invalid")
    # A float is not even the canonical text of a number: refused before its handler.
    rounded = f'{{"product_id":{float(product)},"sku_id":{sku_id},"stock_num":1}}'
    assert (await raw_call(mock, rounded))["code"] != api.SUCCESS
    assert mock.displayed("lipstick") == 0


async def test_the_mock_takes_the_guides_timestamp_format(mock: DouyinMock) -> None:
    product, sku_id = ids(mock)
    stamp = f"{datetime.now(CHINA_STANDARD_TIME):%Y-%m-%d %H:%M:%S}"
    params = f'{{"product_id":{product},"sku_id":{sku_id},"stock_num":3}}'
    answer = await raw_call(mock, params, timestamp=stamp)
    assert answer["code"] == api.SUCCESS
    assert mock.displayed("lipstick") == 3
    assert (await raw_call(mock, params, timestamp="yesterday"))["sub_code"] == (
        "isv.timestamp-format-error"
    )


# --- reads ----------------------------------------------------------------------------


async def test_read_stock_reads_each_product_once(mock: DouyinMock, connect: Connect) -> None:
    connector = await connect()
    for sku, count in (("lipstick", 4), ("mascara", 0), ("blush", 9)):
        mock.set_displayed(sku, count)
    counts = await connector.read_stock(CHANNEL, ["lipstick", "mascara", "blush", "rouge"])
    assert counts == {"lipstick": 4, "mascara": 0, "blush": 9}
    assert mock.stats.calls[api.SKU_LIST] == 2


# --- inbound --------------------------------------------------------------------------


async def delivered(connector: DouyinConnector, request: InboundRequest) -> list[Notification]:
    connector.verify(request, request.received_at_s)
    return connector.decode(request)


async def test_buy_pay_cancel_and_refund_deliveries_hydrate(
    mock: DouyinMock, connect: Connect
) -> None:
    connector = await connect()
    mock.set_displayed("lipstick", 5)
    mock.set_displayed("mascara", 5)
    now = time.time()
    order_id = mock.buy("lipstick", 2, buyer="buyer-1", region="浙江省")
    assert order_id is not None

    (created,) = await delivered(connector, mock.webhook(order_id, now))
    assert (created.order_id, created.shop_id) == (order_id, connector.shop_id)
    assert created.occurred_at_ms == int(now) * 1000
    order = await connector.hydrate(created)
    assert (order.order_id, order.status, order.buyer_id) == (
        order_id,
        OrderStatus.AWAITING_PAYMENT,
        "buyer-1",
    )
    assert order.region == "浙江省"
    (line,) = order.lines
    assert (line.sku, line.quantity, line.line_id) == ("lipstick", 2, order_id)

    mock.pay(order_id)
    (paid,) = await delivered(connector, mock.webhook(order_id, now + 1))
    assert paid.notification_id != created.notification_id
    assert (await connector.hydrate(paid)).status is OrderStatus.PAID

    mock.cancel(order_id)
    (cancelled,) = await delivered(connector, mock.webhook(order_id, now + 2))
    assert (await connector.hydrate(cancelled)).status is OrderStatus.CANCELLED
    assert mock.displayed("lipstick") == 5

    both = mock.buy_lines([("lipstick", 1), ("mascara", 2)], buyer="buyer-2", region=None)
    assert both is not None
    mock.pay(both)
    mock.refund(both)
    refunds = await delivered(connector, mock.webhook(both, now + 3))
    assert [n.order_id for n in refunds] == [both, both]
    assert len({n.notification_id for n in refunds}) == 2
    refunded = await connector.hydrate(refunds[0])
    assert refunded.status is OrderStatus.REFUNDED
    assert {(line.sku, line.quantity) for line in refunded.lines} == {
        ("lipstick", 1),
        ("mascara", 2),
    }
    assert refunded.region is None


async def test_order_lines_name_stockcast_skus(mock: DouyinMock, connect: Connect) -> None:
    listings = mock.listings()
    connector = await connect(listings={"LIP-001": listings["lipstick"]})
    mock.set_displayed("lipstick", 1)
    mock.set_displayed("mascara", 1)
    order_id = mock.buy_lines([("lipstick", 1), ("mascara", 1)], buyer="b", region=None)
    assert order_id is not None
    (notification,) = await delivered(connector, mock.webhook(order_id, time.time()))
    order = await connector.hydrate(notification)
    # By listing, else by the seller SKU code (the mock's code is the SKU itself).
    assert [line.sku for line in order.lines] == ["LIP-001", "mascara"]
    assert order.lines[0].platform_sku == listings["lipstick"]


async def test_forged_and_stale_deliveries_are_refused(mock: DouyinMock, connect: Connect) -> None:
    connector = await connect()
    mock.set_displayed("lipstick", 1)
    order_id = mock.buy("lipstick", 1, buyer="b", region=None)
    assert order_id is not None
    harness = DouyinHarness()
    now = time.time()
    request = mock.webhook(order_id, now)
    with pytest.raises(SignatureInvalid):
        connector.verify(harness.forged(request), now)
    with pytest.raises(ReplayRejected):
        connector.verify(request, harness.stale_time_s(now))
    app_key = mock.connector_options()["app_key"]
    other_secret = signed_headers(app_key, "another-app-secret", request.body)
    with pytest.raises(SignatureInvalid):
        connector.verify(InboundRequest(headers=other_secret, body=request.body), now)


def signed(mock: DouyinMock, body: bytes) -> InboundRequest:
    options = mock.connector_options()
    return InboundRequest(
        headers=signed_headers(options["app_key"], options["app_secret"], body), body=body
    )


async def test_decode_keeps_order_messages_only(mock: DouyinMock, connect: Connect) -> None:
    connector = await connect()
    body = json.dumps(
        [
            {"tag": "0", "msg_id": "probe", "data": "{}"},
            {
                "tag": "10000",
                "msg_id": "m1",
                "data": json.dumps({"product_id": 1, "update_time": 5}),
            },
            {"tag": "101", "msg_id": "m2", "data": {"p_id": 6920000000000000001, "pay_time": 5}},
        ]
    ).encode()
    (only,) = connector.decode(signed(mock, body))
    assert (only.notification_id, only.order_id, only.shop_id) == (
        "m2",
        "6920000000000000001",
        connector.shop_id,
    )
    with pytest.raises(MalformedPayload):
        connector.decode(signed(mock, b'{"tag":"100"}'))


async def test_hydrating_an_unknown_order_is_rejected(connect: Connect) -> None:
    connector = await connect()
    notification = Notification("m", "73521460", "6920000000000099999", 0)
    with pytest.raises(Rejected, match="20001"):
        await connector.hydrate(notification)


async def test_acknowledgements_are_the_documented_bodies(connect: Connect) -> None:
    connector = await connect()
    accepted, refused = connector.acknowledge(True), connector.acknowledge(False)
    assert (accepted.status, json.loads(accepted.body)) == (200, {"code": 0, "msg": "success"})
    assert json.loads(refused.body) == {"code": 1, "msg": "fail"}
    assert refused.status >= 500


async def test_deliveries_are_signed_and_retried_on_5xx(
    mock: DouyinMock, connect: Connect, serve: Serve
) -> None:
    connector = await connect()
    received: list[list[Notification]] = []
    attempts = 0

    async def ingress(request: web.Request) -> web.Response:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            return web.Response(status=500)
        delivery = InboundRequest(
            headers={name.lower(): value for name, value in request.headers.items()},
            body=await request.read(),
        )
        received.append(await delivered(connector, delivery))
        answer = connector.acknowledge(True)
        return web.Response(status=answer.status, body=answer.body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/webhooks/douyin", ingress)
    mock.deliver_to(await serve(app) + "/webhooks/douyin")
    mock.set_displayed("lipstick", 1)
    order_id = mock.buy("lipstick", 1, buyer="b", region="广东省")
    assert order_id is not None
    await mock.settle_deliveries()
    assert [[n.order_id for n in notes] for notes in received] == [[order_id]]
    assert (mock.stats.deliveries.attempts, mock.stats.deliveries.retries) == (3, 2)
    assert mock.stats.deliveries.acknowledged == 1


async def test_stop_cancels_pending_deliveries(make_mock: MakeMock, serve: Serve) -> None:
    platform = await make_mock()
    first_try = asyncio.Event()

    async def failing(request: web.Request) -> web.Response:
        first_try.set()
        return web.Response(status=503)

    app = web.Application()
    app.router.add_post("/hook", failing)
    platform.deliver_to(await serve(app) + "/hook")
    platform.set_displayed("blush", 1)
    assert platform.buy("blush", 1, buyer="b", region=None) is not None
    await first_try.wait()
    await platform.stop()
    sent = platform.stats.deliveries.attempts
    await asyncio.sleep(0.1)  # longer than the next back-off step
    assert platform.stats.deliveries.attempts == sent
    assert platform.stats.deliveries.acknowledged == platform.stats.deliveries.abandoned == 0


async def test_delivering_can_be_switched_off(mock: DouyinMock, serve: Serve) -> None:
    posts = 0

    async def ingress(request: web.Request) -> web.Response:
        nonlocal posts
        posts += 1
        return web.json_response({"code": 0, "msg": "success"})

    app = web.Application()
    app.router.add_post("/hook", ingress)
    mock.deliver_to(await serve(app) + "/hook")
    mock.set_displayed("blush", 2)
    assert mock.buy("blush", 1, buyer="b", region=None) is not None
    mock.deliver_to(None)
    assert mock.buy("blush", 1, buyer="b", region=None) is not None
    await mock.settle_deliveries()
    assert posts == mock.stats.deliveries.acknowledged == 1


async def test_hmac_signed_pushes_verify(make_mock: MakeMock, connect: Connect) -> None:
    platform = await make_mock(webhook_sign_method="hmac-sha256")
    connector = await connect(platform)
    platform.set_displayed("blush", 1)
    order_id = platform.buy("blush", 1, buyer="b", region=None)
    assert order_id is not None
    request = platform.webhook(order_id, time.time())
    assert request.headers["sign-method"] == "hmac-sha256"
    assert [n.order_id for n in await delivered(connector, request)] == [order_id]


async def test_close_is_idempotent_and_ends_writing(connect: Connect) -> None:
    connector = await connect()
    await connector.close()
    await connector.close()
    with pytest.raises(Rejected, match="not started"):
        await connector.push_stock(update(1), WriteMode.DELTA)


async def test_only_connector_errors_leave(mock: DouyinMock, connect: Connect) -> None:
    connector = await connect()
    mock.fail_next(3)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: connector.push_stock(update(1), WriteMode.DELTA),
        lambda: connector.read_stock(CHANNEL, ["lipstick"]),
        lambda: connector.hydrate(Notification("m", "1", "6920000000000000001", 0)),
    ]
    for call in calls:
        with pytest.raises(ConnectorError):
            await call()


async def test_the_contract_harness_drives_the_mock() -> None:
    harness = DouyinHarness()
    await harness.start()
    try:
        connector = await harness.connector()
        assert isinstance(connector, DouyinConnector)
        sku = harness.listed_skus[0]
        await connector.push_stock(update(3, sku=sku), WriteMode.DELTA)
        assert harness.displayed(sku) == 3
        order_id = harness.buy(sku, 2, buyer="b", region=None)
        assert order_id is not None
        harness.pay(order_id)
        harness.cancel(order_id)
        assert harness.displayed(sku) == 3
        now = time.time()
        request = harness.webhook(order_id, now_s=now)
        connector.verify(request, now)
        (notification,) = connector.decode(request)
        assert (await connector.hydrate(notification)).status is OrderStatus.CANCELLED
        assert connector.acknowledge(True).body == harness.ack_accepted()
        harness.throttle_next(1)
        with pytest.raises(RateLimited):
            await connector.read_stock(harness.channel, [sku])
        harness.fail_next(1)
        with pytest.raises(TransientError):
            await connector.read_stock(harness.channel, [sku])
        with pytest.raises(Rejected):
            await connector.push_stock(update(1, sku=harness.unlisted_sku), WriteMode.DELTA)
    finally:
        await harness.close()
