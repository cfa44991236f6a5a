"""The load generator every system gets: closed loop for throughput, open loop for latency.

Closed loop: ``concurrency`` clients each send their next request as soon as the last
one is answered, until the lines or the time budget run out; latency runs from each
request's send.

Open loop: every line has a send time fixed in advance. A scheduler queues each line
at its time whatever the answers do, and ``concurrency`` clients take queued lines (up
to ``batch`` at a time). Latency runs from the *scheduled* time, so a system that
stalls is charged for every line that waited behind the stall, not only for the one
that was in flight (no coordinated omission). When the oldest queued line is more
than ``max_lag_s`` late (checked as lines are queued and as clients take them, so also
after the last send time), the system cannot keep up with the rate: the run stops
(lines queued but not yet taken are dropped, in-flight requests are answered) and is
marked saturated; its latencies are those of the lines decided, an underestimate. A
run whose last answer comes more than ``max_lag_s`` after the last send time is
saturated too.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import islice

from sync_worker.bench.latency import Latencies
from sync_worker.bench.system import ClientConfig, Decider
from sync_worker.bench.workloads import OrderLine
from sync_worker.domain.events import Outcome

Clock = Callable[[], float]

_LEAD_S = 0.005
"""The first scheduled send is this far after the start: setting up is not latency."""


class ContractError(RuntimeError):
    """A system broke the ``Decider`` contract (e.g. answered the wrong number of lines)."""


@dataclass
class Tally:
    """What the answers said, line by line: enough to check the invariants."""

    decisions: int = 0
    accepted_units: Counter[str] = field(default_factory=Counter)
    answers_by_order: Counter[str] = field(default_factory=Counter)
    accepts_by_order: Counter[str] = field(default_factory=Counter)
    duplicates_answered: int = 0
    latency: Latencies = field(default_factory=Latencies)

    def record(self, line: OrderLine, outcome: Outcome, latency_s: float) -> None:
        self.decisions += 1
        self.answers_by_order[line.order_id] += 1
        if outcome is Outcome.ACCEPTED:
            self.accepted_units[line.sku] += line.qty
            self.accepts_by_order[line.order_id] += 1
        elif outcome is Outcome.DUPLICATE:
            self.duplicates_answered += 1
        self.latency.record(latency_s)

    @property
    def resent(self) -> int:
        """Decided lines whose order id had been sent before in this run."""
        return self.decisions - len(self.answers_by_order)

    @property
    def duplicate_accepts(self) -> int:
        """Accepts beyond the first for one order id: units sold twice to one order."""
        return sum(count - 1 for count in self.accepts_by_order.values() if count > 1)


@dataclass(frozen=True)
class RunStats:
    tally: Tally
    elapsed_s: float
    """From the first send to the last answer."""
    offered: int
    """Lines the run meant to send."""
    saturated: bool = False

    @property
    def complete(self) -> bool:
        return self.tally.decisions == self.offered

    @property
    def decisions_per_s(self) -> float:
        return self.tally.decisions / self.elapsed_s if self.elapsed_s > 0 else 0.0


async def closed_loop(
    decider: Decider,
    lines: Sequence[OrderLine],
    config: ClientConfig,
    max_seconds: float,
    clock: Clock = time.perf_counter,
) -> RunStats:
    """Decide ``lines`` in order with ``config.concurrency`` clients; no request starts
    after ``max_seconds``, so the lines decided are always a prefix of ``lines``."""
    tally = Tally()
    source = iter(lines)
    start = clock()
    deadline = start + max_seconds

    async def client() -> None:
        while clock() < deadline:
            batch = list(islice(source, config.batch))
            if not batch:
                return
            sent = clock()
            outcomes = await decider.decide(batch, sent)
            done = clock()
            for line, outcome in _paired(batch, outcomes):
                tally.record(line, outcome, done - sent)

    async with _first_error() as clients:
        for _ in range(config.concurrency):
            clients.create_task(client())
    return RunStats(tally, clock() - start, len(lines))


async def open_loop(
    decider: Decider,
    lines: Sequence[OrderLine],
    send_at_s: Sequence[float],
    config: ClientConfig,
    max_lag_s: float,
    clock: Clock = time.perf_counter,
) -> RunStats:
    """Send line ``i`` at ``send_at_s[i]`` seconds after the start, answered or not."""
    if len(send_at_s) != len(lines):
        raise ValueError("one send time per line")
    tally = Tally()
    queue = _DueLines()
    start = clock() + _LEAD_S
    dropped = False
    last_answer = start

    def fell_behind() -> bool:
        """Checked whenever a line is queued or taken, so that a system slower than the
        rate does not work off every queued line after the last send time."""
        nonlocal dropped
        if not dropped and queue.oldest_due(default=math.inf) < clock() - max_lag_s:
            dropped = True
            queue.drop()
            queue.close()
        return dropped

    async def schedule() -> None:
        try:
            for index, offset in enumerate(send_at_s):
                due = start + offset
                wait = due - clock()
                if wait > 0:
                    await asyncio.sleep(wait)
                if dropped:
                    return
                queue.put(due, index)
                if fell_behind():
                    return
        finally:
            queue.close()

    async def client() -> None:
        nonlocal last_answer
        while not fell_behind() and (due_lines := await queue.take(config.batch)) is not None:
            batch = [lines[index] for _, index in due_lines]
            outcomes = await decider.decide(batch, due_lines[0][0])
            done = clock()
            last_answer = max(last_answer, done)
            for (due, _), (line, outcome) in zip(due_lines, _paired(batch, outcomes), strict=True):
                tally.record(line, outcome, done - due)
            await asyncio.sleep(0)  # an in-process system must not starve the scheduler

    async with _first_error() as tasks:
        tasks.create_task(schedule())
        for _ in range(config.concurrency):
            tasks.create_task(client())
    behind = last_answer - (start + send_at_s[-1]) if send_at_s else 0.0
    return RunStats(tally, last_answer - start, len(lines), dropped or behind > max_lag_s)


@asynccontextmanager
async def _first_error() -> AsyncIterator[asyncio.TaskGroup]:
    """A task group that raises the first failure itself (the others were cancelled
    because of it), so a system's error reads as that error."""
    try:
        async with asyncio.TaskGroup() as group:
            yield group
    except ExceptionGroup as failed:
        first: BaseException = failed
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None


def _paired(
    batch: Sequence[OrderLine], outcomes: Sequence[Outcome]
) -> zip[tuple[OrderLine, Outcome]]:
    if len(outcomes) != len(batch):
        raise ContractError(f"{len(batch)} lines sent, {len(outcomes)} outcomes returned")
    return zip(batch, outcomes, strict=True)


class _DueLines:
    """Lines whose send time has come, oldest first, for the clients to take."""

    def __init__(self) -> None:
        self._due: deque[tuple[float, int]] = deque()
        self._arrived = asyncio.Event()
        self._closed = False

    def put(self, due: float, index: int) -> None:
        self._due.append((due, index))
        self._arrived.set()

    def close(self) -> None:
        self._closed = True
        self._arrived.set()

    def drop(self) -> None:
        self._due.clear()

    def oldest_due(self, default: float) -> float:
        return self._due[0][0] if self._due else default

    async def take(self, most: int) -> list[tuple[float, int]] | None:
        """Up to ``most`` due lines, waiting for one; None once closed and empty."""
        while not self._due:
            if self._closed:
                return None
            self._arrived.clear()
            await self._arrived.wait()
        return [self._due.popleft() for _ in range(min(most, len(self._due)))]
