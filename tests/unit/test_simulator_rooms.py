"""The live-room model: what a room displays under orders, cancellations and pushes."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.simulator import rooms
from connectors.simulator.rooms import CasOutcome, LiveRoom, RoomCounters

MakeRoom = Callable[..., LiveRoom]


@pytest.fixture
def make_room() -> MakeRoom:
    def make(displayed: Mapping[str, int] | None = None) -> LiveRoom:
        return LiveRoom("tiktok-room-1", "tiktok", displayed)

    return make


def test_an_order_takes_units_off_the_display(make_room: MakeRoom) -> None:
    room = make_room({"lipstick": 5})

    assert room.try_order("lipstick", 2)

    assert room.displayed("lipstick") == 3
    assert room.counters == RoomCounters(orders_placed=1)


def test_an_order_larger_than_the_display_is_refused_and_changes_nothing(
    make_room: MakeRoom,
) -> None:
    room = make_room({"lipstick": 2})

    assert not room.try_order("lipstick", 3)

    assert room.displayed("lipstick") == 2
    assert room.counters == RoomCounters(orders_refused_sold_out=1)


def test_the_last_units_can_be_bought_then_the_room_is_sold_out(make_room: MakeRoom) -> None:
    room = make_room({"lipstick": 1})

    assert room.try_order("lipstick", 1)
    assert not room.try_order("lipstick", 1)

    assert room.displayed("lipstick") == 0


def test_a_sku_the_room_never_listed_is_sold_out(make_room: MakeRoom) -> None:
    room = make_room()

    assert room.displayed("serum") == 0
    assert not room.try_order("serum", 1)


def test_a_cancellation_puts_the_units_back_on_display(make_room: MakeRoom) -> None:
    room = make_room({"lipstick": 3})
    room.try_order("lipstick", 3)

    room.cancel_order("lipstick", 3)

    assert room.displayed("lipstick") == 3
    assert room.counters.orders_cancelled == 1


def test_a_push_sets_the_display_and_remembers_its_version(make_room: MakeRoom) -> None:
    room = make_room({"lipstick": 3})

    assert room.apply_push("lipstick", 40, version=7)

    assert room.displayed("lipstick") == 40
    assert room.last_version("lipstick") == 7


@pytest.mark.parametrize("stale_version", [6, 7])
def test_a_push_not_newer_than_the_last_applied_is_dropped(
    make_room: MakeRoom, stale_version: int
) -> None:
    room = make_room()
    room.apply_push("lipstick", 40, version=7)

    assert not room.apply_push("lipstick", 99, version=stale_version)

    assert room.displayed("lipstick") == 40
    assert room.last_version("lipstick") == 7
    assert room.counters == RoomCounters(pushes_applied=1, pushes_stale=1)


def test_the_first_push_applies_whatever_its_version(make_room: MakeRoom) -> None:
    room = make_room({"lipstick": 3})

    assert room.last_version("lipstick") is None
    assert room.apply_push("lipstick", 0, version=0)
    assert room.displayed("lipstick") == 0


def test_versions_are_tracked_per_sku(make_room: MakeRoom) -> None:
    room = make_room()
    room.apply_push("lipstick", 1, version=9)

    assert room.apply_push("serum", 5, version=2)


@pytest.mark.parametrize("quantity", [0, -1])
def test_an_order_must_ask_for_at_least_one_unit(make_room: MakeRoom, quantity: int) -> None:
    room = make_room({"lipstick": 3})

    with pytest.raises(ValueError, match="positive"):
        room.try_order("lipstick", quantity)
    with pytest.raises(ValueError, match="positive"):
        room.cancel_order("lipstick", quantity)


def test_a_negative_count_is_never_displayed(make_room: MakeRoom) -> None:
    with pytest.raises(ValueError, match="negative"):
        make_room({"lipstick": -1})
    with pytest.raises(ValueError, match="negative"):
        make_room().apply_push("lipstick", -1, version=1)


def test_the_snapshot_is_plain_json_ready_data(make_room: MakeRoom) -> None:
    room = make_room({"serum": 2, "lipstick": 5})
    room.apply_push("lipstick", 4, version=3)
    room.try_order("serum", 1)

    assert room.snapshot() == {
        "channel": "tiktok-room-1",
        "platform": "tiktok",
        "skus": {
            "lipstick": {"displayed": 4, "version": 3},
            "serum": {"displayed": 1, "version": None},
        },
        "counters": {
            "orders_placed": 1,
            "orders_refused_sold_out": 0,
            "orders_cancelled": 0,
            "pushes_applied": 1,
            "pushes_stale": 0,
            "pushes_conflicted": 0,
            "adjustments_applied": 0,
            "adjustments_repeated": 0,
        },
    }


# -- delta writes and compare-and-set -------------------------------------------------


def test_a_listing_starts_at_zero_until_stockcast_grants_units(make_room: MakeRoom) -> None:
    room = make_room()

    assert room.apply_delta("lipstick", 5, "grant-1") == (5, 5)

    assert room.displayed("lipstick") == 5
    assert room.last_version("lipstick") is None  # deltas carry no version


def test_a_reduction_larger_than_the_display_is_clamped_at_zero(make_room: MakeRoom) -> None:
    room = make_room({"lipstick": 2})

    assert room.apply_delta("lipstick", -6, "reclaim-1") == (-2, 0)

    assert room.displayed("lipstick") == 0


def test_the_same_key_changes_the_display_once_and_gets_its_first_answer(
    make_room: MakeRoom,
) -> None:
    room = make_room({"lipstick": 10})
    first = room.apply_delta("lipstick", -6, "reclaim-1")
    room.try_order("lipstick", 3)

    assert room.apply_delta("lipstick", -6, "reclaim-1") == first == (-6, 4)

    assert room.displayed("lipstick") == 1
    assert room.counters.adjustments_applied == 1
    assert room.counters.adjustments_repeated == 1


def test_keys_are_per_sku(make_room: MakeRoom) -> None:
    room = make_room()
    room.apply_delta("lipstick", 1, "k")

    assert room.apply_delta("serum", 2, "k") == (2, 2)


def test_only_the_newest_keys_are_remembered(
    make_room: MakeRoom, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rooms, "IDEMPOTENCY_KEYS_KEPT", 2)
    room = make_room()
    for key in ("a", "b", "c"):
        room.apply_delta("lipstick", 1, key)

    room.apply_delta("lipstick", 1, "c")  # remembered: no change
    room.apply_delta("lipstick", 1, "a")  # forgotten: applies again

    assert room.displayed("lipstick") == 4


def test_compare_and_set_applies_only_over_the_expected_count(make_room: MakeRoom) -> None:
    room = make_room({"lipstick": 10})
    room.try_order("lipstick", 3)

    assert room.compare_and_set("lipstick", 10, 4, version=1) is CasOutcome.CONFLICT
    assert room.displayed("lipstick") == 7
    assert room.compare_and_set("lipstick", 7, 1, version=1) is CasOutcome.APPLIED
    assert room.displayed("lipstick") == 1
    assert room.counters == RoomCounters(orders_placed=1, pushes_applied=1, pushes_conflicted=1)


def test_compare_and_set_of_a_version_already_applied_is_stale_before_any_conflict(
    make_room: MakeRoom,
) -> None:
    room = make_room({"lipstick": 10})
    room.compare_and_set("lipstick", 10, 4, version=3)

    # The retry of that very write: the count moved, but it must not apply again.
    assert room.compare_and_set("lipstick", 10, 4, version=3) is CasOutcome.STALE

    assert room.displayed("lipstick") == 4
    assert room.counters.pushes_stale == 1


# -- property: any interleaving of orders, cancellations and pushes -----------------

SKUS = ("lipstick", "serum")
_order = st.tuples(st.just("order"), st.sampled_from(SKUS), st.integers(1, 4))
_push = st.tuples(st.just("push"), st.sampled_from(SKUS), st.integers(0, 12), st.integers(0, 20))
_cancel = st.tuples(st.just("cancel"), st.integers(0, 1_000))
_delta = st.tuples(
    st.just("delta"), st.sampled_from(SKUS), st.integers(-12, 12), st.sampled_from("abcdef")
)
_operations = st.lists(st.one_of(_order, _push, _cancel, _delta), max_size=80)


@settings(deadline=None)  # never depends on how fast the machine is
@given(
    initial=st.fixed_dictionaries({sku: st.integers(0, 10) for sku in SKUS}),
    operations=_operations,
)
def test_displayed_counts_never_go_negative_and_versions_never_go_back(
    initial: dict[str, int], operations: list[tuple[object, ...]]
) -> None:
    room = LiveRoom("douyin-room-1", "douyin", initial)
    accepted: list[tuple[str, int]] = []
    newest: dict[str, int] = {}
    answers: dict[tuple[str, str], tuple[int, int]] = {}
    orders = pushes = 0
    for operation in operations:
        match operation:
            case ("order", str(sku), int(quantity)):
                orders += 1
                shown = room.displayed(sku)
                if room.try_order(sku, quantity):
                    assert shown >= quantity
                    accepted.append((sku, quantity))
                else:
                    assert shown < quantity
            case ("push", str(sku), int(quantity), int(version)):
                pushes += 1
                applied = room.apply_push(sku, quantity, version)
                assert applied == (sku not in newest or version > newest[sku])
                if applied:
                    newest[sku] = version
            case ("delta", str(sku), int(delta), str(key)):
                shown = room.displayed(sku)
                answer = room.apply_delta(sku, delta, key)
                if (sku, key) in answers:  # a repeated key changes nothing
                    assert answer == answers[sku, key]
                    assert room.displayed(sku) == shown
                else:
                    assert answer == (max(delta, -shown), max(0, shown + delta))
                    answers[sku, key] = answer
            case ("cancel", int(pick)) if accepted:
                sku, quantity = accepted.pop(pick % len(accepted))
                room.cancel_order(sku, quantity)
            case _:
                continue
        for sku in SKUS:
            assert room.displayed(sku) >= 0
            assert room.last_version(sku) == newest.get(sku)
    counters = room.counters
    assert counters.orders_placed + counters.orders_refused_sold_out == orders
    assert counters.pushes_applied + counters.pushes_stale == pushes
