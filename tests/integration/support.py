"""Helpers for integration tests: the worker subprocess, HTTP, canonical events."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

# faust settings that, were faust reading the environment, would break the worker.
HOSTILE_ENV = {
    "BROKER_URL": "kafka://10.255.255.1:1",
    "F_BROKER_URL": "kafka://10.255.255.1:1",
    "APP_DATADIR": "/nonexistent/datadir",
    "F_DATADIR": "/nonexistent/datadir",
    "FAUST_DATADIR": "/nonexistent/datadir",
    "STORE": "memory://",
    "TOPIC_PARTITIONS": "1",
    "PROCESSING_GUARANTEE": "exactly_once",
    "WEB_PORT": "1",
    "APP_AUTODISCOVER": "true",
}

READY_TIMEOUT_S = 120.0


def http_get(url: str) -> tuple[int, bytes]:
    """Status and body; status 0 when nothing answers yet."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class WorkerProcess:
    config: Path
    data_dir: Path
    web_port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKCAST_")}
        env.update(HOSTILE_ENV)
        env.update(self.extra_env)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sync_worker", "run", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"worker exited with {self.process.returncode}:\n{self.log_tail()}")
            status, _ = http_get(f"{self.url}/healthz")
            if status == 200:
                return
            time.sleep(0.2)
        pytest.fail(f"worker not ready in time:\n{self.log_tail()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A canonical event with defaults for the fields a test does not care about."""
    base: dict[str, Any] = {
        "type": kind,
        "schema_version": 1,
        "event_time_ms": int(time.time() * 1000),
    }
    if kind.startswith("order_line."):
        base.update(
            platform="tiktok", channel="room-1", order_id=fields.get("order_id", "o1"), line_id="1"
        )
    if kind == "order_line.placed":
        base.update(buyer_id="b1", region=None)
    if kind.startswith("stock."):
        base.update(actor="test")
    base.update(fields)
    return base


def encoded(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload)


# A bound on waiting for messages that must arrive, not a speed requirement.
ARRIVAL_TIMEOUT_S = 60.0


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` messages of ``topic`` in partition order, decoded."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    received: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(ARRIVAL_TIMEOUT_S):
            async for message in consumer:
                received.append(orjson.loads(message.value))
                if len(received) >= count:
                    break
    finally:
        await consumer.stop()
    return received


async def evict_group_members(bootstrap: str, group_id: str) -> list[str]:
    """Remove every member of ``group_id`` from the group, as an operator does after a
    host is confirmed dead, and return their member ids.

    A SIGKILLed worker never sends LeaveGroup: its ghost member keeps the group waiting
    in the rebalance until faust's session timeout (60 s) expires. Only call this when
    no live worker is in the group: a live member would simply rejoin.
    """
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.client import AIOKafkaClient
    from aiokafka.protocol.group import LeaveGroupRequest

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        coordinator = await admin.find_coordinator(group_id)
        described = await admin.describe_consumer_groups([group_id], coordinator)
    finally:
        await admin.close()
    member_ids = [
        member["member_id"]
        for response in described
        for group in response.to_object()["groups"]
        for member in group["members"]
    ]
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        for member_id in member_ids:
            response = await client.send(coordinator, LeaveGroupRequest(group_id, member_id))
            # 25 UNKNOWN_MEMBER_ID: the session expired or the member left meanwhile.
            assert response.error_code in (0, 25), f"LeaveGroup failed: {response}"
    finally:
        await client.close()
    return member_ids
