"""The publisher against the real simulator: a local HTTP server, live rooms, the connector.

Nothing here waits for a fixed time: each test waits until the room (or a metric) shows
the expected state, with a generous hang guard that no healthy run comes near. Writes
that must be in flight while something else happens are held by a server middleware.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Self

import pytest
from aiohttp import web

from connectors.base import PushResult, StockUpdate, WriteMode
from connectors.simulator.connector import SimulatorConnector
from connectors.simulator.rooms import LiveRoom
from connectors.simulator.server import Faults, RunningServer, create_app, start_server
from sync_worker.domain.events import ReclaimSettled
from sync_worker.metrics import Metrics
from sync_worker.publishing import Publisher
from tests.unit.publisher_support import ROOM, SKU, change, until

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

WRITES = frozenset({"POST", "PUT"})


class RecordingRoom(LiveRoom):
    """A live room that also remembers every adjustment it was sent, repeated or not."""

    def __init__(self, channel: str, displayed: Mapping[str, int] | None = None) -> None:
        super().__init__(channel, "tiktok", displayed)
        self.adjustments: list[tuple[str, int, str]] = []

    def apply_delta(self, sku: str, delta: int, idempotency_key: str) -> tuple[int, int]:
        self.adjustments.append((sku, delta, idempotency_key))
        return super().apply_delta(sku, delta, idempotency_key)

    def keys(self, sku: str = SKU) -> list[str]:
        return [key for adjusted, _, key in self.adjustments if adjusted == sku]

    def deltas(self, sku: str = SKU) -> list[int]:
        return [delta for adjusted, delta, _ in self.adjustments if adjusted == sku]


@dataclass
class Hold:
    """Holds the next write at the server until released, so it is surely in flight."""

    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class ServerScript:
    """What the simulator's middleware records and does to the writes it receives."""

    requests: list[tuple[str, float]] = field(default_factory=list)
    """Method and loop time of every write, in order."""
    holds: list[Hold] = field(default_factory=list)
    answers_to_lose: int = 0
    """Writes the server applies but answers 503, as if the answer was lost on the way."""

    def hold_next_write(self) -> Hold:
        hold = Hold()
        self.holds.append(hold)
        return hold

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in WRITES:
            return await handler(request)
        self.requests.append((request.method, asyncio.get_running_loop().time()))
        if self.holds:
            hold = self.holds.pop(0)
            hold.arrived.set()
            await hold.release.wait()
        response = await handler(request)
        if self.answers_to_lose and response.status == 200:
            self.answers_to_lose -= 1
            return web.Response(status=503, text="answer lost")
        return response


@dataclass
class Rig:
    publisher: Publisher
    metrics: Metrics
    faults: Faults
    rooms: dict[str, RecordingRoom]
    settled: list[ReclaimSettled]
    script: ServerScript

    def count(self, metric: str, result: str) -> float:
        labels = {"connector": "simulator", "result": result}
        return self.metrics.registry.get_sample_value(f"stockcast_{metric}_total", labels) or 0.0

    def in_flight(self, channel: str = ROOM) -> float | None:
        return self.metrics.registry.get_sample_value(
            "stockcast_connector_writes_in_flight", {"channel": channel}
        )


MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig() -> AsyncIterator[MakeRig]:
    """A started publisher writing to ``channels``; the simulator serves ``served`` rooms."""
    running: list[tuple[Publisher, RunningServer]] = []

    async def make(
        channels: Sequence[str] = (ROOM,),
        served: Sequence[str] = (ROOM,),
        displayed: Mapping[str, int] | None = None,
        write_modes: str = "delta,compare_and_swap",
        on_settled: Callable[[ReclaimSettled], Awaitable[None]] | None = None,
        writes_in_flight: int = 8,
    ) -> Rig:
        rooms = {channel: RecordingRoom(channel, displayed) for channel in served}
        faults = Faults()
        app = create_app(rooms, faults=faults)
        script = ServerScript()
        app.middlewares.append(script.middleware)
        settled: list[ReclaimSettled] = []

        async def collect(event: ReclaimSettled) -> None:
            settled.append(event)

        server = await start_server(app)
        metrics = Metrics.create()
        options = {"base_url": server.url, "write_modes": write_modes}
        connectors = [(channel, SimulatorConnector.from_options(options)) for channel in channels]
        publisher = Publisher(
            connectors,
            metrics,
            on_settled or collect,
            retry_later_s=0.01,
            writes_in_flight={channel: writes_in_flight for channel in channels},
        )
        await publisher.start()
        running.append((publisher, server))
        return Rig(publisher, metrics, faults, rooms, settled, script)

    yield make
    for publisher, server in running:
        await publisher.stop()
        await server.stop()


# --- deltas, coalescing, order --------------------------------------------------------


async def test_a_grant_is_written_as_a_delta_and_reaches_the_room(make_rig: MakeRig) -> None:
    rig = await make_rig()

    rig.publisher.offer(change(1, delta=5, quota=5))
    await until(lambda: rig.count("pushes", "ok") == 1)

    assert rig.publisher.write_mode(ROOM) is WriteMode.DELTA
    assert rig.rooms[ROOM].displayed(SKU) == 5
    assert rig.rooms[ROOM].adjustments == [(SKU, 5, f"{ROOM}:{SKU}:1-1")]
    assert rig.settled == []  # only reductions are settled


async def test_increases_waiting_behind_a_write_in_flight_coalesce_into_one(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig()
    hold = rig.script.hold_next_write()
    rig.publisher.offer(change(1, delta=5, quota=5))
    await hold.arrived.wait()

    for version in range(2, 12):
        rig.publisher.offer(change(version, delta=1, quota=5 + version - 1))
    hold.release.set()
    await until(lambda: rig.count("pushes", "ok") == 2)

    room = rig.rooms[ROOM]
    assert room.deltas() == [5, 10]
    assert room.keys() == [f"{ROOM}:{SKU}:1-1", f"{ROOM}:{SKU}:2-11"]
    assert room.displayed(SKU) == 15


async def test_a_reduction_is_never_merged_and_everything_applies_in_version_order(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig()
    hold = rig.script.hold_next_write()
    rig.publisher.offer(change(1, delta=5, quota=5))
    await hold.arrived.wait()

    for version, delta, quota in [(2, 2, 7), (3, -3, 4), (4, -1, 3), (5, 1, 4), (6, 1, 5)]:
        rig.publisher.offer(change(version, delta, quota))
    hold.release.set()
    await until(lambda: rig.count("pushes", "ok") == 5)

    room = rig.rooms[ROOM]
    assert room.deltas() == [5, 2, -3, -1, 2]
    assert room.keys()[1:] == [f"{ROOM}:{SKU}:{r}" for r in ("2-2", "3-3", "4-4", "5-6")]
    assert room.displayed(SKU) == 5
    assert [(s.version, s.requested, s.applied) for s in rig.settled] == [(3, 3, 3), (4, 1, 1)]


async def test_a_write_in_flight_holds_up_its_own_sku_only(make_rig: MakeRig) -> None:
    rig = await make_rig()
    hold = rig.script.hold_next_write()
    rig.publisher.offer(change(1, delta=5, quota=5))
    await hold.arrived.wait()

    rig.publisher.offer(change(2, delta=1, quota=6))  # behind the held write
    for sku in ("mascara", "blush", "liner"):
        rig.publisher.offer(change(1, delta=2, quota=2, sku=sku))
    await until(lambda: rig.count("pushes", "ok") == 3)

    room = rig.rooms[ROOM]
    assert [room.displayed(sku) for sku in ("mascara", "blush", "liner")] == [2, 2, 2]
    assert room.deltas() == []  # lipstick: neither the held write nor the one behind it
    hold.release.set()
    await until(lambda: rig.count("pushes", "ok") == 5)
    assert room.deltas() == [5, 1]


async def test_a_change_that_moves_nothing_does_not_hold_up_the_next(make_rig: MakeRig) -> None:
    rig = await make_rig()
    hold = rig.script.hold_next_write()
    rig.publisher.offer(change(1, delta=5, quota=5))
    await hold.arrived.wait()

    rig.publisher.offer(change(2, delta=0, quota=5))
    rig.publisher.offer(change(3, delta=-2, quota=3))
    hold.release.set()
    await until(lambda: rig.count("pushes", "ok") == 2)

    assert rig.rooms[ROOM].deltas() == [5, -2]


async def test_a_channel_has_at_most_its_writes_in_flight(make_rig: MakeRig) -> None:
    rig = await make_rig(writes_in_flight=2)
    holds = [rig.script.hold_next_write() for _ in range(2)]
    for sku in ("lipstick", "mascara", "blush"):
        rig.publisher.offer(change(1, delta=2, quota=2, sku=sku))
    for hold in holds:
        await hold.arrived.wait()
    await asyncio.sleep(0.05)  # room for a third write to arrive, wrongly

    assert len(rig.script.requests) == 2
    assert rig.in_flight() == 2
    holds[0].release.set()
    await until(lambda: rig.count("pushes", "ok") == 2)
    holds[1].release.set()
    await until(lambda: rig.count("pushes", "ok") == 3)
    assert len(rig.script.requests) == 3
    await until(lambda: rig.in_flight() == 0)


async def test_versions_already_handled_are_dropped(make_rig: MakeRig) -> None:
    rig = await make_rig()
    for version in (1, 2):
        rig.publisher.offer(change(version, delta=5, quota=5 * version))
    await until(lambda: rig.rooms[ROOM].displayed(SKU) == 10)

    for version in (2, 1, 2):  # redelivered
        rig.publisher.offer(change(version, delta=5, quota=5 * version))
    rig.publisher.offer(change(3, delta=-4, quota=6))
    rig.publisher.offer(change(3, delta=-4, quota=6))
    await until(lambda: len(rig.settled) == 1)

    assert rig.rooms[ROOM].displayed(SKU) == 6
    assert rig.rooms[ROOM].deltas() == [10, -4]
    assert rig.count("quota_changes", "duplicate") == 4
    assert rig.count("quota_changes", "queued") == 3


async def test_every_channel_and_sku_gets_its_own_deltas(make_rig: MakeRig) -> None:
    channels = ("tiktok-room-1", "douyin-room-1")
    rig = await make_rig(channels, channels)

    for version, channel in enumerate(channels, start=1):
        rig.publisher.offer(change(version, 4, 4, sku="lipstick", channel=channel))
        rig.publisher.offer(change(version, 7, 7, sku="mascara", channel=channel))
    rig.publisher.offer(change(9, 50, 50, channel="kuaishou-room-1"))  # not ours: ignored
    await until(lambda: rig.count("pushes", "ok") == 4)

    for room in rig.rooms.values():
        assert (room.displayed("lipstick"), room.displayed("mascara")) == (4, 7)
    assert rig.count("quota_changes", "queued") == 4


# --- reclaims -------------------------------------------------------------------------


async def test_a_reduction_is_settled_with_what_the_platform_really_took_off(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig(displayed={SKU: 2})

    rig.publisher.offer(change(7, delta=-6, quota=0))
    await until(lambda: len(rig.settled) == 1)

    settled = rig.settled[0]
    assert settled.event_id == f"settle:{ROOM}:{SKU}:7"
    assert (settled.sku, settled.channel, settled.actor) == (SKU, ROOM, "publisher")
    assert (settled.version, settled.requested, settled.applied) == (7, 6, 2)
    assert rig.count("reclaims", "partial") == 1


async def test_a_settlement_that_cannot_be_sent_is_counted_and_the_channel_goes_on(
    make_rig: MakeRig,
) -> None:
    async def broken(event: ReclaimSettled) -> None:
        raise RuntimeError("producer gone")

    rig = await make_rig(displayed={SKU: 10}, on_settled=broken)

    rig.publisher.offer(change(1, delta=-6, quota=4))
    rig.publisher.offer(change(2, delta=3, quota=7))
    await until(lambda: rig.count("pushes", "ok") == 2)

    assert rig.count("reclaims", "unreported") == 1
    assert rig.rooms[ROOM].displayed(SKU) == 7


# --- failures -------------------------------------------------------------------------


async def test_a_write_whose_answer_was_lost_is_retried_with_its_key_and_applies_once(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig(displayed={SKU: 10})
    rig.script.answers_to_lose = 1

    rig.publisher.offer(change(1, delta=-6, quota=4))
    await until(lambda: len(rig.settled) == 1)

    room = rig.rooms[ROOM]
    assert room.keys() == [f"{ROOM}:{SKU}:1-1"] * 2
    assert room.displayed(SKU) == 4
    assert (room.counters.adjustments_applied, room.counters.adjustments_repeated) == (1, 1)
    assert rig.settled[0].applied == 6  # the retry got the first answer again


async def test_a_transient_server_error_is_retried_with_the_same_key(make_rig: MakeRig) -> None:
    rig = await make_rig()
    rig.faults.inject(503)

    rig.publisher.offer(change(1, delta=42, quota=42))
    await until(lambda: rig.count("pushes", "ok") == 1)

    assert rig.rooms[ROOM].displayed(SKU) == 42
    assert len(rig.script.requests) == 2
    assert rig.rooms[ROOM].keys() == [f"{ROOM}:{SKU}:1-1"]  # the first never reached the room


async def test_a_rate_limit_waits_at_least_as_long_as_the_platform_asked(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig()
    rig.faults.inject(429, retry_after="0.3")

    rig.publisher.offer(change(1, delta=7, quota=7))
    await until(lambda: rig.count("pushes", "ok") == 1)

    assert rig.rooms[ROOM].displayed(SKU) == 7
    (_, limited_at), (_, retried_at) = rig.script.requests
    assert retried_at - limited_at >= 0.3


async def test_a_write_failing_every_attempt_is_kept_and_sent_again_before_newer_ones(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig()
    rig.faults.inject(503, times=5)  # every attempt of the first round

    rig.publisher.offer(change(1, delta=3, quota=3))
    await until(lambda: rig.count("pushes", "deferred") == 1)
    rig.publisher.offer(change(2, delta=4, quota=7))
    await until(lambda: rig.count("pushes", "ok") == 2)

    room = rig.rooms[ROOM]
    assert room.keys() == [f"{ROOM}:{SKU}:1-1", f"{ROOM}:{SKU}:2-2"]  # not merged after all
    assert room.displayed(SKU) == 7


async def test_a_rejected_write_is_dropped_and_a_rejected_reduction_settles_nothing(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig(channels=(ROOM, "ghost-room"), served=(ROOM,), displayed={SKU: 9})

    rig.publisher.offer(change(1, delta=-5, quota=4, channel="ghost-room"))
    rig.publisher.offer(change(2, delta=-5, quota=4))
    await until(lambda: len(rig.settled) == 2)

    by_channel = {s.channel: (s.requested, s.applied) for s in rig.settled}
    assert by_channel == {"ghost-room": (5, 0), ROOM: (5, 5)}
    assert rig.count("pushes", "rejected") == 1
    assert rig.count("reclaims", "none") == 1
    assert len(rig.script.requests) == 2  # a 404 is not retried


class Unwritable:
    """A third-party connector that declares no write mode."""

    platform: ClassVar[str] = "unwritable"
    write_modes: frozenset[WriteMode] = frozenset()

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Self:
        return cls()

    async def start(self) -> None: ...

    async def push_stock(self, update: StockUpdate, mode: WriteMode) -> PushResult:
        raise AssertionError("never called")

    async def close(self) -> None: ...


def test_a_connector_without_a_write_mode_is_refused_at_construction() -> None:
    async def ignore(event: ReclaimSettled) -> None: ...

    with pytest.raises(ValueError, match="no write mode"):
        Publisher([(ROOM, Unwritable())], Metrics.create(), ignore)
