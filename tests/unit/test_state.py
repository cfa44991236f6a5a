"""How the ledger's state is stored: one table, keys per SKU, orjson values that round-trip."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_worker.domain.events import (
    OrderLineCancelled,
    OrderLineEvent,
    Outcome,
    RejectReason,
    SkuEvent,
    StockReceived,
    line_key,
)
from sync_worker.domain.orders import AcceptedLine, OrderTally
from sync_worker.domain.position import IncomingBatch, SafetyReserve, SkuPosition, WarehouseStock
from sync_worker.domain.records import LineRecord, LineStatus, MovementRecord
from sync_worker.streaming import state

if TYPE_CHECKING:
    from tests.unit.conftest import EventFactory

IDS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
"""Ids as the decoder lets them through: any character but a lone surrogate (orjson
refuses those), NUL included."""
SMALL = st.integers(-5, 10**9)
COUNTS = st.integers(0, 10**9)
SEQS = st.integers(-1, 2**62)
NO_DEADLINE = settings(deadline=None)
"""These tests never depend on how fast the machine is."""


def line_event(sku: str, platform: str, order_id: str, line_id: str) -> OrderLineCancelled:
    return OrderLineCancelled(
        event_id="e",
        sku=sku,
        event_time_ms=0,
        platform=platform,
        channel="room",
        order_id=order_id,
        line_id=line_id,
        reason="buyer_cancelled",
    )


def stock_event(sku: str, event_id: str) -> StockReceived:
    return StockReceived(event_id=event_id, sku=sku, event_time_ms=0, actor="w", quantity=1)


# --- keys -------------------------------------------------------------------------------


def test_a_skus_position_lines_and_movements_have_distinct_keys(events: EventFactory) -> None:
    keys = [
        state.position_key("lipstick"),
        state.record_key(events.placed()),
        state.record_key(events.placed(line_id="l-2")),
        state.record_key(events.placed(order_id="o-2")),
        state.record_key(events.placed(platform="douyin")),
        state.record_key(events.received(1, event_id="l-1")),
        state.record_key(events.received(1, event_id="ev-2")),
        state.position_key("mascara"),
        state.record_key(events.placed(sku="mascara")),
        state.record_key(events.received(1, event_id="l-1", sku="mascara")),
    ]

    assert len(set(keys)) == len(keys)


def test_every_event_of_one_order_line_shares_the_lines_key(events: EventFactory) -> None:
    line_events = [event for event in events.every_input_type() if hasattr(event, "line_key")]

    assert len({state.record_key(event) for event in line_events}) == 1
    assert len(line_events) == 7


def test_a_redelivered_stock_event_finds_its_movement_record(events: EventFactory) -> None:
    receipt = events.received(3)

    assert state.record_key(receipt) == state.record_key(events.received(9, event_id="ev-1"))


def test_a_line_is_keyed_per_sku(events: EventFactory) -> None:
    """A cancellation naming another SKU finds nothing there, so it releases nothing."""
    assert state.record_key(events.cancelled(sku="mascara")) != state.record_key(
        events.placed(sku="lipstick")
    )


def test_line_keys_are_injective_on_a_separator_inside_an_id() -> None:
    assert line_key("tiktok\x1fo-1", "l-1", "x") != line_key("tiktok", "o-1\x1fl-1", "x")
    assert line_key("a:1", "b", "c") != line_key("a", "1:b", "c")


@NO_DEADLINE
@given(st.tuples(IDS, IDS, IDS), st.tuples(IDS, IDS, IDS))
def test_line_keys_are_injective(first: tuple[str, str, str], second: tuple[str, str, str]) -> None:
    assert (line_key(*first) == line_key(*second)) == (first == second)


Identity = tuple[str, tuple[str, ...]]
identities = st.one_of(
    st.tuples(st.just("position"), st.tuples(IDS)),
    st.tuples(st.just("line"), st.tuples(IDS, IDS, IDS, IDS)),
    st.tuples(st.just("movement"), st.tuples(IDS, IDS)),
)


def key_of(identity: Identity) -> bytes:
    kind, parts = identity
    if kind == "position":
        return state.position_key(*parts)
    event: SkuEvent = line_event(*parts) if kind == "line" else stock_event(*parts)
    return state.record_key(event)


@NO_DEADLINE
@given(identities, identities)
def test_table_keys_are_injective(first: Identity, second: Identity) -> None:
    assert (key_of(first) == key_of(second)) == (first == second)


SEPARATORS = st.text(st.sampled_from("a1:\x00"), min_size=3, max_size=12)
"""Ids made of the characters key formats use as separators and length digits."""


@NO_DEADLINE
@given(SEPARATORS, st.data())
def test_moving_the_boundary_between_the_sku_and_the_id_changes_the_key(
    joined: str, data: st.DataObject
) -> None:
    first, second = data.draw(
        st.lists(st.integers(1, len(joined) - 1), min_size=2, max_size=2, unique=True)
    )

    def movement(cut: int) -> bytes:
        return state.record_key(stock_event(joined[:cut], joined[cut:]))

    def line(cut: int) -> bytes:
        return state.record_key(line_event(joined[:cut], joined[cut:], "o", "l"))

    assert movement(first) != movement(second)
    assert line(first) != line(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(stock_event("a", "b\x00c"), stock_event("a\x00b", "c"), id="movements"),
        pytest.param(stock_event("a", "1:b"), stock_event("a1:", "b"), id="length-digits"),
        pytest.param(
            line_event("a", "\x002:tt1:o7:x", "o", "l"),
            line_event("a\x0011:", "tt", "o", "x1:o1:l"),
            id="lines",
        ),
    ],
)
def test_table_keys_stay_distinct_when_ids_hold_a_separator(
    first: SkuEvent, second: SkuEvent
) -> None:
    assert state.record_key(first) != state.record_key(second)


# --- values -----------------------------------------------------------------------------

warehouse_stock = st.builds(WarehouseStock, SMALL, COUNTS, COUNTS)
positions = st.builds(
    SkuPosition,
    sku=IDS,
    warehouses=st.dictionaries(IDS, warehouse_stock, max_size=3).map(
        lambda stocks: tuple(sorted(stocks.items()))
    ),
    committed=COUNTS,
    reserve=st.builds(SafetyReserve, COUNTS, st.integers(0, 100)),
    incoming=st.lists(st.builds(IncomingBatch, IDS, IDS, COUNTS, COUNTS), max_size=3).map(tuple),
    version=COUNTS,
    known=st.booleans(),
    seq=SEQS,
)


def line_records(previous: st.SearchStrategy[LineRecord | None]) -> st.SearchStrategy[LineRecord]:
    return st.builds(
        LineRecord,
        status=st.sampled_from(LineStatus),
        quantity=COUNTS,
        placed=st.none() | st.sampled_from(Outcome),
        reason=st.none() | st.sampled_from(RejectReason),
        paid=st.booleans(),
        seq=SEQS,
        previous=previous,
    )


records = st.one_of(
    st.builds(MovementRecord, seq=SEQS),
    line_records(st.none()),
    line_records(line_records(st.none())),  # as the replay guard stores them
    line_records(line_records(line_records(st.none()))),  # and deeper, should it ever
)


@NO_DEADLINE
@given(positions)
def test_a_position_round_trips(position: SkuPosition) -> None:
    decoded = state.decode_position(state.encode(position))

    assert decoded == position
    assert decoded.quantities() == position.quantities()


@NO_DEADLINE
@given(records)
def test_a_record_round_trips(record: LineRecord | MovementRecord) -> None:
    decoded = state.decode_record(state.encode(record))

    assert decoded == record
    assert type(decoded) is type(record)
    if isinstance(decoded, LineRecord):
        assert isinstance(decoded.status, LineStatus)


tallies = st.builds(
    OrderTally,
    line_count=st.integers(1, 1000),
    decided=st.lists(IDS, max_size=4).map(lambda ids: tuple(sorted(ids))),
    accepted=st.lists(st.builds(AcceptedLine, IDS, IDS), max_size=3).map(tuple),
    released=st.lists(st.builds(AcceptedLine, IDS, IDS), max_size=3).map(tuple),
    failed=st.booleans(),
    seq=SEQS,
)


@NO_DEADLINE
@given(tallies)
def test_an_order_tally_round_trips(tally: OrderTally) -> None:
    assert state.decode_tally(state.encode(tally)) == tally


def test_a_fresh_position_round_trips_with_its_defaults() -> None:
    position = SkuPosition("CASE/12 ☃")

    assert state.decode_position(state.encode(position)) == position


def test_line_events_key_by_their_line_not_their_event_id(events: EventFactory) -> None:
    placed: OrderLineEvent = events.placed(event_id="same")
    other_line: OrderLineEvent = events.placed(event_id="same", line_id="l-2")

    assert state.record_key(placed) != state.record_key(other_line)
