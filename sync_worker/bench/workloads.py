"""The bench workloads as data: order lines, the stock they are decided against and, for
open-loop workloads, when each line is sent.

Deterministic: the same sizes and seed give the same lines, so every system gets the
very same load. A small share of lines re-send an order id sent shortly before (a
platform redelivering, a buyer clicking twice): every system must answer those
``duplicate`` and never accept one twice.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from sync_worker.domain.events import OrderLinePlaced

HOT_SKU: Final = "hot-sku"
SPREAD_UNIFORM: Final = "spread-uniform"
SPREAD_ZIPF: Final = "spread-zipf"
BURST: Final = "burst"
RATE_SWEEP: Final = "rate-sweep"
NAMES: Final = (HOT_SKU, SPREAD_UNIFORM, SPREAD_ZIPF, BURST, RATE_SWEEP)
PLATFORM: Final = "bench"
CHANNEL: Final = "bench-room"
"""The platform and the live room every bench order comes from, in stockcast's events."""

_RESEND_WINDOW = 64
"""A re-sent order id is one of the last this many lines."""
_QUANTITIES = (1, 2, 3)
_QUANTITY_WEIGHTS = (85, 10, 5)
_PLENTY = 1_000_000
"""Stock of SKUs a workload never means to drain (background, rate sweep)."""
_WARM_UP_SKUS = 50


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One order line as a system receives it: ``order_id`` identifies it for dedupe."""

    order_id: str
    sku: str
    qty: int

    def placed(self, *, event_id: str, sku: str, event_time_ms: int) -> OrderLinePlaced:
        """The line as stockcast receives it, on ``sku`` (the system's name for the line's
        SKU); the order id stands for the buyer too."""
        return OrderLinePlaced(
            event_id=event_id,
            sku=sku,
            event_time_ms=event_time_ms,
            platform=PLATFORM,
            channel=CHANNEL,
            order_id=self.order_id,
            line_id="1",
            quantity=self.qty,
            buyer_id=self.order_id,
        )


@dataclass(frozen=True, slots=True)
class Workload:
    """Lines in send order and the stock each SKU starts with. With ``send_at_s`` (one
    offset from the start per line, non-decreasing) it is played open loop at those
    times; without, closed loop: as fast as the clients get answers."""

    name: str
    description: str
    stock: Mapping[str, int]
    lines: tuple[OrderLine, ...]
    send_at_s: tuple[float, ...] = ()

    @property
    def open_loop(self) -> bool:
        return bool(self.send_at_s)

    @property
    def resent(self) -> int:
        """Lines carrying an order id that an earlier line carried."""
        return len(self.lines) - len({line.order_id for line in self.lines})


@dataclass(frozen=True, slots=True)
class RateSweep:
    """Open-loop runs at rising fixed rates over many SKUs that never run dry, for
    latency against offered load."""

    name: str
    rates: tuple[int, ...]
    seconds: float
    skus: int
    duplicate_share: float
    seed: int

    def at(self, rate: int) -> Workload:
        """The run at ``rate`` lines per second, evenly spaced."""
        count = max(1, round(rate * self.seconds))
        rng = random.Random(f"{self.seed}:{self.name}:{rate}")
        skus = [_sku("s", index) for index in range(self.skus)]
        picked = [rng.choice(skus) for _ in range(count)]
        lines = _lines(f"r{rate}-", picked, rng, self.duplicate_share)
        return Workload(
            name=self.name,
            description=f"{rate}/s open loop for {self.seconds:g}s",
            stock=dict.fromkeys(skus, _PLENTY),
            lines=lines,
            send_at_s=tuple(index / rate for index in range(count)),
        )


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each workload is; ``QUICK`` and ``FULL`` are the presets."""

    hot_lines: int = 1_000_000
    spread_lines: int = 1_000_000
    spread_skus: int = 10_000
    burst_attempts: int = 100_000
    burst_seconds: float = 2.0
    burst_stock: int = 10_000
    background_per_s: float = 100.0
    background_skus: int = 100
    background_margin_s: float = 1.0
    """Background before and after the burst."""
    sweep_rates: tuple[int, ...] = (100, 250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000)
    sweep_seconds: float = 10.0
    duplicate_share: float = 0.01
    warm_up_lines: int = 1_000_000
    """Lines of the warm-up: more than a system decides in its warm-up time."""

    def scaled(self, factor: float) -> Sizes:
        """Every count and duration times ``factor`` (at least 1); rates and shares stay."""

        def count(value: int) -> int:
            return max(1, round(value * factor))

        return replace(
            self,
            hot_lines=count(self.hot_lines),
            spread_lines=count(self.spread_lines),
            spread_skus=count(self.spread_skus),
            burst_attempts=count(self.burst_attempts),
            burst_stock=count(self.burst_stock),
            background_skus=count(self.background_skus),
            burst_seconds=self.burst_seconds * factor,
            background_margin_s=self.background_margin_s * factor,
            sweep_seconds=self.sweep_seconds * factor,
        )


FULL = Sizes()
QUICK = Sizes(
    hot_lines=100_000,
    spread_lines=200_000,
    # Every run starts on fresh books, and stockcast's worker takes each SKU's stock as an
    # event (and pushes its first count) before the run: 10k SKUs per run would not fit.
    spread_skus=500,
    burst_attempts=20_000,
    burst_stock=2_000,
    sweep_rates=(100, 250, 500, 1_000, 2_000, 4_000, 8_000),
    sweep_seconds=1.5,
    warm_up_lines=300_000,
)


def build(name: str, sizes: Sizes, seed: int) -> Workload | RateSweep:
    """The workload called ``name`` (one of ``NAMES``)."""
    rng = random.Random(f"{seed}:{name}")
    if name == HOT_SKU:
        return hot_sku(sizes, rng)
    if name in (SPREAD_UNIFORM, SPREAD_ZIPF):
        return spread(name, sizes, rng, zipf=name == SPREAD_ZIPF)
    if name == BURST:
        return burst(sizes, rng)
    if name == RATE_SWEEP:
        return RateSweep(
            RATE_SWEEP,
            sizes.sweep_rates,
            sizes.sweep_seconds,
            sizes.spread_skus,
            sizes.duplicate_share,
            seed,
        )
    raise ValueError(f"unknown workload {name!r}; known: {', '.join(NAMES)}")


def warm_up(sizes: Sizes, seed: int) -> Workload:
    """The unmeasured load before a system's first run: lines over a few SKUs that drain
    midway, so that placements are both accepted and rejected."""
    rng = random.Random(f"{seed}:warm-up")
    skus = [_sku("w", index) for index in range(_WARM_UP_SKUS)]
    picked = [rng.choice(skus) for _ in range(sizes.warm_up_lines)]
    units = max(1, sizes.warm_up_lines // (2 * len(skus)))
    return Workload(
        "warm-up",
        f"{sizes.warm_up_lines:,} lines over {len(skus)} SKUs, {units:,} units each",
        dict.fromkeys(skus, units),
        _lines("w", picked, rng, sizes.duplicate_share),
    )


def hot_sku(sizes: Sizes, rng: random.Random) -> Workload:
    """Every line on one SKU holding units for about half of them: it drains midway."""
    lines = _lines("h", [HOT_SKU] * sizes.hot_lines, rng, sizes.duplicate_share)
    stock = max(1, sizes.hot_lines // 2)
    return Workload(
        HOT_SKU,
        f"{sizes.hot_lines:,} lines on one SKU holding {stock:,} units",
        {HOT_SKU: stock},
        lines,
    )


def spread(name: str, sizes: Sizes, rng: random.Random, *, zipf: bool) -> Workload:
    """Lines over many SKUs, all holding the same units (about half the demand in all):
    uniform drains them together, Zipf (s=1) drains the popular ones early."""
    skus = [_sku("s", index) for index in range(sizes.spread_skus)]
    if zipf:
        ranked = skus[:]
        rng.shuffle(ranked)  # popularity unrelated to the SKU's name
        weights = list(itertools.accumulate(1.0 / rank for rank in range(1, len(ranked) + 1)))
        picked = rng.choices(ranked, cum_weights=weights, k=sizes.spread_lines)
    else:
        picked = [rng.choice(skus) for _ in range(sizes.spread_lines)]
    units = max(1, sizes.spread_lines // (2 * len(skus)))
    shape = "Zipf s=1" if zipf else "uniform"
    return Workload(
        name,
        f"{sizes.spread_lines:,} lines over {len(skus):,} SKUs ({shape}), {units} units each",
        dict.fromkeys(skus, units),
        _lines("z" if zipf else "u", picked, rng, sizes.duplicate_share),
    )


def burst(sizes: Sizes, rng: random.Random) -> Workload:
    """The link goes up ("上链接"): attempts on one SKU, front-loaded (half of them in
    the first quarter of the burst), over a steady background on other SKUs."""
    start = sizes.background_margin_s
    attempts = sorted(
        start + sizes.burst_seconds * rng.random() ** 2 for _ in range(sizes.burst_attempts)
    )
    span = start + sizes.burst_seconds + sizes.background_margin_s
    background_skus = [_sku("b", index) for index in range(sizes.background_skus)]
    background: list[tuple[float, str]] = []
    at = rng.expovariate(sizes.background_per_s)
    while at < span:
        background.append((at, rng.choice(background_skus)))
        at += rng.expovariate(sizes.background_per_s)
    timed = sorted([(at, BURST) for at in attempts] + background)
    stock = dict.fromkeys(background_skus, _PLENTY)
    stock[BURST] = sizes.burst_stock
    return Workload(
        BURST,
        f"{sizes.burst_attempts:,} attempts in {sizes.burst_seconds:g}s on one SKU holding "
        f"{sizes.burst_stock:,} units, over {sizes.background_per_s:g}/s background",
        stock,
        _lines("b", [sku for _, sku in timed], rng, sizes.duplicate_share),
        tuple(at for at, _ in timed),
    )


def _lines(
    prefix: str, skus: Sequence[str], rng: random.Random, duplicate_share: float
) -> tuple[OrderLine, ...]:
    """One line per entry of ``skus``; a ``duplicate_share`` of them re-send one of the
    recent lines instead (same order id, SKU and quantity)."""
    lines: list[OrderLine] = []
    quantities = rng.choices(_QUANTITIES, weights=_QUANTITY_WEIGHTS, k=len(skus))
    for index, sku in enumerate(skus):
        if lines and rng.random() < duplicate_share:
            lines.append(lines[-1 - rng.randrange(min(len(lines), _RESEND_WINDOW))])
        else:
            lines.append(OrderLine(f"{prefix}{index:07d}", sku, quantities[index]))
    return tuple(lines)


def _sku(prefix: str, index: int) -> str:
    return f"{prefix}{index:05d}"
