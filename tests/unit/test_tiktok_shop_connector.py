"""The TikTok Shop connector against the mock platform, both over real local HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, web

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
from connectors.tiktok_shop import api
from connectors.tiktok_shop.connector import TikTokShopConnector
from connectors.tiktok_shop.mock import TikTokShopMock
from connectors.tiktok_shop.signing import signed_query, webhook_signature

NOW_S = 1_700_000_000.0
APP_SECRET = "s3cret-app-secret-7f1e"
ACCESS_TOKEN = "ROW_s3cret-access-token-9a0b"
CHANNEL = "tiktok-room-1"


class Clock:
    """Wall time that moves only when a test moves it; shared by mock and connector."""

    def __init__(self, now_s: float = NOW_S) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


Connect = Callable[..., Awaitable[TikTokShopConnector]]
Serve = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def mock(clock: Clock) -> AsyncIterator[TikTokShopMock]:
    platform = TikTokShopMock(app_secret=APP_SECRET, access_token=ACCESS_TOKEN, clock=clock)
    await platform.start()
    platform.add_listing("lipstick", 10)
    platform.add_listing("mascara", 3)
    yield platform
    await platform.stop()


@pytest.fixture
async def connect(mock: TikTokShopMock, clock: Clock) -> AsyncIterator[Connect]:
    """``connect(**option_overrides, listings=..., clock=...)``: built like stockcast.toml
    would, started, closed after the test."""
    made: list[TikTokShopConnector] = []

    async def make(
        listings: dict[str, str] | None = None,
        connector_clock: Callable[[], float] | None = None,
        **overrides: str,
    ) -> TikTokShopConnector:
        options = {**mock.connector_options(), **overrides}
        connector = TikTokShopConnector.from_options(
            options,
            mock.listings() if listings is None else listings,
            clock=connector_clock or clock,
        )
        await connector.start()
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.close()


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Serve a hand-written app (a broken platform, a webhook receiver) on 127.0.0.1."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def update(
    delta: int = -6, quantity: int = 4, sku: str = "lipstick", key: str = "k1"
) -> StockUpdate:
    """By default: the room shows 10 and its quota goes down to 4."""
    return StockUpdate(
        channel=CHANNEL,
        sku=sku,
        quantity=quantity,
        delta=delta,
        version=1,
        event_time_ms=int(NOW_S * 1000),
        idempotency_key=f"{CHANNEL}:{sku}:{key}",
    )


def assert_no_secrets(error: BaseException) -> None:
    for text in (str(error), repr(error), *map(str, error.args)):
        assert APP_SECRET not in text
        assert ACCESS_TOKEN not in text
        assert "sign=" not in text


# --- the plugin ---------------------------------------------------------------------------


async def test_the_registry_loads_the_connector_which_is_both_kinds(connect: Connect) -> None:
    assert registry.load("tiktok_shop") is TikTokShopConnector
    connector = await connect()

    assert isinstance(connector, Connector)
    assert isinstance(connector, InboundConnector)
    assert connector.platform == "tiktok_shop"
    assert connector.write_modes == frozenset({WriteMode.ABSOLUTE})
    assert connector.shop_id == "7495000000000000001"


@pytest.mark.parametrize(
    "missing", ["base_url", "app_key", "app_secret", "access_token", "shop_cipher", "shop_id"]
)
def test_a_missing_option_is_named(mock: TikTokShopMock, missing: str) -> None:
    options = {k: v for k, v in mock.connector_options().items() if k != missing}

    with pytest.raises(ValueError, match=missing):
        TikTokShopConnector.from_options(options, {})


@pytest.mark.parametrize("listing", ["123", "123:", ":456", "1:2:3", "1:2@", ""])
def test_a_malformed_listing_names_its_sku(mock: TikTokShopMock, listing: str) -> None:
    with pytest.raises(ValueError, match="'lipstick'"):
        TikTokShopConnector.from_options(mock.connector_options(), {"lipstick": listing})


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("timeout_s", "soon"),
        ("timeout_s", "0"),
        ("webhook_window_s", "0"),
        ("webhook_window_s", "inf"),
        ("webhook_window_s", "later"),
    ],
)
def test_a_bad_number_option_is_refused(mock: TikTokShopMock, option: str, value: str) -> None:
    with pytest.raises(ValueError, match=option):
        TikTokShopConnector.from_options({**mock.connector_options(), option: value}, {})


def test_two_skus_cannot_share_one_platform_sku(mock: TikTokShopMock) -> None:
    with pytest.raises(ValueError, match="share"):
        TikTokShopConnector.from_options(mock.connector_options(), {"a": "1:2", "b": "3:2@w"})


def test_a_listing_keeps_its_warehouse() -> None:
    assert api.ListingRef.parse("11:22@33") == api.ListingRef("11", "22", "33")
    assert str(api.ListingRef.parse(" 11 : 22 ")) == "11:22"


def test_the_connector_repr_shows_no_secret(mock: TikTokShopMock) -> None:
    connector = TikTokShopConnector.from_options(mock.connector_options(), mock.listings())

    assert APP_SECRET not in repr(connector)
    assert ACCESS_TOKEN not in repr(connector)
    assert APP_SECRET not in repr(connector._credentials)


# --- pushing stock --------------------------------------------------------------------------


async def test_a_push_sets_read_plus_delta(connect: Connect, mock: TikTokShopMock) -> None:
    connector = await connect()

    result = await connector.push_stock(update(delta=-6), WriteMode.ABSOLUTE)

    assert result == PushResult(applied=-6, displayed=4)
    assert mock.displayed("lipstick") == 4
    assert mock.stats.writes_applied == 1


async def test_a_retry_of_the_same_update_applies_once(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect()

    first = await connector.push_stock(update(delta=-6), WriteMode.ABSOLUTE)
    again = await connector.push_stock(update(delta=-6), WriteMode.ABSOLUTE)

    assert first == again == PushResult(applied=-6, displayed=4)
    assert mock.displayed("lipstick") == 4
    assert mock.stats.inventory_reads == 1  # the retry resent the target, it did not re-read


async def test_a_retry_after_a_lost_answer_resends_the_same_target(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect()
    mock.lose_next_write_answers(1)

    with pytest.raises(TransientError):
        await connector.push_stock(update(delta=-6), WriteMode.ABSOLUTE)
    assert mock.displayed("lipstick") == 4  # it landed all the same
    result = await connector.push_stock(update(delta=-6), WriteMode.ABSOLUTE)

    assert result == PushResult(applied=-6, displayed=4)
    assert mock.displayed("lipstick") == 4


async def test_a_retry_of_a_throttled_write_reads_afresh(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect()
    mock.throttle_next(1, endpoint=api.INVENTORY_UPDATE_ROUTE)

    with pytest.raises(RateLimited):
        await connector.push_stock(update(delta=-6), WriteMode.ABSOLUTE)
    mock.buy("lipstick", 1, buyer="b", region=None)  # sold during the back-off
    result = await connector.push_stock(update(delta=-6), WriteMode.ABSOLUTE)

    assert result == PushResult(applied=-6, displayed=3)  # the sale is kept
    assert mock.stats.inventory_reads == 2


async def test_only_the_latest_writes_are_remembered(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect(remembered_writes="2")
    for key in ("k1", "k2", "k3"):
        await connector.push_stock(update(delta=0, quantity=10, key=key), WriteMode.ABSOLUTE)
    assert mock.stats.inventory_reads == 3

    await connector.push_stock(update(delta=0, quantity=10, key="k3"), WriteMode.ABSOLUTE)
    assert mock.stats.inventory_reads == 3  # still remembered
    await connector.push_stock(update(delta=0, quantity=10, key="k1"), WriteMode.ABSOLUTE)
    assert mock.stats.inventory_reads == 4  # forgotten, so read again


async def test_a_new_update_reads_again(connect: Connect, mock: TikTokShopMock) -> None:
    connector = await connect()
    await connector.push_stock(update(delta=-6, key="k1"), WriteMode.ABSOLUTE)

    result = await connector.push_stock(update(delta=-1, quantity=3, key="k2"), WriteMode.ABSOLUTE)

    assert result == PushResult(applied=-1, displayed=3)
    assert mock.stats.inventory_reads == 2


async def test_a_reduction_racing_a_sale_applies_only_what_was_there(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect()
    assert mock.buy("lipstick", 8, buyer="b1", region="GB") is not None  # 2 left on display

    result = await connector.push_stock(update(delta=-6), WriteMode.ABSOLUTE)

    assert result == PushResult(applied=-2, displayed=0)
    assert mock.displayed("lipstick") == 0
    assert mock.committed("lipstick") == 8


async def test_an_increase_keeps_the_units_sold_meanwhile(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect()
    mock.buy("lipstick", 3, buyer="b1", region="GB")

    result = await connector.push_stock(update(delta=+5, quantity=15), WriteMode.ABSOLUTE)

    assert result == PushResult(applied=5, displayed=12)  # not 15: the sale is not undone


async def test_a_target_above_the_platform_maximum_is_clamped(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect()
    mock.set_displayed("lipstick", api.MAX_QUANTITY - 2)

    result = await connector.push_stock(update(delta=+10, quantity=0), WriteMode.ABSOLUTE)

    assert result == PushResult(applied=2, displayed=api.MAX_QUANTITY)


async def test_a_sku_in_another_warehouse_is_written_there(
    connect: Connect, mock: TikTokShopMock
) -> None:
    reference = mock.add_listing("blush", 7, warehouse_id="7300000000000000009")
    assert reference.endswith("@7300000000000000009")
    connector = await connect()

    result = await connector.push_stock(update(delta=-2, sku="blush"), WriteMode.ABSOLUTE)

    assert result == PushResult(applied=-2, displayed=5)
    assert mock.displayed("blush") == 5


# --- errors ---------------------------------------------------------------------------------


async def test_throttling_is_rate_limited_with_the_platforms_hint(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect()
    mock.throttle_next(1, retry_after_s=7)

    with pytest.raises(RateLimited) as caught:
        await connector.push_stock(update(), WriteMode.ABSOLUTE)

    assert caught.value.retry_after == 7.0
    assert str(api.TOO_MANY_REQUESTS) in str(caught.value)
    assert mock.displayed("lipstick") == 10
    assert mock.stats.throttled == 1


async def test_the_token_bucket_throttles_in_the_platforms_shape(clock: Clock) -> None:
    platform = TikTokShopMock(rate_limit_per_s=0.001, clock=clock)  # one call, then none
    await platform.start()
    platform.add_listing("lipstick", 10)
    order_id = platform.buy("lipstick", 1, buyer="b", region=None)
    assert order_id is not None
    connector = TikTokShopConnector.from_options(
        platform.connector_options(), platform.listings(), clock=clock
    )
    await connector.start()
    try:
        assert await connector.read_stock(CHANNEL, ["lipstick"]) == {"lipstick": 9}
        with pytest.raises(RateLimited) as caught:
            await connector.read_stock(CHANNEL, ["lipstick"])
        # Each endpoint has its own bucket: order detail still answers.
        (notification,) = connector.decode(platform.webhook(order_id, NOW_S))
        assert (await connector.hydrate(notification)).order_id == order_id
    finally:
        await connector.close()
        await platform.stop()

    assert caught.value.retry_after >= 900  # a token every 1000 s
    assert platform.stats.throttled == 1


async def test_a_server_error_is_transient_and_a_retry_succeeds(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect()
    mock.fail_next(1)

    with pytest.raises(TransientError, match=str(api.INTERNAL_ERROR)):
        await connector.push_stock(update(), WriteMode.ABSOLUTE)
    result = await connector.push_stock(update(), WriteMode.ABSOLUTE)

    assert result == PushResult(applied=-6, displayed=4)


async def test_an_unreachable_platform_is_transient(connect: Connect, mock: TikTokShopMock) -> None:
    connector = await connect()
    await mock.stop()

    with pytest.raises(TransientError) as caught:
        await connector.push_stock(update(), WriteMode.ABSOLUTE)

    assert_no_secrets(caught.value)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b"<html>gateway</html>"),
        (502, b"bad gateway"),
        (200, b'{"code":0,"data":{"inventory":7}}'),
    ],
)
async def test_an_unreadable_answer_is_transient(
    connect: Connect, serve: Serve, status: int, body: bytes
) -> None:
    async def garbled(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", garbled)
    connector = await connect(base_url=await serve(app))

    with pytest.raises(TransientError):
        await connector.push_stock(update(), WriteMode.ABSOLUTE)


async def test_a_slow_platform_times_out_as_transient(connect: Connect, serve: Serve) -> None:
    release = asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", stuck)
    connector = await connect(base_url=await serve(app), timeout_s="0.05")

    try:
        with pytest.raises(TransientError, match="TimeoutError"):
            await connector.read_stock(CHANNEL, ["lipstick"])
    finally:
        release.set()


async def test_a_sku_without_listing_is_rejected(connect: Connect) -> None:
    connector = await connect()

    with pytest.raises(Rejected, match="'blush' has no TikTok Shop listing"):
        await connector.push_stock(update(sku="blush"), WriteMode.ABSOLUTE)


async def test_a_listing_the_platform_does_not_know_is_rejected(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect({"lipstick": "1730000000000000999:1740000000000000999"})

    with pytest.raises(Rejected, match="does not know"):
        await connector.push_stock(update(), WriteMode.ABSOLUTE)


async def test_a_listing_under_the_wrong_product_is_rejected(
    connect: Connect, mock: TikTokShopMock
) -> None:
    sku_id = mock.listings()["lipstick"].split(":")[1]
    connector = await connect({"lipstick": f"1730000000000000999:{sku_id}"})

    with pytest.raises(Rejected, match=str(api.PRODUCT_NOT_FOUND)):
        await connector.push_stock(update(), WriteMode.ABSOLUTE)
    assert mock.displayed("lipstick") == 10


async def test_a_partial_failure_in_a_successful_answer_is_rejected(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect()
    mock.set_live("lipstick", False)

    with pytest.raises(Rejected, match=str(api.SKU_NOT_LIVE)):
        await connector.push_stock(update(), WriteMode.ABSOLUTE)
    assert mock.displayed("lipstick") == 10
    assert mock.stats.writes_failed == 1


async def test_a_missing_warehouse_is_a_partial_failure(
    connect: Connect, mock: TikTokShopMock
) -> None:
    reference = mock.add_listing("blush", 7, warehouse_id="7300000000000000009")
    connector = await connect({"blush": reference.split("@")[0]})

    with pytest.raises(Rejected, match=str(api.WAREHOUSE_REQUIRED)):
        await connector.push_stock(update(sku="blush"), WriteMode.ABSOLUTE)
    assert mock.displayed("blush") == 7


@pytest.mark.parametrize(
    ("option", "value", "code"),
    [
        ("app_secret", "not-the-secret", api.INVALID_SIGN),
        ("access_token", "ROW_stale-token", api.INVALID_REQUEST),
        ("app_key", "unknown-app", api.INVALID_REQUEST),
        ("shop_cipher", "ROW_other-shop", api.INVALID_IDENTIFIER),
    ],
)
async def test_bad_credentials_are_rejected_without_secrets(
    connect: Connect, mock: TikTokShopMock, option: str, value: str, code: int
) -> None:
    connector = await connect(**{option: value})

    with pytest.raises(Rejected, match=str(code)) as caught:
        await connector.push_stock(update(), WriteMode.ABSOLUTE)

    assert_no_secrets(caught.value)
    assert "not-the-secret" not in str(caught.value)
    assert mock.displayed("lipstick") == 10


async def test_a_push_after_close_is_rejected_and_close_is_idempotent(connect: Connect) -> None:
    connector = await connect()
    await connector.close()
    await connector.close()

    with pytest.raises(Rejected, match="not started"):
        await connector.push_stock(update(), WriteMode.ABSOLUTE)


async def test_an_unoffered_mode_is_rejected(connect: Connect) -> None:
    connector = await connect()

    with pytest.raises(Rejected, match="absolute"):
        await connector.push_stock(update(), WriteMode.DELTA)


# --- reading stock --------------------------------------------------------------------------


async def test_read_stock_batches_the_listed_skus(connect: Connect, mock: TikTokShopMock) -> None:
    mock.add_listing("blush", 7, warehouse_id="7300000000000000009")
    connector = await connect()
    mock.buy("mascara", 1, buyer="b1", region=None)

    counts = await connector.read_stock(CHANNEL, ["lipstick", "mascara", "blush", "unlisted"])

    assert counts == {"lipstick": 10, "mascara": 2, "blush": 7}
    assert mock.stats.inventory_reads == 1


async def test_read_stock_asks_for_at_most_600_skus_at_once(
    connect: Connect, mock: TikTokShopMock
) -> None:
    skus = [f"sku-{n}" for n in range(601)]
    for n, sku in enumerate(skus):
        mock.add_listing(sku, n % 7)
    connector = await connect()

    counts = await connector.read_stock(CHANNEL, skus)

    assert counts == {sku: n % 7 for n, sku in enumerate(skus)}
    assert mock.stats.inventory_reads == 2


async def test_read_stock_leaves_out_a_listing_the_platform_does_not_know(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect({**mock.listings(), "ghost": "1730000000000000999:17499"})

    assert await connector.read_stock(CHANNEL, ["lipstick", "ghost"]) == {"lipstick": 10}


async def test_read_stock_of_no_listed_sku_calls_nothing(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect()

    assert await connector.read_stock(CHANNEL, ["unlisted"]) == {}
    assert mock.stats.requests == 0


# --- the mock's gateway ---------------------------------------------------------------------


async def call_mock(
    mock: TikTokShopMock,
    path: str,
    body: dict[str, Any],
    *,
    timestamp: float,
    tamper: Callable[[dict[str, str]], None] = lambda query: None,
    content_type: str = "application/json",
) -> tuple[int, dict[str, Any]]:
    """One raw call, signed like the platform wants unless ``tamper`` spoils the query."""
    raw = orjson.dumps(body)
    options = mock.connector_options()
    query = signed_query(
        app_key=options["app_key"],
        app_secret=options["app_secret"],
        path=path,
        timestamp=int(timestamp),
        body=raw,
        shop_cipher=options["shop_cipher"],
    )
    tamper(query)
    headers = {"content-type": content_type, api.ACCESS_TOKEN_HEADER: options["access_token"]}
    async with (
        ClientSession() as session,
        session.post(mock.url + path, params=query, data=raw, headers=headers) as answer,
    ):
        return answer.status, orjson.loads(await answer.read())


async def test_the_mock_refuses_a_bad_signature(mock: TikTokShopMock) -> None:
    path = api.inventory_update_path(mock.listings()["lipstick"].split(":")[0])
    body = {"skus": [{"id": "x", "inventory": [{"quantity": 1}]}]}

    def forge(query: dict[str, str]) -> None:
        query["sign"] = "0" * 64

    status, answer = await call_mock(mock, path, body, timestamp=NOW_S, tamper=forge)

    assert answer["code"] == api.INVALID_SIGN
    assert status == 401
    assert mock.stats.writes_rejected_signature == 1
    assert mock.displayed("lipstick") == 10


async def test_the_mock_refuses_a_missing_signature(mock: TikTokShopMock) -> None:
    def drop(query: dict[str, str]) -> None:
        del query["sign"]

    _, answer = await call_mock(
        mock, api.INVENTORY_SEARCH_PATH, {"sku_ids": ["1"]}, timestamp=NOW_S, tamper=drop
    )

    assert answer["code"] == api.INVALID_REQUEST
    assert "Missing credentials" in answer["message"]


@pytest.mark.parametrize(
    ("offset_s", "accepted"),
    [(-301, False), (-300, True), (0, True), (30, True), (31, False)],
)
async def test_the_mock_applies_the_timestamp_window(
    mock: TikTokShopMock, offset_s: float, accepted: bool
) -> None:
    _, answer = await call_mock(
        mock, api.INVENTORY_SEARCH_PATH, {"sku_ids": ["1"]}, timestamp=NOW_S + offset_s
    )

    if accepted:
        assert answer["code"] == api.SUCCESS
    else:
        assert answer["code"] == api.INVALID_REQUEST
        assert "Invalid timestamp" in answer["message"]
        assert mock.stats.rejected_timestamp == 1


async def test_a_connector_with_a_stale_clock_is_rejected(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect(connector_clock=lambda: NOW_S - 600)

    with pytest.raises(Rejected, match="Invalid timestamp"):
        await connector.push_stock(update(), WriteMode.ABSOLUTE)


async def test_the_mock_refuses_a_body_that_is_not_json(mock: TikTokShopMock) -> None:
    _, answer = await call_mock(
        mock, api.INVENTORY_SEARCH_PATH, {}, timestamp=NOW_S, content_type="text/plain"
    )

    assert answer["code"] == api.INVALID_FORMAT


@pytest.mark.parametrize("quantity", [-1, api.MAX_QUANTITY + 1, "7", True])
async def test_the_mock_refuses_a_quantity_out_of_range(
    mock: TikTokShopMock, quantity: object
) -> None:
    product_id, sku_id = mock.listings()["lipstick"].split(":")
    body = {"skus": [{"id": sku_id, "inventory": [{"quantity": quantity}]}]}

    _, answer = await call_mock(mock, api.inventory_update_path(product_id), body, timestamp=NOW_S)

    assert answer["code"] == api.INVALID_PARAMETER
    assert mock.displayed("lipstick") == 10


async def test_the_mock_answers_an_unknown_path_in_its_envelope(mock: TikTokShopMock) -> None:
    _, answer = await call_mock(mock, "/product/202309/nothing", {}, timestamp=NOW_S)

    assert answer["code"] == api.INVALID_PATH


# --- webhooks and orders --------------------------------------------------------------------


async def test_a_purchase_arrives_verified_decoded_and_hydrated(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect()
    order_id = mock.buy("lipstick", 2, buyer="buyer-7", region="GB")
    assert order_id is not None
    request = mock.webhook(order_id, NOW_S)

    connector.verify(request, NOW_S + 5)
    (notification,) = connector.decode(request)
    order = await connector.hydrate(notification)

    assert notification.order_id == order_id
    assert notification.shop_id == mock.shop_id
    assert notification.occurred_at_ms == int(NOW_S) * 1000
    assert notification.order is None  # thin: the order must be fetched
    assert order.status is OrderStatus.AWAITING_PAYMENT
    assert order.platform_status == "UNPAID"
    assert order.buyer_id == "buyer-7"
    assert order.region is None  # the platform hides the address until payment
    assert [(line.sku, line.quantity) for line in order.lines] == [("lipstick", 1)] * 2
    assert len({line.line_id for line in order.lines}) == 2
    sku_id = mock.listings()["lipstick"].split(":")[1]
    assert {line.platform_sku for line in order.lines} == {sku_id}


async def test_a_payment_hydrates_as_paid_with_the_region(
    connect: Connect, mock: TikTokShopMock, clock: Clock
) -> None:
    connector = await connect()
    order_id = mock.buy("lipstick", 1, buyer="buyer-7", region="GB")
    assert order_id is not None
    clock.now_s += 60
    mock.pay(order_id)

    (notification,) = connector.decode(mock.webhook(order_id, clock.now_s))
    order = await connector.hydrate(notification)

    assert order.status is OrderStatus.PAID
    assert order.platform_status == "AWAITING_SHIPMENT"
    assert order.region == "GB"
    assert order.updated_at_ms == int(clock.now_s) * 1000
    assert notification.occurred_at_ms == int(clock.now_s) * 1000


async def test_a_cancellation_hydrates_as_cancelled_and_restocks(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect()
    order_id = mock.buy("lipstick", 3, buyer="b", region="GB")
    assert order_id is not None
    assert mock.displayed("lipstick") == 7
    mock.cancel(order_id)

    (notification,) = connector.decode(mock.webhook(order_id, NOW_S))
    order = await connector.hydrate(notification)

    assert order.status is OrderStatus.CANCELLED
    assert mock.displayed("lipstick") == 10


async def test_a_paid_order_cancelled_announces_the_cancellation_first(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect()
    order_id = mock.buy("lipstick", 1, buyer="b", region="GB")
    assert order_id is not None
    mock.pay(order_id)
    mock.cancel(order_id)

    deliveries = mock.webhooks(order_id, NOW_S)
    types = [orjson.loads(each.body)["type"] for each in deliveries]
    notes = [note for each in deliveries for note in connector.decode(each)]

    assert types == [1, 1, 11, 1]
    assert [note.order_id for note in notes] == [order_id] * 4
    assert len({note.notification_id for note in notes}) == 4
    assert (await connector.hydrate(notes[2])).status is OrderStatus.CANCELLED


async def test_a_refund_hydrates_as_refunded(connect: Connect, mock: TikTokShopMock) -> None:
    connector = await connect()
    order_id = mock.buy("lipstick", 2, buyer="b", region="GB")
    assert order_id is not None
    mock.pay(order_id)
    mock.ship(order_id)
    (shipped,) = connector.decode(mock.webhook(order_id, NOW_S))
    assert (await connector.hydrate(shipped)).status is OrderStatus.PAID
    mock.deliver(order_id)
    mock.refund(order_id)

    request = mock.webhook(order_id, NOW_S)
    connector.verify(request, NOW_S)
    (notification,) = connector.decode(request)
    order = await connector.hydrate(notification)

    assert orjson.loads(request.body)["type"] == api.RETURN_STATUS_CHANGE
    assert order.status is OrderStatus.REFUNDED
    assert order.platform_status == "DELIVERED"
    assert mock.displayed("lipstick") == 8  # the buyer kept the goods
    assert mock.stats.return_reads == 2


async def test_a_line_of_an_unlisted_sku_keeps_its_seller_sku(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect({"lipstick": mock.listings()["lipstick"]})
    order_id = mock.buy("mascara", 1, buyer="b", region=None)
    assert order_id is not None

    (notification,) = connector.decode(mock.webhook(order_id, NOW_S))
    order = await connector.hydrate(notification)

    assert [line.sku for line in order.lines] == ["mascara"]


async def test_hydrating_an_unknown_order_is_rejected(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect()
    notification = Notification("n1", mock.shop_id, "5770000000000000404", int(NOW_S * 1000))

    with pytest.raises(Rejected, match="does not know order"):
        await connector.hydrate(notification)


async def test_hydrating_another_shops_order_is_rejected(connect: Connect) -> None:
    connector = await connect()

    with pytest.raises(Rejected, match="shop"):
        await connector.hydrate(Notification("n1", "other-shop", "1", 0))


async def test_hydrate_errors_are_connector_errors(connect: Connect, mock: TikTokShopMock) -> None:
    connector = await connect()
    order_id = mock.buy("lipstick", 1, buyer="b", region=None)
    assert order_id is not None
    (notification,) = connector.decode(mock.webhook(order_id, NOW_S))
    mock.throttle_next(1, retry_after_s=3)

    with pytest.raises(RateLimited):
        await connector.hydrate(notification)
    mock.fail_next(1)
    with pytest.raises(TransientError):
        await connector.hydrate(notification)


def signed(mock: TikTokShopMock, envelope: object) -> InboundRequest:
    options = mock.connector_options()
    body = orjson.dumps(envelope)
    signature = webhook_signature(options["app_key"], options["app_secret"], body)
    return InboundRequest(headers={"authorization": signature}, body=body)


async def test_a_forged_body_is_refused(connect: Connect, mock: TikTokShopMock) -> None:
    connector = await connect()
    order_id = mock.buy("lipstick", 1, buyer="b", region=None)
    assert order_id is not None
    genuine = mock.webhook(order_id, NOW_S)
    forged = InboundRequest(genuine.headers, genuine.body.replace(b"UNPAID", b"CANCELLED"))

    with pytest.raises(SignatureInvalid):
        connector.verify(forged, NOW_S)
    with pytest.raises(SignatureInvalid):
        connector.verify(InboundRequest({}, genuine.body), NOW_S)


@pytest.mark.parametrize(
    ("now_offset_s", "fresh"),
    [(72 * 3600, True), (72 * 3600 + 1, False), (-30, True), (-31, False)],
)
async def test_the_delivery_window_is_72_hours_back_thirty_seconds_ahead(
    connect: Connect, mock: TikTokShopMock, now_offset_s: float, fresh: bool
) -> None:
    """A redelivery keeps its original timestamp, and the platform redelivers for 72 h."""
    connector = await connect()
    order_id = mock.buy("lipstick", 1, buyer="b", region=None)
    assert order_id is not None
    request = mock.webhook(order_id, NOW_S)

    if fresh:
        connector.verify(request, NOW_S + now_offset_s)
    else:
        with pytest.raises(ReplayRejected):
            connector.verify(request, NOW_S + now_offset_s)


@pytest.mark.parametrize(("now_offset_s", "fresh"), [(600, True), (601, False)])
async def test_the_delivery_window_is_an_option(
    connect: Connect, mock: TikTokShopMock, now_offset_s: float, fresh: bool
) -> None:
    connector = await connect(webhook_window_s="600")
    order_id = mock.buy("lipstick", 1, buyer="b", region=None)
    assert order_id is not None
    request = mock.webhook(order_id, NOW_S)

    if fresh:
        connector.verify(request, NOW_S + now_offset_s)
    else:
        with pytest.raises(ReplayRejected):
            connector.verify(request, NOW_S + now_offset_s)


async def test_a_signed_delivery_without_timestamp_is_not_fresh(
    connect: Connect, mock: TikTokShopMock
) -> None:
    connector = await connect()

    with pytest.raises(ReplayRejected):
        connector.verify(signed(mock, {"type": 1, "data": {}}), NOW_S)


async def test_other_event_types_decode_to_nothing(connect: Connect, mock: TikTokShopMock) -> None:
    connector = await connect()
    product_change = {
        "type": 5,
        "tts_notification_id": "n5",
        "shop_id": mock.shop_id,
        "timestamp": int(NOW_S),
        "data": {"product_id": "1", "status": "ACTIVATE", "update_time": int(NOW_S)},
    }

    assert connector.decode(signed(mock, product_change)) == []


@pytest.mark.parametrize(
    "envelope",
    [
        [],
        {"type": "1"},
        {"type": 1, "tts_notification_id": "n", "shop_id": "s", "timestamp": 1},
        {"type": 1, "tts_notification_id": "n", "shop_id": "s", "data": {"order_id": "o"}},
        {"type": 12, "shop_id": "s", "timestamp": 1, "data": {"order_id": "o"}},
        {"type": 11, "tts_notification_id": "n", "shop_id": "s", "timestamp": 1, "data": {}},
    ],
)
async def test_a_malformed_delivery_is_refused(
    connect: Connect, mock: TikTokShopMock, envelope: object
) -> None:
    connector = await connect()

    with pytest.raises(MalformedPayload):
        connector.decode(signed(mock, envelope))


async def test_not_json_is_malformed(connect: Connect) -> None:
    connector = await connect()

    with pytest.raises(MalformedPayload):
        connector.decode(InboundRequest({}, b"not json"))


async def test_the_acknowledgement_is_a_bare_status(connect: Connect) -> None:
    connector = await connect()

    assert connector.acknowledge(True).status == 200
    assert not 200 <= connector.acknowledge(False).status < 300


# --- deliveries -----------------------------------------------------------------------------


async def test_deliver_to_posts_signed_deliveries_and_retries_on_5xx(
    connect: Connect, mock: TikTokShopMock, serve: Serve
) -> None:
    connector = await connect()
    received: list[InboundRequest] = []
    refusals = [500, 503]

    async def ingress(request: web.Request) -> web.Response:
        delivery = InboundRequest(
            headers={name.lower(): value for name, value in request.headers.items()},
            body=await request.read(),
        )
        received.append(delivery)
        return web.Response(status=refusals.pop(0) if refusals else 200)

    app = web.Application()
    app.router.add_post("/webhooks/tiktok", ingress)
    mock.deliver_to(await serve(app) + "/webhooks/tiktok")
    order_id = mock.buy("lipstick", 1, buyer="b", region="GB")
    assert order_id is not None

    await mock.drain_deliveries()

    assert len(received) == 3
    assert len({each.body for each in received}) == 1  # redelivered as it was
    connector.verify(received[-1], NOW_S)
    assert [note.order_id for note in connector.decode(received[-1])] == [order_id]
    assert (mock.stats.deliveries.attempts, mock.stats.deliveries.acknowledged) == (3, 1)


async def test_every_change_is_delivered(mock: TikTokShopMock, serve: Serve) -> None:
    kinds: list[int] = []

    async def ingress(request: web.Request) -> web.Response:
        kinds.append(orjson.loads(await request.read())["type"])
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/", ingress)
    mock.deliver_to(await serve(app) + "/")
    order_id = mock.buy("lipstick", 1, buyer="b", region="GB")
    assert order_id is not None
    mock.pay(order_id)
    mock.cancel(order_id)
    assert mock.buy("mascara", 9, buyer="b", region="GB") is None  # short: no order

    await mock.drain_deliveries()

    assert sorted(kinds) == [1, 1, 1, 11]


async def test_stop_cancels_pending_deliveries(serve: Serve, clock: Clock) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=500)

    app = web.Application()
    app.router.add_post("/", refuse)
    url = await serve(app)
    platform = TikTokShopMock(clock=clock)
    await platform.start()
    platform.add_listing("lipstick", 5)
    platform.deliver_to(url + "/")
    platform.buy("lipstick", 1, buyer="b", region=None)
    await asyncio.sleep(0)  # the first try is on its way

    await platform.stop()
    await platform.stop()

    assert platform.stats.deliveries.acknowledged == 0
    assert platform.stats.deliveries.attempts < 8


@pytest.mark.parametrize(
    ("fault", "error", "landed"),
    [
        ("fail_next", TransientError, False),
        ("throttle_next", RateLimited, False),
        ("lose_next_write_answers", TransientError, True),
    ],
)
async def test_each_fault_leaves_as_its_sdk_error(
    connect: Connect, mock: TikTokShopMock, fault: str, error: type[ConnectorError], landed: bool
) -> None:
    connector = await connect()
    getattr(mock, fault)(1)

    with pytest.raises(error):
        await connector.push_stock(update(), WriteMode.ABSOLUTE)

    assert mock.displayed("lipstick") == (4 if landed else 10)
