"""Three simulated platforms sell one SKU at once through the real worker and broker.

Each room decrements its own display when a buyer orders (as platforms do) and only
then tells stockcast; the worker's quotas, pushed back as deltas, are all that keeps
the rooms from selling units that do not exist.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaProducer

from connectors.simulator.rooms import LiveRoom
from connectors.simulator.server import create_app, start_server
from sync_worker.streaming.names import TopicNames
from tests.integration.support import WorkerProcess, consume, encoded, event

pytestmark = pytest.mark.integration

SKU = "lipstick-ruby-01"
STOCK = 300
ROOMS = {"tiktok-room-1": "tiktok", "douyin-room-1": "douyin", "shopify-room-1": "shopify"}
HOT = "tiktok-room-1"
SESSION_S = 20.0
"""A bound on the selling, not a speed requirement: it ends as soon as all is sold."""
DRAIN_TIMEOUT_S = 60.0


@dataclass
class Session:
    sold: int = 0
    placed: int = 0
    turned_away: int = 0


def demand_per_s(channel: str, elapsed_s: float) -> float:
    """Slow rooms sell steadily; the hot room's demand jumps a hundredfold for 2 s."""
    if channel == HOT and 2.0 <= elapsed_s < 4.0:
        return 400.0
    return 4.0


async def sell(rooms: dict[str, LiveRoom], producer: AIOKafkaProducer, topic: str) -> Session:
    """Poisson buyers at every room until the stock is gone or the session ends."""
    rng = random.Random(11)
    session = Session()
    start = time.monotonic()
    tick_s = 0.01
    while session.sold < STOCK and (elapsed := time.monotonic() - start) < SESSION_S:
        for channel, room in rooms.items():
            for _ in range(_poisson(rng, demand_per_s(channel, elapsed) * tick_s)):
                if not room.try_order(SKU, 1):
                    session.turned_away += 1
                    continue
                session.sold += 1
                session.placed += 1
                placed = event(
                    "order_line.placed",
                    event_id=f"{channel}-{session.placed}",
                    sku=SKU,
                    platform=ROOMS[channel],
                    channel=channel,
                    order_id=f"{channel}-{session.placed}",
                    quantity=1,
                )
                await producer.send(topic, key=SKU.encode(), value=encoded(placed))
        await asyncio.sleep(tick_s)
    await producer.flush()
    return session


def _poisson(rng: random.Random, mean: float) -> int:
    count, threshold, product = 0, math.exp(-mean), rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


async def first_quotas_landed(rooms: dict[str, LiveRoom]) -> None:
    async with asyncio.timeout(DRAIN_TIMEOUT_S):
        while True:
            if all(room.displayed(SKU) > 0 for room in rooms.values()):
                return
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("policy", ["shared_pool", "adaptive"])
async def test_three_platforms_sell_one_sku_without_overselling_or_stranding(
    worker_factory: Callable[..., WorkerProcess],
    kafka_bootstrap: str,
    topics: TopicNames,
    policy: str,
) -> None:
    rooms = {channel: LiveRoom(channel, platform) for channel, platform in ROOMS.items()}
    async with await start_server(create_app(rooms)) as server:
        channels = "".join(
            f'\n[[channels]]\nname = "{channel}"\nconnector = "simulator"\n'
            f'latency_ms = 100\noptions = {{ base_url = "{server.url}" }}\n'
            for channel in rooms
        )
        worker = worker_factory(f'\n[allocation]\npolicy = "{policy}"\n{channels}')
        await asyncio.to_thread(worker.start)
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            counted = event("stock.counted", event_id="count-1", sku=SKU, quantity=STOCK)
            await producer.send_and_wait(
                topics.sku_events, key=SKU.encode(), value=encoded(counted)
            )
            await first_quotas_landed(rooms)
            session = await sell(rooms, producer, topics.sku_events)
        finally:
            await producer.stop()
        answers = await consume(kafka_bootstrap, topics.decisions, session.placed)
        worker.stop()

    outcomes = [answer["outcome"] for answer in answers]
    # Every unit a platform sold existed: stockcast had to reject none of them.
    assert outcomes.count("rejected") == 0, worker.log_tail()
    assert outcomes.count("accepted") == session.sold <= STOCK
    # At sell-out, at most one unit per channel was left idle while buyers were refused.
    assert session.turned_away > 0
    assert STOCK - session.sold <= len(rooms)
    assert all(room.displayed(SKU) <= 1 for room in rooms.values())
