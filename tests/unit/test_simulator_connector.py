"""The simulator connector against a real local simulator server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from aiohttp import web

from connectors import registry
from connectors.base import Connector, RateLimited, Rejected, StockUpdate, TransientError
from connectors.simulator.connector import SimulatorConnector
from connectors.simulator.rooms import LiveRoom
from connectors.simulator.server import Faults, RunningServer, create_app, start_server
from connectors.simulator.stock_api import DEFAULT_RETRY_AFTER_S, parse_retry_after

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


def update(quantity: int = 4, version: int = 1, channel: str = CHANNEL) -> StockUpdate:
    return StockUpdate(channel, "lipstick", quantity, version, event_time_ms=1_700_000_000_000)


async def test_a_push_applies_to_the_room(
    connect: Connect, simulator: RunningServer, room: LiveRoom
) -> None:
    connector = await connect(simulator.url)

    await connector.push_stock(update(quantity=4, version=1))

    assert room.displayed("lipstick") == 4
    assert room.last_version("lipstick") == 1


async def test_a_stale_push_is_not_applied_and_is_not_an_error(
    connect: Connect, simulator: RunningServer, room: LiveRoom
) -> None:
    connector = await connect(simulator.url)
    await connector.push_stock(update(quantity=4, version=2))

    await connector.push_stock(update(quantity=9, version=1))

    assert room.displayed("lipstick") == 4
    assert room.counters.pushes_stale == 1


async def test_a_base_url_with_a_path_prefix_is_kept(serve: Serve, connect: Connect) -> None:
    room = LiveRoom(CHANNEL, "tiktok")
    outer = web.Application()
    outer.add_subapp("/sim/", create_app({CHANNEL: room}))
    server = await serve(outer)
    connector = await connect(f"{server.url}/sim")

    await connector.push_stock(update(quantity=2))

    assert room.displayed("lipstick") == 2


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
        await connector.push_stock(update())

    assert raised.value.retry_after == expected


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_transient(
    connect: Connect, simulator: RunningServer, faults: Faults, status: int
) -> None:
    faults.inject(status)
    connector = await connect(simulator.url)

    with pytest.raises(TransientError, match=str(status)):
        await connector.push_stock(update())


async def test_an_unknown_channel_is_rejected(connect: Connect, simulator: RunningServer) -> None:
    connector = await connect(simulator.url)

    with pytest.raises(Rejected, match=r"404.*no-such-room"):
        await connector.push_stock(update(channel="no-such-room"))


async def test_a_push_the_platform_finds_invalid_is_rejected(
    connect: Connect, simulator: RunningServer
) -> None:
    connector = await connect(simulator.url)

    with pytest.raises(Rejected, match=r"400.*negative"):
        await connector.push_stock(update(quantity=-1))


async def test_a_timeout_is_transient(serve: Serve, connect: Connect) -> None:
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response()

    app = web.Application()
    app.router.add_put("/rooms/{channel}/skus/{sku}/stock", hang)
    server = await serve(app)
    connector = await connect(server.url, timeout_s="0.05")

    try:
        with pytest.raises(TransientError):
            await connector.push_stock(update())
    finally:
        never.set()  # else stopping the server waits for the hung handler


async def test_a_refused_connection_is_transient(
    connect: Connect, simulator: RunningServer
) -> None:
    connector = await connect(simulator.url)
    await simulator.stop()

    with pytest.raises(TransientError):
        await connector.push_stock(update())


async def test_push_outside_start_and_close_is_rejected_and_close_is_idempotent(
    simulator: RunningServer,
) -> None:
    connector = SimulatorConnector(simulator.url)
    with pytest.raises(Rejected, match="not started"):
        await connector.push_stock(update())

    await connector.start()
    await connector.close()
    await connector.close()

    with pytest.raises(Rejected, match="closed"):
        await connector.push_stock(update())
    await connector.start()  # a closed connector stays closed
    with pytest.raises(Rejected):
        await connector.push_stock(update())


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
