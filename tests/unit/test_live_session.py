"""Live-session commands as pure functions: plain sessions in, next session and SKU events
out. The Kafka store around them is covered by tests/integration/test_live_session.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_worker.domain import live_session, tiers
from sync_worker.domain.events import (
    ChannelPinned,
    ChannelUnpinned,
    ListingChanged,
    QuotaMoved,
    SessionSkuClosed,
    SessionSkuOpened,
    SkuEvent,
    StockIncomingAnnounced,
    StockReceived,
    StockTransferredOut,
    Tier,
)
from sync_worker.domain.live_session import (
    LineupItem,
    LiveSession,
    Move,
    Outcome,
    SessionError,
    SessionState,
)
from sync_worker.streaming import codecs
from sync_worker.streaming.session_service import decode_session, encode_session

T0 = 1_750_000_000_000
HOUR = 3_600_000
ROOMS = ("douyin-room", "tiktok-room")


def item(sku: str = "lipstick", **settings: Any) -> LineupItem:
    return LineupItem(sku, **settings)


def plan(
    *items: LineupItem, channels: tuple[str, ...] = ROOMS, session_id: str = "evening"
) -> LiveSession:
    """A planned session from T0 to T0 + 2 h; by default one best-seller, ``lipstick``."""
    return LiveSession(
        session_id=session_id,
        title="Evening show",
        channels=channels,
        lineup=items or (item(),),
        starts_at_ms=T0,
        ends_at_ms=T0 + 2 * HOUR,
    )


def created(*items: LineupItem, channels: tuple[str, ...] = ROOMS) -> LiveSession:
    return live_session.create(plan(*items, channels=channels), T0, "planner").session


def started(*items: LineupItem, channels: tuple[str, ...] = ROOMS) -> LiveSession:
    return live_session.start(created(*items, channels=channels), T0 + 1, "ops").session


def three_skus() -> LiveSession:
    """Live in both rooms: ``lipstick`` (best-seller), ``serum`` and ``mask`` (long tail)."""
    return started(item("lipstick"), item("serum"), item("mask", tier=Tier.LONG_TAIL))


def ids(outcome: Outcome) -> list[str]:
    return [event.event_id for event in outcome.events]


# --- create -----------------------------------------------------------------------------


def test_create_plans_the_session_at_version_one_with_its_create_move() -> None:
    outcome = live_session.create(plan(), T0 - HOUR, "planner")

    assert outcome.events == ()
    assert outcome.session.state is SessionState.PLANNED
    assert outcome.session.version == 1
    assert outcome.session.moves == (Move(T0 - HOUR, "planner", "create"),)


def test_create_starts_from_a_clean_slate_whatever_the_plan_carries() -> None:
    carried = replace(
        plan(),
        state=SessionState.ENDED,
        pinned="lipstick",
        skipped=("lipstick",),
        moves=(Move(1, "someone", "end"),),
        version=9,
    )

    session = live_session.create(carried, T0, "planner").session

    assert (session.state, session.pinned, session.skipped) == (SessionState.PLANNED, None, ())
    assert [move.action for move in session.moves] == ["create"]
    assert session.version == 1


@pytest.mark.parametrize(
    ("session", "problem"),
    [
        (plan(channels=()), "at least one room"),
        (plan(channels=("douyin-room", "douyin-room")), "rooms listed twice: douyin-room"),
        (replace(plan(), lineup=()), "lineup of at least one SKU"),
        (plan(item("a"), item("b"), item("a")), "SKUs listed twice in the lineup: a"),
        (replace(plan(), ends_at_ms=T0 - 1), "must end after it starts"),
        (replace(plan(), ends_at_ms=T0), "must end after it starts"),
        (plan(item("flash", tier=Tier.TRAFFIC)), "flash: a traffic item needs"),
        (plan(item("solo", isolate=True)), "solo: an isolated (flash-sale) item needs a cap"),
        (plan(item("x", warn_percent=10, critical_percent=10)), "x: critical_percent (10)"),
        (plan(item("t", tier=Tier.LONG_TAIL, critical_percent=30)), "below warn_percent (30)"),
    ],
    ids=[
        "no rooms",
        "a room twice",
        "empty lineup",
        "duplicate SKUs",
        "end before start",
        "end at start",
        "traffic without cap",
        "isolate without cap",
        "critical at warn",
        "critical at the tier's warn",
    ],
)
def test_create_refuses_a_plan_that_cannot_be_a_session(session: LiveSession, problem: str) -> None:
    with pytest.raises(SessionError) as refused:
        live_session.create(session, T0, "planner")

    assert problem in str(refused.value)
    assert live_session.plan_problems(session) == [str(refused.value)]


def test_create_names_every_problem_of_the_plan_at_once() -> None:
    bad = replace(
        plan(item("a", tier=Tier.TRAFFIC), item("a", isolate=True), channels=()),
        ends_at_ms=T0,
    )

    problems = live_session.plan_problems(bad)

    assert len(problems) == 5
    with pytest.raises(SessionError) as refused:
        live_session.create(bad, T0, "planner")
    assert str(refused.value) == "; ".join(problems)


def test_an_isolated_item_with_a_cap_and_a_capped_traffic_item_are_a_valid_plan() -> None:
    session = plan(item("flash", tier=Tier.TRAFFIC, cap=100), item("solo", isolate=True, cap=5))

    assert live_session.plan_problems(session) == []


# --- start ------------------------------------------------------------------------------


def test_start_opens_every_lineup_sku_in_every_room_with_its_tiers_defaults() -> None:
    session = created(
        item("flash", tier=Tier.TRAFFIC, cap=100),
        item("lipstick"),
        item("wine", tier=Tier.PROFIT, margin_percent=35.0),
        item("mask", tier=Tier.LONG_TAIL),
    )

    outcome = live_session.start(session, T0 + 5, "ops-anna")

    assert outcome.session.state is SessionState.LIVE
    assert all(isinstance(event, SessionSkuOpened) for event in outcome.events)
    opened = {event.sku: event for event in outcome.events if isinstance(event, SessionSkuOpened)}
    assert list(opened) == ["flash", "lipstick", "wine", "mask"]
    for event in opened.values():
        assert (event.session_id, event.channels) == ("evening", ROOMS)
        assert (event.event_time_ms, event.actor) == (T0 + 5, "ops-anna")
    flash = opened["flash"]
    assert (flash.tier, flash.cap, flash.isolate, flash.buyer_limit) == (
        Tier.TRAFFIC,
        100,
        True,
        1,
    )
    lipstick = opened["lipstick"]
    assert (lipstick.isolate, lipstick.buyer_limit, lipstick.cap) == (False, None, None)
    assert (lipstick.warn_percent, lipstick.critical_percent) == (20, 10)
    mask = opened["mask"]
    assert (mask.warn_percent, mask.critical_percent) == (30, 15)
    assert opened["wine"].tier is Tier.PROFIT


@pytest.mark.parametrize("tier", list(Tier))
def test_start_applies_each_tiers_policy_to_an_item_with_no_settings(tier: Tier) -> None:
    policy = tiers.POLICIES[tier]
    session = created(item("sku", tier=tier, cap=10))

    (opened,) = live_session.start(session, T0, "ops").events

    assert isinstance(opened, SessionSkuOpened)
    assert opened.isolate is policy.isolate
    assert opened.buyer_limit == policy.buyer_limit
    assert (opened.warn_percent, opened.critical_percent) == (
        policy.warn_percent,
        policy.critical_percent,
    )


def test_an_items_own_settings_win_over_its_tiers_defaults() -> None:
    session = created(
        item("flash", tier=Tier.TRAFFIC, cap=100, isolate=False, buyer_limit=3),
        item("mask", tier=Tier.LONG_TAIL, warn_percent=50, critical_percent=25, rearm_points=2),
        item("lipstick", isolate=True, cap=40, buyer_limit=2, regions_deny=("CN-XZ",)),
    )

    opened = {e.sku: e for e in live_session.start(session, T0, "ops").events}

    flash, mask, lipstick = opened["flash"], opened["mask"], opened["lipstick"]
    assert isinstance(flash, SessionSkuOpened)
    assert (flash.isolate, flash.buyer_limit) == (False, 3)
    assert isinstance(mask, SessionSkuOpened)
    assert (mask.warn_percent, mask.critical_percent, mask.rearm_points) == (50, 25, 2)
    assert isinstance(lipstick, SessionSkuOpened)
    assert (lipstick.isolate, lipstick.cap, lipstick.buyer_limit) == (True, 40, 2)
    assert lipstick.regions_deny == ("CN-XZ",)


def test_starting_a_live_session_again_resends_the_same_events_without_a_new_version() -> None:
    first = live_session.start(created(item("a"), item("b")), T0, "ops")

    again = live_session.start(first.session, T0 + HOUR, "ops-ben")

    assert again.session == first.session  # nothing for the store to write
    assert ids(again) == ids(first)
    assert [e.sku for e in again.events] == ["a", "b"]


def test_starting_again_after_a_skip_does_not_reopen_the_skipped_sku() -> None:
    skipped = live_session.skip(started(item("a"), item("b")), "a", T0 + 2, "host").session

    again = live_session.start(skipped, T0 + 3, "ops")

    assert [e.sku for e in again.events] == ["b"]


# --- pin / unpin ------------------------------------------------------------------------


def test_pin_sizes_every_room_for_the_burst() -> None:
    session = three_skus()

    outcome = live_session.pin(
        session, "serum", T0 + 10, "host", duration_ms=120_000, units_per_s=200
    )

    assert outcome.session.pinned == "serum"
    assert [(type(e), e.sku) for e in outcome.events] == [(ChannelPinned, "serum")] * 2
    pins = [e for e in outcome.events if isinstance(e, ChannelPinned)]
    assert [p.channel for p in pins] == list(ROOMS)
    assert {(p.duration_ms, p.expected_units_per_s, p.actor) for p in pins} == {
        (120_000, 200, "host")
    }
    assert outcome.session.moves[-1] == Move(
        T0 + 10, "host", "pin", "serum", "120000 ms at 200/s expected"
    )


def test_pin_defaults_to_ten_minutes_at_fifty_units_a_second() -> None:
    outcome = live_session.pin(three_skus(), "serum", T0, "host")

    pins = [e for e in outcome.events if isinstance(e, ChannelPinned)]
    assert {(p.duration_ms, p.expected_units_per_s) for p in pins} == {(600_000, 50)}


def test_pinning_another_product_unpins_the_one_pinned_before_in_every_room_first() -> None:
    pinned = live_session.pin(three_skus(), "serum", T0 + 10, "host").session

    outcome = live_session.pin(pinned, "mask", T0 + 20, "host")

    assert [(e.type, e.sku, getattr(e, "channel", None)) for e in outcome.events] == [
        ("allocation.unpinned", "serum", "douyin-room"),
        ("allocation.unpinned", "serum", "tiktok-room"),
        ("allocation.pinned", "mask", "douyin-room"),
        ("allocation.pinned", "mask", "tiktok-room"),
    ]
    assert outcome.session.pinned == "mask"


def test_pinning_the_pinned_product_again_renews_its_pin_without_unpinning_it() -> None:
    first = live_session.pin(three_skus(), "serum", T0 + 10, "host")

    again = live_session.pin(first.session, "serum", T0 + 20, "host")

    assert {type(e) for e in again.events} == {ChannelPinned}
    assert set(ids(again)).isdisjoint(ids(first))


def test_unpin_takes_the_pinned_product_off_the_pin_in_every_room() -> None:
    pinned = live_session.pin(three_skus(), "serum", T0 + 10, "host").session

    outcome = live_session.unpin(pinned, T0 + 20, "host")

    assert outcome.session.pinned is None
    assert all(isinstance(e, ChannelUnpinned) and e.sku == "serum" for e in outcome.events)
    assert [getattr(e, "channel", None) for e in outcome.events] == list(ROOMS)
    assert outcome.session.moves[-1] == Move(T0 + 20, "host", "unpin", "serum")


def test_unpin_with_nothing_pinned_is_refused() -> None:
    with pytest.raises(SessionError, match="no product is pinned"):
        live_session.unpin(three_skus(), T0, "host")


def test_a_sku_outside_the_lineup_cannot_be_pinned() -> None:
    with pytest.raises(SessionError, match="'perfume' is not in the lineup"):
        live_session.pin(three_skus(), "perfume", T0, "host")


# --- restock and transfers --------------------------------------------------------------


def test_a_restock_now_is_a_receipt_that_closes_the_announced_batch() -> None:
    outcome = live_session.restock(
        three_skus(), "serum", 40, T0 + 10, "ops", warehouse="east", batch_id="b-7"
    )

    (received,) = outcome.events
    assert isinstance(received, StockReceived)
    assert (received.sku, received.quantity, received.warehouse) == ("serum", 40, "east")
    assert (received.batch_id, received.actor, received.event_time_ms) == ("b-7", "ops", T0 + 10)
    assert outcome.session.moves[-1] == Move(T0 + 10, "ops", "restock", "serum", "40 to east")


def test_a_restock_with_an_eta_announces_the_batch_in_transit() -> None:
    eta = T0 + HOUR

    outcome = live_session.restock(three_skus(), "serum", 40, T0 + 10, "ops", eta_ms=eta)

    (announced,) = outcome.events
    assert isinstance(announced, StockIncomingAnnounced)
    assert (announced.quantity, announced.eta_ms, announced.warehouse) == (40, eta, "main")
    assert announced.batch_id == announced.event_id  # what a later receipt names to close it
    assert outcome.session.moves[-1].detail == f"40 to main, due {eta}"


def test_a_restock_with_an_eta_keeps_the_batch_id_it_is_given() -> None:
    outcome = live_session.restock(
        three_skus(), "serum", 40, T0, "ops", eta_ms=T0 + HOUR, batch_id="po-1"
    )

    (announced,) = outcome.events
    assert isinstance(announced, StockIncomingAnnounced)
    assert announced.batch_id == "po-1"


def test_a_transfer_from_a_warehouse_leaves_now_and_is_announced_with_its_eta() -> None:
    eta = T0 + 30 * 60_000

    outcome = live_session.transfer_from_warehouse(
        three_skus(), "serum", 25, "west", T0 + 10, "ops", eta_ms=eta
    )

    out, announced = outcome.events
    assert isinstance(out, StockTransferredOut)
    assert isinstance(announced, StockIncomingAnnounced)
    assert (out.warehouse, out.destination, out.quantity) == ("west", "main", 25)
    assert (announced.warehouse, announced.quantity, announced.eta_ms) == ("main", 25, eta)
    assert announced.batch_id == out.transfer_id
    assert out.event_id != announced.event_id
    assert outcome.session.moves[-1] == Move(
        T0 + 10, "ops", "transfer", "serum", f"25 from west to main, due {eta}"
    )


def test_a_restock_naming_the_transfer_closes_it_when_the_units_arrive() -> None:
    moved = live_session.transfer_from_warehouse(
        three_skus(), "serum", 25, "west", T0, "ops", eta_ms=T0 + HOUR
    )
    (out, _) = moved.events
    assert isinstance(out, StockTransferredOut)

    arrived = live_session.restock(
        moved.session, "serum", 25, T0 + HOUR, "ops", batch_id=out.transfer_id
    )

    (received,) = arrived.events
    assert isinstance(received, StockReceived)
    assert received.batch_id == out.transfer_id


def test_a_transfer_into_the_warehouse_it_leaves_is_refused() -> None:
    with pytest.raises(SessionError, match="two different warehouses"):
        live_session.transfer_from_warehouse(
            three_skus(), "serum", 5, "main", T0, "ops", eta_ms=T0 + HOUR
        )


def test_a_transfer_between_rooms_moves_quota() -> None:
    outcome = live_session.transfer_between_rooms(
        three_skus(), "serum", 30, "douyin-room", "tiktok-room", T0 + 10, "ops"
    )

    (moved,) = outcome.events
    assert isinstance(moved, QuotaMoved)
    assert (moved.from_channel, moved.to_channel, moved.units) == ("douyin-room", "tiktok-room", 30)
    assert outcome.session.moves[-1] == Move(
        T0 + 10, "ops", "transfer", "serum", "30 from douyin-room to tiktok-room"
    )


@pytest.mark.parametrize(
    ("source", "target", "problem"),
    [
        ("douyin-room", "douyin-room", "two different rooms"),
        ("douyin-room", "kuaishou-room", "not rooms of this session: kuaishou-room"),
        ("shop", "tiktok-room", "not rooms of this session: shop"),
    ],
)
def test_a_transfer_between_rooms_needs_two_rooms_of_the_session(
    source: str, target: str, problem: str
) -> None:
    with pytest.raises(SessionError, match=problem):
        live_session.transfer_between_rooms(three_skus(), "serum", 5, source, target, T0, "ops")


# --- delist / relist / skip -------------------------------------------------------------


@pytest.mark.parametrize("listed", [False, True], ids=["delist", "relist"])
def test_delist_and_relist_change_the_listing_in_every_room(listed: bool) -> None:
    outcome = live_session.set_listing(
        three_skus(), "serum", listed, T0 + 10, "ops", reason="quality_issue"
    )

    changes = [e for e in outcome.events if isinstance(e, ListingChanged)]
    assert len(changes) == len(outcome.events) == 2
    assert [c.channel for c in changes] == list(ROOMS)
    assert {(c.listed, c.reason, c.sku) for c in changes} == {(listed, "quality_issue", "serum")}
    action = "relist" if listed else "delist"
    assert outcome.session.moves[-1] == Move(
        T0 + 10, "ops", action, "serum", "douyin-room, tiktok-room: quality_issue"
    )


def test_delist_in_some_rooms_names_each_room_once() -> None:
    outcome = live_session.set_listing(
        three_skus(), "serum", False, T0, "ops", channels=["tiktok-room", "tiktok-room"]
    )

    assert [getattr(e, "channel", None) for e in outcome.events] == ["tiktok-room"]


def test_delist_in_a_room_outside_the_session_is_refused() -> None:
    with pytest.raises(SessionError, match="not rooms of this session: shopify"):
        live_session.set_listing(
            three_skus(), "serum", False, T0, "ops", channels=["tiktok-room", "shopify"]
        )


def test_skip_closes_the_sku_for_the_session() -> None:
    outcome = live_session.skip(three_skus(), "serum", T0 + 10, "host")

    (closed,) = outcome.events
    assert isinstance(closed, SessionSkuClosed)
    assert (closed.sku, closed.reason, closed.session_id) == ("serum", "skipped", "evening")
    assert outcome.session.skipped == ("serum",)
    assert [i.sku for i in outcome.session.selling()] == ["lipstick", "mask"]
    assert outcome.session.moves[-1] == Move(T0 + 10, "host", "skip", "serum")


def test_skipping_the_pinned_sku_unpins_it() -> None:
    pinned = live_session.pin(three_skus(), "serum", T0, "host").session

    outcome = live_session.skip(pinned, "serum", T0 + 10, "host")

    assert [e.type for e in outcome.events] == [
        "session.sku_closed",
        "allocation.unpinned",
        "allocation.unpinned",
    ]
    assert outcome.session.pinned is None


def test_skipping_another_sku_keeps_the_pin() -> None:
    pinned = live_session.pin(three_skus(), "serum", T0, "host").session

    outcome = live_session.skip(pinned, "mask", T0 + 10, "host")

    assert [e.type for e in outcome.events] == ["session.sku_closed"]
    assert outcome.session.pinned == "serum"


@pytest.mark.parametrize(
    "command",
    [
        lambda s: live_session.pin(s, "serum", T0, "host"),
        lambda s: live_session.skip(s, "serum", T0, "host"),
        lambda s: live_session.transfer_between_rooms(s, "serum", 1, *ROOMS, T0, "ops"),
    ],
    ids=["pin", "skip again", "room transfer"],
)
def test_a_skipped_sku_is_not_sold_again(command: Callable[[LiveSession], Outcome]) -> None:
    skipped = live_session.skip(three_skus(), "serum", T0, "host").session

    with pytest.raises(SessionError, match="'serum' was skipped"):
        command(skipped)


# --- end --------------------------------------------------------------------------------


def test_end_closes_every_sku_still_selling_and_unpins() -> None:
    session = live_session.skip(three_skus(), "serum", T0, "host").session
    session = live_session.pin(session, "mask", T0 + 1, "host").session

    outcome = live_session.end(session, T0 + HOUR, "ops")

    closed = [e for e in outcome.events if isinstance(e, SessionSkuClosed)]
    assert [(c.sku, c.reason) for c in closed] == [("lipstick", "ended"), ("mask", "ended")]
    unpinned = [e for e in outcome.events if isinstance(e, ChannelUnpinned)]
    assert [(u.sku, u.channel) for u in unpinned] == [("mask", room) for room in ROOMS]
    assert len(outcome.events) == len(closed) + len(unpinned)
    assert outcome.session.state is SessionState.ENDED
    assert outcome.session.pinned is None


def test_ending_an_ended_session_resends_the_same_closes_without_a_new_version() -> None:
    first = live_session.end(three_skus(), T0 + HOUR, "ops")

    again = live_session.end(first.session, T0 + 2 * HOUR, "ops")

    assert again.session == first.session
    assert ids(again) == ids(first)


def test_a_planned_session_cannot_end() -> None:
    with pytest.raises(SessionError, match="has not started"):
        live_session.end(created(), T0, "ops")


ENDED_REFUSES: dict[str, Callable[[LiveSession], Outcome]] = {
    "start": lambda s: live_session.start(s, T0, "ops"),
    "pin": lambda s: live_session.pin(s, "lipstick", T0, "host"),
    "unpin": lambda s: live_session.unpin(s, T0, "host"),
    "restock": lambda s: live_session.restock(s, "lipstick", 5, T0, "ops"),
    "warehouse transfer": lambda s: live_session.transfer_from_warehouse(
        s, "lipstick", 5, "west", T0, "ops", eta_ms=T0 + HOUR
    ),
    "room transfer": lambda s: live_session.transfer_between_rooms(
        s, "lipstick", 5, *ROOMS, T0, "ops"
    ),
    "delist": lambda s: live_session.set_listing(s, "lipstick", False, T0, "ops"),
    "relist": lambda s: live_session.set_listing(s, "lipstick", True, T0, "ops"),
    "skip": lambda s: live_session.skip(s, "lipstick", T0, "host"),
}


@pytest.mark.parametrize("command", ENDED_REFUSES.values(), ids=ENDED_REFUSES.keys())
def test_an_ended_session_refuses_every_command_but_end(
    command: Callable[[LiveSession], Outcome],
) -> None:
    ended = live_session.end(started(), T0 + HOUR, "ops").session

    with pytest.raises(SessionError):
        command(ended)


@pytest.mark.parametrize(
    "command",
    [ENDED_REFUSES[name] for name in ("pin", "unpin", "room transfer", "delist", "relist", "skip")],
    ids=["pin", "unpin", "room transfer", "delist", "relist", "skip"],
)
def test_a_planned_session_refuses_the_rooms_moves(
    command: Callable[[LiveSession], Outcome],
) -> None:
    with pytest.raises(SessionError, match="is planned, not live"):
        command(created())


@pytest.mark.parametrize("name", ["restock", "warehouse transfer"])
def test_stock_can_be_announced_to_a_planned_session(name: str) -> None:
    """Replenishment is part of the pre-live checklist: stock moves before the show."""
    outcome = ENDED_REFUSES[name](created())

    assert outcome.events
    assert outcome.session.state is SessionState.PLANNED


# --- the audit log and event ids --------------------------------------------------------

AUDITED: dict[str, Callable[[LiveSession, int, str], Outcome]] = {
    "pin": lambda s, at, who: live_session.pin(s, "serum", at, who),
    "restock": lambda s, at, who: live_session.restock(s, "serum", 5, at, who),
    "transfer": lambda s, at, who: live_session.transfer_from_warehouse(
        s, "serum", 5, "west", at, who, eta_ms=at + HOUR
    ),
    "delist": lambda s, at, who: live_session.set_listing(s, "serum", False, at, who),
    "relist": lambda s, at, who: live_session.set_listing(s, "serum", True, at, who),
    "skip": lambda s, at, who: live_session.skip(s, "serum", at, who),
    "end": lambda s, at, who: live_session.end(s, at, who),
}


@pytest.mark.parametrize("action", AUDITED)
def test_every_command_appends_an_audited_move_and_a_version(action: str) -> None:
    session = three_skus()

    outcome = AUDITED[action](session, T0 + 42, "ops-cleo")

    assert outcome.session.moves[:-1] == session.moves
    move = outcome.session.moves[-1]
    assert (move.at_ms, move.actor, move.action) == (T0 + 42, "ops-cleo", action)
    assert outcome.session.version == session.version + 1
    assert {getattr(e, "actor", None) for e in outcome.events} == {"ops-cleo"}
    assert {e.event_time_ms for e in outcome.events} == {T0 + 42}


def test_the_log_of_a_whole_session_names_who_did_what_in_order() -> None:
    session = created(item("lipstick"), item("serum"))
    steps: list[Callable[[LiveSession], Outcome]] = [
        lambda s: live_session.start(s, T0 + 1, "ops-anna"),
        lambda s: live_session.pin(s, "lipstick", T0 + 2, "host"),
        lambda s: live_session.unpin(s, T0 + 3, "host"),
        lambda s: live_session.end(s, T0 + 4, "ops-anna"),
    ]
    for step in steps:
        session = step(session).session

    assert [(m.at_ms, m.actor, m.action, m.sku) for m in session.moves] == [
        (T0, "planner", "create", None),
        (T0 + 1, "ops-anna", "start", None),
        (T0 + 2, "host", "pin", "lipstick"),
        (T0 + 3, "host", "unpin", "lipstick"),
        (T0 + 4, "ops-anna", "end", None),
    ]
    assert session.version == 5


COMMANDS: list[Callable[[LiveSession, str, int], Outcome]] = [
    lambda s, sku, at: live_session.start(s, at, "ops"),
    lambda s, sku, at: live_session.pin(s, sku, at, "host"),
    lambda s, sku, at: live_session.unpin(s, at, "host"),
    lambda s, sku, at: live_session.restock(s, sku, 3, at, "ops"),
    lambda s, sku, at: live_session.restock(s, sku, 3, at, "ops", eta_ms=at + HOUR),
    lambda s, sku, at: live_session.transfer_from_warehouse(
        s, sku, 3, "west", at, "ops", eta_ms=at + HOUR
    ),
    lambda s, sku, at: live_session.transfer_between_rooms(s, sku, 2, *ROOMS, at, "ops"),
    lambda s, sku, at: live_session.transfer_between_rooms(s, sku, 2, *ROOMS[::-1], at, "ops"),
    lambda s, sku, at: live_session.set_listing(s, sku, False, at, "ops"),
    lambda s, sku, at: live_session.set_listing(s, sku, True, at, "ops", channels=ROOMS[:1]),
    lambda s, sku, at: live_session.skip(s, sku, at, "host"),
    lambda s, sku, at: live_session.end(s, at, "ops"),
]


def play(script: list[tuple[int, str]]) -> list[Outcome]:
    """The script's commands on a planned three-SKU session, refused ones left out."""
    session = created(item("lipstick"), item("serum"), item("mask", tier=Tier.LONG_TAIL))
    outcomes = []
    for at, (command, sku) in enumerate(script, start=T0):
        try:
            outcome = COMMANDS[command](session, sku, at)
        except SessionError:
            continue
        outcomes.append(outcome)
        session = outcome.session
    return outcomes


SCRIPTS = st.lists(
    st.tuples(st.integers(0, len(COMMANDS) - 1), st.sampled_from(["lipstick", "serum", "mask"])),
    max_size=40,
)


@settings(max_examples=200)
@given(SCRIPTS)
def test_event_ids_are_unique_across_a_session_but_repeat_for_a_resent_command(
    script: list[tuple[int, str]],
) -> None:
    seen: set[str] = set()
    before = created(item("lipstick"), item("serum"), item("mask", tier=Tier.LONG_TAIL)).version
    for outcome in play(script):
        sent = ids(outcome)
        assert len(set(sent)) == len(sent)
        if outcome.session.version == before:  # a start or end sent again: the same ids
            assert set(sent) <= seen
        else:
            assert outcome.session.version == before + 1
            assert seen.isdisjoint(sent)
        assert all(len(event_id) <= 200 for event_id in sent)
        seen |= set(sent)
        before = outcome.session.version


@settings(max_examples=100)
@given(SCRIPTS)
def test_the_same_commands_give_the_same_events(script: list[tuple[int, str]]) -> None:
    assert play(script) == play(script)


@pytest.fixture(scope="module")
def decoder() -> codecs.SkuEventDecoder:
    """The worker's own decoder of the SKU-events topic (built once: it compiles schemas)."""
    return codecs.SkuEventDecoder()


@settings(max_examples=100)
@given(script=SCRIPTS)
def test_every_event_a_command_sends_is_one_the_worker_accepts(
    decoder: codecs.SkuEventDecoder, script: list[tuple[int, str]]
) -> None:
    for outcome in play(script):
        for event in outcome.events:
            assert decoder.decode(event.sku.encode(), codecs.encode(event)) == event


def test_ids_of_two_sessions_never_meet() -> None:
    def opened(session_id: str) -> list[SkuEvent]:
        planned = replace(plan(), session_id=session_id)
        session = live_session.create(planned, T0, "ops").session
        return list(live_session.start(session, T0, "ops").events)

    assert {e.event_id for e in opened("a")}.isdisjoint(e.event_id for e in opened("b"))


# --- stored form ------------------------------------------------------------------------

NAMES = st.text(min_size=1, max_size=20)
LINEUP_ITEMS = st.builds(
    LineupItem,
    sku=NAMES,
    tier=st.sampled_from(Tier),
    name=st.text(max_size=20),
    spec=st.text(max_size=20),
    cap=st.none() | st.integers(0, 10**9),
    buyer_limit=st.none() | st.integers(1, 10**9),
    isolate=st.none() | st.booleans(),
    regions_allow=st.lists(NAMES, max_size=3).map(tuple),
    regions_deny=st.lists(NAMES, max_size=3).map(tuple),
    warn_percent=st.none() | st.integers(1, 99),
    critical_percent=st.none() | st.integers(1, 99),
    rearm_points=st.integers(0, 50),
    margin_percent=st.none() | st.floats(-100, 100),
    replenish_quantity=st.none() | st.integers(1, 10**9),
    replenish_eta_ms=st.none() | st.integers(0, 2**53),
)
SESSIONS = st.builds(
    LiveSession,
    session_id=NAMES,
    title=st.text(max_size=40),
    channels=st.lists(NAMES, max_size=4).map(tuple),
    lineup=st.lists(LINEUP_ITEMS, max_size=4).map(tuple),
    starts_at_ms=st.integers(0, 2**53),
    ends_at_ms=st.integers(0, 2**53),
    state=st.sampled_from(SessionState),
    pinned=st.none() | NAMES,
    skipped=st.lists(NAMES, max_size=3).map(tuple),
    moves=st.lists(
        st.builds(
            Move,
            at_ms=st.integers(0, 2**53),
            actor=NAMES,
            action=NAMES,
            sku=st.none() | NAMES,
            detail=st.text(max_size=40),
        ),
        max_size=5,
    ).map(tuple),
    version=st.integers(0, 2**31),
)


@given(SESSIONS)
def test_a_stored_session_reads_back_as_itself(session: LiveSession) -> None:
    assert decode_session(encode_session(session)) == session


@settings(max_examples=50)
@given(SCRIPTS)
def test_every_state_a_session_goes_through_reads_back_as_itself(
    script: list[tuple[int, str]],
) -> None:
    for outcome in play(script):
        assert decode_session(encode_session(outcome.session)) == outcome.session
