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


STOCK = "/rooms/tiktok-room-1/skus/lipstick/stock"
ADJUSTMENTS = STOCK + "/adjustments"


def push_body(quantity: object = 7, version: object = 1, event_time_ms: object = 1) -> bytes:
    return orjson.dumps({"quantity": quantity, "version": version, "event_time_ms": event_time_ms})


def cas_body(quantity: int, expected: object, version: int = 1) -> bytes:
    return orjson.dumps(
        {"quantity": quantity, "version": version, "event_time_ms": 1, "expected": expected}
    )


def adjustment_body(delta: object = -6, idempotency_key: object = "k-1") -> bytes:
    return orjson.dumps({"delta": delta, "idempotency_key": idempotency_key})


async def test_a_push_sets_the_rooms_display(make_client: MakeClient, rooms: Rooms) -> None:
    client = await make_client(rooms)

    response = await client.put("/rooms/tiktok-room-1/skus/lipstick/stock", data=push_body(7, 1))

    assert response.status == 200
    assert await response.json() == {"applied": True, "displayed": 7}
    assert rooms["tiktok-room-1"].displayed("lipstick") == 7
    assert rooms["douyin-room-1"].displayed("lipstick") == 10


async def test_a_stale_push_is_answered_not_applied(make_client: MakeClient, rooms: Rooms) -> None:
    client = await make_client(rooms)
    await client.put("/rooms/tiktok-room-1/skus/lipstick/stock", data=push_body(7, 5))

    response = await client.put("/rooms/tiktok-room-1/skus/lipstick/stock", data=push_body(3, 4))

    assert response.status == 200
    assert await response.json() == {"applied": False, "displayed": 7}
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
        (cas_body(1, expected=-1), "expected must not be negative"),
        (cas_body(1, expected="10"), "expected must be an integer"),
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


async def test_get_stock_shows_the_count_and_the_last_version(
    make_client: MakeClient, rooms: Rooms
) -> None:
    client = await make_client(rooms)
    before = await (await client.get(STOCK)).json()
    await client.put(STOCK, data=push_body(6, 2))

    after = await client.get(STOCK)

    assert before == {"displayed": 10, "version": None}
    assert await after.json() == {"displayed": 6, "version": 2}
    assert (await client.get("/rooms/no-such-room/skus/lipstick/stock")).status == 404


async def test_a_put_with_the_expected_count_applies(make_client: MakeClient, rooms: Rooms) -> None:
    client = await make_client(rooms)

    response = await client.put(STOCK, data=cas_body(4, expected=10))

    assert response.status == 200
    assert await response.json() == {"applied": True, "displayed": 4}


async def test_a_put_whose_expected_count_moved_is_409_with_the_count_now(
    make_client: MakeClient, rooms: Rooms
) -> None:
    client = await make_client(rooms)
    rooms["tiktok-room-1"].try_order("lipstick", 3)

    response = await client.put(STOCK, data=cas_body(4, expected=10))

    assert response.status == 409
    assert await response.json() == {"displayed": 7, "version": None}
    assert rooms["tiktok-room-1"].displayed("lipstick") == 7


async def test_an_adjustment_changes_the_count_once_per_key(
    make_client: MakeClient, rooms: Rooms
) -> None:
    client = await make_client(rooms)

    first = await client.post(ADJUSTMENTS, data=adjustment_body(-6, "k-1"))
    again = await client.post(ADJUSTMENTS, data=adjustment_body(-6, "k-1"))
    clamped = await client.post(ADJUSTMENTS, data=adjustment_body(-6, "k-2"))

    assert (first.status, await first.json()) == (200, {"applied": -6, "displayed": 4})
    assert await again.json() == {"applied": -6, "displayed": 4}
    assert await clamped.json() == {"applied": -4, "displayed": 0}
    assert rooms["tiktok-room-1"].displayed("lipstick") == 0


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (orjson.dumps({}), "missing field(s): delta"),
        (adjustment_body(delta=1.5), "delta must be an integer"),
        (adjustment_body(idempotency_key=""), "idempotency_key must be a non-empty string"),
        (adjustment_body(idempotency_key=7), "idempotency_key must be a non-empty string"),
    ],
)
async def test_a_malformed_adjustment_is_400_with_a_reason(
    make_client: MakeClient, rooms: Rooms, body: bytes, error: str
) -> None:
    client = await make_client(rooms)

    response = await client.post(ADJUSTMENTS, data=body)

    assert response.status == 400
    assert error in (await response.json())["error"]
    assert rooms["tiktok-room-1"].displayed("lipstick") == 10


async def test_faults_answer_every_write_route_but_not_reads(
    make_client: MakeClient, rooms: Rooms
) -> None:
    faults = Faults()
    faults.inject(503, times=2)
    client = await make_client(rooms, faults)

    read = await client.get(STOCK)
    adjusted = await client.post(ADJUSTMENTS, data=adjustment_body())
    compared = await client.put(STOCK, data=cas_body(4, expected=10))

    assert [read.status, adjusted.status, compared.status] == [200, 503, 503]
    assert rooms["tiktok-room-1"].displayed("lipstick") == 10


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
