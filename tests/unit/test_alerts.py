"""Three-level stock alerts of a session SKU: each fires once per downward crossing,
re-arms only past its threshold plus the hysteresis, and sold out stops every room in
the very decision that sells the last unit."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from sync_worker.domain import alerts
from sync_worker.domain.alerts import AlertThresholds, assess
from sync_worker.domain.allocation import (
    Allocation,
    AllocationPolicy,
    ChannelQuota,
    ChannelRule,
    PolicyKind,
    Sold,
    reallocate,
)
from sync_worker.domain.decide import Decided, Policies, decide
from sync_worker.domain.events import (
    AlertLevel,
    AlertRaised,
    OrderLinePlaced,
    Outcome,
    RejectReason,
)
from sync_worker.streaming.state import record_key
from tests.unit.conftest import Books

if TYPE_CHECKING:
    from tests.unit.conftest import EventFactory

LOW, CRITICAL, SOLD_OUT = AlertLevel.LOW, AlertLevel.CRITICAL, AlertLevel.SOLD_OUT
DEFAULT = AlertThresholds()  # 20%, 10%, re-armed 5 points above
ROOM, OTHER_ROOM, SHOP = "tiktok-room-1", "douyin-room-1", "shopify-store"
PLATFORM = {ROOM: "tiktok", OTHER_ROOM: "douyin", SHOP: "shopify"}


def fall(fired: int, remaining: int, baseline: int = 100) -> tuple[int, tuple[AlertLevel, ...]]:
    return assess(fired, remaining, baseline, DEFAULT)


# --- crossing downwards -----------------------------------------------------------------


def test_each_level_fires_when_stock_falls_to_its_threshold_not_before() -> None:
    assert fall(0, 21) == (0, ())
    assert fall(0, 20) == (1, (LOW,))
    assert fall(1, 11) == (1, ())
    assert fall(1, 10) == (2, (CRITICAL,))
    assert fall(2, 1) == (2, ())
    assert fall(2, 0) == (3, (SOLD_OUT,))


def test_thresholds_are_percentages_of_the_baseline() -> None:
    assert fall(0, 3, baseline=15) == (1, (LOW,))  # 20% of 15 is 3
    assert fall(0, 4, baseline=15) == (0, ())
    assert fall(1, 1, baseline=15) == (2, (CRITICAL,))  # 10% of 15 is 1.5
    assert fall(1, 2, baseline=15) == (1, ())


def test_a_fall_past_several_thresholds_fires_them_all_in_order() -> None:
    assert fall(0, 10) == (2, (LOW, CRITICAL))
    assert fall(0, 0) == (3, (LOW, CRITICAL, SOLD_OUT))
    assert fall(1, 0) == (3, (CRITICAL, SOLD_OUT))


def test_a_level_that_fired_does_not_fire_again_while_stock_stays_below() -> None:
    fired, _ = fall(0, 20)

    for remaining in (20, 19, 15, 12, 24, 25, 18):
        fired, firing = fall(fired, remaining)
        assert firing == ()
    assert fired == 1


# --- hysteresis -------------------------------------------------------------------------


def test_a_rise_short_of_threshold_plus_rearm_does_not_re_arm() -> None:
    fired, _ = fall(0, 20)

    fired, _ = fall(fired, 25)  # 20 + 5 points: still not past it
    assert fired == 1
    assert fall(fired, 20) == (1, ())


def test_a_restock_past_threshold_plus_rearm_re_arms_and_the_next_crossing_fires() -> None:
    fired, _ = fall(0, 20)

    fired, firing = fall(fired, 26)
    assert (fired, firing) == (0, ())
    assert fall(fired, 21) == (0, ())
    assert fall(fired, 20) == (1, (LOW,))


def test_a_restock_re_arms_only_the_levels_it_rises_past() -> None:
    fired, _ = fall(0, 0)

    fired, _ = fall(fired, 16)  # past sold out (5) and critical (15), not low (25)
    assert fired == 1
    assert fall(fired, 10) == (2, (CRITICAL,))


def test_sold_out_re_arms_above_the_rearm_points_only() -> None:
    fired, _ = fall(0, 0)

    assert fall(fired, 5) == (3, ())  # 5% of 100: not past it
    fired, _ = fall(fired, 6)
    assert fired == 2
    assert fall(fired, 0) == (3, (SOLD_OUT,))


def test_without_hysteresis_any_unit_back_re_arms_sold_out() -> None:
    thresholds = AlertThresholds(rearm_points=0)
    fired, _ = assess(0, 0, 10, thresholds)

    fired, _ = assess(fired, 1, 10, thresholds)
    assert assess(fired, 0, 10, thresholds) == (3, (SOLD_OUT,))


def test_nothing_fires_against_a_baseline_of_zero() -> None:
    assert fall(0, 0, baseline=0) == (0, ())
    assert fall(2, 50, baseline=0) == (2, ())


def test_each_level_names_its_audience_and_threshold() -> None:
    assert alerts.AUDIENCE == {LOW: ("ops",), CRITICAL: ("host", "ops"), SOLD_OUT: ("host", "ops")}
    assert [DEFAULT.threshold(level) for level in alerts.LEVELS] == [20, 10, 0]


# --- through decide() -------------------------------------------------------------------


def adaptive_policy(*channels: str) -> AllocationPolicy:
    names = channels or (ROOM, OTHER_ROOM, SHOP)
    return AllocationPolicy(kind=PolicyKind.ADAPTIVE, channels=tuple(ChannelRule(c) for c in names))


def adaptive(*channels: str) -> Policies:
    return Policies(allocation=adaptive_policy(*channels))


class Orders:
    """Placements with a fresh line each."""

    def __init__(self, events: EventFactory) -> None:
        self.events = events
        self.lines = 0

    def __call__(
        self, quantity: int = 1, *, channel: str = ROOM, buyer_id: str = "b-1"
    ) -> OrderLinePlaced:
        self.lines += 1
        return self.events.placed(
            quantity=quantity,
            line_id=f"l-{self.lines}",
            channel=channel,
            platform=PLATFORM[channel],
            buyer_id=buyer_id,
        )


@pytest.fixture
def order(events: EventFactory) -> Orders:
    return Orders(events)


def levels(decided: Decided) -> list[AlertLevel]:
    return [alert.level for alert in decided.alerts]


def accepted(decided: Decided) -> bool:
    return decided.step.decision is not None and decided.step.decision.outcome is Outcome.ACCEPTED


def session_of_ten(events: EventFactory, policies: Policies | None = None) -> Books:
    """10 units received, then session s-1 opened on ROOM and OTHER_ROOM, no cap."""
    books = Books(policies or Policies())
    books.feed(events.received(10))
    books.feed(events.session_opened(channels=(ROOM, OTHER_ROOM)))
    return books


def test_an_alert_carries_who_must_act_what_is_left_and_what_to_do(
    events: EventFactory, order: Orders
) -> None:
    books = session_of_ten(events)
    books.feed(order(7))
    placement = order(1)

    decided = books.feed(placement)

    assert decided.alerts == (
        AlertRaised(
            alert_id=f"s-1:lipstick:low:{books.seq}",
            sku="lipstick",
            session_id="s-1",
            level=LOW,
            audience=("ops",),
            remaining=2,
            baseline=10,
            percent_left=20,
            threshold_percent=20,
            channels=(ROOM, OTHER_ROOM),
            suggestion=alerts.SUGGESTION[LOW],
            cause_event_id=placement.event_id,
            event_time_ms=placement.event_time_ms,
        ),
    )


def test_critical_and_sold_out_call_the_host_too(events: EventFactory, order: Orders) -> None:
    books = session_of_ten(events)
    books.feed(order(8))

    critical = books.feed(order(1))
    sold_out = books.feed(order(1))

    assert [(a.level, a.audience, a.threshold_percent) for a in critical.alerts] == [
        (CRITICAL, ("host", "ops"), 10)
    ]
    assert [(a.level, a.audience, a.threshold_percent) for a in sold_out.alerts] == [
        (SOLD_OUT, ("host", "ops"), 0)
    ]
    assert (sold_out.alerts[0].remaining, sold_out.alerts[0].percent_left) == (0, 0)
    assert sold_out.alerts[0].suggestion == alerts.SUGGESTION[SOLD_OUT]


def test_one_order_that_jumps_every_threshold_fires_all_three_in_order_with_distinct_ids(
    events: EventFactory, order: Orders
) -> None:
    books = session_of_ten(events)

    decided = books.feed(order(10))

    assert levels(decided) == [LOW, CRITICAL, SOLD_OUT]
    assert len({alert.alert_id for alert in decided.alerts}) == 3


def test_each_crossing_fires_once_however_many_orders_follow(
    events: EventFactory, order: Orders
) -> None:
    books = session_of_ten(events)

    fired = [levels(books.feed(order(1))) for _ in range(10)]

    assert fired == [[], [], [], [], [], [], [], [LOW], [CRITICAL], [SOLD_OUT]]
    assert levels(books.feed(order(1))) == []  # refused: nothing left, nothing new


def test_units_trickling_back_around_a_threshold_do_not_re_fire_it(
    events: EventFactory, order: Orders
) -> None:
    books = Books()
    books.feed(events.received(100))
    books.feed(events.session_opened())
    books.feed(order(76))
    low = order(4)
    assert levels(books.feed(low)) == [LOW]

    books.feed(events.cancelled(line_id=low.line_id))  # 24 left: short of 20 + 5
    again = books.feed(order(4))

    assert levels(again) == []
    assert books.session().alerts_fired == 1


def test_a_restock_re_arms_and_the_next_crossing_fires_again(
    events: EventFactory, order: Orders
) -> None:
    books = session_of_ten(events)
    books.feed(order(8))  # low
    books.feed(events.received(1))  # 3 left, 30%: past 20 + 5

    assert levels(books.feed(order(1))) == [LOW]
    ids = {alert.alert_id for alert in books.feed(order(2)).alerts}
    assert len(ids) == 2  # critical and sold out, each its own crossing


def test_a_session_opened_before_any_stock_measures_from_the_first_stock(
    events: EventFactory, order: Orders
) -> None:
    books = Books()
    books.feed(events.session_opened())
    assert books.session().baseline == 0

    books.feed(events.received(50))
    assert books.session().baseline == 50
    assert levels(books.feed(order(39))) == []
    decided = books.feed(order(1))

    assert levels(decided) == [LOW]
    assert (decided.alerts[0].remaining, decided.alerts[0].baseline) == (10, 50)


def test_a_capped_session_measures_against_its_cap(events: EventFactory, order: Orders) -> None:
    books = Books()
    books.feed(events.received(100))
    books.feed(events.session_opened(cap=5))

    assert levels(books.feed(order(4))) == [LOW]  # 1 of 5 left: 20%
    decided = books.feed(order(1))

    assert levels(decided) == [CRITICAL, SOLD_OUT]
    assert decided.alerts[-1].remaining == 0
    assert books.position.sellable == 95


def test_sales_outside_the_sessions_rooms_still_move_its_stock(
    events: EventFactory, order: Orders
) -> None:
    books = session_of_ten(events)

    assert levels(books.feed(order(8, channel=SHOP))) == [LOW]


def test_no_session_no_alerts(events: EventFactory, order: Orders) -> None:
    books = Books()
    books.feed(events.received(10))

    assert books.feed(order(10)).alerts == ()


def test_a_closed_session_raises_nothing_more(events: EventFactory, order: Orders) -> None:
    books = session_of_ten(events)
    books.feed(events.session_closed())

    assert books.feed(order(10)).alerts == ()


# --- replays ----------------------------------------------------------------------------


def test_the_event_that_fired_an_alert_says_it_again_when_replayed(
    events: EventFactory, order: Orders
) -> None:
    books = session_of_ten(events)
    placement = order(9)
    first = books.feed(placement)
    assert levels(first) == [LOW, CRITICAL]

    again = decide(
        books.seq, books.position, books.records[record_key(placement)], placement, Policies()
    )

    assert again.replayed
    assert again.alerts == first.alerts


def test_a_crash_before_the_position_was_written_recomputes_the_same_alerts(
    events: EventFactory, order: Orders
) -> None:
    books = session_of_ten(events)
    placement = order(9)
    before = books.position
    first = books.feed(placement)
    record = books.records[record_key(placement)]  # written; the position was not

    again = decide(books.seq, before, record, placement, Policies())

    assert not again.replayed
    assert again.alerts == first.alerts
    assert again.step.position == books.position


def test_a_replay_of_an_older_event_raises_nothing(events: EventFactory, order: Orders) -> None:
    books = session_of_ten(events)
    placement = order(9)
    books.feed(placement)
    fired_at = books.seq
    books.feed(order(1, channel=SHOP))  # sold out, a later event

    again = decide(
        fired_at, books.position, books.records[record_key(placement)], placement, Policies()
    )

    assert again.replayed
    assert again.alerts == ()


# --- sold out stops every room in the same decision -------------------------------------


def test_the_sale_of_the_last_unit_zeroes_every_channels_quota_in_that_decision(
    events: EventFactory, order: Orders
) -> None:
    books = session_of_ten(events, adaptive(ROOM, OTHER_ROOM, SHOP))
    assert all(quota > 0 for quota in books.quotas().values())
    assert len(books.quotas()) == 3

    last = books.feed(order(10, channel=ROOM))

    assert accepted(last)
    assert SOLD_OUT in levels(last)
    assert books.quotas() == {ROOM: 0, OTHER_ROOM: 0, SHOP: 0}
    reclaimed = {change.channel for change in last.quota_changes if change.delta < 0}
    assert reclaimed == {OTHER_ROOM, SHOP}  # the selling room's own units left with the sale
    assert all(change.quota == 0 for change in last.quota_changes)


def test_a_reached_cap_zeroes_the_sessions_rooms_in_that_decision_and_only_them(
    events: EventFactory, order: Orders
) -> None:
    books = Books(adaptive(ROOM, OTHER_ROOM, SHOP))
    books.feed(events.received(100))
    books.feed(events.session_opened(channels=(ROOM, OTHER_ROOM), cap=3))
    assert books.quota(ROOM) + books.quota(OTHER_ROOM) <= 3

    last = books.feed(order(3, channel=ROOM))

    assert accepted(last)
    assert levels(last) == [LOW, CRITICAL, SOLD_OUT]
    assert (books.quota(ROOM), books.quota(OTHER_ROOM)) == (0, 0)
    assert books.quota(SHOP) > 0
    assert books.position.sellable == 97
    refused = books.feed(order(1, channel=OTHER_ROOM))
    assert refused.step.decision is not None
    assert refused.step.decision.reason is RejectReason.SESSION_CAP_REACHED


def test_sold_out_zeroes_every_channel_even_when_a_reclaim_in_flight_was_outsold() -> None:
    """OTHER_ROOM was asked for 2 units back but sold them before the write landed: that
    reclaim takes nothing more off display, so ROOM must still give back its last unit."""
    in_flight = Allocation(
        (
            ChannelQuota(ROOM, out=1),
            ChannelQuota(OTHER_ROOM, out=0, reclaiming=2),
            ChannelQuota(SHOP, out=2, reclaiming=2),
        ),
        version=7,
    )

    after, changes = reallocate(in_flight, 0, Sold(OTHER_ROOM, 0), adaptive_policy(), 1_000)

    assert [(c.channel, c.delta) for c in changes] == [(ROOM, -1)]
    assert all(quota.quota == 0 for quota in after.channels)
