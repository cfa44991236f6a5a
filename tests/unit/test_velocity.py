"""A SKU's pace: the minute window counts exactly what sold in it, the smoothed pace follows
a steady rate, shows a burst at once and decays after a stop; returns count against it;
late events land in their own bucket; the sell-out ETA follows from the pace."""

from __future__ import annotations

import math
import pickle
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_worker.domain.velocity import SkuVelocity, Velocity, VelocitySettings, sellout_eta_s

ROOM, OTHER_ROOM = "tiktok-room-1", "douyin-room-1"
T0 = 1_700_000_000_000
SECOND, MINUTE = 1_000, 60_000


def steady(
    tracker: SkuVelocity, per_s: int, seconds: int, start_ms: int = T0, room: str = ROOM
) -> int:
    """``per_s`` units every second for ``seconds``; the time of the last sale."""
    for second in range(seconds):
        tracker.sold(room, per_s, start_ms + second * SECOND)
    return start_ms + (seconds - 1) * SECOND


# --- the window -------------------------------------------------------------------------


def test_a_steady_rate_reads_its_units_per_minute_both_ways() -> None:
    tracker = SkuVelocity()

    last = steady(tracker, 2, 600)
    pace = tracker.velocity(last)

    assert pace.windowed_per_min == 120
    # Right after a sale the impulses sum a little above the mean: within a unit per minute.
    assert pace.smoothed_per_min == pytest.approx(120, abs=1.5)
    assert tracker.velocity(last + SECOND // 2).smoothed_per_min == pytest.approx(120, abs=0.1)


def test_a_sale_leaves_the_window_when_its_bucket_does() -> None:
    tracker = SkuVelocity()
    tracker.sold(ROOM, 3, T0)

    assert tracker.velocity(T0 + MINUTE - 1).windowed_per_min == 3
    assert tracker.velocity(T0 + MINUTE).windowed_per_min == 0


def test_the_window_is_scaled_to_units_per_minute() -> None:
    tracker = SkuVelocity(VelocitySettings(window_ms=30 * SECOND, bucket_ms=500))

    steady(tracker, 1, 30)

    assert tracker.velocity(T0 + 29 * SECOND).windowed_per_min == 60


def test_many_sales_in_one_millisecond_all_count() -> None:
    tracker = SkuVelocity()

    for _ in range(1000):
        tracker.sold(ROOM, 1, T0)

    assert tracker.velocity(T0).windowed_per_min == 1000


def test_after_a_huge_gap_only_the_new_sales_count() -> None:
    tracker = SkuVelocity()
    steady(tracker, 50, 60)
    later = T0 + 10 * 24 * 3600 * SECOND

    tracker.sold(ROOM, 2, later)
    pace = tracker.velocity(later)

    assert pace.windowed_per_min == 2
    assert pace.smoothed_per_min == pytest.approx(2 * VelocitySettings().impulse_per_min)


# --- smoothing --------------------------------------------------------------------------


def test_a_burst_after_quiet_shows_at_once_and_ahead_of_the_window() -> None:
    tracker = SkuVelocity()
    tracker.sold(ROOM, 1, T0)
    quiet_until = T0 + 10 * MINUTE
    assert tracker.velocity(quiet_until) == Velocity(0.0, 0.0)

    # 20 units a second for 5 s: 1,200 a minute while it lasts.
    tracker.sold(ROOM, 20, quiet_until)
    first_sale = tracker.velocity(quiet_until)
    last = steady(tracker, 20, 4, start_ms=quiet_until + SECOND)
    pace = tracker.velocity(last)

    assert first_sale.smoothed_per_min == pytest.approx(20 * 60 * math.log(2) / 30)
    assert pace.windowed_per_min == 100
    assert pace.smoothed_per_min > 1.2 * pace.windowed_per_min


def test_after_a_stop_the_smoothed_pace_halves_every_half_life_then_reads_idle() -> None:
    tracker = SkuVelocity()
    last = steady(tracker, 2, 600)
    running = tracker.velocity(last).smoothed_per_min

    half = tracker.velocity(last + 30 * SECOND)
    quarter = tracker.velocity(last + 60 * SECOND)

    assert half.smoothed_per_min == pytest.approx(running / 2)
    assert quarter.smoothed_per_min == pytest.approx(running / 4)
    assert quarter.windowed_per_min == 0
    # 121.4/min falls below the 0.1/min idle floor after log2(1214) = 10.25 half-lives.
    assert tracker.velocity(last + 300 * SECOND).smoothed_per_min > 0
    assert tracker.velocity(last + 310 * SECOND).smoothed_per_min == 0
    assert tracker.eta_s(100, last + 310 * SECOND) is None


def test_a_read_before_the_newest_event_reads_as_of_that_event() -> None:
    tracker = SkuVelocity()
    tracker.sold(ROOM, 5, T0 + MINUTE)

    assert tracker.velocity(T0) == tracker.velocity(T0 + MINUTE)


# --- channels and returns ---------------------------------------------------------------


def test_each_channel_has_its_own_pace_and_the_sku_sums_them() -> None:
    tracker = SkuVelocity()
    for second in range(60):
        tracker.sold(ROOM, 3, T0 + second * SECOND)
        tracker.sold(OTHER_ROOM, 1, T0 + second * SECOND)
    now = T0 + 59 * SECOND

    room, other, sku = (
        tracker.velocity(now, ROOM),
        tracker.velocity(now, OTHER_ROOM),
        tracker.velocity(now),
    )

    assert (room.windowed_per_min, other.windowed_per_min, sku.windowed_per_min) == (180, 60, 240)
    assert sku.smoothed_per_min == pytest.approx(room.smoothed_per_min + other.smoothed_per_min)
    assert tracker.channels == (OTHER_ROOM, ROOM)
    assert tracker.velocity(now, "never-sold") == Velocity(0.0, 0.0)


def test_returned_units_count_against_the_pace_but_never_below_zero() -> None:
    tracker = SkuVelocity()
    tracker.sold(ROOM, 10, T0)
    tracker.sold(OTHER_ROOM, 4, T0)

    tracker.returned(ROOM, 3, T0 + SECOND)
    assert tracker.velocity(T0 + SECOND, ROOM).windowed_per_min == 7
    assert tracker.velocity(T0 + SECOND).windowed_per_min == 11

    tracker.returned(ROOM, 20, T0 + 2 * SECOND)  # a wave of cancellations
    room, sku = tracker.velocity(T0 + 2 * SECOND, ROOM), tracker.velocity(T0 + 2 * SECOND)
    assert room == Velocity(0.0, 0.0)
    assert sku == Velocity(0.0, 0.0)  # the other room's 4 are outweighed for the SKU...
    assert tracker.velocity(T0 + 2 * SECOND, OTHER_ROOM).windowed_per_min == 4  # ...not here


def test_a_negative_count_is_refused() -> None:
    tracker = SkuVelocity()

    with pytest.raises(ValueError, match="negative"):
        tracker.sold(ROOM, -1, T0)
    with pytest.raises(ValueError, match="negative"):
        tracker.returned(ROOM, -1, T0)


# --- late events ------------------------------------------------------------------------


def test_a_late_event_lands_in_its_own_bucket_and_leaves_with_it() -> None:
    tracker = SkuVelocity()
    tracker.sold(ROOM, 1, T0 + 30 * SECOND)

    assert tracker.sold(ROOM, 4, T0 + 5 * SECOND)  # 25 s late: still in the window

    assert tracker.velocity(T0 + 64 * SECOND).windowed_per_min == 5
    assert tracker.velocity(T0 + 65 * SECOND).windowed_per_min == 1  # its bucket left


def test_an_event_older_than_the_window_is_dropped() -> None:
    tracker = SkuVelocity()
    tracker.sold(ROOM, 1, T0 + MINUTE)

    assert not tracker.sold(ROOM, 9, T0)
    assert not tracker.returned(ROOM, 1, T0)
    assert tracker.velocity(T0 + MINUTE).windowed_per_min == 1


def test_a_late_sale_counts_as_if_it_had_come_on_time() -> None:
    in_order, late = SkuVelocity(), SkuVelocity()
    in_order.sold(ROOM, 4, T0)
    in_order.sold(ROOM, 1, T0 + 10 * SECOND)
    late.sold(ROOM, 1, T0 + 10 * SECOND)
    late.sold(ROOM, 4, T0)

    assert late.velocity(T0 + 20 * SECOND).smoothed_per_min == pytest.approx(
        in_order.velocity(T0 + 20 * SECOND).smoothed_per_min
    )


# --- the ETA ----------------------------------------------------------------------------


def test_the_eta_is_what_remains_over_the_pace() -> None:
    assert sellout_eta_s(240, 120.0) == 120.0
    assert sellout_eta_s(1, 0.5) == 120.0
    assert sellout_eta_s(10, 0.0) is None
    assert sellout_eta_s(0, 0.0) == 0.0
    assert sellout_eta_s(-3, 60.0) == 0.0


def test_the_skus_eta_follows_its_smoothed_pace() -> None:
    tracker = SkuVelocity()
    last = steady(tracker, 2, 600)

    assert tracker.eta_s(240, last) == pytest.approx(
        240 * 60 / tracker.velocity(last).smoothed_per_min
    )
    assert SkuVelocity().eta_s(240, T0) is None


@pytest.mark.parametrize(
    "settings",
    [
        {"window_ms": 60_000, "bucket_ms": 7_000},
        {"window_ms": 0},
        {"bucket_ms": 0},
        {"half_life_ms": 0},
    ],
)
def test_settings_that_cannot_work_are_refused(settings: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be"):
        VelocitySettings(**settings)


# --- properties -------------------------------------------------------------------------

times = st.integers(min_value=T0, max_value=T0 + 5 * MINUTE)
moves = st.lists(
    st.tuples(st.sampled_from([ROOM, OTHER_ROOM]), st.integers(-20, 50), times), max_size=60
)
"""(channel, units, at_ms): positive units sold, negative returned."""


def play(
    moves: list[tuple[str, int, int]], settings: VelocitySettings | None = None
) -> SkuVelocity:
    tracker = SkuVelocity(settings)
    for channel, units, at_ms in moves:
        if units >= 0:
            tracker.sold(channel, units, at_ms)
        else:
            tracker.returned(channel, -units, at_ms)
    return tracker


@given(moves, times)
def test_no_pace_is_ever_negative(moves: list[tuple[str, int, int]], now_ms: int) -> None:
    tracker = play(moves)

    for channel in (None, ROOM, OTHER_ROOM):
        pace = tracker.velocity(now_ms, channel)
        assert pace.windowed_per_min >= 0
        assert pace.smoothed_per_min >= 0


@given(
    st.lists(st.tuples(st.integers(0, 50), times), max_size=60),
    st.integers(0, 2 * MINUTE),
    st.sampled_from([(60_000, 1_000), (10_000, 250), (5_000, 5_000)]),
)
def test_with_only_sales_the_window_holds_exactly_the_sales_in_it(
    sales: list[tuple[int, int]], read_after_ms: int, window: tuple[int, int]
) -> None:
    window_ms, bucket_ms = window
    settings = VelocitySettings(window_ms=window_ms, bucket_ms=bucket_ms)
    tracker = SkuVelocity(settings)
    kept: list[tuple[int, int]] = []
    clock = 0
    for units, at_ms in sales:
        clock = max(clock, at_ms)
        expected_kept = at_ms // bucket_ms > clock // bucket_ms - window_ms // bucket_ms
        assert tracker.sold(ROOM, units, at_ms) is expected_kept
        if expected_kept:
            kept.append((units, at_ms))
    now_ms = clock + read_after_ms

    in_window = sum(
        units
        for units, at_ms in kept
        if at_ms // bucket_ms > now_ms // bucket_ms - window_ms // bucket_ms
    )

    assert tracker.velocity(now_ms).windowed_per_min == pytest.approx(
        in_window * MINUTE / window_ms
    )


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 59_999)), max_size=40), st.randoms())
def test_sales_within_one_window_read_the_same_in_any_order(
    sales: list[tuple[int, int]], random: Random
) -> None:
    shuffled = list(sales)
    random.shuffle(shuffled)
    now_ms = T0 + 59_999

    ordered = play([(ROOM, units, T0 + at) for units, at in sorted(sales, key=lambda s: s[1])])
    reordered = play([(ROOM, units, T0 + at) for units, at in shuffled])

    a, b = ordered.velocity(now_ms), reordered.velocity(now_ms)
    assert a.windowed_per_min == b.windowed_per_min
    assert a.smoothed_per_min == pytest.approx(b.smoothed_per_min, rel=1e-9)


@given(moves, st.integers(0, 10 * MINUTE))
def test_after_the_last_event_the_smoothed_pace_only_falls(
    moves: list[tuple[str, int, int]], later_ms: int
) -> None:
    tracker = play([(channel, abs(units), at_ms) for channel, units, at_ms in moves])
    last = max((at_ms for _, _, at_ms in moves), default=T0)

    assert (
        tracker.velocity(last + later_ms).smoothed_per_min
        <= tracker.velocity(last).smoothed_per_min
    )


@given(moves, times, st.integers(-10, 10_000), st.integers(0, 10_000))
def test_the_eta_grows_with_what_remains(
    moves: list[tuple[str, int, int]], now_ms: int, remaining: int, more: int
) -> None:
    tracker = play(moves)

    def eta(units: int) -> float:
        eta_s = tracker.eta_s(units, now_ms)
        return math.inf if eta_s is None else eta_s  # None: never, at this pace

    assert 0 <= eta(remaining) <= eta(remaining + more)


@given(moves, times)
def test_with_only_sales_the_sku_window_sums_its_channels(
    moves: list[tuple[str, int, int]], now_ms: int
) -> None:
    tracker = play([(channel, abs(units), at_ms) for channel, units, at_ms in moves])

    channels = [tracker.velocity(now_ms, channel) for channel in tracker.channels]

    assert tracker.velocity(now_ms).windowed_per_min == sum(c.windowed_per_min for c in channels)


def test_memory_stays_at_one_window_however_long_a_sku_sells() -> None:
    short, long = SkuVelocity(), SkuVelocity()
    steady(short, 7, 120)
    steady(long, 7, 3 * 3600)

    assert len(pickle.dumps(long)) <= len(pickle.dumps(short)) + 64  # a few wider ints
