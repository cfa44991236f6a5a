"""Operator commands on Kafka: send stock events, read a SKU's audit trail.

Used by ``stockcast stock …``; the events go through the same input topic, the same
validation and the same ledger as every platform's orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from sync_worker.config import KafkaSettings
from sync_worker.domain.events import SkuEvent
from sync_worker.streaming import codecs
from sync_worker.streaming.kafka_clients import kafka_client_options
from sync_worker.streaming.names import TopicNames


async def send_events(kafka: KafkaSettings, topics: TopicNames, events: Sequence[SkuEvent]) -> None:
    """Send ``events`` in order and wait until the broker has them all."""
    producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **kafka_client_options(kafka))
    await producer.start()
    try:
        for event in events:
            await producer.send(
                topics.sku_events, key=event.sku.encode(), value=codecs.encode(event)
            )
        await producer.flush()
    finally:
        await producer.stop()


async def read_audit(kafka: KafkaSettings, topics: TopicNames, sku: str) -> list[dict[str, Any]]:
    """Every audit record of ``sku``, oldest first: one partition, read to its end."""
    partitions = await _partitions(kafka, topics.audit)
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **kafka_client_options(kafka))
    await consumer.start()
    try:
        key = sku.encode()
        partition = TopicPartition(topics.audit, DefaultPartitioner()(key, partitions, partitions))
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        records: list[dict[str, Any]] = []
        while await consumer.position(partition) < end:
            batch = await consumer.getmany(partition, timeout_ms=1000)
            records += [
                orjson.loads(message.value)
                for message in batch.get(partition, [])
                if message.key == key
            ]
        return records
    finally:
        await consumer.stop()


async def _partitions(kafka: KafkaSettings, topic: str) -> list[int]:
    """The topic's partitions; none when it does not exist yet."""
    admin = AIOKafkaAdminClient(**kafka_client_options(kafka))
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(partition["partition"] for partition in description.get("partitions", []))
