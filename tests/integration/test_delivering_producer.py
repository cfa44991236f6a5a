"""The worker's producer holds a commit until every table write it was handed is delivered.

faust's own flush returns after 0.1 s without progress, which a 0.3 s linger guarantees
here: each 900-byte record fills a 1 KiB batch, so handing over the next one waits for
the previous batch to leave. With faust's producer the first test fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import faust
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.exceptions import ProducerSendError

from sync_worker.streaming.delivering_producer import DeliveringApp

RECORD = b"x" * 900


@pytest.fixture
async def app(kafka_bootstrap: str, run_id: str) -> AsyncIterator[faust.App]:
    app = DeliveringApp(
        run_id,
        broker=f"kafka://{kafka_bootstrap}",
        env={},
        autodiscover=False,
        web_enabled=False,
        producer_linger=0.3,
        producer_max_batch_size=1024,
        key_serializer="raw",
        value_serializer="raw",
    )
    await app.producer.start()
    yield app
    await app.producer.stop()


async def create_topic(kafka_bootstrap: str, name: str, **configs: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, num_partitions=1, replication_factor=1, topic_configs=configs)]
        )
    finally:
        await admin.close()


async def test_flush_returns_once_every_buffered_record_is_delivered(
    app: faust.App, kafka_bootstrap: str, run_id: str
) -> None:
    await create_topic(kafka_bootstrap, f"{run_id}.writes")
    topic = app.topic(f"{run_id}.writes", key_type=bytes, value_type=bytes)

    handed = [topic.send_soon(key=b"sku", value=RECORD) for _ in range(6)]
    await app.producer.flush()

    assert [fut.done() and fut.exception() is None for fut in handed] == [True] * 6
    offsets = [fut.result().offset for fut in handed]
    assert offsets == sorted(offsets)


async def test_flush_fails_when_a_record_could_not_be_delivered(
    app: faust.App, kafka_bootstrap: str, run_id: str
) -> None:
    # The broker refuses records above the topic's max.message.bytes (not retriable).
    await create_topic(kafka_bootstrap, f"{run_id}.small", **{"max.message.bytes": "200"})
    topic = app.topic(f"{run_id}.small", key_type=bytes, value_type=bytes)

    refused = topic.send_soon(key=b"sku", value=RECORD)
    with pytest.raises(ProducerSendError, match="not delivered"):
        await app.producer.flush()
    assert refused.done()
