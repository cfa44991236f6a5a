"""What the simulated buyers do: rooms, SKUs, order rate, the burst, the noise.

Frozen and validated at construction, so a run can be reproduced from its scenario
alone (the seed included) and a typo fails before any event is published.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.simulator.rooms import LiveRoom, OrderObserver


@dataclass(frozen=True, slots=True)
class RoomSpec:
    """One live room: ``channel`` is stockcast's channel id, ``platform`` the platform name."""

    channel: str
    platform: str
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class SkuSpec:
    """A SKU on sale: how often buyers pick it, and the count every room starts with."""

    sku: str
    weight: float
    initial_stock: int


@dataclass(frozen=True, slots=True)
class Burst:
    """The host pins the link ("上链接"): ``sku`` sells at a multiplied rate for a window.

    The extra orders all go to the pinned SKU; the usual traffic goes on beside them.
    ``start_s`` counts from the start of the run.
    """

    sku: str
    start_s: float
    duration_s: float
    rate_multiplier: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def covers(self, elapsed_s: float) -> bool:
        return self.start_s <= elapsed_s < self.end_s


DEFAULT_ROOMS = (
    RoomSpec("tiktok-room-1", "tiktok"),
    RoomSpec("douyin-room-1", "douyin"),
    RoomSpec("shopify-room-1", "shopify"),
)
DEFAULT_SKUS = (
    SkuSpec("lipstick-ruby-01", weight=5.0, initial_stock=500),
    SkuSpec("serum-30ml", weight=3.0, initial_stock=300),
    SkuSpec("sheet-mask-10", weight=2.0, initial_stock=1000),
)
DEFAULT_BURST = Burst("lipstick-ruby-01", start_s=10.0, duration_s=20.0, rate_multiplier=100.0)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A reproducible buyer population. Defaults: three rooms, 20 orders/s, a 2000/s burst.

    ``run_id`` prefixes every order and event id. stockcast remembers order lines, so
    give each run against a long-lived broker its own ``run_id``, or a replayed seed
    will look like redelivery of the previous run's orders.
    """

    rooms: tuple[RoomSpec, ...] = DEFAULT_ROOMS
    skus: tuple[SkuSpec, ...] = DEFAULT_SKUS
    base_rate_per_s: float = 20.0
    burst: Burst | None = DEFAULT_BURST
    quantity_weights: tuple[tuple[int, float], ...] = ((1, 0.85), (2, 0.10), (3, 0.05))
    cancel_probability: float = 0.02
    duplicate_probability: float = 0.01
    regions: tuple[str | None, ...] = ("CN-31", "CN-44", "CN-11", "US-CA", None)
    buyer_pool_size: int = 10_000
    tick_s: float = 0.05
    seed: int = 0
    run_id: str = "sim"

    def __post_init__(self) -> None:
        _require(bool(self.rooms), "a scenario needs at least one room")
        _require(bool(self.skus), "a scenario needs at least one SKU")
        names = [self.run_id] + [n for r in self.rooms for n in (r.channel, r.platform)]
        names += [sku.sku for sku in self.skus]
        _require(all(names), "run_id, channels, platforms and SKUs must not be empty")
        _require_unique([room.channel for room in self.rooms], "channel")
        _require_unique([sku.sku for sku in self.skus], "SKU")
        _require(all(room.weight > 0 for room in self.rooms), "room weights must be positive")
        _require(all(sku.weight > 0 for sku in self.skus), "SKU weights must be positive")
        _require(all(sku.initial_stock >= 0 for sku in self.skus), "initial stock must be >= 0")
        _require(self.base_rate_per_s >= 0, "base_rate_per_s must be >= 0")
        _require(bool(self.quantity_weights), "quantity_weights must not be empty")
        _require(
            all(qty > 0 and weight > 0 for qty, weight in self.quantity_weights),
            "quantities and their weights must be positive",
        )
        for name in ("cancel_probability", "duplicate_probability"):
            _require(0.0 <= getattr(self, name) <= 1.0, f"{name} must be within [0, 1]")
        _require(bool(self.regions), "regions must not be empty (use (None,) for none)")
        _require(self.buyer_pool_size > 0, "buyer_pool_size must be positive")
        _require(self.tick_s > 0, "tick_s must be positive")
        if self.burst is not None:
            _require(
                self.burst.sku in {sku.sku for sku in self.skus},
                f"burst SKU {self.burst.sku!r} is not among the scenario's SKUs",
            )
            _require(self.burst.duration_s >= 0, "burst duration_s must be >= 0")
            _require(self.burst.rate_multiplier >= 1, "burst rate_multiplier must be >= 1")

    def rate_at(self, elapsed_s: float) -> float:
        """Orders per second across all rooms, ``elapsed_s`` after the start."""
        if self.burst is not None and self.burst.covers(elapsed_s):
            return self.base_rate_per_s * self.burst.rate_multiplier
        return self.base_rate_per_s

    def initial_stock(self) -> dict[str, int]:
        return {sku.sku: sku.initial_stock for sku in self.skus}


def build_rooms(
    scenario: Scenario, *, stocked: bool = True, observer: OrderObserver | None = None
) -> dict[str, LiveRoom]:
    """Fresh rooms by channel id, each displaying every SKU's initial stock.

    Every room shows the full count, as each platform would before stockcast first
    pushes: that is the oversell stockcast exists to prevent. With ``stocked=False``
    every room starts at 0, for a stockcast that grants each room its quota as deltas
    (a delta added to a full display would count those units twice). ``observer`` hears
    of every buyer in every room.
    """
    stock = scenario.initial_stock() if stocked else {}
    return {
        room.channel: LiveRoom(room.channel, room.platform, stock, observer=observer)
        for room in scenario.rooms
    }


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _require_unique(names: list[str], what: str) -> None:
    duplicates = sorted({name for name in names if names.count(name) > 1})
    _require(not duplicates, f"duplicate {what}(s): {', '.join(duplicates)}")
