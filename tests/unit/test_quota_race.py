"""A platform sells concurrently with a quota reduction.

A room shows 10 units; stockcast lowers the channel's quota to 4 (delta -6) while buyers
take units on the platform before the write lands. The race is made deterministic by
holding the write at the server until the sales happened. A delta or compare-and-swap
write takes the reduction off what is left and reports what it really took; an absolute
write puts back units already sold, which is why the publisher never picks it when a
safe mode is declared.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from itertools import combinations

import pytest
from aiohttp import web

from connectors.base import WriteMode, choose_write_mode
from connectors.simulator.connector import SimulatorConnector
from connectors.simulator.rooms import LiveRoom
from connectors.simulator.server import RunningServer, create_app, start_server
from sync_worker.domain.events import ReclaimSettled, StockQuotaChanged
from sync_worker.metrics import Metrics
from sync_worker.publishing import Publisher

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ROOM = "douyin-room-1"
SKU = "lipstick"
SHOWN = 10
HANG_GUARD_S = 30.0


@dataclass
class Race:
    """A publisher and a room whose first write is held until ``sell_then_release``."""

    publisher: Publisher
    room: LiveRoom
    write_arrived: asyncio.Event
    release: asyncio.Event
    settled: list[ReclaimSettled]
    any_settled: asyncio.Event

    async def sell_then_release(self, units: int) -> None:
        await asyncio.wait_for(self.write_arrived.wait(), HANG_GUARD_S)
        for _ in range(units):
            assert self.room.try_order(SKU, 1)
        self.release.set()

    async def settlement(self) -> ReclaimSettled:
        await asyncio.wait_for(self.any_settled.wait(), HANG_GUARD_S)
        return self.settled[0]


MakeRace = Callable[[str], Awaitable[Race]]


@pytest.fixture
async def make_race() -> AsyncIterator[MakeRace]:
    running: list[tuple[Race, RunningServer]] = []

    async def make(write_modes: str) -> Race:
        room = LiveRoom(ROOM, "douyin", {SKU: SHOWN})
        arrived, release = asyncio.Event(), asyncio.Event()

        @web.middleware
        async def hold_first_write(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.method in ("POST", "PUT") and not arrived.is_set():
                arrived.set()
                await release.wait()
            return await handler(request)

        app = create_app({ROOM: room})
        app.middlewares.append(hold_first_write)
        server = await start_server(app)
        connector = SimulatorConnector.from_options(
            {"base_url": server.url, "write_modes": write_modes}
        )
        settled: list[ReclaimSettled] = []
        any_settled = asyncio.Event()

        async def on_settled(event: ReclaimSettled) -> None:
            settled.append(event)
            any_settled.set()

        publisher = Publisher([(ROOM, connector)], Metrics.create(), on_settled)
        race = Race(publisher, room, arrived, release, settled, any_settled)
        await publisher.start()
        running.append((race, server))
        return race

    yield make
    for race, server in running:
        race.release.set()  # else stopping the server waits for a held request
        await race.publisher.stop()
        await server.stop()


def reduction(delta: int = -6, quota: int = SHOWN - 6) -> StockQuotaChanged:
    return StockQuotaChanged(
        sku=SKU,
        channel=ROOM,
        quota=quota,
        delta=delta,
        version=3,
        cause_event_id="pin-ended",
        event_time_ms=1_700_000_000_000,
    )


@pytest.mark.parametrize("modes", ["delta", "compare_and_swap"])
@pytest.mark.parametrize(
    ("sold", "shown_after", "applied"),
    [
        (3, 1, 6),  # the platform had room for the whole reduction
        (8, 0, 2),  # it sold more than the new quota: clamped at 0, only 2 reclaimed
    ],
)
async def test_a_safe_write_takes_the_reduction_off_what_is_left(
    make_race: MakeRace, modes: str, sold: int, shown_after: int, applied: int
) -> None:
    race = await make_race(modes)

    race.publisher.offer(reduction())
    await race.sell_then_release(sold)
    settled = await race.settlement()

    assert race.room.displayed(SKU) == shown_after
    assert (settled.requested, settled.applied) == (6, applied)
    # Every unit the room showed is accounted for: sold, still shown, or reclaimed.
    assert sold + race.room.displayed(SKU) + settled.applied == SHOWN
    if modes == "compare_and_swap":
        assert race.room.counters.pushes_conflicted == 1  # the race really happened


async def test_an_absolute_write_in_the_same_race_resurrects_the_sold_units(
    make_race: MakeRace,
) -> None:
    race = await make_race("absolute")

    race.publisher.offer(reduction())
    await race.sell_then_release(3)
    settled = await race.settlement()

    assert race.room.displayed(SKU) == 4  # should be 1: the 3 sold units are for sale again
    assert 3 + race.room.displayed(SKU) + settled.applied == SHOWN + 3


@pytest.mark.parametrize(
    "modes",
    [
        set(subset)
        for size in range(1, len(WriteMode) + 1)
        for subset in combinations(WriteMode, size)
        if WriteMode.DELTA in subset or WriteMode.COMPARE_AND_SWAP in subset
    ],
)
def test_absolute_is_never_chosen_when_a_safe_mode_is_declared(modes: set[WriteMode]) -> None:
    chosen = choose_write_mode(modes)

    assert chosen is not WriteMode.ABSOLUTE
    assert chosen is (WriteMode.DELTA if WriteMode.DELTA in modes else WriteMode.COMPARE_AND_SWAP)


def test_absolute_is_chosen_only_when_it_is_all_there_is_and_nothing_is_no_choice() -> None:
    assert choose_write_mode({WriteMode.ABSOLUTE}) is WriteMode.ABSOLUTE
    with pytest.raises(ValueError, match="no write mode"):
        choose_write_mode(set())


async def test_the_publisher_writes_deltas_to_a_connector_that_also_offers_absolute(
    make_race: MakeRace,
) -> None:
    race = await make_race("absolute,compare_and_swap,delta")

    assert race.publisher.write_mode(ROOM) is WriteMode.DELTA
