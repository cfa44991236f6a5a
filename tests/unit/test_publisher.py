"""The publisher against the real simulator: a local HTTP server, live rooms, the connector.

Nothing here waits for a fixed time: each test waits until the room (or a metric) shows
the expected state, with a generous hang guard that no healthy run comes near.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from connectors.simulator.connector import SimulatorConnector
from connectors.simulator.rooms import LiveRoom
from connectors.simulator.server import Faults, RunningServer, create_app, start_server
from connectors.simulator.stock_api import stock_path
from sync_worker.domain.events import StockLevelChanged
from sync_worker.metrics import Metrics
from sync_worker.publishing import Publisher

ROOM = "tiktok-room-1"
SKU = "lipstick"
HANG_GUARD_S = 30.0


class RecordingRoom(LiveRoom):
    """A live room that also remembers every push it was offered, applied or not."""

    def __init__(self, channel: str) -> None:
        super().__init__(channel, "tiktok")
        self.offered: list[tuple[str, int, bool]] = []

    def apply_push(self, sku: str, quantity: int, version: int) -> bool:
        applied = super().apply_push(sku, quantity, version)
        self.offered.append((sku, version, applied))
        return applied

    def versions(self, sku: str = SKU) -> list[int]:
        return [version for pushed, version, _ in self.offered if pushed == sku]


@dataclass
class Rig:
    publisher: Publisher
    metrics: Metrics
    faults: Faults
    rooms: dict[str, RecordingRoom]
    requests: list[str] = field(default_factory=list)
    """The path of every request the simulator received, in order."""

    def pushes(self, result: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "stockcast_pushes_total", {"connector": "simulator", "result": result}
        )
        return value or 0.0


MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig() -> AsyncIterator[MakeRig]:
    """A started publisher pushing to ``channels``; the simulator serves ``served`` rooms."""
    running: list[tuple[Publisher, RunningServer]] = []

    async def make(channels: Sequence[str] = (ROOM,), served: Sequence[str] = (ROOM,)) -> Rig:
        rooms = {channel: RecordingRoom(channel) for channel in served}
        faults = Faults()
        app = create_app(rooms, faults=faults)
        requests: list[str] = []

        @web.middleware
        async def record(request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:
            requests.append(request.path)
            return await handler(request)

        app.middlewares.append(record)
        server = await start_server(app)
        metrics = Metrics.create()
        publisher = Publisher(
            [(channel, SimulatorConnector(server.url)) for channel in channels], metrics
        )
        await publisher.start()
        running.append((publisher, server))
        return Rig(publisher, metrics, faults, rooms, requests)

    yield make
    for publisher, server in running:
        await publisher.stop()
        await server.stop()


def level(version: int, sellable: int | None = None, sku: str = SKU) -> StockLevelChanged:
    """The level of ``version``; by default each version sells one more unit of 1000."""
    sellable = 1000 - version if sellable is None else sellable
    return StockLevelChanged(
        sku=sku,
        on_hand=1000,
        committed=1000 - sellable,
        safety_reserve=0,
        unavailable=0,
        returns_pending=0,
        incoming=0,
        sellable=sellable,
        version=version,
        cause_event_id=f"ev-{version}",
        event_time_ms=1_700_000_000_000 + version,
    )


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        # Polled, not event-driven: the conditions span rooms, metrics and the server.
        while True:
            if condition():
                return
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), HANG_GUARD_S)


def path(channel: str, sku: str = SKU) -> str:
    return "/" + stock_path(channel, sku)


def assert_never_stale(room: RecordingRoom) -> None:
    """Every push the room received applied: per SKU, versions only ever went up."""
    assert all(applied for _, _, applied in room.offered), room.offered
    for sku in {sku for sku, _, _ in room.offered}:
        assert room.versions(sku) == sorted(set(room.versions(sku))), sku
    assert room.counters.pushes_stale == 0


# --- latest value wins ----------------------------------------------------------------


async def test_a_burst_of_versions_ends_with_the_newest_count(make_rig: MakeRig) -> None:
    rig = await make_rig()
    room = rig.rooms[ROOM]

    for version in range(1, 51):
        rig.publisher.offer(level(version))
    await until(lambda: room.last_version(SKU) == 50)
    await until(lambda: rig.pushes("ok") == room.counters.pushes_applied)  # acks trail the room

    assert room.displayed(SKU) == 1000 - 50
    assert_never_stale(room)
    assert room.counters.pushes_applied <= 50
    assert rig.pushes("failed") == 0


async def test_versions_offered_while_pushes_are_in_flight_never_go_backwards(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig()
    room = rig.rooms[ROOM]

    for version in range(1, 101):
        rig.publisher.offer(level(version))
        await asyncio.sleep(0)  # let the drain task push between offers
    await until(lambda: room.last_version(SKU) == 100)

    assert room.displayed(SKU) == 900
    assert_never_stale(room)


async def test_an_older_version_offered_late_is_never_pushed(make_rig: MakeRig) -> None:
    rig = await make_rig()
    room = rig.rooms[ROOM]

    for version in (3, 1, 2, 5, 4):
        rig.publisher.offer(level(version))
        await asyncio.sleep(0)
    await until(lambda: room.last_version(SKU) == 5)
    for version in (4, 5, 2):  # redelivered levels, all already superseded
        rig.publisher.offer(level(version))
    rig.publisher.offer(level(6))
    await until(lambda: room.last_version(SKU) == 6)

    assert room.displayed(SKU) == 994
    assert_never_stale(room)
    versions = room.versions()
    assert versions[versions.index(5) + 1 :] == [6]  # nothing between the newest and 6


async def test_every_channel_gets_the_newest_count_of_every_sku(make_rig: MakeRig) -> None:
    channels = ("tiktok-room-1", "douyin-room-1", "kuaishou-room-1")
    rig = await make_rig(channels, channels)

    for version in range(1, 21):
        rig.publisher.offer(level(version, sku="lipstick"))
        rig.publisher.offer(level(version, sellable=version, sku="mascara"))
        if version % 3 == 0:
            await asyncio.sleep(0)
    await until(
        lambda: all(
            room.last_version("lipstick") == 20 and room.last_version("mascara") == 20
            for room in rig.rooms.values()
        )
    )

    for room in rig.rooms.values():
        assert (room.displayed("lipstick"), room.displayed("mascara")) == (980, 20)
        assert_never_stale(room)


# --- failures -------------------------------------------------------------------------


async def test_a_transient_server_error_is_retried_then_applied(make_rig: MakeRig) -> None:
    rig = await make_rig()
    room = rig.rooms[ROOM]
    rig.faults.inject(500)

    rig.publisher.offer(level(1, sellable=42))
    await until(lambda: rig.pushes("ok") == 1)

    assert room.displayed(SKU) == 42
    assert len(rig.faults) == 0
    assert rig.requests == [path(ROOM), path(ROOM)]
    assert rig.pushes("failed") == 0


async def test_a_rate_limit_is_retried_then_applied(make_rig: MakeRig) -> None:
    rig = await make_rig()
    rig.faults.inject(429, retry_after="0")

    rig.publisher.offer(level(1, sellable=7))
    await until(lambda: rig.pushes("ok") == 1)

    assert rig.rooms[ROOM].displayed(SKU) == 7
    assert rig.requests == [path(ROOM), path(ROOM)]


async def test_an_unknown_channel_is_given_up_and_counted_as_failed(make_rig: MakeRig) -> None:
    rig = await make_rig(channels=(ROOM, "ghost-room"), served=(ROOM,))

    rig.publisher.offer(level(1, sellable=9))
    await until(lambda: rig.pushes("failed") == 1 and rig.pushes("ok") == 1)

    assert rig.requests.count(path("ghost-room")) == 1  # a 404 is not retried
    assert rig.rooms[ROOM].displayed(SKU) == 9

    rig.publisher.offer(level(2, sellable=8))  # both channels keep working after the failure
    await until(lambda: rig.pushes("failed") == 2 and rig.pushes("ok") == 2)

    assert rig.rooms[ROOM].displayed(SKU) == 8
    assert rig.requests.count(path("ghost-room")) == 2
