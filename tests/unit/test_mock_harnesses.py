"""Each mock-backed contract harness does what ``PlatformHarness`` promises."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.base import (
    InboundConnector,
    OrderStatus,
    RateLimited,
    Rejected,
    ReplayRejected,
    SignatureInvalid,
    StockUpdate,
    TransientError,
    WriteMode,
)
from connectors.testing import PlatformHarness
from tests.contract.harness_douyin import DouyinHarness
from tests.contract.harness_shopify import ShopifyHarness
from tests.contract.harness_tiktok_shop import TikTokShopHarness
from tests.contract.mock_harness import MockHarness

HARNESSES: list[tuple[type[MockHarness[Any, Any]], WriteMode]] = [
    (ShopifyHarness, WriteMode.COMPARE_AND_SWAP),
    (TikTokShopHarness, WriteMode.ABSOLUTE),
    (DouyinHarness, WriteMode.DELTA),
]
"""Each harness with the write mode its platform offers first."""


@pytest.fixture(params=HARNESSES, ids=lambda param: param[0].platform)
async def platform(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[PlatformHarness, WriteMode]]:
    harness_type, mode = request.param
    harness: PlatformHarness = harness_type()  # mypy checks the protocol here
    await harness.start()
    yield harness, mode
    await harness.close()


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


async def test_the_harness_lists_skus_at_zero(platform: tuple[PlatformHarness, WriteMode]) -> None:
    harness, _ = platform

    assert len(harness.listed_skus) >= 2
    assert all(harness.displayed(sku) == 0 for sku in harness.listed_skus)
    assert harness.unlisted_sku not in harness.listed_skus


async def test_writes_and_reads_go_through_the_harness(
    platform: tuple[PlatformHarness, WriteMode],
) -> None:
    harness, mode = platform
    connector = await harness.connector()
    sku = harness.listed_skus[0]
    harness.set_displayed(sku, 10)

    result = await connector.push_stock(update(harness, sku, -3, "k1"), mode)

    # A platform may not say what it shows after a write (Douyin's delta): None.
    assert result.applied == -3
    assert result.displayed in (7, None)
    assert harness.displayed(sku) == 7
    assert await connector.read_stock(harness.channel, [sku, harness.unlisted_sku]) == {sku: 7}
    with pytest.raises(Rejected):
        await connector.push_stock(update(harness, harness.unlisted_sku, 1, "k2"), mode)


async def test_faults_go_through_the_harness(platform: tuple[PlatformHarness, WriteMode]) -> None:
    harness, mode = platform
    connector = await harness.connector()
    sku = harness.listed_skus[0]

    harness.throttle_next(1)
    with pytest.raises(RateLimited):
        await connector.read_stock(harness.channel, [sku])
    harness.fail_next(1)
    with pytest.raises(TransientError):
        await connector.read_stock(harness.channel, [sku])
    harness.throttle_next(1)
    with pytest.raises(RateLimited):
        await connector.push_stock(update(harness, sku, 1, "k1"), mode)
    harness.fail_next(1)
    with pytest.raises(TransientError):
        await connector.push_stock(update(harness, sku, 1, "k1"), mode)
    assert (await connector.push_stock(update(harness, sku, 1, "k1"), mode)).applied == 1
    assert harness.displayed(sku) == 1


async def test_orders_and_webhooks_go_through_the_harness(
    platform: tuple[PlatformHarness, WriteMode],
) -> None:
    harness, _ = platform
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
