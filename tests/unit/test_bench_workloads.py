"""The bench workloads: deterministic per seed, the sizes asked for, re-sent order ids."""

from __future__ import annotations

from collections import Counter

import pytest

from sync_worker.bench import workloads
from sync_worker.bench.workloads import OrderLine, RateSweep, Sizes, Workload
from tests.bench_support import TINY


def built(name: str, seed: int = 7, sizes: Sizes = TINY) -> Workload:
    workload = workloads.build(name, sizes, seed)
    assert isinstance(workload, Workload)
    return workload


@pytest.mark.parametrize("name", workloads.NAMES)
def test_the_same_seed_gives_the_same_workload_and_another_seed_another(name: str) -> None:
    first = workloads.build(name, TINY, 7)
    again = workloads.build(name, TINY, 7)
    other = workloads.build(name, TINY, 8)

    if isinstance(first, RateSweep):
        assert isinstance(again, RateSweep)
        assert isinstance(other, RateSweep)
        assert first.at(400) == again.at(400)
        assert first.at(400).lines != other.at(400).lines
    else:
        assert first == again
        assert first != other


def test_the_hot_sku_has_its_lines_on_one_sku_holding_half_of_them() -> None:
    hot = built(workloads.HOT_SKU)

    assert len(hot.lines) == TINY.hot_lines
    assert {line.sku for line in hot.lines} == {workloads.HOT_SKU}
    assert hot.stock == {workloads.HOT_SKU: TINY.hot_lines // 2}
    assert not hot.open_loop


@pytest.mark.parametrize("name", [workloads.SPREAD_UNIFORM, workloads.SPREAD_ZIPF])
def test_the_spread_covers_its_skus_all_holding_the_same_units(name: str) -> None:
    spread = built(name)

    assert len(spread.lines) == TINY.spread_lines
    assert len(spread.stock) == TINY.spread_skus
    assert set(spread.stock.values()) == {TINY.spread_lines // (2 * TINY.spread_skus)}
    assert {line.sku for line in spread.lines} <= set(spread.stock)


def test_zipf_concentrates_the_lines_on_few_skus_uniform_does_not() -> None:
    def top_share(workload: Workload) -> float:
        counts = Counter(line.sku for line in workload.lines)
        return counts.most_common(1)[0][1] / len(workload.lines)

    assert top_share(built(workloads.SPREAD_ZIPF)) > 3 * top_share(built(workloads.SPREAD_UNIFORM))


def test_the_burst_is_front_loaded_on_one_sku_over_a_background() -> None:
    burst = built(workloads.BURST)
    times = burst.send_at_s

    assert burst.open_loop
    assert len(times) == len(burst.lines)
    assert list(times) == sorted(times)
    window_end = 2 * TINY.background_margin_s + TINY.burst_seconds
    assert times[0] >= 0
    assert times[-1] <= window_end
    on_hot = [t for t, line in zip(times, burst.lines, strict=True) if line.sku == workloads.BURST]
    assert len(on_hot) >= TINY.burst_attempts * 0.9  # a few slots re-send other lines
    start = TINY.background_margin_s
    first_quarter = [t for t in on_hot if t < start + TINY.burst_seconds / 4]
    assert len(first_quarter) > len(on_hot) / 3
    assert burst.stock[workloads.BURST] == TINY.burst_stock
    assert len(burst.lines) > TINY.burst_attempts  # the background is there too


def test_the_rate_sweep_sends_evenly_at_each_rate_without_running_dry() -> None:
    sweep = workloads.build(workloads.RATE_SWEEP, TINY, 7)
    assert isinstance(sweep, RateSweep)

    at_400 = sweep.at(400)

    assert sweep.rates == TINY.sweep_rates
    assert len(at_400.lines) == 400 * TINY.sweep_seconds
    assert at_400.send_at_s[1] - at_400.send_at_s[0] == pytest.approx(1 / 400)
    demand = Counter[str]()
    for line in at_400.lines:
        demand[line.sku] += line.qty
    assert all(at_400.stock[sku] > units for sku, units in demand.items())


@pytest.mark.parametrize("name", [workloads.HOT_SKU, workloads.SPREAD_ZIPF, workloads.BURST])
def test_a_small_share_of_lines_re_send_a_recent_order_id_unchanged(name: str) -> None:
    workload = built(name)
    last_seen: dict[str, int] = {}
    originals: dict[str, OrderLine] = {}
    resent = 0
    for index, line in enumerate(workload.lines):
        if line.order_id in last_seen:
            resent += 1
            assert line == originals[line.order_id]  # same SKU and quantity
            assert index - last_seen[line.order_id] <= 64  # a recent line
        else:
            originals[line.order_id] = line
        last_seen[line.order_id] = index

    assert resent == workload.resent
    expected = TINY.duplicate_share * len(workload.lines)
    assert expected / 3 < resent < expected * 3


def test_without_a_duplicate_share_every_order_id_is_new() -> None:
    sizes = Sizes(hot_lines=500, duplicate_share=0.0)

    assert built(workloads.HOT_SKU, sizes=sizes).resent == 0


def test_quantities_are_small_and_mostly_one() -> None:
    quantities = Counter(line.qty for line in built(workloads.SPREAD_UNIFORM).lines)

    assert set(quantities) <= {1, 2, 3}
    assert quantities[1] > sum(quantities.values()) / 2


def test_scaling_shrinks_counts_and_durations_but_keeps_rates() -> None:
    quick = workloads.QUICK.scaled(0.01)

    assert quick.hot_lines == 1_000
    assert quick.burst_attempts == 200
    assert quick.burst_seconds == pytest.approx(0.02)
    assert quick.sweep_rates == workloads.QUICK.sweep_rates
    assert Sizes(hot_lines=10).scaled(0.001).hot_lines == 1


def test_the_quick_preset_is_smaller_than_the_full_one() -> None:
    quick, full = workloads.QUICK, workloads.FULL

    assert quick.hot_lines < full.hot_lines
    assert quick.spread_lines < full.spread_lines
    assert quick.burst_attempts < full.burst_attempts
    assert quick.sweep_seconds * len(quick.sweep_rates) < full.sweep_seconds * len(full.sweep_rates)


def test_the_warm_up_drains_a_few_skus_midway_and_is_the_same_for_every_system() -> None:
    warm = workloads.warm_up(TINY, 7)

    assert len(warm.lines) == TINY.warm_up_lines
    assert {line.sku for line in warm.lines} <= set(warm.stock)
    assert len(warm.stock) < len(warm.lines) // 2
    assert sum(warm.stock.values()) * 2 <= sum(line.qty for line in warm.lines)
    assert workloads.warm_up(TINY, 7) == warm
    assert not warm.open_loop


def test_an_unknown_workload_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="hot-sku"):
        workloads.build("everything", TINY, 7)
