"""The Shopify connector against the mock shop, both over real local HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest
from aiohttp import web

from connectors import registry
from connectors.base import (
    Connector,
    ConnectorError,
    InboundConnector,
    InboundRequest,
    MalformedPayload,
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
from connectors.mock_support import serve_app
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.mock import ShopifyMock
from connectors.shopify.signing import format_triggered_at, webhook_signature

NOW_S = 1_700_000_000.0
ACCESS_TOKEN = "shpat_SECRET_token_4f1e"
CLIENT_SECRET = "shpss_SECRET_client_9a0b"
CHANNEL = "shopify-live-1"
CAS = WriteMode.COMPARE_AND_SWAP


class Clock:
    """Time that moves only when a test moves it."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


Connect = Callable[..., Awaitable[ShopifyConnector]]
Serve = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
def wall() -> Clock:
    return Clock(NOW_S)


@pytest.fixture
def ticks() -> Clock:
    """The mock's monotonic clock: its cost bucket refills only when a test says so."""
    return Clock(100.0)


@pytest.fixture
async def mock(wall: Clock, ticks: Clock) -> AsyncIterator[ShopifyMock]:
    platform = ShopifyMock(
        access_token=ACCESS_TOKEN,
        client_secret=CLIENT_SECRET,
        clock=wall,
        monotonic=ticks,
        delivery_base_delay_s=0.001,
    )
    await platform.start()
    platform.add_listing("lipstick", 10)
    platform.add_listing("mascara", 3)
    yield platform
    await platform.stop()


@pytest.fixture
async def connect(mock: ShopifyMock) -> AsyncIterator[Connect]:
    """``connect(listings=..., **option_overrides)``: built as stockcast.toml would,
    started, closed after the test."""
    made: list[ShopifyConnector] = []

    async def make(listings: dict[str, str] | None = None, **overrides: str) -> ShopifyConnector:
        options = {**mock.connector_options(), **overrides}
        connector = ShopifyConnector.from_options(
            options, mock.listings() if listings is None else listings
        )
        await connector.start()
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.close()


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Serves a hand-written app on 127.0.0.1; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner, url = await serve_app(app)
        runners.append(runner)
        return url

    yield start
    for runner in runners:
        await runner.cleanup()


def update(sku: str, delta: int, key: str = "k-1", quantity: int = 0) -> StockUpdate:
    return StockUpdate(
        channel=CHANNEL,
        sku=sku,
        quantity=quantity,
        delta=delta,
        version=1,
        event_time_ms=0,
        idempotency_key=key,
    )


def assert_no_secret(error: BaseException) -> None:
    for text in (str(error), repr(error)):
        assert ACCESS_TOKEN not in text
        assert CLIENT_SECRET not in text
        assert "SECRET" not in text


# --- construction ------------------------------------------------------------------------


def test_the_registry_loads_the_connector() -> None:
    assert registry.load("shopify") is ShopifyConnector


async def test_it_is_both_an_outbound_and_an_inbound_connector(connect: Connect) -> None:
    connector = await connect()

    assert isinstance(connector, Connector)
    assert isinstance(connector, InboundConnector)
    assert connector.platform == "shopify"
    assert connector.write_modes == frozenset({CAS})
    assert connector.shop_id == "stockcast-demo.myshopify.com"


@pytest.mark.parametrize("option", ["base_url", "access_token", "client_secret", "shop_id"])
def test_a_missing_required_option_is_named(mock: ShopifyMock, option: str) -> None:
    options = {**mock.connector_options()}
    del options[option]

    with pytest.raises(ValueError, match=option):
        ShopifyConnector.from_options(options, mock.listings())


@pytest.mark.parametrize(
    "reference", ["", "abc", "12@", "12@x", "gid://shopify/InventoryItem/12", "12:34", "-5"]
)
def test_a_malformed_listing_names_its_sku(mock: ShopifyMock, reference: str) -> None:
    with pytest.raises(ValueError, match="'lipstick'"):
        ShopifyConnector.from_options(mock.connector_options(), {"lipstick": reference})


def test_a_listing_needs_a_location_from_somewhere(mock: ShopifyMock) -> None:
    options = {**mock.connector_options()}
    del options["location_id"]

    ShopifyConnector.from_options(options, {"lipstick": "12@34"})
    with pytest.raises(ValueError, match=r"'lipstick'.*location_id"):
        ShopifyConnector.from_options(options, {"lipstick": "12"})


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("timeout_s", "soon"),
        ("timeout_s", "0"),
        ("webhook_window_s", "-1"),
        ("cas_attempts", "0"),
        ("location_id", "main"),
        ("variants", "123"),
        ("variants", "abc=lipstick"),
    ],
)
def test_bad_optional_options_are_refused(mock: ShopifyMock, option: str, value: str) -> None:
    with pytest.raises(ValueError, match=option):
        ShopifyConnector.from_options({**mock.connector_options(), option: value}, {})


def test_the_location_may_be_given_as_a_gid(mock: ShopifyMock) -> None:
    options = {**mock.connector_options(), "location_id": "gid://shopify/Location/77"}

    ShopifyConnector.from_options(options, {"lipstick": "12"})


async def test_the_repr_holds_no_secret(connect: Connect) -> None:
    connector = await connect()

    assert ACCESS_TOKEN not in repr(connector)
    assert CLIENT_SECRET not in repr(connector)


# --- compare-and-swap writes -------------------------------------------------------------


@pytest.mark.parametrize(("delta", "after"), [(5, 15), (-4, 6), (-10, 0)])
async def test_a_write_applies_its_delta(
    mock: ShopifyMock, connect: Connect, delta: int, after: int
) -> None:
    connector = await connect()

    result = await connector.push_stock(update("lipstick", delta), CAS)

    assert result == PushResult(applied=delta, displayed=after)
    assert mock.displayed("lipstick") == after
    assert mock.stats.writes_applied == 1


async def test_a_reduction_below_zero_applies_what_was_there(
    mock: ShopifyMock, connect: Connect
) -> None:
    connector = await connect()
    mock.set_displayed("lipstick", 2)

    result = await connector.push_stock(update("lipstick", -6), CAS)

    assert result == PushResult(applied=-2, displayed=0)
    assert mock.displayed("lipstick") == 0


async def test_a_write_that_changes_nothing_is_not_sent(
    mock: ShopifyMock, connect: Connect
) -> None:
    connector = await connect()
    mock.set_displayed("lipstick", 0)

    result = await connector.push_stock(update("lipstick", -3), CAS)

    assert result == PushResult(applied=0, displayed=0)
    assert mock.stats.writes_applied == 0


async def test_a_retry_of_a_landed_write_applies_once(mock: ShopifyMock, connect: Connect) -> None:
    connector = await connect()
    first = await connector.push_stock(update("lipstick", -4), CAS)

    again = await connector.push_stock(update("lipstick", -4), CAS)

    assert again == first == PushResult(applied=-4, displayed=6)
    assert mock.displayed("lipstick") == 6
    assert (mock.stats.writes_applied, mock.stats.writes_replayed) == (1, 1)


async def test_a_retry_after_a_lost_answer_applies_once(
    mock: ShopifyMock, connect: Connect
) -> None:
    connector = await connect()
    mock.lose_next_write_answers(1)

    with pytest.raises(TransientError):
        await connector.push_stock(update("lipstick", -4), CAS)
    assert mock.displayed("lipstick") == 6  # it landed; only the answer was lost
    mock.buy("lipstick", 2, buyer="alice", region="US")  # and the count moved on since

    result = await connector.push_stock(update("lipstick", -4), CAS)

    assert result.applied == -4
    assert mock.displayed("lipstick") == 4
    assert mock.stats.writes_applied == 1


async def test_a_landed_write_whose_key_expired_is_recognised(
    mock: ShopifyMock, connect: Connect
) -> None:
    connector = await connect()
    mock.lose_next_write_answers(1)
    with pytest.raises(TransientError):
        await connector.push_stock(update("lipstick", 5), CAS)
    mock.forget_idempotency_keys()

    result = await connector.push_stock(update("lipstick", 5), CAS)

    assert result == PushResult(applied=5, displayed=15)
    assert mock.displayed("lipstick") == 15


async def test_a_new_update_is_a_new_write(mock: ShopifyMock, connect: Connect) -> None:
    connector = await connect()

    await connector.push_stock(update("lipstick", -1, key="k-1"), CAS)
    await connector.push_stock(update("lipstick", -1, key="k-2"), CAS)

    assert mock.displayed("lipstick") == 8


async def test_a_reduction_racing_a_sale_keeps_the_sale(
    mock: ShopifyMock, connect: Connect
) -> None:
    connector = await connect()
    mock.before_next_write(lambda: mock.buy("lipstick", 3, buyer="alice", region="US"))

    result = await connector.push_stock(update("lipstick", -6), CAS)

    assert result == PushResult(applied=-6, displayed=1)
    assert mock.displayed("lipstick") == 1
    assert (mock.stats.writes_stale, mock.stats.writes_applied) == (1, 1)


async def test_a_sale_that_leaves_less_than_the_reduction_clamps_it(
    mock: ShopifyMock, connect: Connect
) -> None:
    connector = await connect()
    mock.before_next_write(lambda: mock.buy("lipstick", 8, buyer="alice", region="US"))

    result = await connector.push_stock(update("lipstick", -6), CAS)

    assert result == PushResult(applied=-2, displayed=0)


async def test_a_count_that_keeps_changing_gives_up_as_transient(
    mock: ShopifyMock, connect: Connect
) -> None:
    connector = await connect(cas_attempts="2")

    def sell_one() -> None:
        mock.buy("lipstick", 1, buyer="bob", region=None)
        mock.before_next_write(sell_one)

    mock.before_next_write(sell_one)

    with pytest.raises(TransientError, match="kept changing"):
        await connector.push_stock(update("lipstick", -1), CAS)
    assert mock.stats.writes_stale == 2


async def test_only_compare_and_swap_is_offered(connect: Connect) -> None:
    connector = await connect()

    for mode in (WriteMode.DELTA, WriteMode.ABSOLUTE):
        with pytest.raises(Rejected):
            await connector.push_stock(update("lipstick", 1), mode)


# --- failures ----------------------------------------------------------------------------


async def test_a_forced_throttle_is_rate_limited_with_the_platforms_hint(
    mock: ShopifyMock, connect: Connect
) -> None:
    connector = await connect()
    mock.throttle_next(1)

    with pytest.raises(RateLimited) as caught:
        await connector.read_stock(CHANNEL, ["lipstick"])

    # A one-item read costs 3 points; the throttled answer shows an empty bucket at 100/s.
    assert caught.value.retry_after == pytest.approx(0.03)
    assert await connector.read_stock(CHANNEL, ["lipstick"]) == {"lipstick": 10}


async def test_the_cost_bucket_throttles_and_refills(
    connect: Connect, wall: Clock, ticks: Clock
) -> None:
    # One write a second: 10 points refilled a second, a 10-point bucket.
    platform = ShopifyMock(
        access_token=ACCESS_TOKEN, rate_limit_per_s=1, clock=wall, monotonic=ticks
    )
    await platform.start()
    try:
        platform.add_listing("lipstick", 10)
        connector = ShopifyConnector.from_options(platform.connector_options(), platform.listings())
        await connector.start()
        # The read costs 3 of the 10 points; the 10-point set then waits for 3 more.
        with pytest.raises(RateLimited) as caught:
            await connector.push_stock(update("lipstick", -1), CAS)
        assert caught.value.retry_after == pytest.approx(0.3)
        assert platform.displayed("lipstick") == 10

        ticks.now_s += caught.value.retry_after + 0.001  # waiting as told is enough
        result = await connector.push_stock(update("lipstick", -1), CAS)

        assert result == PushResult(applied=-1, displayed=9)
        await connector.close()
    finally:
        await platform.stop()


async def test_a_server_error_is_transient(mock: ShopifyMock, connect: Connect) -> None:
    connector = await connect()
    mock.fail_next(1)

    with pytest.raises(TransientError, match="503"):
        await connector.push_stock(update("lipstick", 1), CAS)
    assert await connector.push_stock(update("lipstick", 1), CAS) == PushResult(1, 11)


async def test_a_bad_token_is_rejected_without_leaking_it(
    mock: ShopifyMock, connect: Connect
) -> None:
    connector = await connect(access_token="shpat_SECRET_wrong_token")

    with pytest.raises(Rejected, match="401") as caught:
        await connector.push_stock(update("lipstick", 1), CAS)

    assert_no_secret(caught.value)
    assert "shpat_SECRET_wrong_token" not in str(caught.value)
    assert mock.stats.rejected_auth == 1


async def test_a_sku_without_a_listing_is_rejected(connect: Connect) -> None:
    connector = await connect()

    with pytest.raises(Rejected, match="blush"):
        await connector.push_stock(update("blush", 1), CAS)


async def test_an_inventory_item_the_shop_does_not_know_is_rejected(
    mock: ShopifyMock, connect: Connect
) -> None:
    connector = await connect(listings={"lipstick": "99999"})

    with pytest.raises(Rejected, match="99999"):
        await connector.push_stock(update("lipstick", 1), CAS)


async def test_an_item_not_stocked_at_the_location_is_rejected(
    mock: ShopifyMock, connect: Connect
) -> None:
    item_id = mock.listings()["lipstick"].split("@")[0]
    connector = await connect(listings={"lipstick": f"{item_id}@424242"})

    with pytest.raises(Rejected, match="not stocked"):
        await connector.push_stock(update("lipstick", 1), CAS)


def graphql_stub(set_answer: dict[str, object]) -> web.Application:
    """A shop that shows 10 of anything and answers every set with ``set_answer``."""

    async def answer(request: web.Request) -> web.Response:
        document = await request.json()
        if document["query"].lstrip().startswith("mutation"):
            return web.json_response({"data": {"inventorySetQuantities": set_answer}})
        nodes = [
            {"id": gid, "inventoryLevel": {"quantities": [{"name": "available", "quantity": 10}]}}
            for gid in document["variables"]["ids"]
        ]
        return web.json_response({"data": {"nodes": nodes}})

    app = web.Application()
    app.router.add_post("/admin/api/2026-04/graphql.json", answer)
    return app


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("INVALID_LOCATION", Rejected),
        ("INVALID_INVENTORY_ITEM", Rejected),
        ("IDEMPOTENCY_KEY_PARAMETER_MISMATCH", Rejected),
        ("IDEMPOTENCY_CONCURRENT_REQUEST", TransientError),
    ],
)
async def test_user_errors_are_mapped(
    connect: Connect, serve: Serve, code: str, error: type[ConnectorError]
) -> None:
    stub = graphql_stub(
        {"inventoryAdjustmentGroup": None, "userErrors": [{"code": code, "message": "no"}]}
    )
    connector = await connect(base_url=await serve(stub))

    with pytest.raises(error, match=code):
        await connector.push_stock(update("lipstick", 1), CAS)


async def test_a_set_answer_without_the_count_after_trusts_the_target(
    connect: Connect, serve: Serve
) -> None:
    stub = graphql_stub({"inventoryAdjustmentGroup": None, "userErrors": []})
    connector = await connect(base_url=await serve(stub))

    assert await connector.push_stock(update("lipstick", 4), CAS) == PushResult(4, 14)


async def test_an_unreadable_answer_is_transient(connect: Connect, serve: Serve) -> None:
    async def garbled(request: web.Request) -> web.Response:
        return web.Response(body=b"<html>oops</html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", garbled)
    connector = await connect(base_url=await serve(app))

    with pytest.raises(TransientError, match="unreadable"):
        await connector.read_stock(CHANNEL, ["lipstick"])


async def test_a_timeout_is_transient(connect: Connect, serve: Serve) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", slow)
    connector = await connect(base_url=await serve(app), timeout_s="0.05")

    with pytest.raises(TransientError):
        await connector.push_stock(update("lipstick", 1), CAS)


async def test_an_unreachable_shop_is_transient(connect: Connect, serve: Serve) -> None:
    url = await serve(web.Application())
    connector = await connect(base_url=url.rsplit(":", 1)[0] + ":1")

    with pytest.raises(TransientError) as caught:
        await connector.read_stock(CHANNEL, ["lipstick"])
    assert_no_secret(caught.value)


async def test_a_closed_connector_raises_a_connector_error(connect: Connect) -> None:
    connector = await connect()
    await connector.close()
    await connector.close()

    with pytest.raises(ConnectorError):
        await connector.push_stock(update("lipstick", 1), CAS)


# --- reads -------------------------------------------------------------------------------


async def test_read_stock_reads_listed_skus_in_one_call(
    mock: ShopifyMock, connect: Connect
) -> None:
    connector = await connect()
    calls = mock.stats.api_calls

    counts = await connector.read_stock(CHANNEL, ["lipstick", "mascara", "blush"])

    assert counts == {"lipstick": 10, "mascara": 3}
    assert mock.stats.api_calls == calls + 1


async def test_read_stock_batches_by_250(mock: ShopifyMock, connect: Connect) -> None:
    skus = [f"sku-{n}" for n in range(260)]
    for n, sku in enumerate(skus):
        mock.add_listing(sku, n)
    connector = await connect()
    calls = mock.stats.api_calls

    counts = await connector.read_stock(CHANNEL, skus)

    assert counts == {sku: n for n, sku in enumerate(skus)}
    assert mock.stats.api_calls == calls + 2


async def test_read_stock_leaves_out_items_the_shop_does_not_know(
    mock: ShopifyMock, connect: Connect
) -> None:
    listings = {**mock.listings(), "ghost": "99999"}
    connector = await connect(listings=listings)

    assert await connector.read_stock(CHANNEL, ["ghost", "mascara"]) == {"mascara": 3}


# --- webhooks ----------------------------------------------------------------------------


async def test_buy_pay_cancel_deliveries_verify_and_decode(
    mock: ShopifyMock, connect: Connect
) -> None:
    connector = await connect()
    order_id = mock.buy("lipstick", 2, buyer="alice", region="FR")
    assert order_id is not None
    seen = []
    for act in (None, mock.pay, mock.cancel):
        if act is not None:
            act(order_id)
        delivery = mock.webhook(order_id, NOW_S + 1)
        connector.verify(delivery, NOW_S + 2)
        [notification] = connector.decode(delivery)
        seen.append(await connector.hydrate(notification))
        assert notification.notification_id == delivery.headers["x-shopify-webhook-id"]
        assert notification.shop_id == mock.shop_id
        assert notification.order_id == order_id

    assert [order.status for order in seen] == [
        OrderStatus.AWAITING_PAYMENT,
        OrderStatus.PAID,
        OrderStatus.CANCELLED,
    ]
    order = seen[0]
    assert order.buyer_id == mock.customer_id("alice")
    assert order.region == "FR"
    [line] = order.lines
    assert (line.sku, line.quantity, line.platform_sku) == (
        "lipstick",
        2,
        mock.variant_id("lipstick"),
    )
    assert mock.displayed("lipstick") == 10  # the cancellation restocked
    assert mock.stats.orders_fetched == 0  # order webhooks carry the order


async def test_a_refund_is_hydrated_from_the_order(mock: ShopifyMock, connect: Connect) -> None:
    connector = await connect()
    order_id = mock.buy("mascara", 1, buyer="bob", region=None)
    assert order_id is not None
    mock.pay(order_id)
    mock.refund(order_id)
    delivery = mock.webhook(order_id, NOW_S)
    connector.verify(delivery, NOW_S)

    [notification] = connector.decode(delivery)
    order = await connector.hydrate(notification)

    assert notification.order is None
    assert (order.order_id, order.status, order.region) == (order_id, OrderStatus.REFUNDED, None)
    assert mock.stats.orders_fetched == 1


async def test_hydrating_an_unknown_order_is_rejected(connect: Connect) -> None:
    connector = await connect()
    notification = connector.decode(
        _signed("refunds/create", {"order_id": 424242, "created_at": "2024-01-01T00:00:00Z"})
    )[0]

    with pytest.raises(Rejected, match="404"):
        await connector.hydrate(notification)


async def test_a_throttled_order_read_waits_as_the_header_says(
    mock: ShopifyMock, connect: Connect
) -> None:
    connector = await connect()
    order_id = mock.buy("mascara", 1, buyer="bob", region=None)
    assert order_id is not None
    mock.refund(order_id)
    [notification] = connector.decode(mock.webhook(order_id, NOW_S))
    mock.throttle_next(1)

    with pytest.raises(RateLimited) as caught:
        await connector.hydrate(notification)

    assert caught.value.retry_after == 2.0
    mock.fail_next(1)
    with pytest.raises(TransientError):
        await connector.hydrate(notification)
    assert (await connector.hydrate(notification)).status is OrderStatus.REFUNDED


def _signed(topic: str, payload: object, *, triggered_at_s: float = NOW_S) -> InboundRequest:
    body = orjson.dumps(payload)
    return InboundRequest(
        headers={
            "x-shopify-topic": topic,
            "x-shopify-hmac-sha256": webhook_signature(CLIENT_SECRET, body),
            "x-shopify-shop-domain": "stockcast-demo.myshopify.com",
            "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            "x-shopify-triggered-at": format_triggered_at(triggered_at_s),
        },
        body=body,
    )


async def test_a_forged_body_is_refused(mock: ShopifyMock, connect: Connect) -> None:
    connector = await connect()
    order_id = mock.buy("lipstick", 1, buyer="alice", region="US")
    assert order_id is not None
    genuine = mock.webhook(order_id, NOW_S)
    forged = InboundRequest(
        headers=genuine.headers, body=genuine.body.replace(b'"quantity":1', b'"quantity":9')
    )

    with pytest.raises(SignatureInvalid) as caught:
        connector.verify(forged, NOW_S)
    assert_no_secret(caught.value)


@pytest.mark.parametrize("signature", [None, "", "bm9wZQ=="])
async def test_a_missing_or_wrong_signature_is_refused(
    connect: Connect, signature: str | None
) -> None:
    connector = await connect()
    delivery = _signed("orders/create", {})
    headers = {k: v for k, v in delivery.headers.items() if k != "x-shopify-hmac-sha256"}
    if signature is not None:
        headers["x-shopify-hmac-sha256"] = signature

    with pytest.raises(SignatureInvalid):
        connector.verify(InboundRequest(headers=headers, body=delivery.body), NOW_S)


async def test_a_delivery_signed_with_another_secret_is_refused(
    wall: Clock, ticks: Clock, connect: Connect
) -> None:
    other = ShopifyMock(client_secret="shpss_another", clock=wall, monotonic=ticks)
    other.add_listing("lipstick", 5)
    order_id = other.buy("lipstick", 1, buyer="eve", region=None)
    assert order_id is not None
    connector = await connect()

    with pytest.raises(SignatureInvalid):
        connector.verify(other.webhook(order_id, NOW_S), NOW_S)


@pytest.mark.parametrize(
    ("triggered_at_s", "now_s"),
    [
        pytest.param(NOW_S, NOW_S + 4.25 * 3600 + 1, id="older than Shopify's redeliveries"),
        pytest.param(NOW_S + 61, NOW_S, id="from the future"),
    ],
)
async def test_a_delivery_outside_the_window_is_a_replay(
    connect: Connect, triggered_at_s: float, now_s: float
) -> None:
    connector = await connect()
    delivery = _signed("orders/paid", {}, triggered_at_s=triggered_at_s)

    with pytest.raises(ReplayRejected):
        connector.verify(delivery, now_s)


async def test_the_window_is_an_option(connect: Connect) -> None:
    connector = await connect(webhook_window_s="3600")

    connector.verify(_signed("orders/paid", {}), NOW_S + 3000)
    with pytest.raises(ReplayRejected):
        connector.verify(_signed("orders/paid", {}), NOW_S + 3601)


@pytest.mark.parametrize("triggered_at", [None, "", "last tuesday"])
async def test_a_delivery_without_a_readable_trigger_time_is_refused(
    connect: Connect, triggered_at: str | None
) -> None:
    connector = await connect()
    delivery = _signed("orders/paid", {})
    headers = {k: v for k, v in delivery.headers.items() if k != "x-shopify-triggered-at"}
    if triggered_at is not None:
        headers["x-shopify-triggered-at"] = triggered_at

    with pytest.raises(ReplayRejected):
        connector.verify(InboundRequest(headers=headers, body=delivery.body), NOW_S)


async def test_other_topics_are_dropped(connect: Connect) -> None:
    connector = await connect()

    assert connector.decode(_signed("products/update", {"id": 1})) == []
    assert connector.decode(_signed("inventory_levels/update", {"available": 3})) == []


@pytest.mark.parametrize(
    ("topic", "body"),
    [
        ("orders/create", b"not json"),
        ("orders/create", b"[]"),
        ("orders/create", b'{"id": 1}'),
        ("orders/paid", b'{"id": "x", "line_items": []}'),
        ("refunds/create", b'{"id": 5}'),
    ],
)
async def test_a_malformed_order_is_refused(connect: Connect, topic: str, body: bytes) -> None:
    connector = await connect()
    delivery = _signed(topic, {})

    with pytest.raises(MalformedPayload):
        connector.decode(InboundRequest(headers=delivery.headers, body=body))


async def test_a_delivery_without_its_id_is_malformed(connect: Connect) -> None:
    connector = await connect()
    delivery = _signed("orders/create", {})
    headers = {k: v for k, v in delivery.headers.items() if k != "x-shopify-webhook-id"}

    with pytest.raises(MalformedPayload):
        connector.decode(InboundRequest(headers=headers, body=delivery.body))


async def test_the_variants_option_names_skus_the_seller_sku_does_not(
    mock: ShopifyMock, connect: Connect
) -> None:
    connector = await connect(variants=f"{mock.variant_id('mascara')}=mascara-classic")
    order_id = mock.buy("mascara", 1, buyer="bob", region="DE")
    assert order_id is not None

    [notification] = connector.decode(mock.webhook(order_id, NOW_S))

    assert notification.order is not None
    assert notification.order.lines[0].sku == "mascara-classic"


async def test_the_acknowledgement_is_a_bare_status(connect: Connect) -> None:
    connector = await connect()

    accepted = connector.acknowledge(True)
    refused = connector.acknowledge(False)

    assert (accepted.status, accepted.body) == (200, b"")
    assert refused.status >= 500


# --- deliveries --------------------------------------------------------------------------


async def test_deliveries_are_signed_and_retried_until_acknowledged(
    mock: ShopifyMock, connect: Connect, serve: Serve
) -> None:
    connector = await connect()
    received: list[InboundRequest] = []

    async def ingress(request: web.Request) -> web.Response:
        delivery = InboundRequest(
            headers={k.lower(): v for k, v in request.headers.items()}, body=await request.read()
        )
        received.append(delivery)
        connector.verify(delivery, NOW_S)
        return web.Response(status=503 if len(received) < 3 else 200)

    app = web.Application()
    app.router.add_post("/webhooks/shopify", ingress)
    mock.deliver_to(await serve(app) + "/webhooks/shopify")

    order_id = mock.buy("lipstick", 1, buyer="alice", region="US")
    await mock.drain_deliveries()

    assert len(received) == 3
    assert len({r.headers["x-shopify-webhook-id"] for r in received}) == 1
    assert {r.body for r in received} == {received[0].body}
    [notification] = connector.decode(received[-1])
    assert notification.order_id == order_id
    assert (mock.stats.deliveries.acknowledged, mock.stats.deliveries.attempts) == (1, 3)


async def test_a_delivery_is_given_up_after_eight_tries(mock: ShopifyMock, serve: Serve) -> None:
    tries = 0

    async def broken(request: web.Request) -> web.Response:
        nonlocal tries
        tries += 1
        return web.Response(status=500)

    app = web.Application()
    app.router.add_post("/hook", broken)
    mock.deliver_to(await serve(app) + "/hook")

    mock.buy("lipstick", 1, buyer="alice", region="US")
    await mock.drain_deliveries()

    assert tries == 8
    assert mock.stats.deliveries.abandoned == 1


async def test_stop_cancels_pending_deliveries(mock: ShopifyMock, serve: Serve) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500)

    app = web.Application()
    app.router.add_post("/hook", broken)
    mock.deliver_to(await serve(app) + "/hook")
    mock.buy("lipstick", 1, buyer="alice", region="US")
    await asyncio.sleep(0)

    await mock.stop()

    assert mock.stats.deliveries.acknowledged == 0
