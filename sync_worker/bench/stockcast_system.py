"""``stockcast``: the full path. Load generator -> Kafka -> worker -> decision, and the
worker's push of the room's new count to a local live room.

``start`` starts the bench's own Kafka broker (``stockcast_processes``; or uses the one
at ``bootstrap`` when given, as the tests do), the room (``stockcast_room``) and one
worker subprocess, ``stockcast run``, configured with a topic prefix new for this bench
run, 4 partitions and one channel, the room, through the ``simulator`` connector. It
takes 20-40 s, so it happens once per bench run, not per workload.

Each ``prepare`` gives the run SKU names of its own (``r<n>-<sku>``): one worker keeps
serving every run, and each starts on books that hold nothing but its stock and no
order line. The stock goes in as one ``stock.received`` per SKU; ``prepare`` returns
once the worker has applied them all (their stock levels read back) and its pushes of
the new counts reached the room, so a run never measures the tail of the last one.

``decide``, ``units_left`` and ``push_latencies`` are those of ``StockcastBooks``
(``stockcast_books``).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

from sync_worker.bench.stockcast_books import StockcastBooks
from sync_worker.bench.stockcast_link import KafkaLink, kafka_link
from sync_worker.bench.stockcast_processes import (
    RunningBroker,
    RunningWorker,
    StockcastError,
    WorkerSpec,
    bench_broker,
    worker,
)
from sync_worker.bench.stockcast_room import BenchRoom
from sync_worker.bench.system import ClientConfig, Decider, System
from sync_worker.bench.workloads import CHANNEL
from sync_worker.streaming.names import TopicNames

PARTITIONS = 4


class StockcastSystem(System):
    name = "stockcast"

    def __init__(
        self, bootstrap: str | None = None, *, partitions: int = PARTITIONS, workers: int = 1
    ) -> None:
        """``bootstrap``: an existing broker to use instead of starting the bench's own;
        ``workers``: worker processes sharing the partitions, as on a machine with more
        cores than one worker's event loop can use."""
        if not 1 <= workers <= partitions:
            raise ValueError(f"{workers} workers cannot share {partitions} partitions")
        self._bootstrap = bootstrap
        self._partitions = partitions
        self._worker_count = workers
        self._stack = contextlib.AsyncExitStack()
        self._broker: RunningBroker | None = None
        self._workers: list[RunningWorker] = []
        self._link: KafkaLink | None = None
        self._runs = 0

    async def start(self) -> None:
        try:
            room = BenchRoom(CHANNEL, time.perf_counter)
            await room.start()
            self._stack.push_async_callback(room.stop)
            bootstrap = self._bootstrap
            if bootstrap is None:
                self._broker = self._stack.enter_context(bench_broker())
                bootstrap = self._broker.bootstrap
            prefix = f"bench-{uuid.uuid4().hex[:10]}"
            spec = WorkerSpec(bootstrap, prefix, self._partitions, CHANNEL, room.url)
            for _ in range(self._worker_count):
                self._workers.append(await self._stack.enter_async_context(worker(spec)))
            self._link = await self._stack.enter_async_context(
                kafka_link(
                    bootstrap, TopicNames.for_prefix(prefix), self._partitions, room, self._workers
                )
            )
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        self._link = self._broker = None
        self._workers = []
        await self._stack.aclose()

    def configs(self, quick: bool) -> Sequence[ClientConfig]:
        # Short sweeps: each configuration costs the worker a fresh stock (10k SKUs in
        # the full workloads) besides its run. --quick runs the one that was best of
        # c=4 and c=16 on every quick workload.
        if quick:
            return (ClientConfig(16, 16),)
        return (ClientConfig(1, 1), *(ClientConfig(c, 16) for c in (4, 16, 64)))

    def cpu_roles(self) -> Mapping[str, Sequence[int]]:
        roles: dict[str, Sequence[int]] = {}
        if self._workers:
            roles["worker"] = [running.pid for running in self._workers]
        if self._broker is not None:
            roles["broker"] = list(self._broker.pids)
        return roles

    @asynccontextmanager
    async def prepare(
        self, stock: Mapping[str, int], config: ClientConfig
    ) -> AsyncIterator[Decider]:
        if self._link is None:
            raise StockcastError("the stockcast system is not started")
        self._runs += 1
        books = StockcastBooks(self._link, f"r{self._runs}-", stock)
        self._link.attach(books)
        try:
            await books.receive_stock()
            yield books
        finally:
            self._link.attach(None)
            books.abandon()
            self._link.room.forget(set(books.skus()))
