"""The pieces ``decide()`` builds its step from without rebuilding values: each must give
exactly what the plain composition gives (``replay.apply_at``, every quantity read on its
own, a reallocation planned in full)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from sync_worker.domain import allocation, replay
from sync_worker.domain.allocation import Allocation, AllocationPolicy, PolicyKind
from sync_worker.domain.events import OrderLinePlaced
from sync_worker.domain.position import (
    IncomingBatch,
    SafetyReserve,
    SkuPosition,
    WarehouseStock,
)
from sync_worker.domain.records import Record
from sync_worker.domain.sessions import SkuSession, with_hold
from sync_worker.streaming import state
from tests.property.ledger_logs import POLICY, Log, logs

warehouses = st.lists(
    st.tuples(
        st.sampled_from(("main", "east", "west")),
        st.builds(
            WarehouseStock,
            on_hand=st.integers(-5, 40),
            unavailable=st.integers(0, 10),
            returns_pending=st.integers(0, 5),
        ),
    ),
    max_size=3,
    unique_by=lambda pair: pair[0],
)
positions = st.builds(
    SkuPosition,
    sku=st.just("lipstick"),
    warehouses=warehouses.map(lambda pairs: tuple(sorted(pairs))),
    committed=st.integers(0, 40),
    reserve=st.builds(SafetyReserve, units=st.integers(0, 5), percent=st.integers(0, 50)),
    incoming=st.lists(
        st.builds(IncomingBatch, st.just("b"), st.just("main"), st.integers(1, 9), st.just(0)),
        max_size=2,
    ).map(tuple),
)


@given(positions)
def test_quantities_read_together_are_each_quantity_read_alone(position: SkuPosition) -> None:
    on_hand = sum(stock.on_hand for _, stock in position.warehouses)
    unavailable = sum(stock.unavailable for _, stock in position.warehouses)
    reserve = position.reserve.of(on_hand)
    free = on_hand - position.committed - reserve - unavailable

    assert position.quantities() == {
        "on_hand": position.on_hand,
        "committed": position.committed,
        "safety_reserve": position.safety_reserve,
        "unavailable": position.unavailable,
        "returns_pending": position.returns_pending,
        "incoming": position.incoming_units,
        "sellable": position.sellable,
        "transferable": position.transferable,
    }
    assert (position.sellable, position.oversold) == (max(0, free), max(0, -free))


def session(session_id: str, sold: int = 0) -> SkuSession:
    return SkuSession(session_id, ("room",), "profit", sold=sold)


def test_with_hold_replaces_the_sessions_hold_and_moves_it_last() -> None:
    holds = (session("a"), session("b"), session("c"))

    assert with_hold(holds, session("a", sold=3)) == (
        session("b"),
        session("c"),
        session("a", sold=3),
    )
    assert with_hold(holds, session("d")) == (*holds, session("d"))
    assert with_hold((), session("a")) == (session("a"),)


@settings(max_examples=150, deadline=None)
@given(logs(redeliver_stock=True))
def test_stamped_is_apply_at_with_the_step_left_to_build(log: Log) -> None:
    """Every new delivery, and the recomputation after a crash between the record and
    the position writes (the record already says this ``seq``)."""
    positions: dict[str, SkuPosition] = {}
    records: dict[bytes, Record] = {}
    for seq, event in enumerate(log.delivered):
        key = state.record_key(event)
        position = positions.get(event.sku, SkuPosition(event.sku))
        record = records.get(key)
        applied = replay.apply_at(seq, position, record, event, POLICY)

        for stored in (record, applied.step.record):  # before the writes, and between them
            new = replay.stamped(seq, position, stored, event, POLICY)
            built = replace(
                new.step,
                position=replace(new.step.position, seq=seq),
                record=new.record,
                buyer=new.buyer,
            )
            assert built == replay.apply_at(seq, position, stored, event, POLICY).step

        positions[event.sku] = applied.step.position
        if applied.step.record is not None:
            records[key] = applied.step.record


def placed_outside_every_channel() -> allocation.Sold:
    return allocation.Sold("room-nobody-configured", 1)


def test_a_sku_without_channels_plans_nothing() -> None:
    empty = Allocation(version=4)

    for kind in (PolicyKind.ADAPTIVE, PolicyKind.SHARED_POOL, PolicyKind.FIXED_RATIO):
        moved = allocation.reallocate(
            empty, 50, placed_outside_every_channel(), AllocationPolicy(kind=kind), 1_000
        )
        assert moved == (empty, ())


def test_a_static_split_without_channels_still_stamps_its_refresh() -> None:
    moved, changes = allocation.reallocate(
        Allocation(version=4),
        50,
        placed_outside_every_channel(),
        AllocationPolicy(kind=PolicyKind.STATIC),
        1_000,
    )

    assert (moved, changes) == (Allocation(version=4, refreshed_ms=1_000), ())


def test_an_answer_names_its_line_like_the_event() -> None:
    event = OrderLinePlaced(
        event_id="ev-1",
        sku="lipstick",
        event_time_ms=5,
        platform="tiktok",
        channel="room",
        order_id="o-1",
        line_id="l-1",
        quantity=2,
        buyer_id="b",
    )
    step = replay.apply_at(1, SkuPosition("lipstick"), None, event).step

    assert step.decision is not None
    assert (
        step.decision.event_id,
        step.decision.sku,
        step.decision.event_time_ms,
        step.decision.platform,
        step.decision.channel,
        step.decision.order_id,
        step.decision.line_id,
    ) == ("ev-1", "lipstick", 5, "tiktok", "room", "o-1", "l-1")
