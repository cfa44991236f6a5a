"""Signed webhooks in, signed pushes out: three platform mocks against the real worker.

Buyers order on the mock platforms. Each platform takes the units off its own display,
then sends its signed (and, where the platform does so, thin) webhook to the worker's
ingress; the worker verifies it, stores it in Kafka, hydrates it from the platform's
order API and decides it; the allocator's quota changes go back to every platform as
signed writes the mocks verify. Forged and replayed webhooks are refused and change
nothing; a throttling storm delays writes but every final count lands.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from connectors.base import InboundRequest
from sync_worker.demo_platforms import MOCKS, PlatformMock, channels_toml
from sync_worker.streaming.names import TopicNames
from tests.integration.support import WorkerProcess, encoded, event, produce

pytestmark = pytest.mark.integration

SKU = "lipstick-ruby-01"
STOCK = 40
BUYS = 30
"""Fewer than the stock: every sale must be accepted, and the rooms keep showing units."""
CHANNELS = {"tiktok-room": "tiktok_shop", "douyin-room": "douyin", "shopify-room": "shopify"}
REPLAYED_AFTER_S = 4 * 86400.0
"""Outside every platform's window (each covers the platform's own redeliveries, which
come with the original timestamp: up to 72 hours for TikTok Shop)."""
SETTLE_TIMEOUT_S = 90.0
"""A bound on waiting for every count to land, not a speed requirement."""


def platforms() -> dict[str, tuple[str, PlatformMock]]:
    """channel -> (connector, mock)."""
    return {channel: (name, MOCKS[name]()) for channel, name in CHANNELS.items()}


async def until(
    condition: Callable[[], bool],
    worker: WorkerProcess,
    what: str,
    state: Callable[[], str] = lambda: "",
) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen in time ({state()})\n{worker.log_tail()}")
        await asyncio.sleep(0.1)


async def post(session: aiohttp.ClientSession, url: str, request: InboundRequest) -> int:
    async with session.post(url, data=request.body, headers=dict(request.headers)) as answer:
        return answer.status


def forged(request: InboundRequest) -> InboundRequest:
    """The body changed in transit (one more space), the signature kept."""
    body = request.body.replace(b":", b": ", 1)
    assert body != request.body
    return InboundRequest(dict(request.headers), body, dict(request.query), request.received_at_s)


class Follow:
    """What the worker said: decisions per order, and per channel the units it granted,
    the units platforms reported taking back, and the units sold there."""

    def __init__(self) -> None:
        self.decisions: dict[str, set[str]] = {}
        self.granted: Counter[str] = Counter()
        self.taken_back: Counter[str] = Counter()
        self.sold: Counter[str] = Counter()

    def expected_display(self, channel: str) -> int:
        """What the platform must show once every write landed and every sale was heard."""
        return self.granted[channel] - self.taken_back[channel] - self.sold[channel]

    async def run(self, bootstrap: str, topics: TopicNames) -> None:
        consumer = AIOKafkaConsumer(
            topics.decisions,
            topics.stock_levels,
            topics.sku_events,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            async for message in consumer:
                self.saw(orjson.loads(message.value))
        finally:
            await consumer.stop()

    def saw(self, payload: dict[str, Any]) -> None:
        match payload["type"]:
            case "order_line.decided":
                outcomes = self.decisions.setdefault(str(payload["order_id"]), set())
                outcomes.add(str(payload["outcome"]))
                if payload["outcome"] == "accepted":
                    self.sold[payload["channel"]] += int(payload["quantity"])
            case "stock.quota_changed" if payload["delta"] > 0:
                self.granted[payload["channel"]] += int(payload["delta"])
            case "allocation.reclaim_settled":
                self.taken_back[payload["channel"]] += int(payload["applied"])


async def test_signed_webhooks_in_signed_pushes_out_across_three_platforms(
    worker_factory: Callable[..., WorkerProcess],
    kafka_bootstrap: str,
    topics: TopicNames,
) -> None:
    rooms = platforms()
    for _, mock in rooms.values():
        mock.add_listing(SKU, 0)
        await mock.start()
    follow = Follow()
    following: asyncio.Task[None] | None = None
    worker = worker_factory(
        '\n[allocation]\npolicy = "shared_pool"\nlease_units = 6\n' + channels_toml(rooms)
    )
    try:
        await asyncio.to_thread(worker.start)
        # Only now: a consumer of a topic the worker has not created yet would create it
        # with the broker's default partitions.
        following = asyncio.create_task(follow.run(kafka_bootstrap, topics))
        for connector, mock in rooms.values():
            mock.deliver_to(f"{worker.url}/webhooks/{connector}")
        counted = event("stock.counted", event_id="count-1", sku=SKU, quantity=STOCK)
        await produce(kafka_bootstrap, topics.sku_events, [(SKU.encode(), encoded(counted))])
        # Signed pushes, checked by each mock, put every room's first lease on display.
        await until(
            lambda: all(mock.displayed(SKU) > 0 for _, mock in rooms.values()),
            worker,
            "the first leases landing on every platform",
        )

        ghosts: list[str] = []
        async with aiohttp.ClientSession() as session:
            # An order the worker never hears of genuinely: its delivery arrives forged,
            # then replayed long after it was signed. Both are refused.
            for connector, mock in rooms.values():
                mock.deliver_to(None)
                ghost = mock.buy(SKU, 1, buyer="mallory", region="US")
                assert ghost is not None
                ghosts.append(ghost)
                genuine = mock.webhook(ghost, now_s=time.time())
                url = f"{worker.url}/webhooks/{connector}"
                assert await post(session, url, forged(genuine)) == 401
                assert (
                    await post(session, url, mock.webhook(ghost, time.time() - REPLAYED_AFTER_S))
                    == 401
                )
                mock.deliver_to(url)
                mock.cancel(ghost)  # back on display; the cancellation arrives genuinely

            # Buyers everywhere, while every platform throttles its next writes.
            for _, mock in rooms.values():
                mock.throttle_next(12)
            rng = random.Random(5)
            orders: list[tuple[PlatformMock, str]] = []
            names = itertools.cycle(rooms.values())
            while len(orders) < BUYS:
                _, mock = next(names)
                order_id = mock.buy(SKU, 1, buyer=f"buyer-{len(orders)}", region="US")
                if order_id is not None:
                    orders.append((mock, order_id))
                    if rng.random() < 0.7:
                        mock.pay(order_id)
                await asyncio.sleep(0.05)

            await until(lambda: len(follow.decisions) >= BUYS, worker, "a decision for every order")
            # Every write lands once, none lost to the storm and none applied twice: each
            # platform shows exactly what it was granted, less what it gave back and sold.
            await until(
                lambda: all(
                    mock.displayed(SKU) == follow.expected_display(channel)
                    for channel, (_, mock) in rooms.items()
                ),
                worker,
                "every platform showing its final count",
                lambda: str(
                    {c: (rooms[c][1].displayed(SKU), follow.expected_display(c)) for c in rooms}
                ),
            )
            async with session.get(f"{worker.url}/metrics") as answer:
                metrics = await answer.text()
    finally:
        if following is not None:
            following.cancel()
        for _, mock in rooms.values():
            await mock.stop()
        worker.stop()

    # Each order accepted once; a redelivery (the paid notification restates the
    # placement) is answered as a duplicate, never as a second sale or a rejection.
    assert all(outcomes <= {"accepted", "duplicate"} for outcomes in follow.decisions.values())
    assert all("accepted" in outcomes for outcomes in follow.decisions.values())
    assert not set(ghosts) & set(follow.decisions)  # the forged orders applied nothing
    webhooks = {
        (sample.labels["platform"], sample.labels["outcome"]): sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "stockcast_webhooks"
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    for connector, _ in rooms.values():
        assert webhooks[(connector, "forged")] == webhooks[(connector, "replayed")] == 1.0
    sold = len(follow.decisions)
    on_display = sum(mock.displayed(SKU) for _, mock in rooms.values())
    assert sold + on_display <= STOCK  # nothing oversold, nothing shown twice


async def test_an_order_the_platform_cannot_describe_yet_is_asked_for_again(
    worker_factory: Callable[..., WorkerProcess],
    kafka_bootstrap: str,
    topics: TopicNames,
) -> None:
    """TikTok's webhooks are thin: the worker must fetch the order. While the platform
    fails, the notification is retried and then queued again, never dropped."""
    channel, connector, mock = "tiktok-room", "tiktok_shop", MOCKS["tiktok_shop"]()
    mock.add_listing(SKU, 0)
    await mock.start()
    follow = Follow()
    following: asyncio.Task[None] | None = None
    worker = worker_factory(channels_toml({channel: (connector, mock)}))
    try:
        await asyncio.to_thread(worker.start)
        following = asyncio.create_task(follow.run(kafka_bootstrap, topics))
        mock.deliver_to(f"{worker.url}/webhooks/{connector}")
        counted = event("stock.counted", event_id="count-1", sku=SKU, quantity=STOCK)
        await produce(kafka_bootstrap, topics.sku_events, [(SKU.encode(), encoded(counted))])
        await until(lambda: mock.displayed(SKU) > 0, worker, "the first quota landing")

        mock.fail_next(12)  # more than one pass of retries: the notification is requeued
        order_id = mock.buy(SKU, 1, buyer="b-1", region="GB")
        assert order_id is not None

        await until(lambda: order_id in follow.decisions, worker, "a decision for the order")
    finally:
        if following is not None:
            following.cancel()
        await mock.stop()
        worker.stop()

    assert follow.decisions[order_id] == {"accepted"}
    assert "asking again later" in worker.log.read_text()
