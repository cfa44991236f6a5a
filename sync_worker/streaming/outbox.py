"""A ledger batch's records, handed to the producer per topic partition.

aiokafka's ``send`` costs, per record, a future, a partitioner call and a look-up of the
partition's open batch: about a fifth of the worker's time on a hot SKU
(docs/performance.md). A hot batch's hundreds of decisions and audit records of one SKU
go to the same partition of each topic, so where a batch holds many records for a
partition the outbox hands aiokafka whole record batches (``create_batch`` /
``send_batch``), one future each. A few records go through ``send``: aiokafka sends one
batch per partition per request, one request per broker at a time, so small record
batches of their own would queue behind each other, a round trip each, where ``send``
merges them into the partition's open batch. Keyed records land where aiokafka's
default partitioner puts them, so consumers see each SKU's records in the partition
they always did.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

_partitioner = DefaultPartitioner()
BATCH_FROM = 64
"""Records for one partition from which a ledger batch sends them as batches of their own."""


@lru_cache(maxsize=65_536)
def _partition_of(key: bytes, partitions: tuple[int, ...]) -> int:
    """The partition aiokafka's default partitioner gives ``key`` (murmur2 is costly
    in Python; a batch names the same SKUs again and again)."""
    partition: int = _partitioner(key, list(partitions), list(partitions))
    return partition


class Outbox:
    """Records queued by ``add`` until ``send`` hands them to the producer."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._queued: list[tuple[str, bytes | None, bytes, int | None]] = []
        self._appending: dict[tuple[str, int], asyncio.Future[asyncio.Future[Any]]] = {}
        """Per topic partition, handing its newest records to the producer."""

    def add(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None = None
    ) -> None:
        """Queues a record for ``partition``, or for its key's partition when None."""
        if partition is None and key is None:
            raise ValueError(f"a record for {topic} needs a key or a partition")
        self._queued.append((topic, key, value, partition))

    async def send(self) -> list[asyncio.Future[Any]]:
        """Hands what was queued to the producer, in order per partition after what was
        sent before, without waiting for it; returns each record's or batch's delivery."""
        queued, self._queued = self._queued, []
        partitions: dict[str, tuple[int, ...]] = {}
        by_partition: dict[tuple[str, int], list[tuple[bytes | None, bytes]]] = {}
        for topic, key, value, partition in queued:
            if partition is None:
                assert key is not None
                known = partitions.get(topic)
                if known is None:
                    known = partitions[topic] = tuple(
                        sorted(await self._producer.partitions_for(topic))
                    )
                partition = _partition_of(key, known)
            by_partition.setdefault((topic, partition), []).append((key, value))
        deliveries: list[asyncio.Future[Any]] = []
        for tp, records in by_partition.items():
            appending = asyncio.ensure_future(self._append(self._appending.get(tp), tp, records))
            self._appending[tp] = appending
            deliveries.append(asyncio.ensure_future(_delivered(appending)))
        return deliveries

    async def _append(
        self,
        previous: asyncio.Future[Any] | None,
        tp: tuple[str, int],
        records: list[tuple[bytes | None, bytes]],
    ) -> asyncio.Future[Any]:
        """Hands ``records`` to the producer once the partition's previous records were;
        returns their delivery."""
        if previous is not None:
            await previous
        topic, partition = tp
        producer = self._producer
        if len(records) < BATCH_FROM:
            sent = [
                await producer.send(topic, value, key=key, partition=partition)
                for key, value in records
            ]
            sent_all: asyncio.Future[Any] = asyncio.gather(*sent)
            return sent_all
        builders = [producer.create_batch()]
        for key, value in records:
            if builders[-1].append(timestamp=None, key=key, value=value) is None:  # full
                builders.append(producer.create_batch())
                if builders[-1].append(timestamp=None, key=key, value=value) is None:
                    raise ValueError(f"a record for {topic} is larger than a producer batch")
        batches = []
        for builder in builders:
            builder.close()
            batches.append(await producer.send_batch(builder, topic, partition=partition))
        batched: asyncio.Future[Any] = asyncio.gather(*batches)
        return batched


async def _delivered(appending: asyncio.Future[asyncio.Future[Any]]) -> Any:
    return await (await appending)
