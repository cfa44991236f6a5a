"""Stock gauges of the SKUs this worker owns: every room's quota summed, and the watched SKUs.

``stockcast_channel_quota_units{channel}`` sums the quotas of every SKU of the worker's
active partitions. It is kept incrementally: the ledger agent reports each step's
position before and after (``observe``), and the difference of each channel's quota
is added. After every rebalance, once the ledger table is recovered and before the
agents resume, ``reload`` rebuilds it from the positions of the partitions the worker
owns now: one pass over the active part of the table (every key, positions decoded),
so the SKUs of revoked partitions are gone at once and never counted twice across
workers. That pass is the only full scan; it runs once per rebalance, not per scrape.

``stockcast_sku_sellable_units{sku}`` and ``stockcast_sku_quota_units{sku,channel}``
exist only for watched SKUs: those of ``[metrics] sku_allowlist``, plus the
``top_skus`` hottest by order lines over the last minutes (``domain.hot_skus``), and
only on the worker that owns them. A SKU that leaves that set (cooled down, or its
partition was handed away) has its series removed at the next refresh (every second).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence

import mode

from sync_worker.config import MetricsSettings
from sync_worker.domain import events
from sync_worker.domain.hot_skus import HotSkus
from sync_worker.domain.position import SkuPosition
from sync_worker.metrics import Metrics

REFRESH_S = 1.0
HOT_HALF_LIFE_MS = 5 * 60_000
"""How fast a SKU's heat fades: a SKU that stopped selling leaves the top in minutes."""
HOT_CAPACITY_PER_SLOT = 32
"""SKUs tracked per ``top_skus`` slot, so the top is exact while many SKUs sell."""


class StockGauges(mode.Service):
    def __init__(
        self,
        metrics: Metrics,
        channels: Sequence[str],
        settings: MetricsSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``channels`` are the configured channels: quotas of any other are not shown."""
        super().__init__()
        self._metrics, self._clock = metrics, clock
        self._channels = tuple(channels)
        self._allowlist = frozenset(settings.sku_allowlist)
        self._top = settings.top_skus
        self._hot = HotSkus(HOT_HALF_LIFE_MS, capacity=max(64, self._top * HOT_CAPACITY_PER_SLOT))
        self._totals = dict.fromkeys(self._channels, 0)
        self._watched: dict[str, SkuPosition] = {}
        """The latest position of each allowlisted or hot SKU owned here."""
        self._labelled: set[str] = set()
        for channel in self._channels:
            metrics.channel_quota.labels(channel).set(0)

    def observe(self, event: events.SkuEvent, before: SkuPosition, after: SkuPosition) -> None:
        """One ledger step of a SKU this worker owns: ``before`` and ``after`` its write."""
        if self._top and isinstance(event, events.OrderLinePlaced):
            self._hot.record(event.sku, self._now_ms())
        for channel in self._channels:
            delta = _quota(after, channel) - _quota(before, channel)
            if delta:
                self._totals[channel] += delta
        if event.sku in self._allowlist or event.sku in self._hot:
            self._watched[event.sku] = after

    def reload(self, positions: Iterable[SkuPosition]) -> None:
        """Start again from every position the worker owns now (after a rebalance)."""
        totals = dict.fromkeys(self._channels, 0)
        watched = {}
        for position in positions:
            for channel in self._channels:
                totals[channel] += _quota(position, channel)
            if position.sku in self._allowlist or position.sku in self._hot:
                watched[position.sku] = position
        self._hot.retain(watched.__contains__)
        self._totals, self._watched = totals, watched
        self.refresh()

    async def on_start(self) -> None:
        self.add_future(self._refreshing())

    async def _refreshing(self) -> None:
        while not self.should_stop:
            self.refresh()
            await asyncio.sleep(REFRESH_S)

    def refresh(self) -> None:
        """Set the gauges; remove the series of SKUs no longer watched here."""
        for channel, units in self._totals.items():
            self._metrics.channel_quota.labels(channel).set(units)
        for sku in [s for s in self._watched if s not in self._allowlist and s not in self._hot]:
            del self._watched[sku]  # the tracker forgot it: nothing updates it any more
        hot = self._hot.top(self._top, self._now_ms())
        watched = {sku for sku in (*self._allowlist, *hot) if sku in self._watched}
        for sku in watched:
            position = self._watched[sku]
            self._metrics.sku_sellable.labels(sku).set(position.sellable)
            for channel in self._channels:
                self._metrics.sku_quota.labels(sku, channel).set(_quota(position, channel))
        for sku in self._labelled - watched:
            self._metrics.sku_sellable.remove(sku)
            for channel in self._channels:
                self._metrics.sku_quota.remove(sku, channel)
        self._labelled = watched

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _quota(position: SkuPosition, channel: str) -> int:
    quota = position.allocation.channel(channel)
    return quota.quota if quota is not None else 0
