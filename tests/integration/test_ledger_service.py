"""The ledger service against the real broker, with a step that only records what it
was given: where each partition resumes comes from the marker in its own changelog."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from sync_worker.config import KafkaSettings
from sync_worker.domain.position import SkuPosition
from sync_worker.streaming import names, state
from sync_worker.streaming.kafka_clients import kafka_client_options
from sync_worker.streaming.ledger_service import LedgerService, WriteThrough
from sync_worker.streaming.ledger_store import PartitionStores
from sync_worker.streaming.names import TopicNames
from sync_worker.streaming.topics import ensure_topics

pytestmark = pytest.mark.integration

PARTITIONS = 2


class Recorder:
    """A step that stores each record's value under its key, and remembers every offset
    it was given per partition."""

    def __init__(self) -> None:
        self.seen: dict[int, list[int]] = {}

    async def __call__(
        self, table: WriteThrough, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> list[Awaitable[Any]]:
        for record in records:
            assert record.key is not None
            table[record.key] = record.value
            self.seen.setdefault(record.partition, []).append(record.offset)
        return []

    async def until(self, offsets: dict[int, int]) -> None:
        """Until the last offset seen per partition reaches ``offsets``."""
        async with asyncio.timeout(30):
            while True:
                if all(self.seen.get(p, [-1])[-1] >= offset for p, offset in offsets.items()):
                    return
                await asyncio.sleep(0.05)


class Holding(Recorder):
    """A step whose every batch has one delivery, acknowledged when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.deliveries: list[asyncio.Future[None]] = []

    async def __call__(
        self, table: WriteThrough, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> list[Awaitable[Any]]:
        await super().__call__(table, records)
        self.deliveries.append(asyncio.get_running_loop().create_future())
        return [self.deliveries[-1]]


@asynccontextmanager
async def ledger(
    bootstrap: str,
    topics: TopicNames,
    app_id: str,
    stores: PartitionStores,
    step: Recorder,
    faust_changelog: str | None = None,
) -> AsyncIterator[LedgerService]:
    service = LedgerService(
        topic=topics.sku_events,
        changelog=topics.ledger_state,
        group_id=f"{app_id}-{names.LEDGER_GROUP}",
        client_options={"bootstrap_servers": bootstrap},
        stores=stores,
        step=step,
        batch_max=100,
        batch_wait_ms=1,
        session_timeout_s=6,
        faust_changelog=faust_changelog,
    )
    await service.start()
    try:
        async with asyncio.timeout(30):
            while True:
                if service.ready:
                    break
                await asyncio.sleep(0.05)
        yield service
    finally:
        await service.stop()


async def produce(bootstrap: str, topic: str, partition: int, values: list[bytes]) -> None:
    await produce_records(bootstrap, topic, partition, [(value, value) for value in values])


async def produce_records(
    bootstrap: str, topic: str, partition: int, records: list[tuple[bytes, bytes]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()


async def changelog(bootstrap: str, topic: str, partition: int) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        read: list[tuple[bytes, bytes]] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                read += [(r.key, r.value) for r in records]
        return read
    finally:
        await consumer.stop()


async def commit(bootstrap: str, group_id: str, topic: str, offset: int) -> None:
    """Sets ``group_id``'s committed offset on every partition of ``topic``."""
    # Not auto-committing: that would commit its own fetch position again on stop.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, partition) for partition in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.commit(dict.fromkeys(tps, offset))
    finally:
        await consumer.stop()


@pytest.fixture
async def created(kafka_bootstrap: str, topics: TopicNames, run_id: str) -> TopicNames:
    kafka = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=run_id, partitions=PARTITIONS
    )
    await ensure_topics(kafka, topics)
    return topics


async def test_each_batch_ends_with_its_marker_after_its_writes(
    kafka_bootstrap: str, created: TopicNames, run_id: str, tmp_path: Path
) -> None:
    step = Recorder()
    async with ledger(kafka_bootstrap, created, run_id, PartitionStores(tmp_path), step):
        await produce(kafka_bootstrap, created.sku_events, 1, [b"a", b"b", b"c"])
        await step.until({1: 2})
        marker = (state.APPLIED_KEY, state.encode_offset(2))
        async with asyncio.timeout(30):
            while True:
                written = await changelog(kafka_bootstrap, created.ledger_state, 1)
                if written[-1:] == [marker]:
                    break
                await asyncio.sleep(0.1)

    keys = [key for key, _ in written]
    assert all(keys.index(key) < len(keys) - 1 for key in (b"a", b"b", b"c"))
    assert await changelog(kafka_bootstrap, created.ledger_state, 0) == []


async def markers(bootstrap: str, topic: str, partition: int) -> list[int]:
    written = await changelog(bootstrap, topic, partition)
    return [state.decode_offset(value) for key, value in written if key == state.APPLIED_KEY]


async def test_batches_are_decided_while_earlier_ones_are_acknowledged_and_marked_in_order(
    kafka_bootstrap: str, created: TopicNames, run_id: str, tmp_path: Path
) -> None:
    step = Holding()
    async with ledger(kafka_bootstrap, created, run_id, PartitionStores(tmp_path), step):
        await produce(kafka_bootstrap, created.sku_events, 1, [b"a"])
        await step.until({1: 0})
        await produce(kafka_bootstrap, created.sku_events, 1, [b"b"])
        await step.until({1: 1})  # while the first batch's delivery is unacknowledged
        step.deliveries[1].set_result(None)
        await asyncio.sleep(0.5)
        # The second batch's marker would cover the first, which Kafka may not hold yet.
        assert await markers(kafka_bootstrap, created.ledger_state, 1) == []
        step.deliveries[0].set_result(None)
        async with asyncio.timeout(30):
            while True:
                if await markers(kafka_bootstrap, created.ledger_state, 1) == [0, 1]:
                    break
                await asyncio.sleep(0.1)


async def test_a_batch_whose_delivery_failed_stops_the_ledger_unmarked(
    kafka_bootstrap: str, created: TopicNames, run_id: str, tmp_path: Path
) -> None:
    step = Holding()
    async with ledger(kafka_bootstrap, created, run_id, PartitionStores(tmp_path), step) as service:
        await produce(kafka_bootstrap, created.sku_events, 0, [b"a"])
        await step.until({0: 0})
        step.deliveries[0].set_exception(KafkaError("not delivered"))
        async with asyncio.timeout(30):
            while True:
                if service.crashed:
                    break
                await asyncio.sleep(0.05)

    assert await markers(kafka_bootstrap, created.ledger_state, 0) == []


async def test_a_restarted_ledger_rebuilds_its_state_and_reads_on_after_the_marker(
    kafka_bootstrap: str, created: TopicNames, run_id: str, tmp_path: Path
) -> None:
    first = Recorder()
    async with ledger(kafka_bootstrap, created, run_id, PartitionStores(tmp_path / "1"), first):
        await produce(kafka_bootstrap, created.sku_events, 0, [b"x", b"y"])
        await first.until({0: 1})

    await produce(kafka_bootstrap, created.sku_events, 0, [b"z"])
    # As if the group's commit had never happened: the marker alone says where to resume.
    await commit(kafka_bootstrap, f"{run_id}-{names.LEDGER_GROUP}", created.sku_events, 0)
    second, stores = Recorder(), PartitionStores(tmp_path / "2")
    async with ledger(kafka_bootstrap, created, run_id, stores, second):
        await second.until({0: 2})
        rebuilt = {key: stores.get(key) for key in (b"x", b"y", b"z")}

    assert first.seen == {0: [0, 1]}
    assert second.seen == {0: [2]}
    assert rebuilt == {b"x": b"x", b"y": b"y", b"z": b"z"}


async def test_fausts_changelog_is_imported_once_and_input_read_on_after_its_newest_decision(
    kafka_bootstrap: str, created: TopicNames, run_id: str, tmp_path: Path
) -> None:
    faust_changelog = f"{run_id}-{names.FAUST_LEDGER_CHANGELOG}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(faust_changelog, PARTITIONS, 1)])
    finally:
        await admin.close()
    # As the faust table left it: SKU A decided up to input offset 1 of partition 0.
    position = state.encode(replace(SkuPosition("A"), seq=1))
    line = (b"l\x00line-of-A", b"line")
    await produce_records(
        kafka_bootstrap, faust_changelog, 0, [(state.position_key("A"), position), line]
    )
    await produce(kafka_bootstrap, created.sku_events, 0, [b"x", b"y", b"z"])
    await produce(kafka_bootstrap, created.sku_events, 1, [b"w"])

    first, stores = Recorder(), PartitionStores(tmp_path / "1")
    async with ledger(kafka_bootstrap, created, run_id, stores, first, faust_changelog):
        await first.until({0: 2, 1: 0})
        imported = {key: stores.get(key) for key in (state.position_key("A"), line[0])}

    assert first.seen == {0: [2], 1: [0]}  # partition 1 had no state: from its start
    assert imported == {state.position_key("A"): position, line[0]: b"line"}
    copy = await changelog(kafka_bootstrap, created.ledger_state, 0)
    keys = [key for key, _ in copy]
    assert keys.index(line[0]) < keys.index(state.APPLIED_KEY)  # records, then the marker
    assert await markers(kafka_bootstrap, created.ledger_state, 0) == [1, 2]

    # Imported once: what reaches faust's changelog now is not read again.
    await produce_records(kafka_bootstrap, faust_changelog, 0, [(b"late", b"late")])
    second, stores = Recorder(), PartitionStores(tmp_path / "2")
    async with ledger(kafka_bootstrap, created, run_id, stores, second, faust_changelog):
        await produce(kafka_bootstrap, created.sku_events, 0, [b"v"])
        await second.until({0: 3})
        assert stores.get(b"late") is None
        assert stores.get(line[0]) == b"line"


async def test_a_changelog_partitioned_unlike_the_input_is_refused(
    kafka_bootstrap: str, topics: TopicNames, run_id: str, tmp_path: Path
) -> None:
    admin = AIOKafkaAdminClient(
        **kafka_client_options(KafkaSettings(bootstrap_servers=kafka_bootstrap))
    )
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topics.sku_events, 2, 1), NewTopic(topics.ledger_state, 3, 1)]
        )
    finally:
        await admin.close()

    with pytest.raises(RuntimeError, match="same count"):
        async with ledger(kafka_bootstrap, topics, run_id, PartitionStores(tmp_path), Recorder()):
            pass
