"""The live-room stream: the hub on plain values, then SSE and WebSocket subscribers on a real
local server, up to a thousand of them on one room."""

from __future__ import annotations

import asyncio
import math
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
from sync_worker.domain.velocity import SkuVelocity
from sync_worker.metrics import Metrics
from sync_worker.streaming.app import live_seed
from sync_worker.web.live import HubClosed, LiveHub, LivePace, LiveStock, live_routes

ROOM = "room-1"
T0 = 1_700_000_000_000
NO_PACE = {"velocity_per_min": None, "eta_s": None, "restock_eta_ms": None}
"""What a message carries for a SKU whose pace nobody sent yet: every field, as null."""

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


# --- the pace ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("velocity", "eta", "shown"),
    [
        (0.04, 42.4, LivePace(0.0, 42)),
        (5.67, 187.4, LivePace(5.7, 190)),
        (56.7, 1234.0, LivePace(57.0, 1200)),
        (567.0, 0.4, LivePace(570.0, 0)),
        (-1.0, math.inf, LivePace(0.0, None)),
        (None, None, LivePace()),
    ],
)
def test_a_pace_is_shown_to_two_significant_digits(
    velocity: float | None, eta: float | None, shown: LivePace
) -> None:
    assert LivePace.shown(velocity, eta, None) == shown


def test_a_pace_change_goes_out_with_the_count_held_and_its_version() -> None:
    hub = LiveHub()
    hub.update(ROOM, "lipstick", 5, 7, T0)
    subscription = hub.subscribe(ROOM)

    sent = hub.update_pace(
        ROOM, "lipstick", velocity_per_min=12.34, eta_s=187.4, restock_eta_ms=T0 + 1_200_000
    )

    pace = LivePace(12.0, 190, T0 + 1_200_000)
    assert sent
    assert subscription.pending == 1
    assert hub.snapshot(ROOM) == (LiveStock(ROOM, "lipstick", 5, 7, T0, pace),)


async def test_a_pace_that_shows_the_same_sends_nothing() -> None:
    hub = LiveHub()
    hub.update(ROOM, "lipstick", 5, 7, T0)
    hub.update_pace(ROOM, "lipstick", velocity_per_min=12.34, eta_s=187.4)
    subscription = hub.subscribe(ROOM)

    unchanged = hub.update_pace(ROOM, "lipstick", velocity_per_min=12.4, eta_s=186.0)
    other_room = hub.update_pace("room-2", "lipstick", velocity_per_min=12.4, eta_s=186.0)
    faster = hub.update_pace(ROOM, "lipstick", velocity_per_min=12.6, eta_s=186.0)

    assert (unchanged, other_room, faster) == (False, True, True)
    assert await subscription.changes() == [
        LiveStock(ROOM, "lipstick", 5, 7, T0, LivePace(13.0, 190))
    ]


def test_a_count_change_keeps_the_pace() -> None:
    hub = LiveHub()
    hub.update(ROOM, "lipstick", 5, 7, T0)
    hub.update_pace(ROOM, "lipstick", velocity_per_min=30.0, eta_s=10.0)

    hub.update(ROOM, "lipstick", 4, 8, T0 + 1)

    assert hub.snapshot(ROOM) == (LiveStock(ROOM, "lipstick", 4, 8, T0 + 1, LivePace(30.0, 10)),)


def test_a_pace_before_the_first_count_rides_with_it() -> None:
    def books(channel: str) -> list[LiveStock]:
        return [LiveStock(channel, "mascara", 2, 9, T0)]

    hub = LiveHub(seed=books)
    hub.update_pace(ROOM, "lipstick", velocity_per_min=30.0, eta_s=None)
    hub.update_pace(ROOM, "mascara", velocity_per_min=3.0, eta_s=40.0)
    assert hub.snapshot(ROOM) == ()

    hub.update(ROOM, "lipstick", 5, 1, T0)
    subscription = hub.subscribe(ROOM)  # seeds the mascara from the books

    assert subscription.snapshot == (
        LiveStock(ROOM, "lipstick", 5, 1, T0, LivePace(30.0, None)),
        LiveStock(ROOM, "mascara", 2, 9, T0, LivePace(3.0, 40)),
    )


async def test_a_slow_subscriber_gets_the_newest_count_and_pace_in_one_change() -> None:
    hub = LiveHub()
    hub.update(ROOM, "lipstick", 9, 1, T0)
    slow = hub.subscribe(ROOM)

    hub.update_pace(ROOM, "lipstick", velocity_per_min=10.0, eta_s=54.0)
    hub.update(ROOM, "lipstick", 8, 2, T0 + 1)
    hub.update_pace(ROOM, "lipstick", velocity_per_min=11.0, eta_s=44.0)

    assert slow.pending == 1
    assert await slow.changes() == [LiveStock(ROOM, "lipstick", 8, 2, T0 + 1, LivePace(11.0, 44))]


def test_a_closed_hub_takes_no_pace() -> None:
    hub = LiveHub()
    hub.update(ROOM, "lipstick", 9, 1, T0)
    hub.close()

    assert not hub.update_pace(ROOM, "lipstick", velocity_per_min=10.0, eta_s=54.0)
    assert hub.snapshot(ROOM)[0].pace == LivePace()


def test_a_hot_skus_pace_sent_after_every_sale_does_not_flood_the_room() -> None:
    hub, pace = LiveHub(), SkuVelocity()
    hub.update(ROOM, "lipstick", 50, 1, T0)
    remaining, sent_at = 6000, []
    for sale in range(6000):  # ten sales a second for ten minutes, until sold out
        at_ms = T0 + sale * 100
        pace.sold(ROOM, 1, at_ms)
        remaining -= 1
        velocity, eta = pace.velocity(at_ms, ROOM).smoothed_per_min, pace.eta_s(remaining, at_ms)
        if hub.update_pace(ROOM, "lipstick", velocity_per_min=velocity, eta_s=eta):
            sent_at.append(at_ms)

    steady = [at_ms for at_ms in sent_at if T0 + 120_000 <= at_ms < T0 + 480_000]
    assert len(sent_at) < 600  # fewer than one a second, though offered ten a second
    # At a steady pace mostly the ETA's 10 s steps (~one in 10 s): at most one in 5 s.
    assert len(steady) <= 360 / 5
    assert hub.snapshot(ROOM)[0].pace == LivePace(600.0, 0)


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
                **NO_PACE,
            },
            {
                "channel": ROOM,
                "sku": "mascara",
                "quantity": 3,
                "version": 4,
                "event_time_ms": T0,
                **NO_PACE,
            },
        ],
    }
    assert (change["event"], change["id"]) == ("stock", "8")
    assert orjson.loads(change["data"]) == {
        "channel": ROOM,
        "sku": "lipstick",
        "quantity": 4,
        "version": 8,
        "event_time_ms": T0 + 2,
        **NO_PACE,
    }


async def test_a_websocket_on_the_same_path_sends_typed_messages(make_live: MakeLive) -> None:
    live = await make_live()
    live.hub.update(ROOM, "lipstick", 5, 7, T0)

    async with live.session.ws_connect(f"{live.url}/{ROOM}") as ws:
        snapshot = await ws.receive_json()
        live.hub.update(ROOM, "lipstick", 4, 8, T0 + 1)
        change = await ws.receive_json()

    stock = {
        "channel": ROOM,
        "sku": "lipstick",
        "quantity": 5,
        "version": 7,
        "event_time_ms": T0,
        **NO_PACE,
    }
    assert snapshot == {"type": "snapshot", "channel": ROOM, "skus": [stock]}
    assert change == {
        "type": "stock",
        **stock,
        "quantity": 4,
        "version": 8,
        "event_time_ms": T0 + 1,
    }


async def test_the_pace_rides_in_the_snapshot_and_in_its_own_changes(
    make_live: MakeLive,
) -> None:
    live = await make_live()
    live.hub.update(ROOM, "lipstick", 5, 7, T0)
    live.hub.update_pace(ROOM, "lipstick", velocity_per_min=12.0, eta_s=None)
    stock = {"channel": ROOM, "sku": "lipstick", "quantity": 5, "version": 7, "event_time_ms": T0}

    async with live.session.get(f"{live.url}/{ROOM}") as response:
        events = sse_events(response)
        snapshot = orjson.loads((await anext(events))["data"])
        live.hub.update_pace(
            ROOM, "lipstick", velocity_per_min=40.0, eta_s=25.2, restock_eta_ms=T0 + 600_000
        )
        change = await anext(events)
    async with live.session.ws_connect(f"{live.url}/{ROOM}") as ws:
        ws_snapshot = await ws.receive_json()

    assert snapshot["skus"] == [
        {**stock, "velocity_per_min": 12.0, "eta_s": None, "restock_eta_ms": None}
    ]
    paced = {**stock, "velocity_per_min": 40.0, "eta_s": 25, "restock_eta_ms": T0 + 600_000}
    assert (change["event"], change["id"]) == ("stock", "7")
    assert orjson.loads(change["data"]) == paced
    assert ws_snapshot["skus"] == [paced]


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
