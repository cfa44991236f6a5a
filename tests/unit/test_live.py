"""The live-room stream: the hub on plain values, then SSE and WebSocket subscribers on a real
local server, up to a thousand of them on one room."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from sync_worker.domain.allocation import Allocation, ChannelQuota
from sync_worker.domain.position import SkuPosition
from sync_worker.metrics import Metrics
from sync_worker.streaming.app import live_seed
from sync_worker.web.live import HubClosed, LiveHub, LiveStock, live_routes

ROOM = "room-1"
T0 = 1_700_000_000_000

# --- the hub ----------------------------------------------------------------------------


def test_the_hub_keeps_the_newest_version_of_each_sku() -> None:
    hub = LiveHub()

    applied = [
        hub.update(ROOM, "lipstick", 5, 2, T0),
        hub.update(ROOM, "lipstick", 9, 1, T0 + 1),  # older: a reordered change
        hub.update(ROOM, "lipstick", 9, 2, T0 + 2),  # the same version again: a redelivery
        hub.update(ROOM, "mascara", 3, 1, T0 + 3),
        hub.update("room-2", "lipstick", 1, 1, T0 + 4),
    ]

    assert applied == [True, False, False, True, True]
    assert hub.snapshot(ROOM) == (
        LiveStock(ROOM, "lipstick", 5, 2, T0),
        LiveStock(ROOM, "mascara", 3, 1, T0 + 3),
    )
    assert hub.snapshot("room-9") == ()


def test_a_rooms_first_subscriber_after_a_restart_starts_from_the_books() -> None:
    asked: list[str] = []

    def books(channel: str) -> list[LiveStock]:
        asked.append(channel)
        return [LiveStock(channel, "lipstick", 7, 4, T0), LiveStock(channel, "mascara", 2, 9, T0)]

    hub = LiveHub(seed=books)
    hub.update(ROOM, "mascara", 1, 10, T0 + 1)  # a change newer than the books: it stays

    first = hub.subscribe(ROOM)
    second = hub.subscribe(ROOM)

    assert first.snapshot == (
        LiveStock(ROOM, "lipstick", 7, 4, T0),
        LiveStock(ROOM, "mascara", 1, 10, T0 + 1),
    )
    assert second.snapshot == first.snapshot
    assert asked == [ROOM]  # once per room


def test_the_seed_reads_each_listed_skus_quota_for_the_room() -> None:
    held = Allocation((ChannelQuota(ROOM, out=6, reclaiming=2),), version=12)
    positions = {"lipstick": SkuPosition("lipstick", allocation=held)}

    seeded = list(live_seed(ROOM, ["lipstick", "unknown"], positions.get))

    assert [(s.sku, s.quantity, s.version) for s in seeded] == [("lipstick", 4, 12)]
    assert list(live_seed("room-2", ["lipstick"], positions.get)) == []


async def test_a_subscriber_starts_from_the_snapshot_then_gets_each_change() -> None:
    hub = LiveHub()
    hub.update(ROOM, "lipstick", 5, 1, T0)
    subscription = hub.subscribe(ROOM)

    hub.update(ROOM, "lipstick", 4, 2, T0 + 1)
    hub.update(ROOM, "lipstick", 4, 2, T0 + 1)
    hub.update("room-2", "lipstick", 1, 1, T0 + 2)
    first = await subscription.changes()
    hub.update(ROOM, "mascara", 7, 1, T0 + 3)
    second = await subscription.changes()

    assert subscription.snapshot == (LiveStock(ROOM, "lipstick", 5, 1, T0),)
    assert first == [LiveStock(ROOM, "lipstick", 4, 2, T0 + 1)]
    assert second == [LiveStock(ROOM, "mascara", 7, 1, T0 + 3)]


async def test_a_slow_subscriber_coalesces_per_sku_and_ends_on_the_newest() -> None:
    hub = LiveHub()
    slow, fast = hub.subscribe(ROOM), hub.subscribe(ROOM)
    seen_by_fast: list[int] = []

    for version in range(1, 1001):
        hub.update(ROOM, "lipstick", 1000 - version, version, T0 + version)
        if version % 2 == 0:
            hub.update(ROOM, "mascara", version, version, T0 + version)
        batch = await fast.changes()
        assert batch is not None
        seen_by_fast += [stock.version for stock in batch if stock.sku == "lipstick"]

    assert seen_by_fast == list(range(1, 1001))
    assert slow.pending == 2  # bounded by the room's SKUs, however many changes came
    assert await slow.changes() == [
        LiveStock(ROOM, "lipstick", 0, 1000, T0 + 1000),
        LiveStock(ROOM, "mascara", 1000, 1000, T0 + 1000),
    ]


async def test_an_idle_subscription_returns_an_empty_batch_for_a_heartbeat() -> None:
    subscription = LiveHub().subscribe(ROOM)

    assert await subscription.changes(idle_s=0.001) == []


async def test_closing_the_hub_ends_every_subscription() -> None:
    hub = LiveHub()
    subscriptions = [hub.subscribe(ROOM), hub.subscribe("room-2")]
    waiting = asyncio.gather(*(s.changes() for s in subscriptions))
    await asyncio.sleep(0)

    hub.close()

    assert await waiting == [None, None]
    assert not hub.update(ROOM, "lipstick", 1, 1, T0)
    with pytest.raises(HubClosed):
        hub.subscribe(ROOM)


def test_an_ended_subscription_leaves_the_hub() -> None:
    hub = LiveHub()
    with hub.subscribe(ROOM):
        assert hub.subscriber_count(ROOM) == 1

    hub.update(ROOM, "lipstick", 1, 1, T0)

    assert hub.subscriber_count(ROOM) == 0


# --- over HTTP --------------------------------------------------------------------------


class Live:
    """A served hub and a client session against it."""

    def __init__(self, hub: LiveHub, metrics: Metrics, url: str, session: Any) -> None:
        self.hub = hub
        self.metrics = metrics
        self.url = url
        self.session: aiohttp.ClientSession = session

    def subscribers(self, protocol: str) -> float:
        labels = {"protocol": protocol}
        value = self.metrics.registry.get_sample_value("stockcast_live_subscribers", labels)
        return value or 0.0

    async def until(self, condition: Callable[[], bool]) -> None:
        """Waits for something the server does on its own time: a handler's ``finally``
        offers nothing to await, so this polls briefly instead of sleeping a fixed time."""
        async with asyncio.timeout(10):
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.005)


MakeLive = Callable[..., Awaitable[Live]]


@pytest.fixture
async def make_live() -> AsyncIterator[MakeLive]:
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def make(**options: Any) -> Live:
        hub, metrics = LiveHub(), Metrics.create()
        app = web.Application()
        app.router.add_routes(live_routes(hub, metrics, **options))
        runner = web.AppRunner(app)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        # A thousand clients connect at once: the default backlog (128) would drop SYNs.
        await web.SockSite(runner, sock, backlog=2048).start()
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        host, port = sock.getsockname()

        async def cleanup() -> None:
            hub.close()
            await session.close()
            await runner.cleanup()

        cleanups.append(cleanup)
        return Live(hub, metrics, f"http://{host}:{port}/live", session)

    yield make
    for cleanup in cleanups:
        await cleanup()


async def sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, str]]:
    """Each SSE event as its fields; a comment line as ``{"comment": text}``."""
    fields: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line:
            name, _, value = line.partition(": ")
            fields[name] = value
        elif fields:
            yield fields
            fields = {}


async def test_sse_sends_the_snapshot_then_each_change(make_live: MakeLive) -> None:
    live = await make_live()
    live.hub.update(ROOM, "mascara", 3, 4, T0)
    live.hub.update(ROOM, "lipstick", 5, 7, T0 + 1)

    async with live.session.get(f"{live.url}/{ROOM}") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-cache"
        events = sse_events(response)
        snapshot = await anext(events)
        live.hub.update(ROOM, "lipstick", 4, 8, T0 + 2)
        change = await anext(events)

    assert snapshot["event"] == "snapshot"
    assert orjson.loads(snapshot["data"]) == {
        "channel": ROOM,
        "skus": [
            {
                "channel": ROOM,
                "sku": "lipstick",
                "quantity": 5,
                "version": 7,
                "event_time_ms": T0 + 1,
            },
            {"channel": ROOM, "sku": "mascara", "quantity": 3, "version": 4, "event_time_ms": T0},
        ],
    }
    assert (change["event"], change["id"]) == ("stock", "8")
    assert orjson.loads(change["data"]) == {
        "channel": ROOM,
        "sku": "lipstick",
        "quantity": 4,
        "version": 8,
        "event_time_ms": T0 + 2,
    }


async def test_a_websocket_on_the_same_path_sends_typed_messages(make_live: MakeLive) -> None:
    live = await make_live()
    live.hub.update(ROOM, "lipstick", 5, 7, T0)

    async with live.session.ws_connect(f"{live.url}/{ROOM}") as ws:
        snapshot = await ws.receive_json()
        live.hub.update(ROOM, "lipstick", 4, 8, T0 + 1)
        change = await ws.receive_json()

    stock = {"channel": ROOM, "sku": "lipstick", "quantity": 5, "version": 7, "event_time_ms": T0}
    assert snapshot == {"type": "snapshot", "channel": ROOM, "skus": [stock]}
    assert change == {
        "type": "stock",
        **stock,
        "quantity": 4,
        "version": 8,
        "event_time_ms": T0 + 1,
    }


async def test_a_reconnect_starts_from_the_current_state(make_live: MakeLive) -> None:
    live = await make_live()
    live.hub.update(ROOM, "lipstick", 5, 1, T0)
    async with live.session.get(f"{live.url}/{ROOM}") as response:
        await anext(sse_events(response))

    live.hub.update(ROOM, "lipstick", 2, 2, T0 + 1)
    live.hub.update(ROOM, "mascara", 6, 1, T0 + 2)
    async with live.session.get(f"{live.url}/{ROOM}", headers={"Last-Event-ID": "1"}) as again:
        snapshot = orjson.loads((await anext(sse_events(again)))["data"])
    async with live.session.ws_connect(f"{live.url}/{ROOM}") as ws:
        ws_snapshot = await ws.receive_json()

    assert [(s["sku"], s["quantity"]) for s in snapshot["skus"]] == [
        ("lipstick", 2),
        ("mascara", 6),
    ]
    assert ws_snapshot["skus"] == snapshot["skus"]


async def test_an_idle_sse_stream_gets_comment_heartbeats(make_live: MakeLive) -> None:
    live = await make_live(heartbeat_s=0.01)

    async with live.session.get(f"{live.url}/{ROOM}") as response:
        events = sse_events(response)
        snapshot = await anext(events)
        heartbeats = [await anext(events), await anext(events)]

    assert orjson.loads(snapshot["data"]) == {"channel": ROOM, "skus": []}
    assert heartbeats == [{"comment": "heartbeat"}] * 2


async def test_the_gauge_counts_subscribers_by_protocol(make_live: MakeLive) -> None:
    live = await make_live(heartbeat_s=0.01)  # an SSE client's leaving shows at a heartbeat
    url = f"{live.url}/{ROOM}"

    async with live.session.get(url) as first, live.session.get(url) as second:
        await anext(sse_events(first))
        await anext(sse_events(second))
        async with live.session.ws_connect(url) as ws:
            await ws.receive_json()
            assert (live.subscribers("sse"), live.subscribers("websocket")) == (2, 1)
        await live.until(lambda: live.subscribers("websocket") == 0)
        assert live.subscribers("sse") == 2
    await live.until(lambda: live.subscribers("sse") == 0)

    assert live.hub.subscriber_count(ROOM) == 0


async def test_closing_the_hub_ends_every_stream(make_live: MakeLive) -> None:
    live = await make_live()
    url = f"{live.url}/{ROOM}"

    async with live.session.get(url) as response, live.session.ws_connect(url) as ws:
        events = sse_events(response)
        await anext(events)
        await ws.receive_json()
        live.hub.close()

        assert [event async for event in events] == []
        assert (await ws.receive()).type is aiohttp.WSMsgType.CLOSE
    async with live.session.get(url) as refused:
        assert refused.status == 503
    await live.until(lambda: live.subscribers("sse") + live.subscribers("websocket") == 0)


async def test_only_known_rooms_are_served_when_rooms_are_given(make_live: MakeLive) -> None:
    live = await make_live(channels={ROOM})

    async with live.session.get(f"{live.url}/room-typo") as response:
        assert response.status == 404


# --- a thousand subscribers -------------------------------------------------------------


class Tally:
    """How many subscribers have seen each version (0: the snapshot)."""

    def __init__(self, subscribers: int) -> None:
        self._subscribers = subscribers
        self._seen: Counter[int] = Counter()
        self._everyone: dict[int, asyncio.Event] = {}

    def saw(self, version: int) -> None:
        self._seen[version] += 1
        if self._seen[version] == self._subscribers:
            self._event(version).set()

    async def everyone_saw(self, version: int) -> None:
        async with asyncio.timeout(30):  # a hang guard, not a performance threshold
            await self._event(version).wait()

    def _event(self, version: int) -> asyncio.Event:
        return self._everyone.setdefault(version, asyncio.Event())


async def sse_subscriber(live: Live, tally: Tally) -> list[tuple[int, int]]:
    received: list[tuple[int, int]] = []
    async with live.session.get(f"{live.url}/{ROOM}") as response:
        async for event in sse_events(response):
            if event.get("event") == "snapshot":
                tally.saw(0)
            elif event.get("event") == "stock":
                data = orjson.loads(event["data"])
                received.append((data["version"], data["quantity"]))
                tally.saw(data["version"])
    return received


async def ws_subscriber(live: Live, tally: Tally) -> list[tuple[int, int]]:
    received: list[tuple[int, int]] = []
    async with live.session.ws_connect(f"{live.url}/{ROOM}") as ws:
        async for message in ws:
            data = orjson.loads(message.data)
            if data["type"] == "snapshot":
                tally.saw(0)
            else:
                received.append((data["version"], data["quantity"]))
                tally.saw(data["version"])
    return received


async def test_a_thousand_subscribers_each_get_every_change(make_live: MakeLive) -> None:
    live = await make_live()
    live.hub.update(ROOM, "lipstick", 500, 1, T0)
    tally = Tally(1000)
    subscribers = [
        *(asyncio.create_task(sse_subscriber(live, tally)) for _ in range(800)),
        *(asyncio.create_task(ws_subscriber(live, tally)) for _ in range(200)),
    ]
    await tally.everyone_saw(0)
    assert (live.subscribers("sse"), live.subscribers("websocket")) == (800, 200)

    # Spaced: the next change only once everyone has the last, so nothing coalesces.
    for version in range(2, 22):
        live.hub.update(ROOM, "lipstick", 500 - version, version, T0 + version)
        await tally.everyone_saw(version)
    # A burst: slower subscribers may skip values, but all end on the newest.
    for version in range(22, 42):
        live.hub.update(ROOM, "lipstick", 500 - version, version, T0 + version)
    await tally.everyone_saw(41)
    live.hub.close()
    received = await asyncio.gather(*subscribers)

    for changes in received:
        versions = [version for version, _ in changes]
        assert versions[:20] == list(range(2, 22))
        assert versions == sorted(set(versions))
        assert changes[-1] == (41, 500 - 41)
    await live.until(lambda: live.subscribers("sse") + live.subscribers("websocket") == 0)
