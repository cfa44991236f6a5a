"""Unpaid orders against the real broker: a worker decides, the payment clock beside it
releases lines left unpaid past their platform's window, and a restarted clock picks up
every line it had not fired."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from sync_worker.config import KafkaSettings
from sync_worker.domain.ledger import UNPAID_TIMEOUT
from sync_worker.metrics import Metrics
from sync_worker.streaming import codecs, names
from sync_worker.streaming.dead_letters import DeadLetter
from sync_worker.streaming.names import TopicNames
from sync_worker.streaming.payment_service import PaymentService
from sync_worker.streaming.topics import ensure_topics
from tests.integration.support import (
    ARRIVAL_TIMEOUT_S,
    WorkerProcess,
    consume,
    encoded,
    event,
    http_get,
    produce,
)

pytestmark = pytest.mark.integration

SKU = "lipstick"


@contextlib.asynccontextmanager
async def payment_clock(
    bootstrap: str,
    topics: TopicNames,
    app_id: str,
    payment_timeout_s: Mapping[str, float],
    metrics: Metrics,
) -> AsyncIterator[None]:
    """The payment service as a worker runs it, beside the worker process."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()

    async def send_event(key: bytes, value: bytes) -> Awaitable[Any]:
        delivery: Awaitable[Any] = await producer.send(topics.sku_events, value, key=key)
        return delivery

    async def dead_letter(letter: DeadLetter) -> Awaitable[Any]:
        delivery: Awaitable[Any] = await producer.send(topics.dead_letters, codecs.encode(letter))
        return delivery

    service = PaymentService(
        topic=topics.decisions,
        group_id=f"{app_id}-{names.PAYMENTS_GROUP}",
        consumer_options={"bootstrap_servers": bootstrap},
        payment_timeout_s=payment_timeout_s,
        send_event=send_event,
        dead_letter=dead_letter,
        metrics=metrics,
    )
    await service.start()
    try:
        yield
    finally:
        await service.stop()
        await producer.stop()


async def place(bootstrap: str, topics: TopicNames, *orders: tuple[str, str, bool]) -> None:
    """Each ``(order id, platform, paid)`` becomes a 1-line placement (and its payment)."""
    messages = []
    for order_id, platform, paid in orders:
        line = {"sku": SKU, "order_id": order_id, "platform": platform}
        placed = event("order_line.placed", event_id=f"{order_id}:placed", quantity=2, **line)
        messages.append((SKU.encode(), encoded(placed)))
        if paid:
            payment = event("order_line.paid", event_id=f"{order_id}:paid", **line)
            messages.append((SKU.encode(), encoded(payment)))
    await produce(bootstrap, topics.sku_events, messages)


async def position_when(
    worker: WorkerProcess, holds: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The SKU's position as the worker serves it, once ``holds`` is true of it."""
    async with asyncio.timeout(ARRIVAL_TIMEOUT_S):
        while True:
            status, body = await asyncio.to_thread(http_get, f"{worker.url}/skus/{SKU}")
            position: dict[str, Any] = orjson.loads(body) if status == 200 else {}
            if position and holds(position):
                return position
            await asyncio.sleep(0.1)


async def settled(
    worker: WorkerProcess, bootstrap: str, topics: TopicNames, on_hand: int
) -> dict[str, Any]:
    """The position once the ledger applied everything sent to the SKU so far: one more
    unit is received behind it, in the same partition."""
    receipt = event("stock.received", event_id=f"sentinel-{on_hand}", sku=SKU, quantity=1)
    await produce(bootstrap, topics.sku_events, [(SKU.encode(), encoded(receipt))])
    return await position_when(worker, lambda position: position["on_hand"] == on_hand + 1)


async def unpaid_releases(bootstrap: str, topics: TopicNames, count: int) -> list[dict[str, Any]]:
    """The first ``count`` unpaid-timeout cancellations sent to the SKU events."""
    consumer = AIOKafkaConsumer(
        topics.sku_events, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(ARRIVAL_TIMEOUT_S):
            async for message in consumer:
                sent = orjson.loads(message.value)
                if sent.get("reason") == UNPAID_TIMEOUT:
                    found.append(sent)
                if len(found) >= count:
                    return found
    finally:
        await consumer.stop()
    return found


async def first_record(
    bootstrap: str, topic: str, matches: Callable[[bytes], bool]
) -> tuple[int, int]:
    """(partition, offset) of the first record of ``topic`` whose value ``matches``."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        async with asyncio.timeout(ARRIVAL_TIMEOUT_S):
            async for message in consumer:
                if matches(message.value):
                    return message.partition, message.offset
    finally:
        await consumer.stop()
    raise AssertionError("unreachable: the timeout ends the loop")


def answers(order_id: str) -> Callable[[bytes], bool]:
    return lambda value: bool(orjson.loads(value)["order_id"] == order_id)


async def committed(bootstrap: str, group_id: str, topic: str, partition: int, offset: int) -> None:
    """Waits until ``group_id`` has committed exactly ``offset`` on the partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(ARRIVAL_TIMEOUT_S):
            while True:
                offsets = await admin.list_consumer_group_offsets(group_id)
                stored = offsets.get(TopicPartition(topic, partition))
                if stored is not None and stored.offset == offset:
                    return
                await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def test_an_unpaid_line_returns_to_the_pool_when_its_window_lapses_a_paid_one_stays(
    worker_factory: Callable[..., WorkerProcess],
    kafka_bootstrap: str,
    topics: TopicNames,
    run_id: str,
) -> None:
    worker = worker_factory()
    worker.start()
    counted = event("stock.counted", event_id="c1", sku=SKU, quantity=4)
    await produce(kafka_bootstrap, topics.sku_events, [(SKU.encode(), encoded(counted))])
    metrics = Metrics.create()
    async with payment_clock(kafka_bootstrap, topics, run_id, {"tiktok": 1.0}, metrics):
        await place(kafka_bootstrap, topics, ("unpaid", "tiktok", False), ("paid", "tiktok", True))

        # Both fire at their deadline; the ledger releases only the unpaid line.
        released = await unpaid_releases(kafka_bootstrap, topics, 2)
        assert {r["order_id"] for r in released} == {"unpaid", "paid"}
        position = await settled(worker, kafka_bootstrap, topics, on_hand=4)
        assert (position["committed"], position["sellable"]) == (2, 3)

    fired = metrics.registry.get_sample_value(
        "stockcast_unpaid_released_total", {"platform": "tiktok"}
    )
    assert fired == 2


async def test_a_restarted_clock_reads_again_every_line_it_had_not_fired(
    worker_factory: Callable[..., WorkerProcess],
    kafka_bootstrap: str,
    topics: TopicNames,
    run_id: str,
) -> None:
    worker = worker_factory()
    worker.start()
    counted = event("stock.counted", event_id="c1", sku=SKU, quantity=4)
    await produce(kafka_bootstrap, topics.sku_events, [(SKU.encode(), encoded(counted))])
    await place(kafka_bootstrap, topics, ("unpaid", "tiktok", False), ("untimed", "shopify", False))
    partition, offset = await first_record(kafka_bootstrap, topics.decisions, answers("unpaid"))
    group_id = f"{run_id}-{names.PAYMENTS_GROUP}"

    # An hour's window: the first clock reads the line and commits, but never fires it.
    async with payment_clock(kafka_bootstrap, topics, run_id, {"tiktok": 3600.0}, Metrics.create()):
        await committed(kafka_bootstrap, group_id, topics.decisions, partition, offset)

    # The window shortened to a second: the next clock finds the line still held.
    async with payment_clock(kafka_bootstrap, topics, run_id, {"tiktok": 1.0}, Metrics.create()):
        await position_when(worker, lambda position: position["committed"] <= 2)
        position = await settled(worker, kafka_bootstrap, topics, on_hand=4)
    assert (position["committed"], position["sellable"]) == (2, 3)  # shopify has no window


async def test_a_record_that_is_not_a_decision_is_dead_lettered_and_passed_over(
    kafka_bootstrap: str, topics: TopicNames, run_id: str
) -> None:
    await ensure_topics(
        KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=run_id), topics
    )
    await produce(kafka_bootstrap, topics.decisions, [(SKU.encode(), b"{not json")])
    partition, offset = await first_record(kafka_bootstrap, topics.decisions, lambda _: True)

    async with payment_clock(kafka_bootstrap, topics, run_id, {"tiktok": 1.0}, Metrics.create()):
        [letter] = await consume(kafka_bootstrap, topics.dead_letters, 1)
        group_id = f"{run_id}-{names.PAYMENTS_GROUP}"
        await committed(kafka_bootstrap, group_id, topics.decisions, partition, offset + 1)
    assert (letter["reason"], letter["value"]) == ("invalid_decision", "{not json")
