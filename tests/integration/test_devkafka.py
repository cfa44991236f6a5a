"""The 3-broker dev Kafka really works: group consume, one lost node, clean shutdown.

Runs its own cluster in a temp dir on ports 29092-29094 / 29192-29194, away
from the single-node broker the test command starts on 9092.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from sync_worker import devkafka
from sync_worker.devkafka import DevKafkaConfig

pytestmark = pytest.mark.integration

# Upper bounds so a broken cluster fails instead of hanging; not performance limits.
PATIENCE = 120.0


def java_processes_using(data_dir: Path) -> list[int]:
    """Pids of live kafka.Kafka JVMs whose command line points into data_dir."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if "kafka.Kafka" in cmdline and str(data_dir) in cmdline and state != "Z":
            pids.append(int(proc.name))
    return pids


@pytest.fixture(scope="module")
def cluster_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevKafkaConfig]:
    config = DevKafkaConfig(
        data_dir=tmp_path_factory.mktemp("devkafka3"),
        brokers=3,
        base_port=29092,
        controller_base_port=29192,
    )
    try:
        yield config
    finally:
        devkafka.down(config)
        assert java_processes_using(config.data_dir) == []


@pytest.fixture
def cluster(cluster_config: DevKafkaConfig) -> DevKafkaConfig:
    """The running cluster; ``up`` is a no-op when a previous test left it running."""
    devkafka.up(cluster_config, timeout=PATIENCE)
    return cluster_config


async def create_topic(bootstrap: str, partitions: int = 4) -> str:
    topic = f"devkafka-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, replication_factor=3)])
    finally:
        await admin.close()
    return topic


async def min_insync_replicas(bootstrap: str, topic: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"min.insync.replicas": None})]
        )
    finally:
        await admin.close()
    [resource] = response.to_object()["resources"]
    [entry] = resource["config_entries"]
    return str(entry["config_value"])


async def partition_zero(
    bootstrap: str, topic: str, ready: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Partition 0's metadata once ``ready`` holds (metadata propagates async)."""
    deadline = time.monotonic() + PATIENCE
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        while True:
            state: dict[str, Any] = {}
            with contextlib.suppress(KafkaError):  # e.g. asked the node just killed
                [description] = await admin.describe_topics([topic])
                partitions = {p["partition"]: p for p in description["partitions"]}
                state = dict(partitions.get(0, {}))
            if (state and ready(state)) or time.monotonic() > deadline:
                return state
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def consume_all(bootstrap: str, topic: str, group: str, want: set[bytes]) -> list[bytes]:
    """Everything a consumer group reads from ``topic`` until ``want`` was seen."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[bytes] = []
    deadline = time.monotonic() + PATIENCE
    try:
        while not want <= set(received) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            for messages in batches.values():
                received.extend(m.value for m in messages if m.value is not None)
        await consumer.commit()
    finally:
        await consumer.stop()
    return received


async def produce_despite_failover(
    producer: AIOKafkaProducer, topic: str, values: list[bytes]
) -> None:
    """acks=all sends, retried while the controller fences the lost node."""
    deadline = time.monotonic() + PATIENCE
    for value in values:
        while True:
            try:
                await producer.send_and_wait(topic, value)
                break
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)


def test_up_starts_three_live_nodes_and_is_idempotent(cluster: DevKafkaConfig) -> None:
    before = devkafka.status(cluster)

    assert [(n.node_id, n.port, n.alive) for n in before] == [
        (0, 29092, True),
        (1, 29093, True),
        (2, 29094, True),
    ]
    assert devkafka.up(cluster) == "127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094"
    assert devkafka.status(cluster) == before  # same pids: nothing restarted


async def test_a_consumer_group_reads_what_was_produced(cluster: DevKafkaConfig) -> None:
    bootstrap = cluster.bootstrap_servers
    topic = await create_topic(bootstrap)
    sent = [f"stock-{i}".encode() for i in range(40)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i, value in enumerate(sent):
            await producer.send_and_wait(topic, value, key=str(i % 7).encode())
    finally:
        await producer.stop()

    received = await consume_all(bootstrap, topic, group=f"g-{topic}", want=set(sent))

    assert sorted(received) == sorted(sent)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"g-{topic}")
    await consumer.start()
    try:
        committed = [await consumer.committed(TopicPartition(topic, p)) for p in range(4)]
    finally:
        await consumer.stop()
    assert sum(c or 0 for c in committed) == len(sent)  # the group's offsets are durable


async def test_acks_all_survives_losing_a_partition_leader(cluster: DevKafkaConfig) -> None:
    bootstrap = cluster.bootstrap_servers
    topic = await create_topic(bootstrap, partitions=1)
    before = await partition_zero(bootstrap, topic, lambda p: len(p["isr"]) == 3)
    assert sorted(before["replicas"]) == [0, 1, 2]
    assert sorted(before["isr"]) == [0, 1, 2]
    assert await min_insync_replicas(bootstrap, topic) == "2"
    victim = before["leader"]
    during_outage = [f"during-{i}".encode() for i in range(5)]

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", request_timeout_ms=10000, linger_ms=0
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"before")
        await asyncio.to_thread(devkafka.kill_node, cluster, victim)
        assert not devkafka.status(cluster)[victim].alive
        await produce_despite_failover(producer, topic, during_outage)
        during = await partition_zero(bootstrap, topic, lambda p: victim not in p["isr"])
    finally:
        await producer.stop()
        await asyncio.to_thread(devkafka.start_node, cluster, victim, PATIENCE)

    assert during["leader"] != victim
    assert sorted(during["isr"]) == sorted({0, 1, 2} - {victim})  # min ISR is all that is left
    assert all(node.alive for node in devkafka.status(cluster))
    # A send retried after a timeout may land twice; what matters is nothing is lost.
    received = await consume_all(bootstrap, topic, f"g-{topic}", want={b"before", *during_outage})
    assert set(received) == {b"before", *during_outage}


def test_down_leaves_no_broker_process_behind(cluster: DevKafkaConfig) -> None:
    assert len(java_processes_using(cluster.data_dir)) == 3

    devkafka.down(cluster)

    assert java_processes_using(cluster.data_dir) == []
    assert [(n.pid, n.alive) for n in devkafka.status(cluster)] == [(None, False)] * 3
    devkafka.down(cluster)  # idempotent
