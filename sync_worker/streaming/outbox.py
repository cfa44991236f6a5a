"""A ledger batch's records, handed to the producer per topic partition as record
batches of their own, one at a time per partition.

aiokafka's ``send`` costs, per record, a future, a partitioner call, a look-up of the
partition's open batch and, once acknowledged, a result set on that future: about a
fifth of the worker's time when a batch spreads over many SKUs (docs/performance.md).
So the outbox builds the record batches itself (``create_batch`` / ``send_batch``, one
future per batch) and keeps one of them per partition with the producer: records
queued for a partition while its last batch is on its way wait, and all go as the next
batch once it is acknowledged. Under load the batches grow with the round trip; at a
trickle each record batch goes as soon as it is queued. (A record batch per ledger batch
would not do: aiokafka sends one batch per partition per request, one request per
broker at a time, so small batches would queue behind each other, a round trip each.)

Keyed records land where aiokafka's default partitioner puts them, so consumers see
each SKU's records in the partition they always did.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
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


@dataclass(slots=True)
class _Lane:
    """One topic partition: the records waiting for its batch on the way."""

    records: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    delivered: asyncio.Future[None] | None = None
    """Resolved once the waiting records are acknowledged."""
    draining: asyncio.Task[None] | None = None


class Outbox:
    """Records queued by ``add`` until ``send`` hands them on."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._queued: list[tuple[str, bytes | None, bytes, int | None]] = []
        self._lanes: dict[tuple[str, int], _Lane] = {}
        self._partitions: dict[str, tuple[int, ...]] = {}

    def add(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None = None
    ) -> None:
        """Queues a record for ``partition``, or for its key's partition when None."""
        if partition is None and key is None:
            raise ValueError(f"a record for {topic} needs a key or a partition")
        self._queued.append((topic, key, value, partition))

    async def send(self) -> list[asyncio.Future[None]]:
        """Hands what was queued on, in order per partition after what was sent before,
        without waiting for it; returns the deliveries covering its records."""
        queued, self._queued = self._queued, []
        placed = []
        for topic, key, value, partition in queued:
            if partition is None:
                assert key is not None
                partition = _partition_of(key, await self._partitions_of(topic))
            placed.append(((topic, partition), key, value))
        # Nothing awaited from here on: a lane draining meanwhile would take records
        # without the delivery that reports them.
        lanes = self._lanes
        touched: dict[tuple[str, int], _Lane] = {}
        for tp, key, value in placed:
            lane = touched.get(tp)
            if lane is None:
                lane = touched[tp] = lanes.setdefault(tp, _Lane())
                if lane.delivered is None:
                    lane.delivered = asyncio.get_running_loop().create_future()
            lane.records.append((key, value))
        deliveries = []
        for tp, lane in touched.items():
            assert lane.delivered is not None
            deliveries.append(lane.delivered)
            if lane.draining is None:
                lane.draining = asyncio.create_task(self._drain(tp, lane))
        return deliveries

    async def _partitions_of(self, topic: str) -> tuple[int, ...]:
        known = self._partitions.get(topic)
        if known is None:
            known = tuple(sorted(await self._producer.partitions_for(topic)))
            self._partitions[topic] = known
        return known

    async def _drain(self, tp: tuple[str, int], lane: _Lane) -> None:
        """Sends the lane's waiting records as batches, one round at a time, until none
        wait; each round's delivery says how it went."""
        try:
            while lane.records:
                records, lane.records = lane.records, []
                delivered, lane.delivered = lane.delivered, None
                assert delivered is not None
                try:
                    await asyncio.gather(*[await sent for sent in self._batches(tp, records)])
                except Exception as error:  # the ledger stops on it (its marker is never written)
                    delivered.set_exception(error)
                else:
                    delivered.set_result(None)
        finally:
            lane.draining = None

    def _batches(self, tp: tuple[str, int], records: list[tuple[bytes | None, bytes]]) -> list[Any]:
        """``records`` as record batches handed to the producer (each ``send_batch`` to
        await for its delivery), as few as the producer's batch size allows."""
        topic, partition = tp
        producer = self._producer
        builders = [producer.create_batch()]
        for key, value in records:
            if builders[-1].append(timestamp=None, key=key, value=value) is None:  # full
                builders.append(producer.create_batch())  # an empty batch takes any record
                builders[-1].append(timestamp=None, key=key, value=value)
        sends = []
        for builder in builders:
            builder.close()
            sends.append(producer.send_batch(builder, topic, partition=partition))
        return sends
