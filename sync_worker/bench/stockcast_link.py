"""The bench's side of Kafka for the ``stockcast`` system: one producer into the worker's
SKU-events topic, one consumer of what the worker answers (decisions) and publishes
(stock levels and quota changes), and the room's writes, all handed to the ``Listener``
of the run in progress.

The producer is configured like the worker's (``acks=all``, idempotent) and batches
with a small linger, so the lines of concurrent requests share produce requests. The
consumer reads every partition itself (no group), from the start of topics that are
new for each bench run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from sync_worker.bench.stockcast_processes import RunningWorker, StockcastError
from sync_worker.bench.stockcast_room import BenchRoom
from sync_worker.domain.events import OrderLineDecided, SkuEvent
from sync_worker.streaming import codecs
from sync_worker.streaming.names import TopicNames

_POLL_MS = 100
_LINGER_MS = 1
_WAKE_EVERY_S = 0.5
STALL_S = 30.0
"""How long the worker may stay silent (nothing published, nothing pushed) while the
bench waits for it before the bench gives up."""


class Listener(Protocol):
    """The run in progress; each method is called for everything its SKUs see."""

    def owns(self, sku: str) -> bool: ...

    def on_decision(self, decision: OrderLineDecided) -> None: ...

    def on_stock_level(self, sku: str, raw: bytes) -> None: ...

    def on_room_write(self, sku: str, version: int, at: float) -> None: ...

    def fail(self, error: StockcastError) -> None: ...


class KafkaLink:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        consumer: AIOKafkaConsumer,
        topics: TopicNames,
        room: BenchRoom,
        workers: Sequence[RunningWorker],
    ) -> None:
        self._producer = producer
        self._consumer = consumer
        self._topics = topics
        self.room = room
        self._workers = workers
        self._listener: Listener | None = None
        self._changed = asyncio.Event()
        self._consumed: dict[TopicPartition, int] = {}
        self._failure: StockcastError | None = None
        self._last_arrival = time.monotonic()
        room.on_write = self._room_write

    def attach(self, listener: Listener | None) -> None:
        """Hand everything from now on to ``listener`` (None: to nobody)."""
        self._listener = listener

    async def send(self, sku: str, event: SkuEvent) -> asyncio.Future[Any]:
        """Queue ``event`` (keyed by its SKU); returns its delivery to await."""
        self.check()
        delivery: asyncio.Future[Any] = await self._producer.send(
            self._topics.sku_events, codecs.encode(event), key=sku.encode()
        )
        return delivery

    def check(self) -> None:
        """Raise if a worker is gone or the consumer failed."""
        if self._failure is None and (gone := self._exited()) is not None:
            self._failure = StockcastError(gone)
        if self._failure is not None:
            raise self._failure

    def _exited(self) -> str | None:
        """Why a worker is gone, with its log's tail; None while all run."""
        return next((gone for w in self._workers if (gone := w.exited()) is not None), None)

    def explain(self, problem: str) -> StockcastError:
        tails = "\n".join(
            f"the log of worker {n} ends:\n{running.log_tail()}"
            for n, running in enumerate(self._workers, 1)
        )
        return StockcastError(f"{problem}; {tails}")

    async def until(self, done: Callable[[], bool], what: Callable[[], str]) -> None:
        """Wait until ``done()``, re-checked whenever something arrives. Raise, with
        ``what()``, once nothing at all has arrived for ``STALL_S``: a slow worker gets
        all the time it needs, a stuck one is reported."""
        began = time.monotonic()
        while True:
            self._changed.clear()
            if done():
                return
            self.check()
            quiet = time.monotonic() - max(began, self._last_arrival)
            if quiet > STALL_S:
                raise self.explain(f"{what()}, and nothing arrived for {quiet:.0f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), _WAKE_EVERY_S)

    async def read_up_to_now(self) -> None:
        """Wait until the stock levels published so far have all been read."""
        partitions = [
            tp for tp in self._consumer.assignment() if tp.topic == self._topics.stock_levels
        ]
        ends: dict[TopicPartition, int] = await self._consumer.end_offsets(partitions)

        def read() -> bool:
            return all(self._consumed.get(tp, 0) >= end for tp, end in ends.items())

        await self.until(read, lambda: "the stock levels could not be read to their end")

    async def run(self) -> None:
        """Read and dispatch until cancelled; a failure fails the run in progress."""
        try:
            while True:
                batches = await self._consumer.getmany(timeout_ms=_POLL_MS)
                for partition, records in batches.items():
                    self._dispatch(partition, records)
                if batches:
                    self._arrived()
                if (gone := self._exited()) is not None:
                    raise StockcastError(gone)
        except StockcastError as error:
            self._fail(error)
        except Exception as error:
            self._fail(StockcastError(f"reading the worker's answers failed: {error!r}"))
            raise

    def _dispatch(self, partition: TopicPartition, records: list[Any]) -> None:
        listener = self._listener
        if records:
            self._consumed[partition] = records[-1].offset + 1
        if listener is None:
            return
        if partition.topic == self._topics.decisions:
            for record in records:
                decision = codecs.decode_decision(record.value)
                if listener.owns(decision.sku):
                    listener.on_decision(decision)
            return
        for record in records:
            sku = record.key.decode()
            if listener.owns(sku):
                listener.on_stock_level(sku, record.value)

    def _room_write(self, sku: str, version: int, at: float) -> None:
        if self._listener is not None and self._listener.owns(sku):
            self._listener.on_room_write(sku, version, at)
            self._arrived()

    def _arrived(self) -> None:
        self._last_arrival = time.monotonic()
        self._changed.set()

    def _fail(self, error: StockcastError) -> None:
        self._failure = error
        if self._listener is not None:
            self._listener.fail(error)
        self._changed.set()


@contextlib.asynccontextmanager
async def kafka_link(
    bootstrap: str,
    topics: TopicNames,
    partitions: int,
    room: BenchRoom,
    workers: Sequence[RunningWorker],
) -> AsyncIterator[KafkaLink]:
    """The producer and the consumer started, the reader running; all closed on exit."""
    async with contextlib.AsyncExitStack() as stack:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=_LINGER_MS,
        )
        await producer.start()
        stack.push_async_callback(producer.stop)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=_POLL_MS,
        )
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        consumer.assign(
            [
                TopicPartition(topic, partition)
                for topic in (topics.decisions, topics.stock_levels)
                for partition in range(partitions)
            ]
        )
        link = KafkaLink(producer, consumer, topics, room, workers)
        reader = asyncio.create_task(link.run(), name="stockcast-bench-reader")
        stack.push_async_callback(_cancelled, reader)
        yield link


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
