"""The stock gauges: rooms' quotas summed over owned SKUs, and the watched SKUs' series.

Plain positions stand in for the ledger's; the metrics are read back from a private
registry, the way Prometheus would see them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
import pytest

from sync_worker.config import MetricsSettings
from sync_worker.domain import events
from sync_worker.domain.allocation import Allocation, ChannelQuota
from sync_worker.domain.position import SkuPosition, WarehouseStock
from sync_worker.metrics import Metrics
from sync_worker.streaming import state
from sync_worker.streaming.stock_gauges import StockGauges

ROOMS = ("room-a", "room-b")


def position(sku: str, on_hand: int = 10, **quotas: int) -> SkuPosition:
    """``quotas`` by room, e.g. ``room_a=4`` (underscores stand for dashes)."""
    channels = tuple(
        ChannelQuota(room.replace("_", "-"), out=units) for room, units in quotas.items()
    )
    return SkuPosition(
        sku,
        warehouses=(("main", WarehouseStock(on_hand=on_hand)),),
        known=True,
        allocation=Allocation(channels=channels),
    )


def placed(sku: str, n: int = 1, channel: str = "room-a") -> events.OrderLinePlaced:
    return events.OrderLinePlaced(
        event_id=f"{sku}-{n}",
        sku=sku,
        event_time_ms=1_700_000_000_000,
        platform="tiktok",
        channel=channel,
        order_id=f"o-{sku}-{n}",
        line_id="1",
        quantity=1,
        buyer_id="b1",
    )


@dataclass
class Clock:
    now_s: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now_s


@dataclass
class Rig:
    gauges: StockGauges
    metrics: Metrics
    clock: Clock = field(default_factory=Clock)

    def total(self, channel: str) -> float | None:
        return self.metrics.registry.get_sample_value(
            "stockcast_channel_quota_units", {"channel": channel}
        )

    def sellable(self, sku: str) -> float | None:
        return self.metrics.registry.get_sample_value("stockcast_sku_sellable_units", {"sku": sku})

    def quota(self, sku: str, channel: str) -> float | None:
        return self.metrics.registry.get_sample_value(
            "stockcast_sku_quota_units", {"sku": sku, "channel": channel}
        )

    def skus(self) -> set[str]:
        """The SKUs that have a sellable series now."""
        return {
            sample.labels["sku"]
            for family in self.metrics.registry.collect()
            if family.name == "stockcast_sku_sellable_units"
            for sample in family.samples
        }


def rig(allowlist: tuple[str, ...] = (), top_skus: int = 10) -> Rig:
    metrics = Metrics.create()
    clock = Clock()
    settings = MetricsSettings(sku_allowlist=allowlist, top_skus=top_skus)
    return Rig(StockGauges(metrics, ROOMS, settings, clock), metrics, clock)


def test_every_room_starts_at_zero() -> None:
    r = rig()

    assert (r.total("room-a"), r.total("room-b")) == (0, 0)
    assert r.skus() == set()


def test_reload_sums_every_owned_positions_quota_per_room() -> None:
    r = rig()

    r.gauges.reload(
        [
            position("a", room_a=4, room_b=3),
            position("b", room_a=1),
            position("c", room_b=2, room_elsewhere=50),  # not configured: not shown
        ]
    )

    assert (r.total("room-a"), r.total("room-b")) == (5, 5)
    assert r.total("room-elsewhere") is None


def test_each_step_adds_the_difference_of_each_rooms_quota() -> None:
    r = rig()
    before = position("a", room_a=4, room_b=3)
    r.gauges.reload([before, position("b", room_a=1)])

    r.gauges.observe(placed("a"), before, position("a", room_a=2, room_b=6))
    r.gauges.observe(placed("new"), SkuPosition("new"), position("new", room_a=7))
    r.gauges.refresh()

    assert (r.total("room-a"), r.total("room-b")) == (2 + 1 + 7, 6)


def test_a_reload_after_a_rebalance_drops_the_skus_handed_away() -> None:
    r = rig(allowlist=("kept", "handed-away"))
    r.gauges.reload([position("kept", room_a=1), position("handed-away", room_a=10)])
    assert r.skus() == {"kept", "handed-away"}

    r.gauges.reload([position("kept", room_a=1)])

    assert r.total("room-a") == 1
    assert r.skus() == {"kept"}
    assert r.quota("handed-away", "room-a") is None


def test_allowlisted_skus_show_sellable_and_every_rooms_quota() -> None:
    r = rig(allowlist=("hero",), top_skus=0)

    r.gauges.reload([position("hero", on_hand=12, room_a=4), position("other", room_a=1)])

    assert r.sellable("hero") == 12
    assert (r.quota("hero", "room-a"), r.quota("hero", "room-b")) == (4, 0)
    assert r.skus() == {"hero"}


def test_an_allowlisted_sku_not_owned_here_has_no_series() -> None:
    r = rig(allowlist=("elsewhere",))

    r.gauges.reload([position("mine", room_a=1)])

    assert r.skus() == set()


def test_the_hottest_skus_are_watched_and_follow_each_step() -> None:
    r = rig(top_skus=2)
    r.gauges.reload([])
    sold = {"a": 3, "b": 2, "c": 1}
    for sku, lines in sold.items():
        for n in range(lines):
            r.gauges.observe(placed(sku, n), SkuPosition(sku), position(sku, 10 - n, room_a=5))
    r.gauges.refresh()

    assert r.skus() == {"a", "b"}
    assert r.sellable("a") == 8

    r.gauges.observe(placed("a", 9), position("a", 8), position("a", 5, room_a=1))
    r.gauges.refresh()
    assert (r.sellable("a"), r.quota("a", "room-a")) == (5, 1)


def test_a_sku_that_cools_down_leaves_the_top_and_its_series_go() -> None:
    r = rig(top_skus=1)
    r.gauges.reload([])
    for n in range(5):
        r.gauges.observe(placed("old", n), SkuPosition("old"), position("old", room_a=1))
    r.gauges.refresh()
    assert r.skus() == {"old"}

    r.clock.now_s += 3600  # an hour later, another SKU sells
    r.gauges.observe(placed("new"), SkuPosition("new"), position("new", room_a=1))
    r.gauges.refresh()

    assert r.skus() == {"new"}
    assert r.quota("old", "room-a") is None


def test_top_skus_zero_watches_only_the_allowlist() -> None:
    r = rig(allowlist=("hero",), top_skus=0)
    r.gauges.reload([position("hero")])
    for n in range(5):
        r.gauges.observe(placed("busy", n), SkuPosition("busy"), position("busy", room_a=1))
    r.gauges.refresh()

    assert r.skus() == {"hero"}


def test_only_placements_make_a_sku_hot() -> None:
    r = rig(top_skus=3)
    r.gauges.reload([])
    counted = events.StockCounted(
        event_id="count", sku="quiet", event_time_ms=0, actor="ops", quantity=5
    )

    r.gauges.observe(counted, SkuPosition("quiet"), position("quiet", 5, room_a=5))
    r.gauges.refresh()

    assert r.skus() == set()
    assert r.total("room-a") == 5


@pytest.mark.parametrize("sku", ["lipstick", "p", "with\x00nul"])
def test_positions_are_found_among_the_tables_items(sku: str) -> None:
    stored = position(sku, room_a=2)
    line = state.record_key(placed(sku))
    items = [
        (state.position_key(sku), state.encode(stored)),
        (line, orjson.dumps({"not": "a position"})),
        (state.buyer_key(sku, "s1", "b1"), b"{}"),
    ]

    assert list(state.positions_in(items)) == [stored]
