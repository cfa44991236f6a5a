"""The hot-SKU ranking: decayed counts of order lines, bounded memory, no clock."""

from __future__ import annotations

import pytest

from sync_worker.domain.hot_skus import HotSkus

MINUTE = 60_000


def test_the_sku_with_most_lines_ranks_first() -> None:
    hot = HotSkus(half_life_ms=MINUTE)
    for _ in range(3):
        hot.record("lipstick", 0)
    hot.record("mascara", 0)
    hot.record("mascara", 0)
    hot.record("blush", 0)

    assert hot.top(2, 0) == ["lipstick", "mascara"]
    assert hot.top(10, 0) == ["lipstick", "mascara", "blush"]


def test_a_score_halves_every_half_life() -> None:
    hot = HotSkus(half_life_ms=MINUTE)
    hot.record("lipstick", 0, lines=8)

    assert hot.score("lipstick", 0) == 8
    assert hot.score("lipstick", MINUTE) == pytest.approx(4)
    assert hot.score("lipstick", 3 * MINUTE) == pytest.approx(1)
    assert hot.score("unknown", 0) == 0


def test_a_sku_selling_now_outranks_one_that_sold_more_long_ago() -> None:
    hot = HotSkus(half_life_ms=MINUTE)
    hot.record("yesterday", 0, lines=100)
    hot.record("now", 10 * MINUTE, lines=2)

    assert hot.top(1, 10 * MINUTE) == ["now"]


def test_a_late_line_decays_from_its_own_time() -> None:
    in_order, late = HotSkus(half_life_ms=MINUTE), HotSkus(half_life_ms=MINUTE)
    in_order.record("lipstick", 0)
    in_order.record("lipstick", MINUTE)
    late.record("lipstick", MINUTE)
    late.record("lipstick", 0)

    assert late.score("lipstick", 2 * MINUTE) == pytest.approx(
        in_order.score("lipstick", 2 * MINUTE)
    )


def test_ties_rank_by_sku_so_the_top_is_stable() -> None:
    hot = HotSkus(half_life_ms=MINUTE)
    for sku in ("c", "a", "b"):
        hot.record(sku, 0)

    assert hot.top(2, 0) == ["a", "b"]
    assert hot.top(0, 0) == []


def test_past_its_capacity_the_coldest_half_is_forgotten() -> None:
    hot = HotSkus(half_life_ms=MINUTE, capacity=4)
    hot.record("hottest", 0, lines=10)
    hot.record("warm", 0, lines=5)
    for n in range(3):
        hot.record(f"once-{n}", 0)

    assert len(hot) <= 4
    assert "hottest" in hot
    assert "warm" in hot
    for n in range(1000):
        hot.record(f"tail-{n}", 0)
    assert len(hot) <= 4
    assert hot.top(2, 0) == ["hottest", "warm"]


def test_retain_forgets_the_skus_refused() -> None:
    hot = HotSkus(half_life_ms=MINUTE)
    for sku in ("kept", "handed-away"):
        hot.record(sku, 0)

    hot.retain(lambda sku: sku == "kept")

    assert hot.top(5, 0) == ["kept"]
    assert "handed-away" not in hot


@pytest.mark.parametrize(("half_life_ms", "capacity"), [(0, 10), (-1, 10), (1000, 1)])
def test_nonsense_settings_are_refused(half_life_ms: int, capacity: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        HotSkus(half_life_ms=half_life_ms, capacity=capacity)
