"""The buyer generator: live-room buyers ordering, cancelling, and being redelivered.

Orders arrive as a Poisson process per scenario rate. Each tick the generator sleeps
once, then produces every arrival of the elapsed interval, so a burst of thousands of
orders a second costs one sleep per tick, not one per order, and a slow ``publish``
makes the next batch bigger instead of making the run drift.

The generator knows nothing of Kafka: ``publish(key, value)`` takes the SKU as key and
the encoded canonical event as value; the caller wires it to a producer.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import Final, Protocol

from connectors.simulator.clock import Clock, SystemClock
from connectors.simulator.scenario import (
    Burst,
    RoomSpec,
    Scenario,
    SkuSpec,
    build_rooms,
)
from connectors.simulator.wire import (
    CanonicalEvent,
    encode,
    message_key,
    order_line_cancelled,
    order_line_placed,
    stock_counted,
)

__all__ = [
    "Burst",
    "BuyerStats",
    "Publish",
    "Room",
    "RoomSpec",
    "Scenario",
    "SkuSpec",
    "build_rooms",
    "initial_stock_messages",
    "run_buyers",
]

Publish = Callable[[bytes, bytes], Awaitable[None]]
"""``publish(key, value)``: key is the SKU in UTF-8, value an orjson-encoded event."""


class Room(Protocol):
    """What buyers need of a room: a simulated ``LiveRoom``, or a room on a platform mock
    (the demo's), whose platform then tells stockcast by webhook."""

    @property
    def channel(self) -> str: ...

    @property
    def platform(self) -> str: ...

    def try_order(self, sku: str, quantity: int) -> bool:
        """Take the units off display, or refuse (False) when it shows fewer."""
        ...

    def cancel_order(self, sku: str, quantity: int) -> None: ...


# Buyers cancel recent orders; bounding the pool keeps a long run's memory flat.
_OPEN_LINES_CAP: Final = 50_000


@dataclass(frozen=True, slots=True)
class BuyerStats:
    """What one run did. Duplicates are counted in ``events_published`` too."""

    placed_lines: int
    units: int
    refused_sold_out: int
    cancellations: int
    duplicates_sent: int
    events_published: int


@dataclass(frozen=True, slots=True)
class _OpenLine:
    room: Room
    order_id: str
    line_id: str
    sku: str
    quantity: int


def initial_stock_messages(scenario: Scenario, event_time_ms: int) -> list[tuple[bytes, bytes]]:
    """``stock.counted`` messages giving stockcast the same counts the rooms start with."""
    return [
        (
            message_key(sku.sku),
            encode(
                stock_counted(
                    event_id=f"{scenario.run_id}-count-{sku.sku}",
                    sku=sku.sku,
                    quantity=sku.initial_stock,
                    event_time_ms=event_time_ms,
                )
            ),
        )
        for sku in scenario.skus
    ]


async def run_buyers(
    scenario: Scenario,
    rooms: Mapping[str, Room],
    publish: Publish,
    duration_s: float,
    clock: Clock | None = None,
) -> BuyerStats:
    """Let buyers order in ``rooms`` for ``duration_s`` seconds of ``clock`` time.

    ``rooms`` must hold every channel of the scenario (see ``build_rooms``); orders the
    room refuses as sold out are counted and not published. Deterministic for a given
    scenario when ``clock`` is virtual. An exception from ``publish`` ends the run.
    """
    if duration_s < 0:
        raise ValueError(f"duration_s must be >= 0, got {duration_s}")
    missing = [spec.channel for spec in scenario.rooms if spec.channel not in rooms]
    if missing:
        raise ValueError(f"no room for channel(s): {', '.join(missing)}")
    clock = clock if clock is not None else SystemClock()
    buyers = _Buyers(scenario, rooms, publish)
    origin_s = clock.now_s()
    done_s = 0.0
    while done_s < duration_s:
        target_s = min(done_s + scenario.tick_s, duration_s)
        await clock.sleep(max(0.0, origin_s + target_s - clock.now_s()))
        reached_s = min(clock.now_s() - origin_s, duration_s)
        if reached_s > done_s:
            await buyers.arrivals_between(done_s, reached_s, origin_s)
            done_s = reached_s
    return buyers.stats()


class _Buyers:
    """The state of one run: the seeded RNG, id counters, orders still cancellable."""

    def __init__(self, scenario: Scenario, rooms: Mapping[str, Room], publish: Publish):
        self._scenario = scenario
        self._publish = publish
        self._rng = random.Random(scenario.seed)
        self._rooms = [rooms[spec.channel] for spec in scenario.rooms]
        self._room_weights = _cumulative([spec.weight for spec in scenario.rooms])
        self._skus = [spec.sku for spec in scenario.skus]
        self._sku_weights = _cumulative([spec.weight for spec in scenario.skus])
        self._quantities = [qty for qty, _ in scenario.quantity_weights]
        self._quantity_weights = _cumulative([w for _, w in scenario.quantity_weights])
        self._open_lines: list[_OpenLine] = []
        self._orders = 0
        self._events = 0
        self._units = 0
        self._refused = 0
        self._cancellations = 0
        self._duplicates = 0
        self._published = 0

    def stats(self) -> BuyerStats:
        return BuyerStats(
            placed_lines=self._orders,
            units=self._units,
            refused_sold_out=self._refused,
            cancellations=self._cancellations,
            duplicates_sent=self._duplicates,
            events_published=self._published,
        )

    async def arrivals_between(self, start_s: float, end_s: float, origin_s: float) -> None:
        """Every arrival in ``[start_s, end_s)`` (seconds since the run's start)."""
        for segment_start, segment_end in self._segments(start_s, end_s):
            rate = self._scenario.rate_at(segment_start)
            if rate <= 0:
                continue
            # The share of the burst's extra arrivals, which all go to the pinned SKU.
            hot_share = 1.0 - self._scenario.base_rate_per_s / rate
            at_s = segment_start
            while True:
                at_s += self._rng.expovariate(rate)
                if at_s >= segment_end:
                    break
                await self._arrive(int((origin_s + at_s) * 1000), hot_share)

    def _segments(self, start_s: float, end_s: float) -> Iterator[tuple[float, float]]:
        """Split the interval where the rate changes, so a tick never straddles the burst."""
        cuts = [start_s, end_s]
        burst = self._scenario.burst
        if burst is not None:
            cuts += [edge for edge in (burst.start_s, burst.end_s) if start_s < edge < end_s]
        cuts.sort()
        return pairwise(cuts)

    async def _arrive(self, event_time_ms: int, hot_share: float) -> None:
        rng = self._rng
        room = rng.choices(self._rooms, cum_weights=self._room_weights)[0]
        burst = self._scenario.burst
        if burst is not None and hot_share > 0 and rng.random() < hot_share:
            sku = burst.sku
        else:
            sku = rng.choices(self._skus, cum_weights=self._sku_weights)[0]
        quantity = rng.choices(self._quantities, cum_weights=self._quantity_weights)[0]
        if not room.try_order(sku, quantity):
            self._refused += 1
            return
        self._orders += 1
        self._units += quantity
        line = _OpenLine(room, f"{self._scenario.run_id}-o{self._orders}", "1", sku, quantity)
        buyer = rng.randrange(self._scenario.buyer_pool_size)
        placed = order_line_placed(
            event_id=self._next_event_id(),
            platform=room.platform,
            channel=room.channel,
            order_id=line.order_id,
            line_id=line.line_id,
            sku=sku,
            quantity=quantity,
            buyer_id=f"{room.platform}-buyer-{buyer}",
            region=rng.choice(self._scenario.regions),
            event_time_ms=event_time_ms,
        )
        await self._emit(sku, placed)
        if self._open_lines and rng.random() < self._scenario.cancel_probability:
            await self._cancel_earlier(event_time_ms)
        self._remember(line)

    async def _cancel_earlier(self, event_time_ms: int) -> None:
        index = self._rng.randrange(len(self._open_lines))
        # Swap-remove: O(1), and the pool's order does not matter for a random pick.
        line = self._open_lines[index]
        self._open_lines[index] = self._open_lines[-1]
        self._open_lines.pop()
        line.room.cancel_order(line.sku, line.quantity)
        self._cancellations += 1
        cancelled = order_line_cancelled(
            event_id=self._next_event_id(),
            platform=line.room.platform,
            channel=line.room.channel,
            order_id=line.order_id,
            line_id=line.line_id,
            sku=line.sku,
            event_time_ms=event_time_ms,
        )
        await self._emit(line.sku, cancelled)

    def _remember(self, line: _OpenLine) -> None:
        self._open_lines.append(line)
        if len(self._open_lines) > _OPEN_LINES_CAP:
            del self._open_lines[: _OPEN_LINES_CAP // 2]

    async def _emit(self, sku: str, event: CanonicalEvent) -> None:
        """Publish once, and maybe again: platforms redeliver webhooks, same event_id."""
        key, value = message_key(sku), encode(event)
        await self._publish(key, value)
        self._published += 1
        if self._rng.random() < self._scenario.duplicate_probability:
            await self._publish(key, value)
            self._published += 1
            self._duplicates += 1

    def _next_event_id(self) -> str:
        self._events += 1
        return f"{self._scenario.run_id}-e{self._events}"


def _cumulative(weights: list[float]) -> list[float]:
    return list(accumulate(weights))
