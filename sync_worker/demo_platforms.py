"""The demo's live rooms on the three platform mocks: TikTok Shop, Douyin 抖店, Shopify.

Buyers order on a mock platform, which takes the units off its own display and sends
its signed webhook to the worker, exactly as the real platform would; the worker's
quotas come back as signed writes the mock checks. So the demo runs the connectors,
the webhook ingress and hydration for real, and only the platforms are mocks.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from connectors.base import InboundRequest
from connectors.douyin.mock import DouyinMock
from connectors.shopify.mock import ShopifyMock
from connectors.simulator.rooms import OrderObserver, RoomCounters
from connectors.tiktok_shop.mock import TikTokShopMock
from sync_worker.config import looks_secret


class PlatformMock(Protocol):
    """What the demo (and the end-to-end test) use of a platform mock."""

    async def start(self) -> str: ...
    async def stop(self) -> None: ...
    def add_listing(self, sku: str, displayed: int = 0) -> str: ...
    def listings(self) -> dict[str, str]: ...
    def connector_options(self) -> dict[str, str]: ...
    def displayed(self, sku: str) -> int: ...
    def buy(self, sku: str, quantity: int, *, buyer: str, region: str | None) -> str | None: ...
    def pay(self, order_id: str) -> None: ...
    def cancel(self, order_id: str) -> None: ...
    def webhook(self, order_id: str, now_s: float) -> InboundRequest: ...
    def deliver_to(self, url: str | None) -> None: ...
    def throttle_next(self, calls: int) -> None: ...


MOCKS: Mapping[str, Callable[[], PlatformMock]] = {
    "tiktok_shop": TikTokShopMock,
    "douyin": DouyinMock,
    "shopify": ShopifyMock,
}
"""Connector name -> its platform's mock."""

PAY_PROBABILITY = 0.8


@dataclass
class PlatformRoom:
    """A live room on a platform mock, as the demo's buyers see it (``buyers.Room``)."""

    channel: str
    platform: str
    """The connector's name, which is also the webhook path: /webhooks/<platform>."""
    mock: PlatformMock
    seed: int
    observer: OrderObserver | None = None
    regions: tuple[str, ...] = ("CN-31", "CN-44", "US-CA")
    open_orders: dict[str, list[str]] = field(default_factory=dict)
    """Orders a buyer may still cancel, by SKU."""
    orders: list[str] = field(default_factory=list)
    """Every order placed, by the platform's order id."""
    cancelled: set[str] = field(default_factory=set)
    refused: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def counters(self) -> RoomCounters:
        return RoomCounters(
            orders_placed=len(self.orders),
            orders_refused_sold_out=sum(self.refused.values()),
            orders_cancelled=len(self.cancelled),
        )

    def displayed(self, sku: str) -> int:
        return self.mock.displayed(sku)

    def try_order(self, sku: str, quantity: int) -> bool:
        if self.observer is not None:
            self.observer(self.channel, sku, quantity)
        buyer = f"{self.platform}-buyer-{self._rng.randrange(10_000)}"
        order_id = self.mock.buy(sku, quantity, buyer=buyer, region=self._rng.choice(self.regions))
        if order_id is None:
            self.refused[sku] += 1
            return False
        self.orders.append(order_id)
        if self._rng.random() < PAY_PROBABILITY:
            self.mock.pay(order_id)
        self.open_orders.setdefault(sku, []).append(order_id)
        return True

    def cancel_order(self, sku: str, quantity: int) -> None:
        """Cancels one of the SKU's open orders on the platform (the buyers' pick of a
        line to cancel is random anyway)."""
        orders = self.open_orders.get(sku)
        if orders:
            order_id = orders.pop(self._rng.randrange(len(orders)))
            self.mock.cancel(order_id)
            self.cancelled.add(order_id)


def channels_toml(mocks: Mapping[str, tuple[str, PlatformMock]], latency_ms: int = 100) -> str:
    """The ``[[channels]]`` of stockcast.toml for ``channel -> (connector, mock)``:
    options, the credentials as (masked) secrets, and the listings."""
    tables = []
    for channel, (connector, mock) in mocks.items():
        given = mock.connector_options()
        secrets = {key: value for key, value in given.items() if looks_secret(key)}
        options = {key: value for key, value in given.items() if key not in secrets}
        tables.append(
            f'\n[[channels]]\nname = "{channel}"\nconnector = "{connector}"\n'
            f"latency_ms = {latency_ms}\n"
            f"options = {_inline_table(options)}\nsecrets = {_inline_table(secrets)}\n"
            f"listings = {_inline_table(mock.listings())}\n"
        )
    return "".join(tables)


def _inline_table(values: Mapping[str, str]) -> str:
    pairs = (f"{key} = {orjson.dumps(value).decode()}" for key, value in values.items())
    return "{ " + ", ".join(pairs) + " }"
