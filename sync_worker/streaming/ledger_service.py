"""The ledger's input read a fetch at a time by a plain aiokafka consumer, with its own
changelog: where each partition resumes is written beside the state it resumes.

faust read the ledger's input before: after a rebalance it resumed each partition from
the group's committed offset, and in the SIGKILL test that lost input in several ways
(docs/ledger.md, "Why the ledger reads its input outside faust"): a partition the
group had never committed stayed wherever its last fetch stopped, a batch fetched
before the seek was still handed on after it, and records were counted read whose
hand-over to the agent a rebalance had cancelled. Here there is one truth instead of
two. The changelog partition of each input partition holds the ledger's state for it
and, after each batch, ``APPLIED_KEY``: the last input offset whose every state write
and output Kafka has acknowledged. A worker assigned the partition rebuilds the state
from the changelog and reads on from the next offset, and takes from each fetch only
the records that continue exactly from there. Records applied after the last marker
are read again and answered by the replay guard (``domain.replay``).

The group's committed offsets (``<app_id>-ledger``) follow the markers, once a marker
is delivered, for lag monitoring; nothing resumes from them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Protocol

import mode
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import ConsumerStoppedError, KafkaError
from rocksdict import Rdict

from sync_worker.streaming import state
from sync_worker.streaming.kafka_clients import group_consumer
from sync_worker.streaming.ledger_store import PartitionStores
from sync_worker.streaming.outbox import Outbox

log = logging.getLogger(__name__)

_IDLE_POLL_MS: Final = 500
_RESTORE_RECORDS: Final = 10_000
_COMMIT_EVERY_S: Final = 1.0
_PRODUCER_BATCH_BYTES: Final = 256 * 1024
"""A hot SKU's batch of audit records fits a few producer batches, not dozens."""
_UNMARKED_MAX: Final = 8
"""Batches decided whose marker is not written yet, at most: the next batch is decided
while Kafka acknowledges the previous ones, and this bounds what a slow broker queues."""


async def _nothing(partitions: Sequence[int]) -> None:
    """No one to tell of a rebalance."""


class LedgerStep(Protocol):
    """Applies one partition's records to its table, queuing its outputs with
    ``LedgerService.send``; returns any other deliveries (dead letters) that must be
    acknowledged before the records count as applied."""

    async def __call__(
        self, table: WriteThrough, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> list[Awaitable[Any]]: ...


class WriteThrough:
    """A partition's store for one batch: reads it, writes it, and remembers every
    write, in order, for the changelog."""

    def __init__(self, store: Rdict) -> None:
        self._store = store
        self.writes: list[tuple[bytes, bytes]] = []

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._store.get(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._store[key] = value
        self.writes.append((key, value))


class LedgerService(mode.Service):
    """Consumes ``topic`` in the group ``group_id`` and keeps each assigned partition's
    state in ``stores``, written through to ``changelog`` (same partition numbers).
    ``on_assigned(partitions)`` runs after each assignment's state is rebuilt, before the
    worker counts as ready; ``on_revoked(partitions)`` once their state is let go."""

    def __init__(
        self,
        *,
        topic: str,
        changelog: str,
        group_id: str,
        client_options: Mapping[str, Any],
        stores: PartitionStores,
        step: LedgerStep,
        batch_max: int,
        batch_wait_ms: float,
        session_timeout_s: float,
        on_assigned: Callable[[Sequence[int]], Awaitable[None]] = _nothing,
        on_revoked: Callable[[Sequence[int]], Awaitable[None]] = _nothing,
        faust_changelog: str | None = None,
    ) -> None:
        """``faust_changelog``, when that topic exists, is the ledger's changelog from
        when it was a faust table: a partition whose own changelog has no marker yet
        imports it before reading on."""
        super().__init__()
        self._changelog, self._group_id = changelog, group_id
        self._faust_changelog = faust_changelog
        self._options = dict(client_options)
        self.topic = topic
        self._stores, self._step = stores, step
        self._batch_max, self._batch_wait_ms = batch_max, max(1, round(batch_wait_ms))
        self._session_timeout_ms = round(session_timeout_s * 1000)
        self._on_assigned, self._on_revoked = on_assigned, on_revoked
        self._lock = asyncio.Lock()
        self._next: dict[int, int] = {}
        """Per owned, rebuilt partition: the input offset to apply next."""
        self._delivered: dict[int, int] = {}
        """Per partition: the offset after the last marker Kafka acknowledged."""
        self._marking: dict[int, asyncio.Future[None]] = {}
        """Per partition: writing the marker of its newest batch decided."""
        self._unmarked: deque[asyncio.Future[None]] = deque()
        """Every batch's marker being written, oldest first."""
        self._committed: dict[int, int] = {}
        self._last_commit = 0.0
        self.rebalancing = True
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._outbox: Outbox | None = None
        self._restorer: AIOKafkaConsumer | None = None

    @property
    def ready(self) -> bool:
        """Assigned and rebuilt: every owned partition is being applied."""
        return self._consumer is not None and not self.rebalancing and not self.should_stop

    async def on_start(self) -> None:
        self._producer = AIOKafkaProducer(
            acks="all",
            enable_idempotence=True,
            linger_ms=1,
            max_batch_size=_PRODUCER_BATCH_BYTES,
            **self._options,
        )
        await self._producer.start()
        self._outbox = Outbox(self._producer)
        await self._check_copartitioned(self._producer, self._changelog)
        self._restorer = AIOKafkaConsumer(
            enable_auto_commit=False, auto_offset_reset="earliest", **self._options
        )
        await self._restorer.start()
        if self._faust_changelog not in await self._restorer.topics():
            self._faust_changelog = None  # never ran as a faust table: nothing to import
        if self._faust_changelog is not None:
            await self._check_copartitioned(self._producer, self._faust_changelog)
        consumer = group_consumer(
            self._group_id,
            {
                **self._options,
                "max_poll_records": self._batch_max,
                "session_timeout_ms": self._session_timeout_ms,
                "heartbeat_interval_ms": self._session_timeout_ms // 5,
            },
        )
        consumer.subscribe([self.topic], listener=_Rebalance(self))
        self._consumer = consumer  # before start: the first assignment may come during it
        await consumer.start()
        self.add_future(self._run(consumer))

    async def on_stop(self) -> None:
        try:
            async with self._lock:
                await self._settle()
        finally:  # a batch that failed is read again by the next owner
            for client in (self._consumer, self._restorer, self._producer):
                if client is not None:
                    await client.stop()
            self._stores.close()

    async def _settle(self) -> None:
        """Waits for every record and marker sent so far, then commits the markers'
        offsets."""
        while self._unmarked:
            await self._unmarked.popleft()
        self._marking.clear()
        if self._producer is not None:
            await self._producer.flush()
        if self._consumer is not None:
            await self._commit(self._consumer)

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Queues an output record of the batch being applied (keyed: it goes to its key's
        partition); the batch counts as applied once it is delivered."""
        assert self._outbox is not None, "the ledger is not running"
        self._outbox.add(topic, key, value)

    async def _check_copartitioned(self, producer: AIOKafkaProducer, changelog: str) -> None:
        inputs = await producer.partitions_for(self.topic)
        changelogs = await producer.partitions_for(changelog)
        if inputs != changelogs:
            raise RuntimeError(
                f"{changelog} has partitions {sorted(changelogs)} but {self.topic} has "
                f"{sorted(inputs)}: a SKU's state must live in the changelog partition of its "
                "input partition (create both with the same count)"
            )

    # --- applying -------------------------------------------------------------------

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        while not self.should_stop:
            try:
                fetched = await consumer.getmany(
                    timeout_ms=_IDLE_POLL_MS, max_records=self._batch_max
                )
                room = self._batch_max - sum(map(len, fetched.values()))
                if fetched and room > 0:
                    # A moment for the batch to fill: each SKU's state is written once per batch.
                    more = await consumer.getmany(timeout_ms=self._batch_wait_ms, max_records=room)
                    for tp, records in more.items():
                        fetched[tp] = [*fetched.get(tp, ()), *records]
            except ConsumerStoppedError:
                return
            async with self._lock:
                for tp, records in fetched.items():
                    if continuing := await self._continuing(consumer, tp, records):
                        await self._apply(tp.partition, continuing)
                await self._bound_unmarked()
            await self._maybe_commit(consumer)

    async def _bound_unmarked(self) -> None:
        """Surfaces a marker that failed (the worker stops: its batch may not have been
        delivered), and waits while too many batches are unmarked."""
        while self._unmarked and (self._unmarked[0].done() or len(self._unmarked) > _UNMARKED_MAX):
            await self._unmarked.popleft()

    async def _continuing(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """The records that continue the partition exactly where its state ends; none
        for a partition not owned (any more), or when the fetch skipped past it."""
        expected = self._next.get(tp.partition)
        if expected is None:
            return []
        fresh = [record for record in records if record.offset >= expected]
        if not fresh or fresh[0].offset == expected:
            return fresh
        (start,) = (await consumer.beginning_offsets([tp])).values()
        if start > expected:
            log.error(
                "%s: offsets %d-%d were deleted by retention before the ledger applied them",
                tp,
                expected,
                start - 1,
            )
            self._next[tp.partition] = start
            return [record for record in fresh if record.offset >= start]
        log.warning("%s: fetch began at %d, past %d: reading again", tp, fresh[0].offset, expected)
        consumer.seek(tp, expected)
        return []

    async def _apply(self, partition: int, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        assert self._outbox is not None
        table = WriteThrough(self._stores.store(partition))
        deliveries = await self._step(table, records)
        for key, value in table.writes:
            self._outbox.add(self._changelog, key, value, partition)
        deliveries += await self._outbox.send()
        after = records[-1].offset + 1
        self._next[partition] = after
        marking = asyncio.ensure_future(
            self._mark(partition, after, self._marking.get(partition), deliveries)
        )
        self._marking[partition] = marking
        self._unmarked.append(marking)

    async def _mark(
        self,
        partition: int,
        after: int,
        previous: asyncio.Future[None] | None,
        deliveries: list[Awaitable[Any]],
    ) -> None:
        """Writes the batch's marker once its deliveries and the partition's previous
        marker are acknowledged: a marker never covers a batch Kafka may not hold. Until
        then the next batches are decided (their records queue behind this batch's in
        the same partitions); a crash re-reads every batch after the last marker."""
        assert self._producer is not None
        if previous is not None:
            await previous
        await asyncio.gather(*deliveries)
        marker = state.encode_offset(after - 1)
        await (
            await self._producer.send(
                self._changelog, marker, key=state.APPLIED_KEY, partition=partition
            )
        )
        self._delivered[partition] = max(after, self._delivered.get(partition, 0))

    # --- committing, and the lag the partition gauges read ------------------------

    async def _maybe_commit(self, consumer: AIOKafkaConsumer) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_commit >= _COMMIT_EVERY_S:
            self._last_commit = now
            await self._commit(consumer)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        moved = {
            TopicPartition(self.topic, partition): offset
            for partition, offset in self._delivered.items()
            if partition in self._next and self._committed.get(partition) != offset
        }
        if not moved:
            return
        try:
            await consumer.commit(moved)
        except KafkaError as error:  # a rebalance under way: the markers are the truth
            log.info("ledger offsets not committed: %s", error)
            return
        self._committed.update({tp.partition: offset for tp, offset in moved.items()})

    def partitions(self) -> set[tuple[str, int]]:
        """The input partitions owned and rebuilt (for the partition gauges)."""
        return {(self.topic, partition) for partition in self._next}

    async def lags(self) -> dict[tuple[str, int], int]:
        """Per owned partition whose end is known: its highwater minus the offset the
        ledger applies next."""
        lags = {}
        for partition, after in list(self._next.items()):
            if (highwater := self._highwater(partition)) is not None:
                lags[(self.topic, partition)] = max(0, highwater - after)
        return lags

    def _highwater(self, partition: int) -> int | None:
        if self._consumer is None:
            return None
        try:
            highwater: int | None = self._consumer.highwater(TopicPartition(self.topic, partition))
        except AssertionError:  # revoked since the partitions were read
            return None
        return highwater

    # --- rebalancing ----------------------------------------------------------------

    async def revoke(self, revoked: Sequence[TopicPartition]) -> None:
        """Finishes the batches under way and their markers, commits, and forgets the
        partitions' state."""
        self.rebalancing = True
        async with self._lock:
            await self._settle()
            for tp in revoked:
                self._stores.drop(tp.partition)
                self._next.pop(tp.partition, None)
                self._delivered.pop(tp.partition, None)
                self._committed.pop(tp.partition, None)
        await self._on_revoked([tp.partition for tp in revoked])

    async def assign(self, assigned: Sequence[TopicPartition]) -> None:
        """Rebuilds each partition's state from its changelog, then reads on from the
        offset after its marker (from the start of the log without one)."""
        assert self._restorer is not None
        assert self._consumer is not None
        async with self._lock:
            partitions = sorted(tp.partition for tp in assigned)
            for partition in partitions:
                self._stores.fresh(partition)
            restored = await self._restore(self._restorer, self._changelog, partitions)
            starts = await self._consumer.beginning_offsets(list(assigned))
            for tp in assigned:
                marker = self._stores.store(tp.partition).get(state.APPLIED_KEY)
                if marker is None and self._faust_changelog is not None:
                    marker = await self._import(self._faust_changelog, tp.partition, starts[tp])
                after = state.decode_offset(marker) + 1 if marker else starts[tp]
                self._consumer.seek(tp, after)
                self._next[tp.partition] = self._delivered[tp.partition] = after
            log.info("ledger partitions %s rebuilt from %d changelog records", partitions, restored)
        await self._on_assigned(partitions)
        self.rebalancing = False

    async def _import(self, faust_changelog: str, partition: int, start: int) -> bytes:
        """Copies the partition of faust's changelog into the ledger's own, then writes the
        marker: the highest input offset its positions were decided at. faust applied
        a partition's events in order and its table's writes reached the changelog in
        that order, so every event before that one was applied (or lost by faust for
        good); the events after it are read again. A copy cut short by a crash has no
        marker and is made again."""
        assert self._restorer is not None
        assert self._outbox is not None
        copied = await self._restore(self._restorer, faust_changelog, [partition])
        positions = state.positions_in(self._stores.items(partition))
        applied = max((position.seq for position in positions), default=start - 1)
        for key, value in self._stores.items(partition):
            if key != state.APPLIED_KEY:
                self._outbox.add(self._changelog, key, value, partition)
        marker = state.encode_offset(applied)
        self._stores.store(partition)[state.APPLIED_KEY] = marker
        await asyncio.gather(*await self._outbox.send())
        self._outbox.add(self._changelog, state.APPLIED_KEY, marker, partition)
        await asyncio.gather(*await self._outbox.send())
        log.warning(
            "ledger partition %d: imported %d records of faust's changelog %s, reading on "
            "after offset %d",
            partition,
            copied,
            faust_changelog,
            applied,
        )
        return marker

    async def _restore(
        self, restorer: AIOKafkaConsumer, changelog: str, partitions: list[int]
    ) -> int:
        tps = [TopicPartition(changelog, partition) for partition in partitions]
        restorer.assign(tps)
        if not tps:
            return 0
        starts = await restorer.beginning_offsets(tps)
        ends = await restorer.end_offsets(tps)
        for tp in tps:
            restorer.seek(tp, starts[tp])
        pending = {tp for tp in tps if starts[tp] < ends[tp]}
        count = 0
        while pending:
            fetched = await restorer.getmany(
                *pending, timeout_ms=1000, max_records=_RESTORE_RECORDS
            )
            for tp, records in fetched.items():
                store = self._stores.store(tp.partition)
                for record in records:
                    if record.value is None:
                        store.delete(record.key)
                    else:
                        store[record.key] = record.value
                count += len(records)
            pending = {tp for tp in pending if await restorer.position(tp) < ends[tp]}
        return count


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """aiokafka only logs a listener's failure and reads on; a ledger that could not
    finish a batch or rebuild a partition must stop the worker instead."""

    def __init__(self, service: LedgerService) -> None:
        self._service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._or_crash(self._service.revoke(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._or_crash(self._service.assign(assigned))

    async def _or_crash(self, step: Awaitable[None]) -> None:
        try:
            await step
        except Exception as error:
            await self._service.crash(error)
            raise
