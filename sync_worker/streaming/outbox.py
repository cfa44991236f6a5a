"""A ledger batch's records, sent as one producer batch per topic partition.

aiokafka's ``send`` costs, per record, a future, a partitioner call and a look-up of the
partition's open batch: about a fifth of the worker's time on a hot SKU
(docs/performance.md). A ledger batch's hundreds of decisions and audit records of one
SKU go to the same partition of each topic anyway, so the outbox gathers them and hands
aiokafka whole record batches (``create_batch`` / ``send_batch``), one delivery each.
Keyed records land where aiokafka's default partitioner would put them, so consumers
see each SKU's records in the partition they always did.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

_partitioner = DefaultPartitioner()


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

    def add(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None = None
    ) -> None:
        """Queues a record for ``partition``, or for its key's partition when None."""
        if partition is None and key is None:
            raise ValueError(f"a record for {topic} needs a key or a partition")
        self._queued.append((topic, key, value, partition))

    async def send(self) -> list[asyncio.Future[Any]]:
        """Sends what was queued, in order per partition; returns the batches' deliveries."""
        queued, self._queued = self._queued, []
        partitions: dict[str, tuple[int, ...]] = {}
        batches: dict[tuple[str, int], list[Any]] = {}
        for topic, key, value, partition in queued:
            if partition is None:
                assert key is not None
                known = partitions.get(topic)
                if known is None:
                    known = partitions[topic] = tuple(
                        sorted(await self._producer.partitions_for(topic))
                    )
                partition = _partition_of(key, known)
            builders = batches.setdefault((topic, partition), [self._producer.create_batch()])
            if builders[-1].append(timestamp=None, key=key, value=value) is None:  # full
                builders.append(self._producer.create_batch())
                if builders[-1].append(timestamp=None, key=key, value=value) is None:
                    raise ValueError(f"a record for {topic} is larger than a producer batch")
        deliveries = []
        for (topic, partition), builders in batches.items():
            for builder in builders:
                builder.close()
                deliveries.append(
                    await self._producer.send_batch(builder, topic, partition=partition)
                )
        return deliveries
