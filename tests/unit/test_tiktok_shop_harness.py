"""The contract harness for TikTok Shop does what ``PlatformHarness`` promises."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from connectors.base import (
    InboundConnector,
    OrderStatus,
    PushResult,
    RateLimited,
    Rejected,
    ReplayRejected,
    SignatureInvalid,
    StockUpdate,
    TransientError,
    WriteMode,
)
from connectors.testing import PlatformHarness
from tests.contract.harness_tiktok_shop import TikTokShopHarness


@pytest.fixture
async def harness() -> AsyncIterator[PlatformHarness]:
    platform: PlatformHarness = TikTokShopHarness()  # mypy checks the protocol here
    await platform.start()
    yield platform
    await platform.close()


def update(harness: PlatformHarness, sku: str, delta: int, key: str) -> StockUpdate:
    return StockUpdate(
        channel=harness.channel,
        sku=sku,
        quantity=max(0, delta),
        delta=delta,
        version=1,
        event_time_ms=0,
        idempotency_key=key,
    )


async def test_the_harness_lists_skus_at_zero(harness: PlatformHarness) -> None:
    assert len(harness.listed_skus) >= 2
    assert all(harness.displayed(sku) == 0 for sku in harness.listed_skus)
    assert harness.unlisted_sku not in harness.listed_skus


async def test_writes_and_reads_go_through_the_harness(harness: PlatformHarness) -> None:
    connector = await harness.connector()
    sku = harness.listed_skus[0]
    harness.set_displayed(sku, 10)

    result = await connector.push_stock(update(harness, sku, -3, "k1"), WriteMode.ABSOLUTE)

    assert result == PushResult(applied=-3, displayed=7)
    assert harness.displayed(sku) == 7
    assert await connector.read_stock(harness.channel, [sku, harness.unlisted_sku]) == {sku: 7}
    with pytest.raises(Rejected):
        await connector.push_stock(
            update(harness, harness.unlisted_sku, 1, "k2"), WriteMode.ABSOLUTE
        )


async def test_faults_go_through_the_harness(harness: PlatformHarness) -> None:
    connector = await harness.connector()
    sku = harness.listed_skus[0]

    harness.throttle_next(1)
    with pytest.raises(RateLimited):
        await connector.read_stock(harness.channel, [sku])
    harness.fail_next(1)
    with pytest.raises(TransientError):
        await connector.read_stock(harness.channel, [sku])


async def test_orders_and_webhooks_go_through_the_harness(harness: PlatformHarness) -> None:
    connector = await harness.connector()
    assert isinstance(connector, InboundConnector)
    sku = harness.listed_skus[1]
    harness.set_displayed(sku, 5)
    now_s = time.time()

    order_id = harness.buy(sku, 2, buyer="b-1", region="GB")
    assert order_id is not None
    assert harness.displayed(sku) == 3
    assert harness.buy(sku, 4, buyer="b-2", region="GB") is None
    harness.pay(order_id)
    paid = harness.webhook(order_id, now_s=now_s)
    connector.verify(paid, now_s)
    (notification,) = connector.decode(paid)
    order = await connector.hydrate(notification)
    assert order.status is OrderStatus.PAID
    assert sum(line.quantity for line in order.lines if line.sku == sku) == 2

    harness.cancel(order_id)
    assert harness.displayed(sku) == 5
    cancelled = harness.webhook(order_id, now_s=now_s)
    (notification,) = connector.decode(cancelled)
    assert (await connector.hydrate(notification)).status is OrderStatus.CANCELLED

    with pytest.raises(SignatureInvalid):
        connector.verify(harness.forged(cancelled), now_s)
    with pytest.raises(ReplayRejected):
        connector.verify(cancelled, harness.stale_time_s(now_s))
    assert connector.acknowledge(True).body == harness.ack_accepted()
