"""What one pure decision costs, per order line, and where the time goes.

    .venv/bin/python tools/profile_decide.py [--lines N] [--repeats R] [--profile SCENARIO]

Each scenario builds a SKU with stock and three channels under the default (adaptive)
allocation policy, then feeds ``domain.decide`` a chain of events the way the ledger
agent does (the position, the line records and the buyers' holdings carried from one
decision to the next). Timings are taken without a profiler and the median of the
repeats (CPU time) is printed; ``--profile`` then runs one scenario under cProfile and prints its
top functions. Numbers for the issue notes, not a test.

Scenarios:

- ``plain``: new order lines, one unit each, round-robin over the three rooms;
- ``floor``: the same with the default policies, where no channel is configured, as
  ``bench.floor`` runs it (no quotas to plan);
- ``session``: the same under a live session holding the SKU in all three rooms, with
  a cap and a buyer limit (every line a new buyer; no alert fires);
- ``duplicate``: the same placed line delivered again as a new message;
- ``cancel``: accepted lines cancelled by their platform, one after another.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import pstats
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sync_worker.domain.allocation import AllocationPolicy, ChannelRule
from sync_worker.domain.decide import Policies, decide
from sync_worker.domain.events import (
    OrderLineCancelled,
    OrderLinePlaced,
    SessionSkuOpened,
    SkuEvent,
    StockReceived,
    Tier,
)
from sync_worker.domain.ledger import buyer_slot
from sync_worker.domain.position import SkuPosition
from sync_worker.domain.records import BuyerRecord, Record
from sync_worker.streaming.state import record_key

SKU = "lipstick"
PLATFORM = "tiktok"
ROOMS = ("room-a", "room-b", "room-c")
STOCK = 1_000_000
EPOCH_MS = 1_700_000_000_000
POLICIES = Policies(allocation=AllocationPolicy(channels=tuple(ChannelRule(r) for r in ROOMS)))


@dataclass
class Books:
    """One SKU's stored state, fed like the ledger agent feeds ``decide``."""

    policies: Policies = POLICIES
    position: SkuPosition = field(default_factory=lambda: SkuPosition(SKU))
    records: dict[bytes, Record] = field(default_factory=dict)
    buyers: dict[tuple[str, str], BuyerRecord] = field(default_factory=dict)
    seq: int = 0

    def feed(self, event: SkuEvent) -> None:
        self.seq += 1
        key = record_key(event)
        record = self.records.get(key)
        slot = buyer_slot(self.position, record, event)
        buyer = self.buyers.get(slot) if slot is not None else None
        decided = decide(self.seq, self.position, record, event, self.policies, buyer)
        step = decided.step
        self.position = step.position
        if step.record is not None:
            self.records[key] = step.record
        if slot is not None and step.buyer is not None:
            self.buyers[slot] = step.buyer


class Events:
    """Fresh event ids and an event clock that moves 10 ms per event."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._clock_ms = itertools.count(EPOCH_MS, 10)

    def received(self, units: int) -> StockReceived:
        return StockReceived(
            event_id=f"ev-{next(self._ids)}",
            sku=SKU,
            event_time_ms=next(self._clock_ms),
            actor="warehouse",
            quantity=units,
        )

    def opened(self, *, cap: int, buyer_limit: int) -> SessionSkuOpened:
        return SessionSkuOpened(
            event_id=f"ev-{next(self._ids)}",
            sku=SKU,
            event_time_ms=next(self._clock_ms),
            actor="host",
            session_id="live-1",
            channels=ROOMS,
            tier=Tier.BEST_SELLER,
            cap=cap,
            buyer_limit=buyer_limit,
        )

    def placed(self, line: int) -> OrderLinePlaced:
        return OrderLinePlaced(**self._line(line), quantity=1, buyer_id=f"buyer-{line}@example.com")

    def cancelled(self, line: int) -> OrderLineCancelled:
        return OrderLineCancelled(**self._line(line), reason="buyer_cancelled")

    def _line(self, line: int) -> dict[str, Any]:
        """Line ``line`` of the run: its order, in one of the rooms in turn."""
        return {
            "event_id": f"ev-{next(self._ids)}",
            "sku": SKU,
            "event_time_ms": next(self._clock_ms),
            "platform": PLATFORM,
            "channel": ROOMS[line % len(ROOMS)],
            "order_id": f"o-{line}",
            "line_id": "1",
        }


# A scenario returns the books as set up and the events to time, fed in order.
Scenario = Callable[[int], tuple[Books, list[SkuEvent]]]


def _stocked(policies: Policies = POLICIES) -> tuple[Books, Events]:
    books, events = Books(policies), Events()
    books.feed(events.received(STOCK))
    return books, events


def plain(lines: int) -> tuple[Books, list[SkuEvent]]:
    books, events = _stocked()
    return books, [events.placed(line) for line in range(lines)]


def floor(lines: int) -> tuple[Books, list[SkuEvent]]:
    books, events = _stocked(Policies())
    return books, [events.placed(line) for line in range(lines)]


def session(lines: int) -> tuple[Books, list[SkuEvent]]:
    books, events = _stocked()
    books.feed(events.opened(cap=STOCK // 2, buyer_limit=3))
    return books, [events.placed(line) for line in range(lines)]


def duplicate(lines: int) -> tuple[Books, list[SkuEvent]]:
    books, events = _stocked()
    books.feed(events.placed(0))
    return books, [events.placed(0) for _ in range(lines)]


def cancel(lines: int) -> tuple[Books, list[SkuEvent]]:
    books, events = _stocked()
    for line in range(lines):
        books.feed(events.placed(line))
    return books, [events.cancelled(line) for line in range(lines)]


SCENARIOS: dict[str, Scenario] = {
    "plain": plain,
    "floor": floor,
    "session": session,
    "duplicate": duplicate,
    "cancel": cancel,
}


def run(books: Books, events: list[SkuEvent]) -> None:
    for event in events:
        books.feed(event)


def micros_per_line(scenario: Scenario, lines: int) -> float:
    books, events = scenario(lines)
    # CPU time, not wall time: the machine is shared, and waiting for a core is no cost
    # of the decision.
    started = time.process_time_ns()
    run(books, events)
    return (time.process_time_ns() - started) / lines / 1000


def profile(scenario: Scenario, lines: int, top: int) -> None:
    books, events = scenario(lines)
    profiler = cProfile.Profile()
    profiler.runcall(run, books, events)
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=2000, help="events timed per run")
    parser.add_argument("--repeats", type=int, default=7, help="runs per scenario")
    parser.add_argument("--scenarios", nargs="*", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--profile", choices=SCENARIOS, help="then profile this scenario")
    parser.add_argument("--top", type=int, default=25, help="functions shown per profile")
    return parser.parse_args(argv)


def _rows(arguments: argparse.Namespace) -> Iterator[str]:
    yield f"{'scenario':<10} {'median µs/line':>15} {'min':>8} {'max':>8}"
    for name in arguments.scenarios:
        runs = [micros_per_line(SCENARIOS[name], arguments.lines) for _ in range(arguments.repeats)]
        yield f"{name:<10} {statistics.median(runs):>15.2f} {min(runs):>8.2f} {max(runs):>8.2f}"


def main(argv: list[str] | None = None) -> None:
    arguments = _arguments(argv)
    print(f"{arguments.lines} lines per run, {arguments.repeats} runs")
    for row in _rows(arguments):
        print(row, flush=True)
    if arguments.profile:
        profile(SCENARIOS[arguments.profile], arguments.lines, arguments.top)


if __name__ == "__main__":
    main()
