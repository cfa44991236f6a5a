"""The discrete-event loop on scenarios small enough to compute by hand."""

from __future__ import annotations

import pytest

from sync_worker.domain.allocation import PolicyKind
from sync_worker.simulation.arrivals import Arrival, buyers_of
from sync_worker.simulation.engine import PlatformRoom, run
from sync_worker.simulation.trace import Buyers, ChannelSpec, PolicySettings, Scenario, load_trace


def channel(name: str, *, hear: int = 0, push: int = 0, pushes_per_s: float = 1000) -> ChannelSpec:
    return ChannelSpec(name, hear, push, pushes_per_s, Buyers())


def scenario(stock: int, *channels: ChannelSpec, min_buffer: int = 1) -> Scenario:
    # One unit of buffer keeps the hand computations below short.
    return Scenario(
        "t", "sku", stock, 10_000, 0, channels, policy=PolicySettings(min_buffer=min_buffer)
    )


def buyers(
    channel: str, count: int, *, every_ms: int = 50, quantity: int = 1
) -> tuple[Arrival, ...]:
    return tuple(Arrival(every_ms * (i + 1), channel, quantity) for i in range(count))


@pytest.mark.parametrize("kind", list(PolicyKind))
def test_one_channel_without_delays_sells_exactly_the_stock(kind: PolicyKind) -> None:
    result = run(scenario(5, channel("solo")), buyers("solo", 20), kind)

    assert (result.sales, result.units_sold, result.unsold_units) == (5, 5, 0)
    assert (result.oversold_units, result.lost_sales, result.stranded_units) == (0, 0, 0)
    assert result.turned_away == 15  # nothing left for them: not lost sales


def test_a_static_split_strands_units_in_the_quiet_channel() -> None:
    # 10 units split 5/5 once; only "a" has buyers: its 6th to 8th buyers are lost while
    # "b" still holds 5 units, which stay unsold.
    result = run(scenario(10, channel("a"), channel("b")), buyers("a", 8), PolicyKind.STATIC)

    assert (result.sales, result.lost_sales, result.lost_units) == (5, 3, 3)
    assert result.lost_by_channel == {"a": 3}
    assert (result.unsold_units, result.stranded_units) == (5, 5)
    assert result.pushes == 2  # the two initial grants
    assert result.pushes_per_order == pytest.approx(0.4)
    assert result.lost_pct == pytest.approx(30.0)
    assert (result.first_lost_ms, result.last_lost_ms) == (300, 400)


def test_a_buyer_wanting_more_than_is_left_anywhere_is_not_a_lost_sale() -> None:
    trace = scenario(3, channel("a"))
    played = (Arrival(10, "a", 2), Arrival(20, "a", 2))

    result = run(trace, played, PolicyKind.STATIC)

    assert (result.sales, result.turned_away, result.lost_sales) == (1, 1, 0)
    assert result.stranded_units == 1  # a buyer was turned away and a unit is left


def test_a_sale_is_heard_late_and_the_refill_lands_late() -> None:
    # With min_buffer = 1, adaptive shows 1 unit for a channel with no measured rate. The
    # first buyer takes it at 100 ms; the ledger hears at 130, the refill lands at 170:
    # the buyer at 150 is turned away (a lost sale), the one at 200 buys.
    trace = scenario(10, channel("a", hear=30, push=40))
    played = (Arrival(100, "a", 1), Arrival(150, "a", 1), Arrival(200, "a", 1))

    result = run(trace, played, PolicyKind.ADAPTIVE)

    assert (result.sales, result.lost_sales, result.first_lost_ms) == (2, 1, 150)
    assert result.oversold_units == 0


def test_the_rate_limit_spaces_writes() -> None:
    # One write a second: the refill after the sale at 100 ms waits for t = 1000.
    trace = scenario(10, channel("a", pushes_per_s=1))
    played = (Arrival(100, "a", 1), Arrival(999, "a", 1), Arrival(1000, "a", 1))

    result = run(trace, played, PolicyKind.ADAPTIVE)

    # The buyer at 1000 comes before the write due at 1000 (scheduled first).
    assert (result.sales, result.lost_sales) == (1, 2)


def test_increases_coalesce_and_reductions_are_written_alone() -> None:
    room = PlatformRoom(channel("a"))
    for delta, version in [(2, 1), (3, 2), (-1, 3), (-2, 4), (1, 5), (4, 6)]:
        room.enqueue(delta, version)

    assert [(write.delta, write.version) for write in room.queue] == [
        (5, 2),
        (-1, 3),
        (-2, 4),
        (5, 6),
    ]


def test_a_run_is_deterministic() -> None:
    trace = load_trace()
    played = buyers_of(trace)

    assert run(trace, played, PolicyKind.ADAPTIVE) == run(trace, played, PolicyKind.ADAPTIVE)


@pytest.mark.parametrize("kind", list(PolicyKind))
def test_no_policy_oversells_the_default_trace(kind: PolicyKind) -> None:
    trace = load_trace()

    result = run(trace, buyers_of(trace), kind)

    assert result.oversold_units == 0
    assert result.units_sold + result.unsold_units == trace.stock


def test_the_static_split_loses_more_buyers_than_it_has_units() -> None:
    trace = load_trace()

    result = run(trace, buyers_of(trace), PolicyKind.STATIC)

    assert result.lost_sales > trace.stock


def test_the_best_policy_meets_the_goal_figures() -> None:
    trace = load_trace()
    played = buyers_of(trace)

    results = [run(trace, played, kind) for kind in (PolicyKind.ADAPTIVE, PolicyKind.SESSION_AWARE)]
    best = min(results, key=lambda result: result.lost_sales)

    assert best.lost_pct <= 0.5
    assert best.stranded_units == 0
    assert best.pushes_per_order <= 1
