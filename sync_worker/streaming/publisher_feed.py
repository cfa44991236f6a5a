"""The publisher's input: the stock-levels topic, read beside faust rather than through it.

The ledger writes every stock level and quota change to the stock-levels topic; the
worker that owns a SKU pushes its quota changes and serves its live counts. Read as a
faust agent, each of those records went through faust's per-record stream machinery,
one at a time on the ledger's own event loop and in the same queue as the ledger's
input (docs/performance.md: about half of what a decision waited for). This feed reads
them with a plain consumer, a fetch at a time.

It follows the ledger: after each rebalance it reads the stock-levels partitions whose
numbers are those of the SKU-events partitions the ledger was assigned on this worker
(both topics are keyed by SKU with the same partition count, so a SKU's records sit in
the same partition number of both). Its offsets live in a consumer group of its own that
it never joins (manual assignment; ``<app id>-publisher``): a record counts as handed
over once ``take`` returned for it, and what was handed over is committed every
``COMMIT_EVERY_S`` seconds, before partitions are let go and on stop. A crash hands
over again what was not committed, as faust did for the agent; the publisher keeps
only the newest version of each quota. Where its group never committed (the first
start after an upgrade from the faust agent), it starts where faust's group left off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import mode
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

log = logging.getLogger(__name__)

COMMIT_EVERY_S = 1.0
_POLL_MS = 200

Take = Callable[[bytes, int | None], None]
"""Hands one record over: its value and its timestamp (ms), when it has one."""


class PublisherFeed(mode.Service):
    def __init__(
        self,
        *,
        topic: str,
        follows: str,
        group_id: str,
        consumer_options: Mapping[str, Any],
        take: Take,
        seed_group: str | None = None,
    ) -> None:
        """Reads ``topic`` on the partitions of ``follows`` this worker is assigned.
        Where ``group_id`` never committed, it starts from ``seed_group``'s committed
        offset when there is one (faust's group, which read the topic before the feed
        did), else at the start of the partition."""
        super().__init__()
        self.topic, self._follows = topic, follows
        self._group_id, self._seed_group = group_id, seed_group
        self._options = dict(consumer_options)
        self._take = take
        self._consumer: AIOKafkaConsumer | None = None
        self._wanted: set[TopicPartition] = set()
        self._assigned: set[TopicPartition] = set()
        self._handed: dict[TopicPartition, int] = {}
        """Per assigned partition, the offset after the last record handed over."""
        self._committed: dict[TopicPartition, int] = {}
        self._lock = asyncio.Lock()
        self._reassigned = asyncio.Event()

    async def on_start(self) -> None:
        consumer = AIOKafkaConsumer(
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **self._options,
        )
        await consumer.start()
        # Only now: a ``follow`` while it starts just records the partitions wanted.
        self._consumer = consumer
        self.add_future(self._reading(consumer))
        self.add_future(self._committing())
        await self._apply(consumer)

    async def on_stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        async with self._lock:
            with contextlib.suppress(Exception):  # stopping anyway: re-read on next start
                await self._commit(consumer)
            await consumer.stop()

    async def follow(self, assigned: Iterable[tuple[str, int]]) -> None:
        """Take over the partitions matching ``assigned`` (the ledger's new assignment, as
        ``(topic, partition)`` pairs), after committing and letting go of the others."""
        self._wanted = {
            TopicPartition(self.topic, p) for topic, p in assigned if topic == self._follows
        }
        if self._consumer is not None:  # else applied on start
            await self._apply(self._consumer)

    async def _apply(self, consumer: AIOKafkaConsumer) -> None:
        wanted = self._wanted
        async with self._lock:
            try:
                await self._commit(consumer)
            except Exception:  # not fatal to a rebalance: the next owner hands them over again
                log.warning("the publisher feed could not commit before a rebalance", exc_info=True)
            self._handed = {}
            self._committed = {tp: o for tp, o in self._committed.items() if tp in wanted}
            if wanted:
                starts = await self._starts(consumer, wanted)
                # No await from here on: aiokafka never looks for positions of its own.
                consumer.assign(sorted(wanted))
                for tp, offset in starts.items():
                    consumer.seek(tp, offset)
                self._handed = dict(starts)
            else:
                consumer.unsubscribe()
            self._assigned = wanted
            self._reassigned.set()

    async def _starts(
        self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """Where each partition starts: the group's commit, else the seed group's, else
        the log start. It is also the first offset taken: a fetch that began before the
        seek there cannot hand over what lies before it."""
        # A failure here fails the rebalance (the worker restarts): starting a fresh group
        # at the start of the topic instead would push its whole history again.
        starts = {tp: await consumer.committed(tp) for tp in sorted(partitions)}
        fresh = [tp for tp, offset in starts.items() if offset is None]
        if fresh and self._seed_group is not None:
            starts |= await self._seeds(fresh)
        unknown = [tp for tp, offset in starts.items() if offset is None]
        if unknown:
            starts |= await consumer.beginning_offsets(unknown)
        return {tp: offset for tp, offset in starts.items() if offset is not None}

    async def _seeds(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int | None]:
        """Where the seed group committed, for the partitions it committed."""
        admin = AIOKafkaAdminClient(**self._options)
        await admin.start()
        try:
            seeds = await admin.list_consumer_group_offsets(self._seed_group, partitions=partitions)
        finally:
            await admin.close()
        return {tp: seed.offset for tp, seed in seeds.items() if seed.offset >= 0}

    async def let_go(self) -> None:
        """Commit what was handed over and stop reading (the ledger's partitions were
        revoked)."""
        await self.follow(())

    def partitions(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self._assigned}

    async def lags(self) -> dict[tuple[str, int], int]:
        """Records not yet handed over, per assigned partition whose end is known."""
        consumer = self._consumer
        if consumer is None:
            return {}
        lags = {}
        for tp in list(self._assigned):
            try:  # let go meanwhile, or its start not known yet: the next round reads it
                highwater = consumer.highwater(tp)
                position = self._handed.get(tp)
                if position is None:
                    position = await asyncio.wait_for(consumer.position(tp), _POLL_MS / 1000)
            except Exception:
                continue
            if highwater is not None and tp in self._assigned:
                lags[(tp.topic, tp.partition)] = max(0, highwater - position)
        return lags

    async def _reading(self, consumer: AIOKafkaConsumer) -> None:
        while not self.should_stop:
            if not self._assigned:
                self._reassigned.clear()
                await self._reassigned.wait()
                continue
            try:
                fetched = await consumer.getmany(timeout_ms=_POLL_MS)
            except Exception:  # reassigned under the fetch, or the broker away: retry
                log.debug("the publisher feed could not fetch", exc_info=True)
                await asyncio.sleep(_POLL_MS / 1000)
                continue
            async with self._lock:
                for tp, records in fetched.items():
                    if tp not in self._assigned:  # let go meanwhile: its new owner reads it
                        continue
                    for record in records:
                        if record.offset < self._handed.get(tp, 0):
                            continue  # fetched before the partition was sought
                        try:
                            self._take(record.value, record.timestamp)
                        except Exception:  # the ledger wrote it: a bug, not bad input
                            log.exception("the publisher could not take %s@%d", tp, record.offset)
                        self._handed[tp] = record.offset + 1

    async def _committing(self) -> None:
        while not self.should_stop:
            await asyncio.sleep(COMMIT_EVERY_S)
            consumer = self._consumer
            if consumer is None:
                return
            try:
                async with self._lock:
                    await self._commit(consumer)
            except Exception:  # the next round commits the same offsets or newer ones
                log.warning("the publisher feed could not commit its offsets", exc_info=True)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        due = {
            tp: OffsetAndMetadata(offset, "")
            for tp, offset in self._handed.items()
            if self._committed.get(tp) != offset
        }
        if due:
            await consumer.commit(due)
            self._committed.update({tp: meta.offset for tp, meta in due.items()})
