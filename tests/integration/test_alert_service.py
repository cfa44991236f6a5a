"""Alert notifications against the real broker: alerts written to the alerts topic reach
a local webhook receiver once each and in order, a redelivered alert is sent once, one
no target takes and one that is no alert are dead-lettered, and a restarted service
resumes after what it committed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from connectors.mock_support import serve_app
from sync_worker.config import AlertSettings, AlertTargetSettings, KafkaSettings
from sync_worker.domain.events import AlertLevel, AlertRaised
from sync_worker.metrics import Metrics
from sync_worker.notify import Notifier
from sync_worker.streaming import codecs, names
from sync_worker.streaming.alert_service import AlertService
from sync_worker.streaming.dead_letters import DeadLetter
from sync_worker.streaming.names import TopicNames
from sync_worker.streaming.topics import ensure_topics
from tests.integration.support import ARRIVAL_TIMEOUT_S, consume, produce

pytestmark = pytest.mark.integration

SKU = "lipstick"
ROBOT_KEY = "693a91f6-7aoc-4bc4-97a0-0ec2sifa5aaa"
DOOMED = "doomed"
"""The receiver refuses (503) every alert whose id starts with this."""


@dataclass
class Receiver:
    """A webhook target recording the alert id of every request, in arrival order."""

    url: str = ""
    received: list[str] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> web.Application:
        async def take(request: web.Request) -> web.Response:
            alert_id = str(orjson.loads(await request.read())["alert_id"])
            async with self.arrived:
                self.received.append(alert_id)
                self.arrived.notify_all()
            return web.Response(status=503 if alert_id.startswith(DOOMED) else 200)

        app = web.Application()
        app.router.add_post("/hook", take)
        return app

    def delivered(self) -> list[str]:
        return [alert_id for alert_id in self.received if not alert_id.startswith(DOOMED)]

    async def delivered_when(self, count: int) -> list[str]:
        async with asyncio.timeout(ARRIVAL_TIMEOUT_S), self.arrived:
            await self.arrived.wait_for(lambda: len(self.delivered()) >= count)
        return self.delivered()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    target = Receiver()
    runner, target.url = await serve_app(target.app())
    yield target
    await runner.cleanup()


@contextlib.asynccontextmanager
async def alert_service(
    bootstrap: str, topics: TopicNames, app_id: str, receiver: Receiver
) -> AsyncIterator[None]:
    """The alert service as a worker runs it, with one JSON target: the receiver."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()

    async def dead_letter(letter: DeadLetter) -> Any:
        return await producer.send(topics.dead_letters, codecs.encode(letter))

    hook = AlertTargetSettings(name="hook", url=SecretStr(f"{receiver.url}/hook?key={ROBOT_KEY}"))
    settings = AlertSettings(targets=(hook,), attempts=2, timeout_s=5.0)
    service = AlertService(
        topic=topics.alerts,
        group_id=f"{app_id}-{names.ALERTS_GROUP}",
        consumer_options={"bootstrap_servers": bootstrap},
        notifier=Notifier(settings, Metrics.create()),
        dead_letter=dead_letter,
    )
    await service.start()
    try:
        yield
    finally:
        await service.stop()
        await producer.stop()


def alert(alert_id: str) -> tuple[bytes, bytes]:
    raised = AlertRaised(
        alert_id=alert_id,
        sku=SKU,
        session_id="double-11-night",
        level=AlertLevel.CRITICAL,
        audience=("host", "ops"),
        remaining=8,
        baseline=100,
        percent_left=8,
        threshold_percent=10,
        channels=("douyin-main",),
        suggestion="End this product early.",
        cause_event_id=f"ev-{alert_id}",
        event_time_ms=1_700_000_000_000,
    )
    return SKU.encode(), codecs.encode(raised)


async def test_alerts_reach_the_target_once_each_in_order_and_failures_are_dead_lettered(
    kafka_bootstrap: str, topics: TopicNames, run_id: str, receiver: Receiver
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=run_id)
    await ensure_topics(kafka, topics)
    # One SKU, one partition: the order written is the order to keep.
    written = [alert("a1"), alert("a2"), alert("a1"), alert("a3"), alert(f"{DOOMED}-4")]
    written += [(SKU.encode(), b"{not an alert"), alert("a5")]
    await produce(kafka_bootstrap, topics.alerts, written)

    async with alert_service(kafka_bootstrap, topics, run_id, receiver):
        assert await receiver.delivered_when(4) == ["a1", "a2", "a3", "a5"]
        letters = await consume(kafka_bootstrap, topics.dead_letters, 2)

    assert receiver.received.count(f"{DOOMED}-4") == 2  # both attempts
    undelivered, invalid = sorted(letters, key=lambda letter: str(letter["reason"]))
    assert undelivered["reason"] == "alert_undelivered"
    assert undelivered["detail"] == "target hook: HTTP 503 (gave up after 2 attempt(s))"
    assert orjson.loads(undelivered["value"])["alert_id"] == f"{DOOMED}-4"
    assert invalid["reason"] == "invalid_alert"
    assert invalid["value"] == "{not an alert"
    for letter in letters:
        assert ROBOT_KEY not in orjson.dumps(letter).decode()

    # Everything above was committed: a restarted service sends only what is new.
    await produce(kafka_bootstrap, topics.alerts, [alert("a6")])
    async with alert_service(kafka_bootstrap, topics, run_id, receiver):
        assert await receiver.delivered_when(5) == ["a1", "a2", "a3", "a5", "a6"]
    assert receiver.received.count(f"{DOOMED}-4") == 2
