"""The ledger's outbox against the real broker: records go where aiokafka's ``send``
would put them, in order, however many producer batches they fill."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from sync_worker.streaming.outbox import Outbox

pytestmark = pytest.mark.integration

PARTITIONS = 4


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def created(kafka_bootstrap: str, *names: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names])
    finally:
        await admin.close()


async def read(kafka_bootstrap: str, topic: str) -> dict[int, list[tuple[bytes, bytes]]]:
    """Every record of ``topic``, per partition, in offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        read: dict[int, list[tuple[bytes, bytes]]] = {p: [] for p in range(PARTITIONS)}
        async with asyncio.timeout(30):
            while sum(len(records) for records in read.values()) < sum(ends.values()):
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    read[tp.partition] += [(r.key, r.value) for r in records]
        return read
    finally:
        await consumer.stop()


async def test_keyed_records_land_in_the_partition_send_gives_them(
    kafka_bootstrap: str, run_id: str, producer: AIOKafkaProducer
) -> None:
    topic, reference = f"{run_id}.outbox", f"{run_id}.reference"
    await created(kafka_bootstrap, topic, reference)
    keys = [f"sku-{n}".encode() for n in range(40)]
    outbox = Outbox(producer)
    for key in keys:
        outbox.add(topic, key, b"v:" + key)
    await asyncio.gather(*await outbox.send())

    expected = {
        key: (await producer.send_and_wait(reference, b"", key=key)).partition for key in keys
    }
    landed = {
        key: partition
        for partition, records in (await read(kafka_bootstrap, topic)).items()
        for key, _ in records
    }
    assert landed == expected
    assert len(set(expected.values())) > 1  # the keys do spread: the check means something


async def test_records_keep_their_order_over_sends_small_and_large(
    kafka_bootstrap: str, run_id: str
) -> None:
    topic = f"{run_id}.outbox"
    await created(kafka_bootstrap, topic)
    # aiokafka's default batch (16 KiB) holds a few dozen of these: the large send fills
    # many record batches, the small ones queue behind it.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    values = [f"{n:06d}".encode() * 80 for n in range(3_000)]
    try:
        outbox = Outbox(producer)
        deliveries = []
        for sent in (values[:10], values[10:2_990], values[2_990:]):
            for value in sent:
                outbox.add(topic, b"hot-sku", value)
            deliveries += await outbox.send()  # not waiting for the producer in between
        outbox.add(topic, b"ignored", b"to partition 2", partition=2)
        deliveries += await outbox.send()
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()

    read_back = await read(kafka_bootstrap, topic)
    hot = [
        value for partition in read_back.values() for key, value in partition if key == b"hot-sku"
    ]
    assert hot == values
    assert (b"ignored", b"to partition 2") in read_back[2]


async def test_records_queued_while_a_batch_is_on_its_way_go_together_as_the_next(
    kafka_bootstrap: str, run_id: str, producer: AIOKafkaProducer
) -> None:
    topic = f"{run_id}.outbox"
    await created(kafka_bootstrap, topic)
    batches: list[int] = []
    send_batch = producer.send_batch

    async def counted(builder: Any, *args: Any, **kwargs: Any) -> Any:
        batches.append(builder.record_count())
        return await send_batch(builder, *args, **kwargs)

    producer.send_batch = counted  # type: ignore[method-assign]
    outbox = Outbox(producer)
    deliveries = []
    for n in range(50):  # a ledger batch of one record each, none waited for
        outbox.add(topic, b"sku", f"{n}".encode())
        deliveries += await outbox.send()
        if n == 0:
            await asyncio.sleep(0)  # the first is handed to the producer
    await asyncio.gather(*deliveries)
    outbox.add(topic, b"sku", b"50")  # once all was acknowledged: on its way at once
    await asyncio.gather(*await outbox.send())

    # The first went alone; the rest waited for it, then went as one batch.
    assert batches == [1, 49, 1]
    values = [
        value for records in (await read(kafka_bootstrap, topic)).values() for _, value in records
    ]
    assert values == [f"{n}".encode() for n in range(51)]


async def test_a_send_waiting_to_learn_a_topics_partitions_loses_no_record(
    kafka_bootstrap: str, run_id: str, producer: AIOKafkaProducer
) -> None:
    known, new = f"{run_id}.outbox", f"{run_id}.outbox-new"
    await created(kafka_bootstrap, known, new)
    learned = asyncio.Event()
    partitions_for = producer.partitions_for

    async def slowly(topic: str) -> Any:
        if topic == new:
            await learned.wait()
        return await partitions_for(topic)

    producer.partitions_for = slowly  # type: ignore[method-assign]
    outbox = Outbox(producer)
    outbox.add(known, b"a", b"1", partition=0)
    first = await outbox.send()
    outbox.add(known, b"a", b"2", partition=0)
    outbox.add(new, b"a", b"3")
    second = asyncio.create_task(outbox.send())
    async with asyncio.timeout(30):
        await asyncio.gather(*first)  # the lane drains while the second send waits
        learned.set()
        await asyncio.gather(*await second)

    assert (await read(kafka_bootstrap, known))[0] == [(b"a", b"1"), (b"a", b"2")]
    assert [r for rs in (await read(kafka_bootstrap, new)).values() for r in rs] == [(b"a", b"3")]
