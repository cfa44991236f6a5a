"""The simulator connector against a real local simulator server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from aiohttp import web

from connectors import registry
from connectors.base import (
    Connector,
    PushResult,
    RateLimited,
    Rejected,
    StockUpdate,
    TransientError,
    WriteMode,
)
from connectors.http_support import DEFAULT_RETRY_AFTER_S, parse_retry_after
from connectors.simulator.connector import CAS_ATTEMPTS, SimulatorConnector
from connectors.simulator.rooms import LiveRoom
from connectors.simulator.server import (
    ADJUSTMENTS_ROUTE,
    Faults,
    RunningServer,
    create_app,
    start_server,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CHANNEL = "tiktok-room-1"
Serve = Callable[[web.Application], Awaitable[RunningServer]]
Connect = Callable[..., Awaitable[SimulatorConnector]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[RunningServer] = []

    async def start(app: web.Application) -> RunningServer:
        server = await start_server(app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    connectors: list[SimulatorConnector] = []

    async def make(base_url: str, **options: str) -> SimulatorConnector:
        connector = SimulatorConnector.from_options({"base_url": base_url, **options})
        await connector.start()
        connectors.append(connector)
        return connector

    yield make
    for connector in connectors:
        await connector.close()


@pytest.fixture
def room() -> LiveRoom:
    return LiveRoom(CHANNEL, "tiktok", {"lipstick": 10})


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
async def simulator(serve: Serve, room: LiveRoom, faults: Faults) -> RunningServer:
    return await serve(create_app({CHANNEL: room}, faults=faults))


def update(
    quantity: int = 4, delta: int = -6, version: int = 1, channel: str = CHANNEL
) -> StockUpdate:
    """By default: the room shows 10, the quota goes down to 4."""
    return StockUpdate(
        channel=channel,
        sku="lipstick",
        quantity=quantity,
        delta=delta,
        version=version,
        event_time_ms=1_700_000_000_000,
        idempotency_key=f"{channel}:lipstick:{version}-{version}",
    )


ALL_MODES = "delta,compare_and_swap,absolute"


# --- the three write modes ------------------------------------------------------------


async def test_a_delta_write_adjusts_the_room_and_says_what_applied(
    connect: Connect, simulator: RunningServer, room: LiveRoom
) -> None:
    connector = await connect(simulator.url)

    result = await connector.push_stock(update(delta=-6), WriteMode.DELTA)

    assert result == PushResult(applied=-6, displayed=4)
    assert room.displayed("lipstick") == 4


async def test_a_delta_write_sent_twice_applies_once(
    connect: Connect, simulator: RunningServer, room: LiveRoom
) -> None:
    connector = await connect(simulator.url)

    first = await connector.push_stock(update(delta=-6), WriteMode.DELTA)
    again = await connector.push_stock(update(delta=-6), WriteMode.DELTA)

    assert first == again == PushResult(applied=-6, displayed=4)
    assert room.displayed("lipstick") == 4
    assert room.counters.adjustments_repeated == 1


async def test_a_delta_reduction_is_clamped_at_zero_when_buyers_took_units(
    connect: Connect, simulator: RunningServer, room: LiveRoom
) -> None:
    connector = await connect(simulator.url)
    room.try_order("lipstick", 8)

    result = await connector.push_stock(update(delta=-6), WriteMode.DELTA)

    assert result == PushResult(applied=-2, displayed=0)


async def test_a_compare_and_swap_write_adds_the_delta_to_the_count_now(
    connect: Connect, simulator: RunningServer, room: LiveRoom
) -> None:
    connector = await connect(simulator.url)
    room.try_order("lipstick", 3)

    result = await connector.push_stock(update(delta=-6), WriteMode.COMPARE_AND_SWAP)

    assert result == PushResult(applied=-6, displayed=1)
    assert room.last_version("lipstick") == 1


async def test_a_compare_and_swap_write_retried_after_it_landed_applies_nothing_more(
    connect: Connect, simulator: RunningServer, room: LiveRoom
) -> None:
    connector = await connect(simulator.url)
    await connector.push_stock(update(delta=-6, version=5), WriteMode.COMPARE_AND_SWAP)

    # As if the first answer had been lost: what it applied is unknown, so no units are
    # claimed as reclaimed, and the count is not reduced a second time.
    result = await connector.push_stock(update(delta=-6, version=5), WriteMode.COMPARE_AND_SWAP)

    assert result == PushResult(applied=0, displayed=4)
    assert room.displayed("lipstick") == 4


async def test_compare_and_swap_gives_up_transiently_when_the_count_never_settles(
    serve: Serve, connect: Connect
) -> None:
    room = LiveRoom(CHANNEL, "tiktok", {"lipstick": 100})
    app = create_app({CHANNEL: room})

    @web.middleware
    async def busy_buyers(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "PUT":
            room.try_order("lipstick", 1)  # a sale lands before every write
        return await handler(request)

    app.middlewares.append(busy_buyers)
    connector = await connect((await serve(app)).url)

    with pytest.raises(TransientError, match="kept changing"):
        await connector.push_stock(update(delta=-6), WriteMode.COMPARE_AND_SWAP)

    assert room.counters.pushes_conflicted == CAS_ATTEMPTS
    assert room.displayed("lipstick") == 100 - CAS_ATTEMPTS


async def test_an_absolute_write_sets_the_quantity_and_a_stale_one_applies_nothing(
    connect: Connect, simulator: RunningServer, room: LiveRoom
) -> None:
    connector = await connect(simulator.url, write_modes="absolute")

    landed = await connector.push_stock(update(quantity=4, delta=-6, version=2), WriteMode.ABSOLUTE)
    stale = await connector.push_stock(update(quantity=9, delta=5, version=1), WriteMode.ABSOLUTE)

    assert landed == PushResult(applied=-6, displayed=4)
    assert stale == PushResult(applied=0, displayed=4)
    assert room.counters.pushes_stale == 1


async def test_a_mode_the_connector_was_not_configured_for_is_rejected(
    connect: Connect, simulator: RunningServer, room: LiveRoom
) -> None:
    connector = await connect(simulator.url)

    with pytest.raises(Rejected, match="absolute"):
        await connector.push_stock(update(), WriteMode.ABSOLUTE)

    assert room.displayed("lipstick") == 10


def test_write_modes_default_to_the_safe_ones_and_absolute_must_be_listed() -> None:
    default = SimulatorConnector.from_options({"base_url": "http://127.0.0.1:9"})
    listed = SimulatorConnector.from_options(
        {"base_url": "http://127.0.0.1:9", "write_modes": " absolute , delta"}
    )

    assert default.write_modes == {WriteMode.DELTA, WriteMode.COMPARE_AND_SWAP}
    assert listed.write_modes == {WriteMode.ABSOLUTE, WriteMode.DELTA}


@pytest.mark.parametrize(("option", "error"), [("delta,sometimes", "write_modes"), (" , ", "mode")])
def test_unknown_or_no_write_modes_are_refused(option: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        SimulatorConnector.from_options({"base_url": "http://127.0.0.1:9", "write_modes": option})


async def test_a_base_url_with_a_path_prefix_is_kept(serve: Serve, connect: Connect) -> None:
    room = LiveRoom(CHANNEL, "tiktok")
    outer = web.Application()
    outer.add_subapp("/sim/", create_app({CHANNEL: room}))
    server = await serve(outer)
    connector = await connect(f"{server.url}/sim", write_modes=ALL_MODES)

    await connector.push_stock(update(quantity=2, delta=2, version=1), WriteMode.DELTA)
    await connector.push_stock(update(quantity=4, delta=2, version=2), WriteMode.COMPARE_AND_SWAP)
    await connector.push_stock(update(quantity=7, delta=3, version=3), WriteMode.ABSOLUTE)

    assert room.displayed("lipstick") == 7
    assert room.counters.adjustments_applied == 1
    assert room.counters.pushes_applied == 2


async def test_an_unreadable_answer_is_transient(serve: Serve, connect: Connect) -> None:
    async def garbled(request: web.Request) -> web.Response:
        return web.Response(text="<html>maintenance</html>")

    app = web.Application()
    app.router.add_post(ADJUSTMENTS_ROUTE, garbled)
    connector = await connect((await serve(app)).url)

    with pytest.raises(TransientError, match="unreadable"):
        await connector.push_stock(update(), WriteMode.DELTA)


# --- failures -------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), (None, DEFAULT_RETRY_AFTER_S)])
async def test_429_is_rate_limited_with_retry_after(
    connect: Connect,
    simulator: RunningServer,
    faults: Faults,
    header: str | None,
    expected: float,
) -> None:
    faults.inject(429, retry_after=header)
    connector = await connect(simulator.url)

    with pytest.raises(RateLimited) as raised:
        await connector.push_stock(update(), WriteMode.DELTA)

    assert raised.value.retry_after == expected


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_transient(
    connect: Connect, simulator: RunningServer, faults: Faults, status: int
) -> None:
    faults.inject(status)
    connector = await connect(simulator.url)

    with pytest.raises(TransientError, match=str(status)):
        await connector.push_stock(update(), WriteMode.DELTA)


async def test_an_unknown_channel_is_rejected(connect: Connect, simulator: RunningServer) -> None:
    connector = await connect(simulator.url)

    with pytest.raises(Rejected, match=r"404.*no-such-room"):
        await connector.push_stock(update(channel="no-such-room"), WriteMode.DELTA)
    with pytest.raises(Rejected, match=r"404.*no-such-room"):
        await connector.push_stock(update(channel="no-such-room"), WriteMode.COMPARE_AND_SWAP)


async def test_a_push_the_platform_finds_invalid_is_rejected(
    connect: Connect, simulator: RunningServer
) -> None:
    connector = await connect(simulator.url, write_modes="absolute")

    with pytest.raises(Rejected, match=r"400.*negative"):
        await connector.push_stock(update(quantity=-1), WriteMode.ABSOLUTE)


async def test_a_timeout_is_transient(serve: Serve, connect: Connect) -> None:
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response()

    app = web.Application()
    app.router.add_post(ADJUSTMENTS_ROUTE, hang)
    server = await serve(app)
    connector = await connect(server.url, timeout_s="0.05")

    try:
        with pytest.raises(TransientError):
            await connector.push_stock(update(), WriteMode.DELTA)
    finally:
        never.set()  # else stopping the server waits for the hung handler


async def test_a_refused_connection_is_transient(
    connect: Connect, simulator: RunningServer
) -> None:
    connector = await connect(simulator.url)
    await simulator.stop()

    with pytest.raises(TransientError):
        await connector.push_stock(update(), WriteMode.DELTA)


async def test_push_outside_start_and_close_is_rejected_and_close_is_idempotent(
    simulator: RunningServer,
) -> None:
    connector = SimulatorConnector(simulator.url)
    with pytest.raises(Rejected, match="not started"):
        await connector.push_stock(update(), WriteMode.DELTA)

    await connector.start()
    await connector.close()
    await connector.close()

    with pytest.raises(Rejected, match="closed"):
        await connector.push_stock(update(), WriteMode.DELTA)
    await connector.start()  # a closed connector stays closed
    with pytest.raises(Rejected):
        await connector.push_stock(update(), WriteMode.DELTA)


async def test_close_without_start_is_fine() -> None:
    await SimulatorConnector("http://127.0.0.1:9").close()


def test_from_options_needs_a_base_url() -> None:
    with pytest.raises(ValueError, match="base_url"):
        SimulatorConnector.from_options({})


def test_from_options_refuses_a_non_positive_timeout() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        SimulatorConnector.from_options({"base_url": "http://127.0.0.1:9", "timeout_s": "0"})


def test_it_is_registered_as_the_simulator_plugin_and_meets_the_protocol() -> None:
    loaded = registry.load("simulator")

    assert loaded is SimulatorConnector
    assert loaded.platform == "simulator"
    assert isinstance(SimulatorConnector("http://127.0.0.1:9"), Connector)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("12", 12.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("inf", DEFAULT_RETRY_AFTER_S),
        ("nan", DEFAULT_RETRY_AFTER_S),
        ("soon", DEFAULT_RETRY_AFTER_S),
        ("", DEFAULT_RETRY_AFTER_S),
        (None, DEFAULT_RETRY_AFTER_S),
    ],
)
def test_retry_after_in_seconds(header: str | None, expected: float) -> None:
    assert parse_retry_after(header, now_s=0.0) == expected


def test_retry_after_as_an_http_date_counts_from_now() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = datetime(2025, 1, 1, 12, 0, 30, tzinfo=UTC)

    header = format_datetime(later, usegmt=True)

    assert parse_retry_after(header, now_s=now.timestamp()) == 30.0
    assert parse_retry_after(header, now_s=later.timestamp() + 60) == 0.0
