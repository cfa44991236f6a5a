"""The load generator against a plain in-memory system: closed loop, open-loop
scheduling and latency counted from the scheduled send time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

import pytest

from sync_worker.bench.loadgen import ContractError, Tally, closed_loop, open_loop
from sync_worker.bench.system import ClientConfig, Decider
from sync_worker.bench.workloads import OrderLine
from sync_worker.domain.events import Outcome


class MemoryBooks(Decider):
    """Stock in a dict, decided order ids in a set; records what it was asked."""

    def __init__(self, stock: Mapping[str, int], delay_s: float = 0.0) -> None:
        self.left = dict(stock)
        self.seen: set[str] = set()
        self.delay_s = delay_s
        self.calls: list[tuple[float, float, int]] = []
        """(clock at the call, sent_at given, lines) per call."""
        self.in_flight = 0
        self.most_in_flight = 0

    async def decide(self, lines: Sequence[OrderLine], sent_at: float) -> Sequence[Outcome]:
        self.calls.append((time.perf_counter(), sent_at, len(lines)))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
            return [self._decide(line) for line in lines]
        finally:
            self.in_flight -= 1

    def _decide(self, line: OrderLine) -> Outcome:
        if line.order_id in self.seen:
            return Outcome.DUPLICATE
        self.seen.add(line.order_id)
        if self.left.get(line.sku, 0) >= line.qty:
            self.left[line.sku] -= line.qty
            return Outcome.ACCEPTED
        return Outcome.REJECTED

    async def units_left(self) -> Mapping[str, int]:
        return self.left


class StallingBooks(MemoryBooks):
    """Takes ``stall_s`` to answer its first request, then answers at once."""

    def __init__(self, stock: Mapping[str, int], stall_s: float) -> None:
        super().__init__(stock)
        self.stall_s = stall_s

    async def decide(self, lines: Sequence[OrderLine], sent_at: float) -> Sequence[Outcome]:
        if not self.calls:
            await asyncio.sleep(self.stall_s)
        return await super().decide(lines, sent_at)


def lines(count: int, sku: str = "a", resend_every: int = 0) -> list[OrderLine]:
    made: list[OrderLine] = []
    for index in range(count):
        if resend_every and index and index % resend_every == 0:
            made.append(made[-1])
        else:
            made.append(OrderLine(f"o{index}", sku, 1))
    return made


async def test_closed_loop_decides_every_line_once_within_the_clients_and_batch() -> None:
    books = MemoryBooks({"a": 30})
    work = lines(100, resend_every=10)

    stats = await closed_loop(books, work, ClientConfig(concurrency=4, batch=3), 60.0)

    assert stats.complete
    assert stats.tally.decisions == 100
    assert sum(count for _, _, count in books.calls) == 100
    assert max(count for _, _, count in books.calls) <= 3
    assert books.most_in_flight <= 4
    assert stats.tally.accepted_units == {"a": 30}
    assert stats.tally.resent == stats.tally.duplicates_answered == 9
    assert stats.tally.duplicate_accepts == 0
    assert stats.tally.latency.count == 100


async def test_closed_loop_starts_no_request_after_its_budget_and_decides_a_prefix() -> None:
    ticks = iter(range(1_000_000))
    books = MemoryBooks({"a": 1_000})

    # Each clock reading is one "second" later: the budget of 5 allows a few requests.
    stats = await closed_loop(
        books, lines(100), ClientConfig(1, 2), 5.0, clock=lambda: float(next(ticks))
    )

    assert 0 < stats.tally.decisions < 100
    assert not stats.complete
    decided = set(books.seen)
    assert decided == {f"o{index}" for index in range(stats.tally.decisions)}


async def test_open_loop_sends_no_line_before_its_time_and_each_one_once() -> None:
    books = MemoryBooks({"a": 1_000})
    work = lines(40)
    send_at = [index * 0.002 for index in range(40)]

    stats = await open_loop(books, work, send_at, ClientConfig(2, 4), max_lag_s=60.0)

    assert stats.complete
    assert stats.tally.decisions == 40
    for called_at, sent_at, _ in books.calls:
        assert called_at >= sent_at  # the earliest line of a request was due when sent
    assert books.seen == {line.order_id for line in work}


async def test_open_loop_charges_a_stall_to_every_line_scheduled_behind_it() -> None:
    """Coordinated omission: one client, one 0.2 s stall on the first line, 50 lines due
    1 ms apart. Measured from the scheduled times, the lines that waited behind the stall
    carry it; timed from their actual send, they would look instant."""
    books = StallingBooks({"a": 1_000}, stall_s=0.2)
    send_at = [index * 0.001 for index in range(50)]

    stats = await open_loop(books, lines(50), send_at, ClientConfig(1, 1), max_lag_s=60.0)

    assert stats.tally.decisions == 50
    # Line i (due at i ms, i < 50) is answered after the stall ends at >= 200 ms.
    assert stats.tally.latency.percentile_ms(50) >= 150.0
    assert stats.tally.latency.max_ms() >= 199.0


async def test_open_loop_stops_and_says_saturated_when_the_system_falls_behind() -> None:
    books = MemoryBooks({"a": 1_000}, delay_s=0.01)  # at most 100 lines/s with one client
    send_at = [index * 0.001 for index in range(300)]  # offered: 1,000 lines/s

    stats = await open_loop(books, lines(300), send_at, ClientConfig(1, 1), max_lag_s=0.05)

    assert stats.saturated
    assert not stats.complete
    assert 0 < stats.tally.decisions < 300


async def test_open_loop_drops_the_backlog_left_after_the_last_send_once_it_is_too_late() -> None:
    """All lines are sent within 10 ms, well inside the lag: only the clients, taking
    lines afterwards, can see that the system fell behind."""
    books = MemoryBooks({"a": 1_000}, delay_s=0.01)
    send_at = [index * 0.0001 for index in range(100)]

    stats = await open_loop(books, lines(100), send_at, ClientConfig(1, 1), max_lag_s=0.1)

    assert stats.saturated
    assert 0 < stats.tally.decisions < 30
    assert stats.elapsed_s < 0.5


async def test_a_system_answering_the_wrong_number_of_lines_breaks_the_contract() -> None:
    class Forgetful(MemoryBooks):
        async def decide(self, lines: Sequence[OrderLine], sent_at: float) -> Sequence[Outcome]:
            return (await super().decide(lines, sent_at))[:-1]

    with pytest.raises(ContractError, match="3 lines sent, 2 outcomes"):
        await closed_loop(Forgetful({"a": 10}), lines(6), ClientConfig(2, 3), 60.0)


def test_the_tally_counts_accepts_beyond_the_first_of_an_order_as_duplicate_accepts() -> None:
    tally = Tally()
    line = OrderLine("o1", "a", 2)

    tally.record(line, Outcome.ACCEPTED, 0.001)
    tally.record(line, Outcome.ACCEPTED, 0.001)
    tally.record(line, Outcome.DUPLICATE, 0.001)

    assert tally.duplicate_accepts == 1
    assert tally.resent == 2
    assert tally.duplicates_answered == 1
    assert tally.accepted_units == {"a": 4}


def test_client_configs_must_have_at_least_one_client_and_line() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        ClientConfig(0, 1)
    assert ClientConfig(16, 4).label == "c=16 b=4"
