"""The simulator's HTTP side, through aiohttp's in-process test server and for real."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors.simulator.rooms import LiveRoom
from connectors.simulator.server import Faults, create_app, start_server
from connectors.simulator.stock_api import stock_path

Rooms = dict[str, LiveRoom]
MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def rooms() -> Rooms:
    return {
        "tiktok-room-1": LiveRoom("tiktok-room-1", "tiktok", {"lipstick": 10}),
        "douyin-room-1": LiveRoom("douyin-room-1", "douyin", {"lipstick": 10}),
    }


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[TestClient[Any, Any]] = []

    async def make(rooms: Rooms, faults: Faults | None = None) -> TestClient[Any, Any]:
        client = TestClient(TestServer(create_app(rooms, faults=faults)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def push_body(quantity: object = 7, version: object = 1, event_time_ms: object = 1) -> bytes:
    return orjson.dumps({"quantity": quantity, "version": version, "event_time_ms": event_time_ms})


async def test_a_push_sets_the_rooms_display(make_client: MakeClient, rooms: Rooms) -> None:
    client = await make_client(rooms)

    response = await client.put("/rooms/tiktok-room-1/skus/lipstick/stock", data=push_body(7, 1))

    assert response.status == 200
    assert await response.json() == {"applied": True}
    assert rooms["tiktok-room-1"].displayed("lipstick") == 7
    assert rooms["douyin-room-1"].displayed("lipstick") == 10


async def test_a_stale_push_is_answered_not_applied(make_client: MakeClient, rooms: Rooms) -> None:
    client = await make_client(rooms)
    await client.put("/rooms/tiktok-room-1/skus/lipstick/stock", data=push_body(7, 5))

    response = await client.put("/rooms/tiktok-room-1/skus/lipstick/stock", data=push_body(3, 4))

    assert response.status == 200
    assert await response.json() == {"applied": False}
    assert rooms["tiktok-room-1"].displayed("lipstick") == 7
    assert rooms["tiktok-room-1"].counters.pushes_stale == 1


async def test_an_unknown_channel_is_404(make_client: MakeClient, rooms: Rooms) -> None:
    client = await make_client(rooms)

    response = await client.put("/rooms/no-such-room/skus/lipstick/stock", data=push_body())

    assert response.status == 404
    assert "no-such-room" in (await response.json())["error"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (orjson.dumps({"quantity": 1}), "missing field(s): version, event_time_ms"),
        (push_body(quantity=-1), "quantity must not be negative"),
        (push_body(quantity="7"), "quantity must be an integer"),
        (push_body(version=1.5), "version must be an integer"),
        (push_body(event_time_ms=True), "event_time_ms must be an integer"),
    ],
)
async def test_a_malformed_push_is_400_with_a_reason(
    make_client: MakeClient, rooms: Rooms, body: bytes, error: str
) -> None:
    client = await make_client(rooms)

    response = await client.put("/rooms/tiktok-room-1/skus/lipstick/stock", data=body)

    assert response.status == 400
    assert error in (await response.json())["error"]
    assert rooms["tiktok-room-1"].displayed("lipstick") == 10


async def test_a_sku_with_slashes_and_non_ascii_stays_one_path_segment(
    make_client: MakeClient, rooms: Rooms
) -> None:
    client = await make_client(rooms)
    sku = "口红/CASE 12%"

    response = await client.put("/" + stock_path("tiktok-room-1", sku), data=push_body(4, 1))

    assert response.status == 200
    assert rooms["tiktok-room-1"].displayed(sku) == 4


async def test_get_rooms_shows_every_room(make_client: MakeClient, rooms: Rooms) -> None:
    client = await make_client(rooms)
    await client.put("/rooms/douyin-room-1/skus/lipstick/stock", data=push_body(6, 2))

    response = await client.get("/rooms")

    assert response.status == 200
    snapshot = await response.json()
    assert set(snapshot["rooms"]) == {"tiktok-room-1", "douyin-room-1"}
    douyin = snapshot["rooms"]["douyin-room-1"]
    assert douyin["platform"] == "douyin"
    assert douyin["skus"]["lipstick"] == {"displayed": 6, "version": 2}
    assert douyin["counters"]["pushes_applied"] == 1


async def test_injected_faults_answer_the_next_pushes_then_stop(
    make_client: MakeClient, rooms: Rooms
) -> None:
    faults = Faults()
    faults.inject(429, retry_after="3")
    faults.inject(503, times=2)
    client = await make_client(rooms, faults)
    path = "/rooms/tiktok-room-1/skus/lipstick/stock"

    statuses = [(await client.put(path, data=push_body(1, n))) for n in range(1, 5)]

    assert [response.status for response in statuses] == [429, 503, 503, 200]
    assert statuses[0].headers["Retry-After"] == "3"
    assert len(faults) == 0
    assert rooms["tiktok-room-1"].last_version("lipstick") == 4


async def test_start_server_binds_an_ephemeral_port_on_loopback(rooms: Rooms) -> None:
    async with await start_server(create_app(rooms)) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert not server.url.endswith(":0")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{server.url}/rooms") as response,
        ):
            assert response.status == 200
            assert "tiktok-room-1" in (await response.json())["rooms"]
