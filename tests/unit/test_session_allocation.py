"""The allocator under live sessions: cap groups, delisted rooms, quota moves, pins
taken off, and the flash-sale carve that returns its unsold units when the session closes.
Plain ``reallocate`` calls for the rules, ``decide()`` for the events that drive them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pytest

from sync_worker.domain.allocation import (
    Allocation,
    AllocationPolicy,
    CapGroup,
    ChannelQuota,
    ChannelRule,
    Listing,
    Moved,
    Pinned,
    PolicyKind,
    QuotaChange,
    SessionClosed,
    SessionOpened,
    Settled,
    Sold,
    StockMoved,
    Unpinned,
    reallocate,
)
from sync_worker.domain.decide import Decided, Policies
from sync_worker.domain.events import OrderLinePlaced, StockQuotaChanged, Tier
from tests.unit.conftest import Books

if TYPE_CHECKING:
    from tests.unit.conftest import EventFactory

ROOM, OTHER_ROOM, SHOP = "tiktok-room-1", "douyin-room-1", "shopify-store"
UNCONFIGURED_ROOM = "tiktok-room-2"
"""A session room the allocator has no rule for: its sales come out of the pool."""
PLATFORM = {ROOM: "tiktok", OTHER_ROOM: "douyin", SHOP: "shopify", UNCONFIGURED_ROOM: "tiktok"}
ROOMS = frozenset({ROOM, OTHER_ROOM})


def policy(kind: PolicyKind = PolicyKind.ADAPTIVE, *channels: str) -> AllocationPolicy:
    names = channels or (ROOM, OTHER_ROOM, SHOP)
    return AllocationPolicy(kind=kind, channels=tuple(ChannelRule(c) for c in names))


def quotas(allocation: Allocation) -> dict[str, int]:
    return {quota.channel: quota.quota for quota in allocation.channels}


def shown(allocation: Allocation, rooms: frozenset[str] = ROOMS) -> int:
    return sum(quota.quota for quota in allocation.channels if quota.channel in rooms)


def held(**out: int) -> Allocation:
    """Each named channel holds ``out`` units, nothing in flight."""
    return Allocation(tuple(ChannelQuota(c, out=units) for c, units in sorted(out.items())), 10)


def deltas(changes: Iterable[QuotaChange | StockQuotaChanged]) -> list[tuple[str, int]]:
    return [(change.channel, change.delta) for change in changes]


def quota_of(allocation: Allocation, name: str) -> ChannelQuota:
    quota = allocation.channel(name)
    assert quota is not None
    return quota


# --- cap groups -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(PolicyKind))
def test_a_cap_group_is_never_granted_more_than_it_has_left(kind: PolicyKind) -> None:
    caps = (CapGroup(ROOMS, 3),)

    allocation, changes = reallocate(Allocation(), 100, StockMoved(), policy(kind), 0, caps)

    assert shown(allocation) <= 3
    assert quotas(allocation)[SHOP] > 0  # outside the group: the policy's own share
    assert all(change.delta > 0 for change in changes)


def test_a_cap_group_with_nothing_left_shows_nothing() -> None:
    allocation, _ = reallocate(Allocation(), 100, StockMoved(), policy(), 0, (CapGroup(ROOMS, 0),))

    assert (quotas(allocation)[ROOM], quotas(allocation)[OTHER_ROOM]) == (0, 0)


def test_a_cap_lowered_below_what_its_rooms_show_is_reclaimed_at_once() -> None:
    before = held(**{ROOM: 2, OTHER_ROOM: 2, SHOP: 2})

    after, changes = reallocate(before, 100, StockMoved(), policy(), 0, (CapGroup(ROOMS, 1),))

    assert shown(after) == 1
    assert sum(change.delta for change in changes if change.channel in ROOMS) == -3
    assert all(change.delta < 0 for change in changes if change.channel in ROOMS)


def test_the_slowest_room_of_a_group_gives_back_first() -> None:
    sold, _ = reallocate(held(**{ROOM: 5, OTHER_ROOM: 5}), 100, Sold(ROOM, 3), policy(), 1_000)
    assert quotas(sold) == {ROOM: 2, OTHER_ROOM: 5, SHOP: 2}

    capped, changes = reallocate(sold, 97, StockMoved(), policy(), 1_000, (CapGroup(ROOMS, 4),))

    assert deltas(changes) == [(OTHER_ROOM, -3)]  # the room that sells keeps its units
    assert shown(capped) == 4


def session_books(events: EventFactory, *, cap: int, stock: int = 100) -> Books:
    """Adaptive quotas for ROOM, OTHER_ROOM and SHOP; session s-1 on ROOM, OTHER_ROOM and
    a room without a rule, capped."""
    books = Books(Policies(allocation=policy()))
    books.feed(events.received(stock))
    books.feed(events.session_opened(channels=(ROOM, OTHER_ROOM, UNCONFIGURED_ROOM), cap=cap))
    return books


def sale(events: EventFactory, number: int, quantity: int, channel: str) -> OrderLinePlaced:
    return events.placed(
        quantity=quantity, line_id=f"l-{number}", channel=channel, platform=PLATFORM[channel]
    )


def test_the_sessions_rooms_never_show_more_than_its_cap_less_what_it_sold(
    events: EventFactory,
) -> None:
    books = session_books(events, cap=7)
    assert shown(books.position.allocation) <= 7

    for number in range(8):
        channel = (ROOM, OTHER_ROOM, UNCONFIGURED_ROOM, SHOP)[number % 4]
        books.feed(sale(events, number, 1, channel))
        assert shown(books.position.allocation) <= 7 - books.session().sold
    assert books.session().sold == 6


def test_a_sale_in_a_room_without_quota_reclaims_the_caps_excess_in_that_decision(
    events: EventFactory,
) -> None:
    books = session_books(events, cap=5)
    assert (books.quota(ROOM), books.quota(OTHER_ROOM)) == (2, 2)

    decided = books.feed(sale(events, 1, 3, UNCONFIGURED_ROOM))

    assert shown(books.position.allocation) == 2
    assert sum(c.delta for c in decided.quota_changes if c.channel in ROOMS) == -2


def test_a_cancellation_lets_the_capped_rooms_show_units_again(events: EventFactory) -> None:
    books = session_books(events, cap=4)
    first = sale(events, 1, 4, UNCONFIGURED_ROOM)
    books.feed(first)
    assert shown(books.position.allocation) == 0

    books.feed(events.cancelled(line_id=first.line_id, channel=UNCONFIGURED_ROOM))
    books.feed(events.received(1))  # any later reallocation may grant into the cap again

    assert 0 < shown(books.position.allocation) <= 4


def test_a_closed_session_lifts_its_cap(events: EventFactory) -> None:
    books = session_books(events, cap=0)
    assert shown(books.position.allocation) == 0

    books.feed(events.session_closed())

    assert (books.quota(ROOM), books.quota(OTHER_ROOM)) == (2, 2)


# --- delisting --------------------------------------------------------------------------


def test_a_delisted_channel_gives_back_everything_and_gets_nothing_until_relisted(
    events: EventFactory,
) -> None:
    books = Books(Policies(allocation=policy()))
    books.feed(events.received(100))
    assert books.quota(ROOM) == 2

    delisted = books.feed(events.listing_changed(listed=False, channel=ROOM))

    assert deltas(delisted.quota_changes) == [(ROOM, -2)]
    settled = books.feed(events.settled(version=4, requested=2, applied=2, channel=ROOM))
    assert settled.quota_changes == ()  # hungry, but delisted
    books.feed(events.received(50))
    assert books.quota(ROOM) == 0
    assert (books.quota(OTHER_ROOM), books.quota(SHOP)) == (2, 2)

    relisted = books.feed(events.listing_changed(listed=True, channel=ROOM))

    assert deltas(relisted.quota_changes) == [(ROOM, 2)]


def test_a_delisted_room_is_carved_nothing_by_a_flash_sale() -> None:
    delisted, _ = reallocate(
        held(**{ROOM: 2, OTHER_ROOM: 2}), 100, Listing(ROOM, False), policy(), 0
    )

    carved, changes = reallocate(
        delisted, 100, SessionOpened(((ROOM, 5), (OTHER_ROOM, 5))), policy(), 1
    )

    assert [c for c in changes if c.channel == ROOM and c.delta > 0] == []
    assert quotas(carved)[ROOM] == 0
    assert quotas(carved)[OTHER_ROOM] == 5


def test_a_delisted_channel_is_granted_no_moved_units() -> None:
    delisted, _ = reallocate(held(**{ROOM: 2, OTHER_ROOM: 2}), 4, Listing(ROOM, False), policy(), 0)
    moved, _ = reallocate(delisted, 4, Moved(OTHER_ROOM, ROOM, 2), policy(), 1)

    settled, changes = reallocate(moved, 4, Settled(OTHER_ROOM, 2, 2), policy(), 2)

    assert all(c.channel != ROOM or c.delta < 0 for c in changes)
    assert quotas(settled)[ROOM] == 0


# --- moving quota between channels ------------------------------------------------------


def static_split(*channels: str) -> AllocationPolicy:
    """Half each, set once (the split is refreshed only every three minutes)."""
    return AllocationPolicy(
        kind=PolicyKind.STATIC, channels=tuple(ChannelRule(c, ratio=0.5) for c in channels)
    )


def test_moved_units_are_reclaimed_from_the_source_and_granted_to_the_target_once_settled(
    events: EventFactory,
) -> None:
    books = Books(Policies(allocation=static_split(ROOM, OTHER_ROOM)))
    books.feed(events.received(20))
    assert books.quotas() == {ROOM: 10, OTHER_ROOM: 10}

    moved = books.feed(events.quota_moved(3, from_channel=ROOM, to_channel=OTHER_ROOM))

    assert deltas(moved.quota_changes) == [(ROOM, -3)]  # nothing free yet for the target
    (reclaim,) = moved.quota_changes
    settled = books.feed(
        events.settled(version=reclaim.version, requested=3, applied=3, channel=ROOM)
    )
    assert deltas(settled.quota_changes) == [(OTHER_ROOM, 3)]
    assert books.quotas() == {ROOM: 7, OTHER_ROOM: 13}


def test_only_the_units_the_platform_gave_back_move_when_it_sold_some_meanwhile() -> None:
    start = held(**{ROOM: 10, OTHER_ROOM: 10})
    rules = static_split(ROOM, OTHER_ROOM)
    moved, _ = reallocate(start, 20, Moved(ROOM, OTHER_ROOM, 3), rules, 0)

    settled, changes = reallocate(moved, 20, Settled(ROOM, 3, 1), rules, 1)

    assert deltas(changes) == [(OTHER_ROOM, 1)]
    assert quotas(settled) == {ROOM: 9, OTHER_ROOM: 11}  # ROOM's 2 sales are still unheard
    assert quota_of(settled, OTHER_ROOM).claim == 2  # owed, granted once free


def test_moved_units_go_to_the_target_before_any_hungry_channel() -> None:
    dry = held(**{ROOM: 2, OTHER_ROOM: 2, SHOP: 0})  # all 4 sellable units are out
    moved, changes = reallocate(dry, 4, Moved(ROOM, SHOP, 2), policy(), 0)
    assert (ROOM, -2) in deltas(changes)
    assert all(change.delta < 0 for change in changes)  # nothing is free to grant yet

    settled, changes = reallocate(moved, 4, Settled(ROOM, 2, 2), policy(), 1)

    # ROOM is hungry again, but the moved units go where they were moved
    assert [(c.channel, c.delta) for c in changes if c.delta > 0] == [(SHOP, 2)]
    assert (quotas(settled)[ROOM], quotas(settled)[SHOP]) == (0, 2)


def test_a_move_takes_no_more_than_the_source_shows() -> None:
    rules = static_split(ROOM, OTHER_ROOM)

    moved, changes = reallocate(
        held(**{ROOM: 2, OTHER_ROOM: 2}), 4, Moved(ROOM, OTHER_ROOM, 9), rules, 0
    )

    assert deltas(changes) == [(ROOM, -2)]
    assert quota_of(moved, OTHER_ROOM).claim == 2


# --- pins -------------------------------------------------------------------------------


def test_an_unpinned_room_is_sized_for_its_measured_sales_again() -> None:
    rules = policy(PolicyKind.SESSION_AWARE)
    pinned, _ = reallocate(Allocation(), 1_000, Pinned(ROOM, 60_000, 50.0), rules, 0)
    assert quotas(pinned)[ROOM] == 25  # 50/s x 100 ms x cover 5

    _, while_pinned = reallocate(pinned, 990, Sold(ROOM, 10), rules, 10_000)
    unpinned, _ = reallocate(pinned, 1_000, Unpinned(ROOM), rules, 5_000)
    _, after_unpin = reallocate(unpinned, 990, Sold(ROOM, 10), rules, 10_000)

    assert quota_of(unpinned, ROOM).pinned_until_ms == 0
    assert deltas(while_pinned) == [(ROOM, 10)]  # topped up for the announced burst
    assert deltas(after_unpin) == []  # 15 left covers what it measurably sells


# --- the flash-sale carve ---------------------------------------------------------------


def flash_sale(events: EventFactory, *, cap: int, stock: int = 100) -> tuple[Books, Decided]:
    books = Books(Policies(allocation=policy()))
    books.feed(events.received(stock))
    opened = books.feed(
        events.session_opened(
            channels=(ROOM, OTHER_ROOM, SHOP), tier=Tier.TRAFFIC, cap=cap, isolate=True
        )
    )
    return books, opened


def test_a_flash_sale_carves_its_cap_across_its_rooms(events: EventFactory) -> None:
    books, opened = flash_sale(events, cap=10)

    assert books.quotas() == {ROOM: 4, OTHER_ROOM: 3, SHOP: 3}
    assert all(quota.isolated for quota in books.position.allocation.channels)
    assert dict(deltas(opened.quota_changes)) == {ROOM: 2, OTHER_ROOM: 1, SHOP: 1}  # from 2 each


def test_a_flash_sale_carves_no_more_than_the_stock(events: EventFactory) -> None:
    books, _ = flash_sale(events, cap=10, stock=6)

    assert sum(books.quotas().values()) == 6


def test_a_flash_sale_opened_short_of_stock_fills_up_when_a_restock_lands(
    events: EventFactory,
) -> None:
    books, _ = flash_sale(events, cap=10, stock=6)
    books.feed(sale(events, 1, 2, ROOM))

    restocked = books.feed(events.received(100))

    # Each room gets what its carve still owes (the sale counts against ROOM's 4).
    assert books.quotas() == {ROOM: 2, OTHER_ROOM: 3, SHOP: 3}
    assert sum(change.delta for change in restocked.quota_changes) > 0
    again = books.feed(events.received(5))
    assert again.quota_changes == ()  # owed nothing more: no policy moves a carved room


def test_a_carved_room_is_not_topped_up_when_it_sells(events: EventFactory) -> None:
    books, _ = flash_sale(events, cap=10)

    decided = books.feed(sale(events, 1, 3, ROOM))

    assert decided.quota_changes == ()
    assert books.quotas() == {ROOM: 1, OTHER_ROOM: 3, SHOP: 3}


def test_the_unsold_units_of_every_carved_room_return_when_the_session_closes(
    events: EventFactory,
) -> None:
    books, _ = flash_sale(events, cap=12)  # 4 per room
    books.feed(sale(events, 1, 1, ROOM))

    closed = books.feed(events.session_closed())

    assert dict(deltas(closed.quota_changes)) == {ROOM: -1, OTHER_ROOM: -2, SHOP: -2}
    assert books.quotas() == {ROOM: 2, OTHER_ROOM: 2, SHOP: 2}  # the policy's buffer each
    assert not any(quota.isolated for quota in books.position.allocation.channels)


def test_closing_a_flash_sale_returns_every_room_not_only_the_last() -> None:
    carved, _ = reallocate(
        Allocation(), 100, SessionOpened(((ROOM, 5), (OTHER_ROOM, 5))), policy(), 0
    )

    closed, changes = reallocate(carved, 100, SessionClosed((ROOM, OTHER_ROOM)), policy(), 1)

    assert sorted(deltas(changes)) == [(OTHER_ROOM, -3), (ROOM, -3)]
    assert (quotas(closed)[ROOM], quotas(closed)[OTHER_ROOM]) == (2, 2)


def test_a_session_that_does_not_isolate_carves_nothing(events: EventFactory) -> None:
    books = Books(Policies(allocation=policy()))
    books.feed(events.received(100))

    opened = books.feed(events.session_opened(channels=(ROOM, OTHER_ROOM), cap=10))

    assert opened.quota_changes == ()
    assert not any(quota.isolated for quota in books.position.allocation.channels)
