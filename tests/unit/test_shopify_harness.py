"""The contract harness for Shopify does what ``PlatformHarness`` promises."""

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
from tests.contract.harness_shopify import ShopifyHarness


@pytest.fixture
async def harness() -> AsyncIterator[PlatformHarness]:
    platform: PlatformHarness = ShopifyHarness()  # mypy checks the protocol here
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


async def test_writes_reads_and_faults_go_through_the_harness(harness: PlatformHarness) -> None:
    connector = await harness.connector()
    sku = harness.listed_skus[0]
    harness.set_displayed(sku, 10)
    cas = WriteMode.COMPARE_AND_SWAP

    assert await connector.push_stock(update(harness, sku, -3, "k1"), cas) == PushResult(-3, 7)
    assert await connector.read_stock(harness.channel, [sku, harness.unlisted_sku]) == {sku: 7}
    harness.throttle_next(1)
    with pytest.raises(RateLimited):
        await connector.push_stock(update(harness, sku, 1, "k2"), cas)
    harness.fail_next(1)
    with pytest.raises(TransientError):
        await connector.push_stock(update(harness, sku, 1, "k2"), cas)
    with pytest.raises(Rejected):
        await connector.push_stock(update(harness, harness.unlisted_sku, 1, "k3"), cas)
    assert await connector.push_stock(update(harness, sku, 1, "k2"), cas) == PushResult(1, 8)


async def test_webhooks_go_through_the_harness(harness: PlatformHarness) -> None:
    connector = await harness.connector()
    assert isinstance(connector, InboundConnector)
    sku = harness.listed_skus[1]
    harness.set_displayed(sku, 5)
    now_s = time.time()

    order_id = harness.buy(sku, 2, buyer="alice", region="US")
    assert order_id is not None
    assert harness.buy(sku, 4, buyer="bob", region=None) is None
    harness.pay(order_id)
    harness.cancel(order_id)
    delivery = harness.webhook(order_id, now_s=now_s)
    connector.verify(delivery, now_s)
    [notification] = connector.decode(delivery)

    assert (await connector.hydrate(notification)).status is OrderStatus.CANCELLED
    assert harness.displayed(sku) == 5
    with pytest.raises(SignatureInvalid):
        connector.verify(harness.forged(delivery), now_s)
    with pytest.raises(ReplayRejected):
        connector.verify(delivery, harness.stale_time_s(now_s))
    assert connector.acknowledge(True).body == harness.ack_accepted()
