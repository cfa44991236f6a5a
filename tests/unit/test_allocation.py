"""The allocator's rules, one test each, with plain values (no I/O, no clock)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sync_worker.domain.allocation import (
    Allocation,
    AllocationPolicy,
    ChannelQuota,
    ChannelRule,
    Isolated,
    IsolationEnded,
    Observed,
    Pinned,
    PolicyKind,
    QuotaChange,
    Released,
    Settled,
    Sold,
    StockMoved,
    reallocate,
)

ROOMS = ("hot", "slow-1", "slow-2")


def policy(kind: PolicyKind, *rules: ChannelRule, **knobs: object) -> AllocationPolicy:
    channels = rules or tuple(ChannelRule(room) for room in ROOMS)
    return AllocationPolicy(kind=kind, channels=channels, **knobs)  # type: ignore[arg-type]


def quotas(allocation: Allocation) -> dict[str, int]:
    return {quota.channel: quota.quota for quota in allocation.channels}


def held(allocation: Allocation, **out: int) -> Allocation:
    """An allocation where each named channel holds ``out`` units (rate 0)."""
    channels = tuple(ChannelQuota(channel, out=units) for channel, units in sorted(out.items()))
    return Allocation(channels, version=10)


# --- the pool is never over-granted -----------------------------------------------------


@pytest.mark.parametrize("kind", list(PolicyKind))
def test_first_allocation_never_grants_more_than_sellable(kind: PolicyKind) -> None:
    allocation, changes = reallocate(Allocation(), 2, StockMoved(), policy(kind), 0)

    assert sum(quotas(allocation).values()) <= 2
    assert all(change.delta > 0 for change in changes)
    assert [change.version for change in changes] == list(range(1, len(changes) + 1))


def test_a_grant_comes_only_from_units_no_channel_holds() -> None:
    allocation = held(Allocation(), hot=4, **{"slow-1": 3, "slow-2": 3})

    grown, changes = reallocate(
        allocation, 10, Sold("hot", 4), policy(PolicyKind.SHARED_POOL), 1_000
    )

    # sellable 10 (after the sale: 6 left in the others' quotas... ) — hot sold 4 of its own
    assert sum(q.out for q in grown.channels) <= 10
    assert all(c.channel == "hot" for c in changes if c.delta > 0)


def test_versions_continue_from_the_allocation_and_every_delta_moves_something() -> None:
    allocation = held(Allocation(), hot=0, **{"slow-1": 0, "slow-2": 0})

    _, changes = reallocate(allocation, 30, StockMoved(), policy(PolicyKind.SHARED_POOL), 0)

    assert [c.version for c in changes] == [11, 12, 13]
    assert all(c.delta != 0 for c in changes)


# --- reclaims are settled before their units move ---------------------------------------


def test_reclaimed_units_are_granted_to_nobody_until_settled() -> None:
    fixed = policy(PolicyKind.FIXED_RATIO, ChannelRule("a", ratio=0.5), ChannelRule("b", 0.5))
    allocation, _ = reallocate(Allocation(), 10, StockMoved(), fixed, 0)
    assert quotas(allocation) == {"a": 5, "b": 5}

    # b's share drops to 0 (ratio change): its 5 units are reclaimed, not yet free.
    shifted = policy(PolicyKind.FIXED_RATIO, ChannelRule("a", ratio=1.0), ChannelRule("b", 0.0))
    allocation, changes = reallocate(allocation, 10, StockMoved(), shifted, 1)
    assert changes == (QuotaChange("b", 0, -5, 3),)
    b = allocation.channel("b")
    assert b is not None
    assert (b.out, b.reclaiming, b.quota) == (5, 5, 0)

    # The platform had sold 2 of them meanwhile: only 3 come back, and only now.
    allocation, changes = reallocate(allocation, 8, Sold("b", 2), shifted, 2)
    assert changes == ()
    allocation, changes = reallocate(
        allocation, 8, Settled("b", requested=5, applied=3), shifted, 3
    )
    assert changes == (QuotaChange("a", 8, 3, 4),)
    assert quotas(allocation) == {"a": 8, "b": 0}
    assert sum(q.out for q in allocation.channels) == 8


def test_a_settlement_after_the_sales_it_raced_with_ends_the_same() -> None:
    start = replace(held(Allocation(), b=5), channels=(ChannelQuota("b", out=5, reclaiming=5),))
    rules = policy(PolicyKind.STATIC, ChannelRule("b"), refresh_ms=10**9)
    started = replace(start, refreshed_ms=0)

    first, _ = reallocate(started, 3, Settled("b", 5, 3), rules, 1)
    first, _ = reallocate(first, 3, Sold("b", 2), rules, 2)
    second, _ = reallocate(started, 3, Sold("b", 2), rules, 1)
    second, _ = reallocate(second, 3, Settled("b", 5, 3), rules, 2)

    for after in (first, second):
        b = after.channel("b")
        assert b is not None
        assert (b.out, b.reclaiming) == (0, 0)


# --- read-backs: a platform showing more than it holds ------------------------------------


def drifted() -> tuple[Allocation, AllocationPolicy]:
    """Channel b holds 3 of 10 units (static split, never refreshed during the test)."""
    rules = policy(PolicyKind.STATIC, ChannelRule("b", ratio=0.3), refresh_ms=10**9)
    return replace(held(Allocation(), b=3), refreshed_ms=0), rules


def test_an_excess_seen_twice_is_counted_as_the_channels_and_reclaimed() -> None:
    allocation, rules = drifted()

    first, changes = reallocate(allocation, 10, Observed("b", 5), rules, 1_000)
    assert changes == ()  # a cancellation restored on the platform is heard before long
    second, changes = reallocate(first, 10, Observed("b", 6), rules, 1_000 + 5_000)

    assert changes == (QuotaChange("b", 3, -2, 11),)  # the smaller excess of the two
    b = second.channel("b")
    assert b is not None
    # The 2 units on display are the channel's until the platform says what it removed.
    assert (b.out, b.reclaiming, b.quota) == (5, 2, 3)


def test_an_excess_confirmed_too_soon_waits_for_the_confirmation_delay() -> None:
    allocation, rules = drifted()

    first, _ = reallocate(allocation, 10, Observed("b", 5), rules, 1_000)
    _, changes = reallocate(first, 10, Observed("b", 5), rules, 1_000 + 4_999)

    assert changes == ()


def test_an_excess_that_went_away_is_forgotten() -> None:
    allocation, rules = drifted()

    first, _ = reallocate(allocation, 10, Observed("b", 5), rules, 1_000)
    cleared, _ = reallocate(first, 10, Observed("b", 3), rules, 2_000)
    again, changes = reallocate(cleared, 10, Observed("b", 5), rules, 7_000)

    assert changes == ()  # a fresh suspicion, not the confirmation of the cleared one
    b = again.channel("b")
    assert b is not None
    assert (b.excess_seen, b.excess_seen_ms) == (2, 7_000)


def test_showing_less_than_held_is_never_drift() -> None:
    allocation, rules = drifted()

    first, _ = reallocate(allocation, 10, Observed("b", 0), rules, 1_000)
    _, changes = reallocate(first, 10, Observed("b", 0), rules, 10_000)

    assert changes == ()  # sales not heard yet look exactly like this


def test_when_the_stock_shrinks_the_slowest_channels_give_back_first() -> None:
    allocation = Allocation(
        (
            ChannelQuota("hot", out=6, rate_per_s=50.0, rate_at_ms=0),
            ChannelQuota("slow-1", out=2, rate_per_s=1.0, rate_at_ms=0),
            ChannelQuota("slow-2", out=2, rate_per_s=2.0, rate_at_ms=0),
        ),
        version=1,
        refreshed_ms=0,
    )
    rules = policy(PolicyKind.STATIC, refresh_ms=10**9)

    _, changes = reallocate(allocation, 7, StockMoved(), rules, 1)

    reductions = [(c.channel, c.delta) for c in changes if c.delta < 0]
    assert reductions[:2] == [("slow-1", -2), ("slow-2", -1)]


def test_isolated_channels_give_back_last_when_the_stock_shrinks() -> None:
    allocation = Allocation(
        (ChannelQuota("flash", out=5, isolated=True), ChannelQuota("room", out=5)),
        version=1,
        refreshed_ms=0,
    )
    rules = policy(PolicyKind.STATIC, ChannelRule("flash"), ChannelRule("room"))

    _, changes = reallocate(allocation, 3, StockMoved(), rules, 1)

    assert [(c.channel, c.delta) for c in changes] == [("room", -5), ("flash", -2)]


# --- sales and cancellations ------------------------------------------------------------


def test_a_sale_takes_units_off_the_channel_and_raises_its_rate() -> None:
    allocation = held(Allocation(), hot=5)
    rules = policy(PolicyKind.STATIC, ChannelRule("hot"))
    allocation = replace(allocation, refreshed_ms=0)

    after, _ = reallocate(allocation, 3, Sold("hot", 2), rules, 10)

    hot = after.channel("hot")
    assert hot is not None
    assert hot.out == 3
    assert hot.rate_per_s > 0


def test_a_sale_beyond_the_quota_leaves_the_channel_at_zero_not_below() -> None:
    rules = replace(policy(PolicyKind.STATIC, ChannelRule("hot")), refresh_ms=10**9)
    allocation = replace(held(Allocation(), hot=1), refreshed_ms=0)

    after, _ = reallocate(allocation, 0, Sold("hot", 3), rules, 10)

    assert after.channel("hot") is not None
    assert after.channel("hot").out == 0


def test_a_cancellation_gives_the_units_back_to_the_channel_that_sold_them() -> None:
    rules = replace(policy(PolicyKind.STATIC, ChannelRule("hot")), refresh_ms=10**9)
    allocation = replace(held(Allocation(), hot=1), refreshed_ms=0)

    after, changes = reallocate(allocation, 3, Released("hot", 2), rules, 10)

    assert quotas(after) == {"hot": 3}
    assert changes == ()


def test_a_channel_nobody_configured_moves_nothing() -> None:
    allocation = held(Allocation(), hot=2)
    rules = replace(policy(PolicyKind.STATIC, ChannelRule("hot")), refresh_ms=10**9)
    allocation = replace(allocation, refreshed_ms=0)

    for cause in (Sold("web", 1), Released("web", 1), Isolated("web", 3), IsolationEnded("web")):
        after, changes = reallocate(allocation, 5, cause, rules, 1)
        assert (after.channels, changes) == (allocation.channels, ())


# --- the policies ---------------------------------------------------------------------


def test_static_sets_the_split_once_and_again_only_after_refresh() -> None:
    rules = policy(PolicyKind.STATIC, refresh_ms=60_000)
    allocation, changes = reallocate(Allocation(), 90, StockMoved(), rules, 0)
    assert quotas(allocation) == {"hot": 30, "slow-1": 30, "slow-2": 30}
    assert len(changes) == 3

    allocation, changes = reallocate(allocation, 60, Sold("hot", 30), rules, 59_999)
    assert changes == ()  # the hot room shows 0 while 60 units sit elsewhere

    allocation, changes = reallocate(allocation, 60, StockMoved(), rules, 60_000)
    assert sorted((c.channel, c.delta) for c in changes) == [("slow-1", -10), ("slow-2", -10)]
    for room in ("slow-1", "slow-2"):  # settled: the hot room waits for the next refresh
        allocation, changes = reallocate(allocation, 60, Settled(room, 10, 10), rules, 60_001)
        assert changes == ()
    allocation, changes = reallocate(allocation, 60, StockMoved(), rules, 120_000)
    assert quotas(allocation) == {"hot": 20, "slow-1": 20, "slow-2": 20}


def test_fixed_ratio_applies_plus_and_ceiling() -> None:
    rules = policy(
        PolicyKind.FIXED_RATIO,
        ChannelRule("a", ratio=0.5, plus=2),
        ChannelRule("b", ratio=0.5, ceiling=10),
    )

    allocation, _ = reallocate(Allocation(), 40, StockMoved(), rules, 0)

    assert quotas(allocation) == {"a": 22, "b": 10}


def test_fixed_ratio_delists_below_the_floor_and_relists_above_it() -> None:
    rules = policy(
        PolicyKind.FIXED_RATIO, ChannelRule("a", ratio=0.5), ChannelRule("b", ratio=0.5, floor=5)
    )
    allocation, _ = reallocate(Allocation(), 20, StockMoved(), rules, 0)
    assert quotas(allocation) == {"a": 10, "b": 10}

    allocation, changes = reallocate(allocation, 8, StockMoved(), rules, 1)  # b: 4 < floor
    assert ("b", -10) in [(c.channel, c.delta) for c in changes]
    allocation, _ = reallocate(allocation, 8, Settled("b", 10, 10), rules, 2)
    allocation, _ = reallocate(allocation, 8, Settled("a", 6, 6), rules, 2)
    assert quotas(allocation) == {"a": 4, "b": 0}

    allocation, _ = reallocate(allocation, 30, StockMoved(), rules, 3)  # b: 15 >= floor
    assert quotas(allocation)["b"] == 15


def test_shared_pool_tops_up_a_lease_at_half_and_not_before() -> None:
    rules = policy(PolicyKind.SHARED_POOL, lease_units=10)
    allocation, _ = reallocate(Allocation(), 100, StockMoved(), rules, 0)
    assert quotas(allocation) == {"hot": 10, "slow-1": 10, "slow-2": 10}

    allocation, changes = reallocate(allocation, 96, Sold("hot", 4), rules, 1)
    assert changes == ()  # 6 left: above half a lease
    allocation, changes = reallocate(allocation, 95, Sold("hot", 1), rules, 2)
    assert [(c.channel, c.delta) for c in changes] == [("hot", 5)]


def test_shared_pool_shrinks_other_leases_to_one_unit_when_dry() -> None:
    rules = policy(PolicyKind.SHARED_POOL, lease_units=10)
    allocation = held(Allocation(), hot=0, **{"slow-1": 10, "slow-2": 10})

    _, changes = reallocate(allocation, 20, Sold("hot", 5), rules, 1)

    assert sorted((c.channel, c.delta) for c in changes) == [("slow-1", -9), ("slow-2", -9)]


def test_adaptive_sizes_a_quota_by_rate_latency_and_cover() -> None:
    rules = policy(
        PolicyKind.ADAPTIVE, ChannelRule("hot", latency_ms=200), cover=2.0, rate_half_life_ms=1000
    )
    allocation = Allocation((ChannelQuota("hot", out=0, rate_per_s=100.0, rate_at_ms=0),), 1)

    after, changes = reallocate(allocation, 1000, StockMoved(), rules, 0)

    assert changes == (QuotaChange("hot", 40, 40, 2),)  # 100/s x 0.2 s x 2
    assert quotas(after) == {"hot": 40}


def test_adaptive_keeps_every_channel_listed_while_the_pool_has_units() -> None:
    allocation, _ = reallocate(Allocation(), 50, StockMoved(), policy(PolicyKind.ADAPTIVE), 0)

    assert quotas(allocation) == {"hot": 2, "slow-1": 2, "slow-2": 2}


def test_adaptive_claws_back_slow_channels_when_the_pool_runs_dry() -> None:
    allocation = Allocation(
        (
            ChannelQuota("hot", out=0, rate_per_s=500.0, rate_at_ms=0),
            ChannelQuota("slow-1", out=1, rate_per_s=2.0, rate_at_ms=0),
            ChannelQuota("slow-2", out=1, rate_per_s=2.0, rate_at_ms=0),
        ),
        version=1,
    )

    _, changes = reallocate(allocation, 3, StockMoved(), policy(PolicyKind.ADAPTIVE), 0)

    assert sorted((c.channel, c.delta) for c in changes) == [
        ("hot", 1),
        ("slow-1", -1),
        ("slow-2", -1),
    ]


def test_adaptive_grants_the_fastest_channel_first_when_units_are_short() -> None:
    allocation = Allocation(
        (
            ChannelQuota("hot", out=0, rate_per_s=100.0, rate_at_ms=0),
            ChannelQuota("slow-1", out=0, rate_per_s=50.0, rate_at_ms=0),
        ),
        version=1,
    )
    rules = policy(PolicyKind.ADAPTIVE, ChannelRule("hot"), ChannelRule("slow-1"))

    _, changes = reallocate(allocation, 20, StockMoved(), rules, 0)

    assert [(c.channel, c.delta) for c in changes] == [("hot", 20)]


def test_session_aware_positions_a_pinned_room_before_its_burst() -> None:
    rules = policy(PolicyKind.SESSION_AWARE, ChannelRule("hot", latency_ms=100), cover=2.0)
    allocation, _ = reallocate(Allocation(), 1000, StockMoved(), rules, 0)
    assert quotas(allocation) == {"hot": 2}

    pinned, changes = reallocate(allocation, 1000, Pinned("hot", 60_000, 300.0), rules, 10)
    assert [(c.channel, c.delta) for c in changes] == [("hot", 58)]  # 300/s x 0.1 s x 2

    # Adaptive alone ignores the pin until sales arrive.
    plain = replace(rules, kind=PolicyKind.ADAPTIVE)
    _, changes = reallocate(allocation, 1000, Pinned("hot", 60_000, 300.0), plain, 10)
    assert changes == ()
    # And the pin wears off when it ends.
    _, changes = reallocate(pinned, 1000, StockMoved(), rules, 60_001)
    assert changes == ()


def test_isolation_carves_an_exact_count_that_no_policy_moves() -> None:
    rules = policy(PolicyKind.ADAPTIVE, ChannelRule("flash"), ChannelRule("room"))
    allocation, _ = reallocate(Allocation(), 100, StockMoved(), rules, 0)

    allocation, changes = reallocate(allocation, 100, Isolated("flash", 30), rules, 1)
    assert [(c.channel, c.delta) for c in changes] == [("flash", 28)]
    assert quotas(allocation)["flash"] == 30

    allocation, changes = reallocate(allocation, 90, Sold("flash", 10), rules, 2)
    assert all(c.channel != "flash" for c in changes)  # never topped up
    assert quotas(allocation)["flash"] == 20


def test_ending_an_isolation_reclaims_its_unsold_units() -> None:
    rules = policy(PolicyKind.ADAPTIVE, ChannelRule("flash"), ChannelRule("room"))
    allocation, _ = reallocate(Allocation(), 100, StockMoved(), rules, 0)
    allocation, _ = reallocate(allocation, 100, Isolated("flash", 30), rules, 1)

    allocation, changes = reallocate(allocation, 100, IsolationEnded("flash"), rules, 2)

    assert [(c.channel, c.delta) for c in changes] == [("flash", -28)]  # back to the floor
    flash = allocation.channel("flash")
    assert flash is not None
    assert not flash.isolated
    assert flash.reclaiming == 28


def test_an_isolation_larger_than_the_pool_takes_what_is_free() -> None:
    rules = policy(PolicyKind.ADAPTIVE, ChannelRule("flash"), ChannelRule("room"))
    allocation, _ = reallocate(Allocation(), 10, StockMoved(), rules, 0)

    allocation, _ = reallocate(allocation, 10, Isolated("flash", 50), rules, 1)

    assert quotas(allocation) == {"flash": 8, "room": 2}


def test_adaptive_doubles_a_starving_channels_buffer() -> None:
    """A channel that eats a top-up before it could have landed sells only what we
    grant, so its measured rate understates its demand: its buffer doubles."""
    rules = policy(PolicyKind.ADAPTIVE, ChannelRule("hot", latency_ms=100), cover=1.0, min_buffer=4)
    allocation, _ = reallocate(Allocation(), 1000, StockMoved(), rules, 0)
    assert quotas(allocation) == {"hot": 4}

    slow, changes = reallocate(allocation, 997, Sold("hot", 3), rules, 500)
    assert [c.delta for c in changes] == [3]  # refilled to the floor: not starving

    fast, changes = reallocate(slow, 994, Sold("hot", 3), rules, 550)
    assert [c.delta for c in changes] == [7]  # 50 ms after the last top-up: 2 x 4
    hot = fast.channel("hot")
    assert hot is not None
    assert hot.drained(550, rules.rate_half_life_ms) == 8.0
    assert hot.drained(550 + rules.rate_half_life_ms, rules.rate_half_life_ms) == 4.0
