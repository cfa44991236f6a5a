"""Creates the worker's topics before it subscribes.

faust declares internal topics while the consumer is already subscribing; a topic
created a moment later is only noticed at the next metadata refresh, minutes away.
Creating them first, with the configured partitions, removes that race.
"""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from sync_worker.config import KafkaSettings
from sync_worker.streaming.kafka_clients import kafka_client_options
from sync_worker.streaming.names import TopicNames


async def ensure_topics(kafka: KafkaSettings, topics: TopicNames) -> None:
    """Create any missing topic of ``topics``; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(**kafka_client_options(kafka))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [_new_topic(name, kafka, topics) for name in topics.all() if name not in existing]
        # Another worker of the group may have created them a moment ago.
        with contextlib.suppress(TopicAlreadyExistsError):
            if missing:
                await admin.create_topics(missing)
    finally:
        await admin.close()


def _new_topic(name: str, kafka: KafkaSettings, topics: TopicNames) -> NewTopic:
    """The sessions topic is a table: one partition (every worker reads it whole, in
    order) and compacted (only each session's latest state is kept). The ledger's
    state is compacted too, partitioned like the SKU events it is the state of."""
    compacted = {"cleanup.policy": "compact"}
    if name == topics.sessions:
        return NewTopic(name, 1, kafka.replication_factor, topic_configs=compacted)
    if name == topics.ledger_state:
        return NewTopic(name, kafka.partitions, kafka.replication_factor, topic_configs=compacted)
    return NewTopic(name, kafka.partitions, kafka.replication_factor)
