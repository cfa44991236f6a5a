"""The publisher's feed reads the stock-levels partitions matching the SKU-events
partitions it is told to follow, resumes after what it handed over, lets go, and on
its first start picks up where faust's group left off."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from sync_worker.streaming.publisher_feed import PublisherFeed

pytestmark = pytest.mark.integration

HANG_GUARD_S = 30.0


@pytest.fixture
async def topic(kafka_bootstrap: str, run_id: str) -> str:
    name = f"{run_id}.stock-levels"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def produce(kafka_bootstrap: str, topic: str, *records: tuple[int, bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for partition, value in records:
            await producer.send_and_wait(topic, value, partition=partition)
    finally:
        await producer.stop()


class Taken:
    def __init__(self) -> None:
        self.values: list[bytes] = []

    def __call__(self, value: bytes, timestamp_ms: int | None) -> None:
        assert timestamp_ms is not None
        self.values.append(value)


@pytest.fixture
def feed_for(
    kafka_bootstrap: str, topic: str, run_id: str
) -> Callable[[Taken], AbstractAsyncContextManager[PublisherFeed]]:
    @asynccontextmanager
    async def started(taken: Taken) -> AsyncIterator[PublisherFeed]:
        feed = PublisherFeed(
            topic=topic,
            follows="sku-events",
            group_id=f"{run_id}-publisher",
            consumer_options={"bootstrap_servers": kafka_bootstrap},
            take=taken,
            seed_group=f"{run_id}-faust",
        )
        await feed.start()
        try:
            yield feed
        finally:
            await feed.stop()

    return started


async def until(done: Callable[[], bool], taken: Taken) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"took {taken.values}")
        await asyncio.sleep(0.05)


async def test_reads_the_followed_partitions_and_resumes_after_what_it_handed_over(
    kafka_bootstrap: str,
    topic: str,
    feed_for: Callable[[Taken], AbstractAsyncContextManager[PublisherFeed]],
) -> None:
    await produce(kafka_bootstrap, topic, (0, b"a1"), (1, b"b1"), (0, b"a2"))
    first = Taken()
    async with feed_for(first) as feed:
        # Other topics' partitions (changelogs, orders) are not followed.
        await feed.follow([("sku-events", 0), ("ledger-changelog", 1)])
        await until(lambda: first.values == [b"a1", b"a2"], first)
        assert feed.partitions() == {(topic, 0)}
        assert await feed.lags() == {(topic, 0): 0}
        await feed.let_go()  # commits, as on a revocation
        assert feed.partitions() == set()
        await produce(kafka_bootstrap, topic, (0, b"a3"))
        await asyncio.sleep(0.5)
        assert first.values == [b"a1", b"a2"]  # let go: nothing more is taken

    second = Taken()
    async with feed_for(second) as feed:  # the next owner of both partitions
        await feed.follow([("sku-events", 0), ("sku-events", 1)])
        await until(lambda: sorted(second.values) == [b"a3", b"b1"], second)
        assert feed.partitions() == {(topic, 0), (topic, 1)}


async def test_where_its_group_never_committed_it_starts_where_faust_left_off(
    kafka_bootstrap: str,
    topic: str,
    run_id: str,
    feed_for: Callable[[Taken], AbstractAsyncContextManager[PublisherFeed]],
) -> None:
    await produce(kafka_bootstrap, topic, (1, b"b1"), (1, b"b2"), (0, b"a1"))
    # Faust commits what its agents processed; an auto-committing consumer would also
    # commit where its own fetcher got to on stop (the log end, had it reset there first).
    faust_group = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=f"{run_id}-faust", enable_auto_commit=False
    )
    await faust_group.start()
    try:
        faust_group.assign([TopicPartition(topic, 1)])
        await faust_group.commit({TopicPartition(topic, 1): OffsetAndMetadata(1, "")})
    finally:
        await faust_group.stop()

    taken = Taken()
    async with feed_for(taken) as feed:
        await feed.follow([("sku-events", 0), ("sku-events", 1)])
        await until(lambda: sorted(taken.values) == [b"a1", b"b2"], taken)


class Refusing(Taken):
    def __call__(self, value: bytes, timestamp_ms: int | None) -> None:
        if value == b"bad":
            raise ValueError("cannot take it")
        super().__call__(value, timestamp_ms)


async def test_a_record_it_cannot_take_is_logged_and_the_feed_goes_on(
    kafka_bootstrap: str,
    topic: str,
    feed_for: Callable[[Taken], AbstractAsyncContextManager[PublisherFeed]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await produce(kafka_bootstrap, topic, (0, b"bad"), (0, b"good"))
    taken = Refusing()
    async with feed_for(taken) as feed:
        await feed.follow([("sku-events", 0)])
        await until(lambda: taken.values == [b"good"], taken)
    assert "could not take" in caplog.text
