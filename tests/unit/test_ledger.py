"""Every rule of ``ledger.apply`` (docs/ledger.md), one example each, with plain values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pytest

from sync_worker.domain.events import (
    STOCK_EVENTS,
    CancellationRequested,
    InspectionResult,
    OrderLineEvent,
    OrderLinePlaced,
    Outcome,
    RejectReason,
    SkuEvent,
    StockEvent,
    type_name,
)
from sync_worker.domain.ledger import DEFAULT_POLICY, LedgerPolicy, Step, apply
from sync_worker.domain.position import IncomingBatch, SafetyReserve, SkuPosition, WarehouseStock
from sync_worker.domain.records import LineRecord, LineStatus, MovementRecord, Record

if TYPE_CHECKING:
    from tests.unit.conftest import EventFactory, MakePosition

ACTOR = "tiktok:tiktok-room-1"
"""How order-line events are audited: platform:channel of the default line."""


def record_key(event: SkuEvent) -> tuple[str, str, str]:
    """Records are kept per SKU: per order line, or per stock movement's event id."""
    if isinstance(event, StockEvent):
        return (event.sku, "movement", event.event_id)
    return (event.sku, "line", event.line_key)


@dataclass
class Book:
    """Positions and records driven through ``apply`` the way the agent keeps them."""

    positions: dict[str, SkuPosition]
    policy: LedgerPolicy = DEFAULT_POLICY
    records: dict[tuple[str, str, str], Record] = field(default_factory=dict)

    def apply(self, event: SkuEvent) -> Step:
        key = record_key(event)
        position = self.positions.get(event.sku, SkuPosition(event.sku))
        step = apply(position, self.records.get(key), event, self.policy)
        self.positions[event.sku] = step.position
        if step.record is not None:
            self.records[key] = step.record
        return step

    @property
    def position(self) -> SkuPosition:
        (only,) = self.positions.values()
        return only

    def line(self, event: OrderLineEvent) -> Record | None:
        return self.records.get(record_key(event))


MakeBook = Callable[..., Book]


@pytest.fixture
def book() -> MakeBook:
    def make(*positions: SkuPosition, policy: LedgerPolicy = DEFAULT_POLICY) -> Book:
        return Book({position.sku: position for position in positions}, policy)

    return make


def assert_nothing_changed(step: Step, position: SkuPosition) -> None:
    assert step.position == position
    assert (step.level, step.audit, step.cancellation) == (None, None, None)


def assert_rejected(step: Step, event: OrderLinePlaced, reason: RejectReason) -> None:
    assert step.decision is not None
    assert (step.decision.outcome, step.decision.reason) == (Outcome.REJECTED, reason)
    assert step.cancellation == CancellationRequested(
        event_id=event.event_id,
        sku=event.sku,
        event_time_ms=event.event_time_ms,
        platform=event.platform,
        channel=event.channel,
        order_id=event.order_id,
        line_id=event.line_id,
        reason=reason,
    )
    assert (step.level, step.audit) == (None, None)


def accepted(quantity: int = 3, *, paid: bool = False) -> LineRecord:
    status = LineStatus.PAID if paid else LineStatus.ACCEPTED
    return LineRecord(status, quantity, placed=Outcome.ACCEPTED, paid=paid)


def shipped_line() -> LineRecord:
    return LineRecord(LineStatus.SHIPPED, placed=Outcome.ACCEPTED)


# --- placements -------------------------------------------------------------------------


def test_a_placement_within_sellable_is_accepted_and_commits_its_units(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(10)

    step = apply(position, None, events.placed(quantity=3))

    assert step.position == replace(position, committed=3, version=2)
    assert step.record == accepted(3)
    assert step.decision is not None
    assert (step.decision.outcome, step.decision.reason) == (Outcome.ACCEPTED, None)
    assert step.decision.original_outcome is None
    assert step.decision.position_version == 2
    assert step.cancellation is None
    assert step.level is not None
    assert (step.level.committed, step.level.sellable) == (3, 7)
    assert step.oversold_units == 0


def test_sellable_is_on_hand_minus_committed_reserve_and_unavailable(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(20, committed=3, reserve=SafetyReserve(units=2), unavailable=4)

    one_too_many = apply(position, None, events.placed(quantity=12, line_id="l-1"))
    all_of_it = apply(position, None, events.placed(quantity=11, line_id="l-2"))

    assert position.sellable == 20 - 3 - 2 - 4
    assert one_too_many.decision is not None
    assert one_too_many.decision.reason is RejectReason.INSUFFICIENT_STOCK
    assert all_of_it.decision is not None
    assert all_of_it.decision.outcome is Outcome.ACCEPTED
    assert all_of_it.position.sellable == 0
    assert all_of_it.oversold_units == 0


def test_a_decision_answers_the_line_it_decides(
    events: EventFactory, stocked: MakePosition
) -> None:
    event = events.placed(
        quantity=2, platform="douyin", channel="douyin-room-9", order_id="o-7", order_line_count=3
    )

    decision = apply(stocked(), None, event).decision

    assert decision is not None
    assert (decision.event_id, decision.sku, decision.event_time_ms) == (
        event.event_id,
        "lipstick",
        event.event_time_ms,
    )
    assert (decision.platform, decision.channel, decision.order_id, decision.line_id) == (
        "douyin",
        "douyin-room-9",
        "o-7",
        "l-1",
    )
    assert (decision.quantity, decision.order_line_count) == (2, 3)


def test_a_placement_beyond_sellable_is_rejected_insufficient_stock_with_a_cancellation_request(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(10, committed=8)
    event = events.placed(quantity=3)

    step = apply(position, None, event)

    assert_rejected(step, event, RejectReason.INSUFFICIENT_STOCK)
    assert step.position == position
    assert step.record == LineRecord(
        LineStatus.REJECTED, placed=Outcome.REJECTED, reason=RejectReason.INSUFFICIENT_STOCK
    )
    assert step.decision is not None
    assert step.decision.position_version == position.version


def test_a_placement_for_an_unknown_sku_is_rejected_with_a_cancellation_request(
    events: EventFactory,
) -> None:
    position = SkuPosition("lipstick")
    event = events.placed(quantity=1)

    step = apply(position, None, event)

    assert_rejected(step, event, RejectReason.UNKNOWN_SKU)
    assert step.position == position
    assert step.record == LineRecord(
        LineStatus.REJECTED, placed=Outcome.REJECTED, reason=RejectReason.UNKNOWN_SKU
    )


def test_a_count_of_zero_makes_the_sku_known_but_not_sellable(events: EventFactory) -> None:
    counted = apply(SkuPosition("lipstick"), None, events.counted(0))

    step = apply(counted.position, None, events.placed(quantity=1))

    assert counted.position.known
    assert step.decision is not None
    assert step.decision.reason is RejectReason.INSUFFICIENT_STOCK


@pytest.mark.parametrize(
    ("on_hand", "first_outcome", "reason"),
    [
        pytest.param(10, Outcome.ACCEPTED, None, id="accepted"),
        pytest.param(2, Outcome.REJECTED, RejectReason.INSUFFICIENT_STOCK, id="rejected"),
    ],
)
@pytest.mark.parametrize("resent", [False, True], ids=["redelivered", "resent-with-new-id"])
def test_a_duplicate_placement_is_answered_duplicate_with_the_original_outcome(
    events: EventFactory,
    book: MakeBook,
    stocked: MakePosition,
    on_hand: int,
    first_outcome: Outcome,
    reason: RejectReason | None,
    resent: bool,
) -> None:
    ledger = book(stocked(on_hand))
    placement = events.placed(quantity=3)
    first = ledger.apply(placement)

    again = ledger.apply(events.placed(quantity=3) if resent else placement)

    assert_nothing_changed(again, first.position)
    assert again.record == first.record
    assert again.decision is not None
    assert again.decision.outcome is Outcome.DUPLICATE
    assert again.decision.original_outcome is first_outcome
    assert again.decision.reason is reason
    assert again.decision.position_version == first.position.version
    assert again.oversold_units == 0


def test_a_rejected_line_stays_rejected_when_placed_again_after_a_restock(
    events: EventFactory, book: MakeBook, stocked: MakePosition
) -> None:
    ledger = book(stocked(2))
    placement = events.placed(quantity=5)
    ledger.apply(placement)
    ledger.apply(events.received(10))

    again = ledger.apply(placement)

    assert again.decision is not None
    assert again.decision.outcome is Outcome.DUPLICATE
    assert again.decision.original_outcome is Outcome.REJECTED
    assert ledger.position.committed == 0


def test_cancel_before_place_rejects_the_late_placement_already_cancelled(
    events: EventFactory, book: MakeBook, stocked: MakePosition
) -> None:
    position = stocked(10)
    ledger = book(position)
    placement = events.placed(quantity=3)

    early_cancel = ledger.apply(events.cancelled())
    late = ledger.apply(placement)
    redelivered = ledger.apply(placement)

    assert_nothing_changed(early_cancel, position)
    assert early_cancel.record == LineRecord(LineStatus.CANCELLED)
    assert late.decision is not None
    assert (late.decision.outcome, late.decision.reason) == (
        Outcome.REJECTED,
        RejectReason.ALREADY_CANCELLED,
    )
    assert late.cancellation is None  # the platform cancelled it itself
    assert_nothing_changed(late, position)
    assert late.record == LineRecord(
        LineStatus.REJECTED, placed=Outcome.REJECTED, reason=RejectReason.ALREADY_CANCELLED
    )
    assert redelivered.decision is not None
    assert redelivered.decision.outcome is Outcome.DUPLICATE
    assert redelivered.decision.original_outcome is Outcome.REJECTED
    assert ledger.position == position


def test_a_refund_before_place_also_rejects_the_late_placement(
    events: EventFactory, book: MakeBook, stocked: MakePosition
) -> None:
    ledger = book(stocked(10))
    ledger.apply(events.refunded())

    late = ledger.apply(events.placed(quantity=3))

    assert late.decision is not None
    assert late.decision.reason is RejectReason.ALREADY_CANCELLED


def test_a_late_placement_of_a_line_cancelled_before_it_was_placed_requests_no_cancellation(
    events: EventFactory, book: MakeBook, stocked: MakePosition
) -> None:
    ledger = book(stocked(2))
    ledger.apply(events.cancelled(line_id="l-1"))
    too_many = events.placed(quantity=3, line_id="l-2")

    late = ledger.apply(events.placed(quantity=1, line_id="l-1"))
    short = ledger.apply(too_many)

    assert late.decision is not None
    assert late.decision.reason is RejectReason.ALREADY_CANCELLED
    assert late.cancellation is None  # the platform cancelled that line itself
    assert_rejected(short, too_many, RejectReason.INSUFFICIENT_STOCK)  # other rejections ask


def test_paid_before_placed_then_the_placement_is_accepted_as_paid(
    events: EventFactory, book: MakeBook, stocked: MakePosition
) -> None:
    position = stocked(10)
    ledger = book(position)

    early_pay = ledger.apply(events.paid())
    late = ledger.apply(events.placed(quantity=3))

    assert_nothing_changed(early_pay, position)
    assert early_pay.record == LineRecord(LineStatus.PENDING, paid=True)
    assert late.decision is not None
    assert late.decision.outcome is Outcome.ACCEPTED
    assert late.record == accepted(3, paid=True)
    assert late.position.committed == 3


def test_paid_before_placed_is_still_decided_as_usual_and_may_be_rejected(
    events: EventFactory, book: MakeBook, stocked: MakePosition
) -> None:
    ledger = book(stocked(1))
    ledger.apply(events.paid())

    late = ledger.apply(events.placed(quantity=3))

    assert late.decision is not None
    assert late.decision.reason is RejectReason.INSUFFICIENT_STOCK
    assert late.record == LineRecord(
        LineStatus.REJECTED,
        placed=Outcome.REJECTED,
        reason=RejectReason.INSUFFICIENT_STOCK,
        paid=True,
    )


def test_shipped_before_placed_drops_on_hand_at_once_and_the_late_placement_commits_nothing(
    events: EventFactory, book: MakeBook, stocked: MakePosition
) -> None:
    ledger = book(stocked(2))

    shipment = events.shipped(quantity=2)
    early_ship = ledger.apply(shipment)
    late = ledger.apply(events.placed(quantity=2))

    assert (early_ship.position.on_hand, early_ship.position.committed) == (0, 0)
    assert early_ship.position.version == 2
    # Pending still: the late placement tells whether more of the line is to ship.
    assert early_ship.record == LineRecord(
        LineStatus.PENDING, shipments=(shipment.event_id,), shipped=2
    )
    # Accepted although nothing is sellable now: the units it bought have already left.
    assert late.decision is not None
    assert late.decision.outcome is Outcome.ACCEPTED
    assert late.decision.position_version == 2
    assert late.record == LineRecord(
        LineStatus.SHIPPED, placed=Outcome.ACCEPTED, shipments=(shipment.event_id,)
    )
    assert_nothing_changed(late, early_ship.position)


# --- the rest of an order line's life ---------------------------------------------------


def test_paid_marks_the_line_paid_and_changes_no_stock(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(10, committed=3)

    step = apply(position, accepted(3), events.paid())

    assert_nothing_changed(step, position)
    assert step.record == accepted(3, paid=True)
    assert step.decision is None


def test_paid_twice_changes_nothing_the_second_time(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(10, committed=3)
    record = accepted(3, paid=True)

    step = apply(position, record, events.paid())

    assert step == Step(position, record)


def test_paid_after_shipping_only_marks_the_line_paid(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(7)

    step = apply(position, shipped_line(), events.paid())

    assert_nothing_changed(step, position)
    assert step.record == replace(shipped_line(), paid=True)


@pytest.mark.parametrize("paid", [False, True], ids=["accepted", "paid"])
@pytest.mark.parametrize("kind", ["cancelled", "refunded"])
def test_cancel_or_refund_before_ship_releases_committed(
    events: EventFactory, stocked: MakePosition, kind: str, paid: bool
) -> None:
    position = stocked(10, committed=3)
    event = getattr(events, kind)()

    step = apply(position, accepted(3, paid=paid), event)

    assert step.position == replace(position, committed=0, version=2)
    assert step.record == LineRecord(
        LineStatus.CANCELLED, quantity=0, placed=Outcome.ACCEPTED, paid=paid
    )
    assert step.level is not None
    assert (step.level.committed, step.level.sellable) == (0, 10)
    assert step.audit is not None
    assert (step.audit.reason, step.audit.actor) == (event.reason, ACTOR)


@pytest.mark.parametrize("kind", ["cancelled", "refunded"])
@pytest.mark.parametrize(
    "status", [LineStatus.SHIPPED, LineStatus.RETURN_PENDING, LineStatus.RETURNED]
)
def test_cancel_or_refund_after_ship_changes_no_stock(
    events: EventFactory, stocked: MakePosition, kind: str, status: LineStatus
) -> None:
    position = stocked(7)
    record = LineRecord(status, placed=Outcome.ACCEPTED)

    step = apply(position, record, getattr(events, kind)())

    assert step == Step(position, record)


@pytest.mark.parametrize("kind", ["cancelled", "refunded"])
def test_cancel_or_refund_of_a_rejected_line_changes_nothing(
    events: EventFactory, stocked: MakePosition, kind: str
) -> None:
    position = stocked(1)
    record = LineRecord(
        LineStatus.REJECTED, placed=Outcome.REJECTED, reason=RejectReason.INSUFFICIENT_STOCK
    )

    assert apply(position, record, getattr(events, kind)()) == Step(position, record)


def test_cancel_twice_changes_nothing_the_second_time(
    events: EventFactory, book: MakeBook, stocked: MakePosition
) -> None:
    ledger = book(stocked(10))
    ledger.apply(events.placed(quantity=3))
    cancellation = events.cancelled()
    first = ledger.apply(cancellation)

    redelivered = ledger.apply(cancellation)
    resent = ledger.apply(events.cancelled())

    for step in (redelivered, resent):
        assert step == Step(first.position, first.record)


def test_a_cancel_naming_another_sku_releases_nothing_there(
    events: EventFactory, book: MakeBook, stocked: MakePosition
) -> None:
    ledger = book(stocked(10, sku="lipstick"), stocked(10, sku="mascara"))
    ledger.apply(events.placed(quantity=3, sku="lipstick"))

    wrong = ledger.apply(events.cancelled(sku="mascara"))
    right = ledger.apply(events.cancelled(sku="lipstick"))

    assert wrong.position == stocked(10, sku="mascara")
    assert wrong.record == LineRecord(LineStatus.CANCELLED)
    assert right.position.committed == 0
    assert ledger.positions["mascara"].sellable == ledger.positions["lipstick"].sellable == 10


@pytest.mark.parametrize("paid", [False, True], ids=["accepted", "paid"])
def test_ship_drops_on_hand_and_committed(
    events: EventFactory, stocked: MakePosition, paid: bool
) -> None:
    position = stocked(10, committed=3)
    shipment = events.shipped(quantity=3)

    step = apply(position, accepted(3, paid=paid), shipment)

    assert step.position == replace(
        position, warehouses=(("main", WarehouseStock(7)),), committed=0, version=2
    )
    assert step.record == LineRecord(
        LineStatus.SHIPPED,
        quantity=0,
        placed=Outcome.ACCEPTED,
        paid=paid,
        shipments=(shipment.event_id,),
    )
    assert step.position.sellable == 7
    assert step.audit is not None
    assert (step.audit.reason, step.audit.actor) == ("shipped", ACTOR)


def test_ship_takes_the_units_from_the_warehouse_it_names(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(5, committed=2, others=[("east", WarehouseStock(5))])

    step = apply(position, accepted(2), events.shipped(quantity=2, warehouse="east"))

    assert step.position.warehouse("east") == WarehouseStock(3)
    assert step.position.warehouse("main") == WarehouseStock(5)
    assert (step.position.on_hand, step.position.committed) == (8, 0)


def test_ship_twice_ships_once(events: EventFactory, book: MakeBook, stocked: MakePosition) -> None:
    ledger = book(stocked(10))
    ledger.apply(events.placed(quantity=3))
    shipment = events.shipped(quantity=3)
    first = ledger.apply(shipment)

    redelivered = ledger.apply(shipment)
    resent = ledger.apply(events.shipped(quantity=3))

    for step in (redelivered, resent):
        assert step == Step(first.position, first.record)
    assert ledger.position.on_hand == 7


@pytest.mark.parametrize("paid", [False, True], ids=["accepted", "paid"])
@pytest.mark.parametrize(
    ("rest", "on_hand"), [(2, 7), (4, 5)], ids=["the-rest", "more-than-the-rest"]
)
def test_split_shipments_release_what_each_carries_and_apply_once_per_event_id(
    events: EventFactory,
    book: MakeBook,
    stocked: MakePosition,
    paid: bool,
    rest: int,
    on_hand: int,
) -> None:
    ledger = book(stocked(10))
    ledger.apply(events.placed(quantity=3))
    if paid:
        ledger.apply(events.paid())
    first, second = events.shipped(quantity=1), events.shipped(quantity=rest)

    part = ledger.apply(first)
    redelivered = ledger.apply(first)
    done = ledger.apply(second)
    after_done = ledger.apply(events.shipped(quantity=1))

    assert (part.position.on_hand, part.position.committed) == (9, 2)
    assert part.record == replace(accepted(2, paid=paid), shipments=(first.event_id,))
    assert part.level is not None
    assert redelivered == Step(part.position, part.record)
    # On hand drops by all a shipment carries; committed only by what the line held.
    assert (done.position.on_hand, done.position.committed) == (on_hand, 0)
    assert done.record == LineRecord(
        LineStatus.SHIPPED,
        placed=Outcome.ACCEPTED,
        paid=paid,
        shipments=(first.event_id, second.event_id),
    )
    assert after_done == Step(done.position, done.record)
    # A return implies the shipment of whatever the line still holds.
    returned = book(stocked(10))
    returned.apply(events.placed(quantity=3, line_id="l-2"))
    returned.apply(events.shipped(quantity=1, line_id="l-2"))
    back = returned.apply(events.return_received(quantity=3, line_id="l-2"))
    assert back.position.warehouse("main") == WarehouseStock(7, returns_pending=3)
    assert back.position.committed == 0


def test_split_shipments_before_the_placement_each_take_their_units_off_hand(
    events: EventFactory, book: MakeBook, stocked: MakePosition
) -> None:
    ledger = book(stocked(10))
    ledger.apply(events.shipped(quantity=1))

    second = ledger.apply(events.shipped(quantity=2))
    late = ledger.apply(events.placed(quantity=3))

    assert second.position.on_hand == 7
    assert (late.position.on_hand, late.position.committed) == (7, 0)


def test_a_placement_after_part_of_its_line_shipped_commits_only_the_rest(
    events: EventFactory, book: MakeBook, stocked: MakePosition
) -> None:
    ledger = book(stocked(10))
    part = events.shipped(quantity=1)
    ledger.apply(part)
    ledger.apply(part)  # redelivered: taken off hand once

    late = ledger.apply(events.placed(quantity=3))
    rest = ledger.apply(events.shipped(quantity=2))

    assert late.decision is not None
    assert late.decision.outcome is Outcome.ACCEPTED
    assert (late.position.on_hand, late.position.committed) == (9, 2)
    assert late.record == LineRecord(
        LineStatus.ACCEPTED, quantity=2, placed=Outcome.ACCEPTED, shipments=(part.event_id,)
    )
    assert (rest.position.on_hand, rest.position.committed) == (7, 0)
    assert isinstance(rest.record, LineRecord)
    assert rest.record.status is LineStatus.SHIPPED


def test_a_return_before_the_placement_implies_only_the_units_no_part_shipped(
    events: EventFactory, book: MakeBook, stocked: MakePosition
) -> None:
    ledger = book(stocked(10))
    ledger.apply(events.shipped(quantity=1))

    back = ledger.apply(events.return_received(quantity=3))
    late = ledger.apply(events.placed(quantity=3))

    assert back.position.warehouse("main") == WarehouseStock(7, returns_pending=3)
    assert (late.position.on_hand, late.position.committed) == (7, 0)


def test_return_received_puts_the_units_in_returns_pending(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(7)

    step = apply(position, shipped_line(), events.return_received(quantity=2))

    assert step.position.warehouse("main") == WarehouseStock(7, returns_pending=2)
    assert (step.position.on_hand, step.position.returns_pending) == (7, 2)
    assert step.position.sellable == 7
    assert step.record == LineRecord(LineStatus.RETURN_PENDING, placed=Outcome.ACCEPTED)
    assert step.audit is not None
    assert step.audit.reason == "return_received"


@pytest.mark.parametrize("paid", [False, True], ids=["accepted", "paid"])
def test_return_received_before_shipped_implies_the_shipment(
    events: EventFactory, stocked: MakePosition, paid: bool
) -> None:
    position = stocked(10, committed=3)

    step = apply(position, accepted(3, paid=paid), events.return_received(quantity=3))

    assert step.position.warehouse("main") == WarehouseStock(7, returns_pending=3)
    assert step.position.committed == 0
    assert step.position.version == 2  # one change, however many steps it implies
    assert step.record == LineRecord(LineStatus.RETURN_PENDING, placed=Outcome.ACCEPTED, paid=paid)


@pytest.mark.parametrize("status", [LineStatus.RETURN_PENDING, LineStatus.RETURNED])
def test_return_received_twice_or_after_inspection_changes_nothing(
    events: EventFactory, stocked: MakePosition, status: LineStatus
) -> None:
    position = stocked(7, returns_pending=2)
    record = LineRecord(status, placed=Outcome.ACCEPTED)

    assert apply(position, record, events.return_received(quantity=2)) == Step(position, record)


def test_return_inspected_restock_puts_the_units_back_on_hand(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(7, returns_pending=2)
    record = LineRecord(LineStatus.RETURN_PENDING, placed=Outcome.ACCEPTED)

    step = apply(position, record, events.return_inspected(quantity=2))

    assert step.position.warehouse("main") == WarehouseStock(9)
    assert step.position.sellable == 9
    assert step.record == LineRecord(LineStatus.RETURNED, placed=Outcome.ACCEPTED)
    assert step.audit is not None
    assert step.audit.reason == "return_restock"


def test_return_inspected_damaged_puts_the_units_on_hand_and_unavailable(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(7, returns_pending=2)
    record = LineRecord(LineStatus.RETURN_PENDING, placed=Outcome.ACCEPTED)

    step = apply(
        position, record, events.return_inspected(quantity=2, result=InspectionResult.DAMAGED)
    )

    assert step.position.warehouse("main") == WarehouseStock(9, unavailable=2)
    assert step.position.sellable == 7
    assert step.audit is not None
    assert step.audit.reason == "return_damaged"


def test_return_inspected_without_received_implies_the_receipt(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(7)

    step = apply(position, shipped_line(), events.return_inspected(quantity=2))

    assert step.position.warehouse("main") == WarehouseStock(9)
    assert step.record == LineRecord(LineStatus.RETURNED, placed=Outcome.ACCEPTED)


def test_return_inspected_before_shipped_implies_the_shipment_and_the_receipt(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(10, committed=3)

    step = apply(position, accepted(3), events.return_inspected(quantity=3))

    assert step.position.warehouse("main") == WarehouseStock(10)
    assert step.position.committed == 0
    assert step.position.version == 2
    assert step.record == LineRecord(LineStatus.RETURNED, placed=Outcome.ACCEPTED)


def test_return_inspected_twice_changes_nothing(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(9)
    record = LineRecord(LineStatus.RETURNED, placed=Outcome.ACCEPTED)

    assert apply(position, record, events.return_inspected(quantity=2)) == Step(position, record)


def test_a_late_shipment_after_the_return_changes_nothing(
    events: EventFactory, book: MakeBook, stocked: MakePosition
) -> None:
    ledger = book(stocked(10))
    ledger.apply(events.placed(quantity=3))
    ledger.apply(events.return_received(quantity=3))
    ledger.apply(events.return_inspected(quantity=3))
    settled = ledger.position

    late = ledger.apply(events.shipped(quantity=3))

    assert_nothing_changed(late, settled)
    assert settled.quantities() == {**stocked(10).quantities()}


@pytest.mark.parametrize("early", ["return_received", "return_inspected"])
def test_a_return_that_overtakes_its_placement_implies_the_shipment(
    events: EventFactory, book: MakeBook, stocked: MakePosition, early: str
) -> None:
    in_order = book(stocked(10))
    reordered = book(stocked(10))
    life = [
        events.placed(quantity=2),
        events.shipped(quantity=2),
        events.return_received(quantity=2),
        events.return_inspected(quantity=2),
    ]
    first = next(event for event in life if event.type == f"order_line.{early}")

    for event in life:
        in_order.apply(event)
    steps = [reordered.apply(event) for event in [first, *(e for e in life if e is not first)]]

    assert in_order.position.on_hand == 10
    assert reordered.position.quantities() == in_order.position.quantities()
    late_placement = steps[1]
    assert late_placement.decision is not None
    assert late_placement.decision.outcome is Outcome.ACCEPTED
    assert late_placement.level is None  # the units it bought had left and come back


def test_return_received_before_placed_implies_a_shipment_of_the_returned_units(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(10)

    step = apply(position, None, events.return_received(quantity=2))

    assert step.position.warehouse("main") == WarehouseStock(8, returns_pending=2)
    assert step.record == LineRecord(LineStatus.RETURN_PENDING)


@pytest.mark.parametrize(
    "record",
    [
        LineRecord(LineStatus.REJECTED, placed=Outcome.REJECTED),
        LineRecord(LineStatus.CANCELLED, placed=Outcome.ACCEPTED),
    ],
    ids=["rejected", "cancelled-after-accepted"],
)
def test_a_return_of_a_line_that_never_shipped_and_holds_nothing_implies_no_shipment(
    events: EventFactory, stocked: MakePosition, record: LineRecord
) -> None:
    """As ``ledger._implied_shipment`` decides: only a line that holds stock, or whose
    placement has not arrived, has a shipment to imply."""
    step = apply(stocked(10), record, events.return_received(quantity=2))

    assert step.position.warehouse("main") == WarehouseStock(10, returns_pending=2)


# --- stock movements --------------------------------------------------------------------


def test_received_adds_to_the_warehouse_on_hand(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(10, committed=4)

    step = apply(position, None, events.received(5, warehouse="east"))

    assert step.position.warehouse("east") == WarehouseStock(5)
    assert step.position.warehouse("main") == WarehouseStock(10)
    assert (step.position.on_hand, step.position.sellable) == (15, 11)
    assert step.record == MovementRecord()
    assert step.audit is not None
    assert (step.audit.reason, step.audit.actor) == ("received", "warehouse")


def test_received_with_a_batch_id_closes_the_announced_batch(
    events: EventFactory, stocked: MakePosition
) -> None:
    batches = (IncomingBatch("b-1", "east", 40, 5), IncomingBatch("b-2", "main", 10, 9))
    position = stocked(0, incoming=batches)

    closing = apply(position, None, events.received(38, batch_id="b-1", warehouse="east"))
    plain = apply(position, None, events.received(38, warehouse="east"))
    unknown = apply(position, None, events.received(38, batch_id="b-9", warehouse="east"))

    assert closing.position.incoming == (batches[1],)
    assert closing.position.incoming_units == 10
    assert closing.position.warehouse("east").on_hand == 38
    assert plain.position.incoming == unknown.position.incoming == batches


def test_counted_sets_the_warehouses_on_hand(events: EventFactory, stocked: MakePosition) -> None:
    position = stocked(10, committed=3, others=[("east", WarehouseStock(4))])

    step = apply(position, None, events.counted(7))

    assert step.position.warehouse("main") == WarehouseStock(7)
    assert step.position.warehouse("east") == WarehouseStock(4)
    assert (step.position.on_hand, step.position.committed) == (11, 3)
    assert step.audit is not None
    assert step.audit.reason == "counted"
    assert (step.audit.before["on_hand"], step.audit.after["on_hand"]) == (14, 11)


def test_a_count_below_what_is_committed_leaves_nothing_sellable(
    events: EventFactory, stocked: MakePosition
) -> None:
    short = apply(stocked(10, committed=6), None, events.counted(4))

    step = apply(short.position, None, events.placed(quantity=1, line_id="l-9"))

    assert short.position.sellable == 0
    assert short.position.oversold == 2
    assert step.decision is not None
    assert step.decision.reason is RejectReason.INSUFFICIENT_STOCK


@pytest.mark.parametrize(("delta", "after"), [(3, 13), (-4, 6), (-10, 0), (-15, 0)])
def test_adjusted_moves_on_hand_by_delta_with_its_reason_never_below_zero(
    events: EventFactory, stocked: MakePosition, delta: int, after: int
) -> None:
    step = apply(stocked(10), None, events.adjusted(delta, reason="lost"))

    assert step.position.warehouse("main").on_hand == after
    assert step.audit is not None
    assert step.audit.reason == "lost"


@pytest.mark.parametrize(("delta", "after"), [(3, 5), (8, 10), (20, 10), (-1, 1), (-5, 0)])
def test_unavailable_changed_is_clamped_between_zero_and_on_hand(
    events: EventFactory, stocked: MakePosition, delta: int, after: int
) -> None:
    position = stocked(10, unavailable=2)

    step = apply(position, None, events.unavailable_changed(delta, reason="qc_hold"))

    assert step.position.warehouse("main") == WarehouseStock(10, unavailable=after)
    assert step.position.sellable == 10 - after
    assert step.audit is not None
    assert step.audit.reason == "qc_hold"


@pytest.mark.parametrize(("quantity", "after"), [(4, 6), (10, 0), (15, 0)])
def test_transferred_out_removes_on_hand_never_below_zero(
    events: EventFactory, stocked: MakePosition, quantity: int, after: int
) -> None:
    step = apply(stocked(10), None, events.transferred_out(quantity))

    assert step.position.warehouse("main").on_hand == after
    assert step.audit is not None
    assert step.audit.reason == "transferred_out"


def test_transferred_in_adds_to_the_receiving_warehouse(
    events: EventFactory, stocked: MakePosition
) -> None:
    step = apply(stocked(10), None, events.transferred_in(4, warehouse="east"))

    assert step.position.warehouse("east") == WarehouseStock(4)
    assert step.position.on_hand == 14
    assert step.audit is not None
    assert step.audit.reason == "transferred_in"


def test_incoming_announced_adds_a_batch_and_the_same_batch_id_updates_it_in_place(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(10)

    first = apply(position, None, events.incoming_announced(40, batch_id="b-1", eta_ms=100))
    other = apply(first.position, None, events.incoming_announced(5, batch_id="b-2", eta_ms=50))
    revised = apply(other.position, None, events.incoming_announced(30, batch_id="b-1", eta_ms=200))

    assert first.position.incoming == (IncomingBatch("b-1", "main", 40, 100),)
    assert revised.position.incoming == (
        IncomingBatch("b-1", "main", 30, 200),
        IncomingBatch("b-2", "main", 5, 50),
    )
    assert revised.position.incoming_units == 35
    assert revised.position.on_hand == revised.position.sellable == 10
    assert revised.level is not None
    assert revised.level.incoming == 35


@pytest.mark.parametrize(
    ("units", "percent", "on_hand", "reserve"),
    [
        pytest.param(0, 0, 100, 0, id="none"),
        pytest.param(3, 0, 100, 3, id="units"),
        pytest.param(0, 10, 100, 10, id="percent"),
        pytest.param(3, 10, 100, 10, id="percent-larger"),
        pytest.param(20, 10, 100, 20, id="units-larger"),
        pytest.param(0, 10, 5, 1, id="percent-rounds-up-a-half"),
        pytest.param(0, 5, 21, 2, id="percent-rounds-up-a-twentieth"),
        pytest.param(0, 100, 7, 7, id="all-of-it"),
        pytest.param(0, 10, 0, 0, id="percent-of-nothing"),
    ],
)
def test_safety_reserve_units_or_percent_of_on_hand_whichever_is_larger(
    events: EventFactory,
    stocked: MakePosition,
    units: int,
    percent: int,
    on_hand: int,
    reserve: int,
) -> None:
    # A reserve none of the cases sets: setting the reserve a SKU has already changes nothing.
    position = stocked(on_hand, reserve=SafetyReserve(units=1, percent=1))

    step = apply(position, None, events.safety_reserve_changed(units=units, percent=percent))

    assert step.position.reserve == SafetyReserve(units, percent)
    assert step.position.safety_reserve == reserve
    assert step.position.sellable == max(0, on_hand - reserve)
    assert step.level is not None
    assert step.level.safety_reserve == reserve
    assert step.audit is not None
    assert step.audit.reason == "safety_reserve_changed"


def test_a_percent_reserve_follows_on_hand(events: EventFactory, stocked: MakePosition) -> None:
    position = stocked(100, reserve=SafetyReserve(percent=10))

    step = apply(position, None, events.received(1))

    assert (position.safety_reserve, step.position.safety_reserve) == (10, 11)


def test_the_safety_reserve_is_never_sold(
    events: EventFactory, book: MakeBook, stocked: MakePosition
) -> None:
    ledger = book(stocked(10, reserve=SafetyReserve(units=2)))

    too_many = ledger.apply(events.placed(quantity=9, line_id="l-1"))
    all_sellable = ledger.apply(events.placed(quantity=8, line_id="l-2"))
    one_more = ledger.apply(events.placed(quantity=1, line_id="l-3"))

    assert too_many.decision is not None
    assert too_many.decision.reason is RejectReason.INSUFFICIENT_STOCK
    assert all_sellable.decision is not None
    assert all_sellable.decision.outcome is Outcome.ACCEPTED
    assert one_more.decision is not None
    assert one_more.decision.reason is RejectReason.INSUFFICIENT_STOCK
    assert ledger.position.committed + 2 == ledger.position.on_hand


def test_the_first_stock_event_applies_the_policys_default_reserve(
    events: EventFactory, book: MakeBook
) -> None:
    policy = LedgerPolicy(default_reserve=SafetyReserve(units=1, percent=5))
    ledger = book(SkuPosition("lipstick"), policy=policy)

    first = ledger.apply(events.received(100))
    ledger.apply(events.safety_reserve_changed(units=2))
    later = ledger.apply(events.received(100))

    assert first.position.known
    assert first.position.reserve == SafetyReserve(units=1, percent=5)
    assert (first.position.safety_reserve, first.position.sellable) == (5, 95)
    assert later.position.reserve == SafetyReserve(units=2)  # not applied again


def test_a_first_stock_event_that_sets_the_reserve_wins_over_the_default(
    events: EventFactory,
) -> None:
    policy = LedgerPolicy(default_reserve=SafetyReserve(percent=5))

    step = apply(SkuPosition("lipstick"), None, events.safety_reserve_changed(units=4), policy)

    assert step.position.reserve == SafetyReserve(units=4)


def test_the_default_policy_keeps_no_reserve() -> None:
    assert DEFAULT_POLICY.default_reserve == SafetyReserve()
    assert LedgerPolicy().default_reserve == SafetyReserve()


@pytest.mark.parametrize("event_type", [type_name(cls) for cls in STOCK_EVENTS])
def test_a_redelivered_stock_event_changes_nothing(
    events: EventFactory, stocked: MakePosition, event_type: str
) -> None:
    (event,) = [event for event in events.every_input_type() if event.type == event_type]
    once = apply(stocked(10, committed=2), None, event)

    again = apply(once.position, once.record, event)

    assert once.position.version == 2
    assert again == Step(once.position, once.record)


def test_a_redelivered_count_does_not_undo_a_later_receipt(
    events: EventFactory, book: MakeBook
) -> None:
    ledger = book(SkuPosition("lipstick"))
    count = events.counted(10)
    ledger.apply(count)
    ledger.apply(events.received(5))

    ledger.apply(count)

    assert ledger.position.on_hand == 15


def test_a_stock_event_that_changes_nothing_bumps_no_version_and_announces_nothing(
    events: EventFactory, book: MakeBook, stocked: MakePosition
) -> None:
    ledger = book(stocked(10, unavailable=2))
    count = events.counted(10)
    confirmed = ledger.apply(count)
    ledger.apply(events.safety_reserve_changed(units=2))
    reserved = ledger.position

    same_reserve = ledger.apply(events.safety_reserve_changed(units=2))
    ledger.apply(events.received(5))
    redelivered = ledger.apply(count)

    assert confirmed == Step(stocked(10, unavailable=2), MovementRecord())
    assert same_reserve == Step(reserved, MovementRecord())
    assert reserved.version == 2
    # Recorded all the same: the redelivered count does not undo the later receipt.
    assert redelivered == Step(ledger.position, MovementRecord())
    assert (ledger.position.on_hand, ledger.position.version) == (15, 3)


def test_announcing_a_batch_again_exactly_as_it_stands_changes_nothing(
    events: EventFactory, stocked: MakePosition
) -> None:
    batches = (IncomingBatch("b-1", "main", 40, 100), IncomingBatch("b-2", "main", 5, 50))
    position = stocked(10, incoming=batches)

    step = apply(position, None, events.incoming_announced(40, batch_id="b-1", eta_ms=100))

    assert_nothing_changed(step, position)


def test_the_audit_before_of_a_skus_first_stock_event_is_the_untouched_position(
    events: EventFactory,
) -> None:
    policy = LedgerPolicy(default_reserve=SafetyReserve(units=2))
    untouched = SkuPosition("lipstick")

    step = apply(untouched, None, events.received(10), policy)

    assert step.audit is not None
    assert step.audit.before == untouched.quantities()
    assert step.audit.before["safety_reserve"] == 0  # no default reserve yet
    assert not untouched.known
    assert step.audit.after == step.position.quantities()
    assert (step.audit.after["safety_reserve"], step.audit.after["sellable"]) == (2, 8)


@pytest.mark.parametrize(("counted", "unavailable"), [(6, 4), (4, 4), (3, 3), (0, 0)], ids=str)
def test_a_count_keeps_unavailable_within_what_was_counted(
    events: EventFactory, stocked: MakePosition, counted: int, unavailable: int
) -> None:
    step = apply(stocked(10, unavailable=4), None, events.counted(counted))

    assert step.position.warehouse("main") == WarehouseStock(counted, unavailable=unavailable)
    assert step.position.sellable == counted - unavailable
    assert step.level is not None
    assert step.level.unavailable == unavailable


@pytest.mark.parametrize("kind", ["reserve", "incoming"])
def test_reserve_changes_and_incoming_announcements_add_no_warehouse_entry(
    events: EventFactory, stocked: MakePosition, kind: str
) -> None:
    def change() -> StockEvent:
        if kind == "reserve":
            return events.safety_reserve_changed(units=2, warehouse="east")
        return events.incoming_announced(5, warehouse="east")

    counted = apply(stocked(10), None, change())
    first = apply(SkuPosition("lipstick"), None, change())

    assert counted.position.warehouses == (("main", WarehouseStock(10)),)
    assert first.position.warehouses == ()
    assert first.position.known
    assert counted.level is not None  # a change all the same


def test_a_positions_quantities_sum_its_warehouses(stocked: MakePosition) -> None:
    position = stocked(
        10,
        unavailable=1,
        returns_pending=2,
        committed=4,
        reserve=SafetyReserve(units=1),
        others=[("east", WarehouseStock(6, 2, 1)), ("west", WarehouseStock(-1))],
        incoming=(IncomingBatch("b-1", "east", 7, 0), IncomingBatch("b-2", "main", 3, 0)),
    )

    assert position.quantities() == {
        "on_hand": 15,
        "committed": 4,
        "safety_reserve": 1,
        "unavailable": 3,
        "returns_pending": 3,
        "incoming": 10,
        "sellable": 15 - 4 - 1 - 3,
        "transferable": 15 - 4 - 1 - 3,
    }
    assert position.warehouse("north") == WarehouseStock()
    assert [name for name, _ in position.warehouses] == ["east", "main", "west"]


def test_a_position_replaces_a_warehouse_and_keeps_them_sorted() -> None:
    position = SkuPosition("lipstick").with_warehouse("main", WarehouseStock(3))

    moved = position.with_warehouse("east", WarehouseStock(1)).with_warehouse(
        "main", WarehouseStock(5)
    )

    assert moved.warehouses == (("east", WarehouseStock(1)), ("main", WarehouseStock(5)))


def test_sellable_and_oversold_never_go_below_zero(stocked: MakePosition) -> None:
    short = stocked(2, committed=5, reserve=SafetyReserve(units=1))

    assert (short.sellable, short.transferable, short.oversold) == (0, 0, 4)
    assert stocked(10, committed=5).oversold == 0


# --- versions, levels and audit records -------------------------------------------------

Scenario = Callable[["EventFactory"], tuple[Record | None, SkuEvent, str, str]]
"""A record and an event applied to ``stocked(10, committed=3)``, with the audit actor and
reason a change is expected to carry."""

CHANGES: dict[str, Scenario] = {
    "placement-accepted": lambda e: (None, e.placed(quantity=2), ACTOR, "order_line.placed"),
    "cancel-releases": lambda e: (accepted(3), e.cancelled(), ACTOR, "buyer_cancelled"),
    "refund-releases": lambda e: (accepted(3), e.refunded(), ACTOR, "buyer_request"),
    "shipped": lambda e: (accepted(3), e.shipped(quantity=3), ACTOR, "shipped"),
    "shipped-in-part": lambda e: (accepted(3), e.shipped(quantity=1), ACTOR, "shipped"),
    "ship-before-place": lambda e: (None, e.shipped(quantity=2), ACTOR, "shipped"),
    "return-received": lambda e: (
        shipped_line(),
        e.return_received(quantity=1),
        ACTOR,
        "return_received",
    ),
    "return-inspected": lambda e: (
        shipped_line(),
        e.return_inspected(quantity=1, result=InspectionResult.DAMAGED),
        ACTOR,
        "return_damaged",
    ),
    "received": lambda e: (None, e.received(4), "warehouse", "received"),
    "counted": lambda e: (None, e.counted(4, actor="ops-anna"), "ops-anna", "counted"),
    "adjusted": lambda e: (None, e.adjusted(-1, reason="sample"), "warehouse", "sample"),
    "unavailable": lambda e: (None, e.unavailable_changed(1), "warehouse", "qc_hold"),
    "transferred-out": lambda e: (None, e.transferred_out(1), "warehouse", "transferred_out"),
    "transferred-in": lambda e: (None, e.transferred_in(1), "warehouse", "transferred_in"),
    "incoming": lambda e: (None, e.incoming_announced(9), "warehouse", "incoming_announced"),
    "reserve": lambda e: (
        None,
        e.safety_reserve_changed(units=1),
        "warehouse",
        "safety_reserve_changed",
    ),
}

NO_CHANGES: dict[str, Callable[[EventFactory], tuple[Record | None, SkuEvent]]] = {
    "placement-rejected": lambda e: (None, e.placed(quantity=99)),
    "placement-duplicate": lambda e: (accepted(3), e.placed(quantity=3)),
    "late-placement-after-cancel": lambda e: (LineRecord(LineStatus.CANCELLED), e.placed()),
    "late-placement-after-ship": lambda e: (LineRecord(LineStatus.SHIPPED), e.placed()),
    "paid": lambda e: (accepted(3), e.paid()),
    "paid-before-place": lambda e: (None, e.paid()),
    "cancel-before-place": lambda e: (None, e.cancelled()),
    "cancel-again": lambda e: (
        LineRecord(LineStatus.CANCELLED, placed=Outcome.ACCEPTED),
        e.cancelled(),
    ),
    "cancel-after-ship": lambda e: (shipped_line(), e.refunded()),
    "ship-again": lambda e: (shipped_line(), e.shipped()),
    "split-shipment-redelivered": lambda e: (
        replace(accepted(2), shipments=("ev-part",)),
        e.shipped(event_id="ev-part"),
    ),
    "return-again": lambda e: (
        LineRecord(LineStatus.RETURN_PENDING, placed=Outcome.ACCEPTED),
        e.return_received(),
    ),
    "inspect-again": lambda e: (
        LineRecord(LineStatus.RETURNED, placed=Outcome.ACCEPTED),
        e.return_inspected(),
    ),
    "stock-redelivered": lambda e: (MovementRecord(seq=4), e.received(4)),
    "count-confirms-the-books": lambda e: (None, e.counted(10)),
    "adjusted-by-nothing": lambda e: (None, e.adjusted(0)),
    "reserve-unchanged": lambda e: (None, e.safety_reserve_changed(units=0, percent=0)),
}


@pytest.mark.parametrize("scenario", CHANGES.values(), ids=CHANGES.keys())
def test_every_change_bumps_the_version_by_one_and_emits_a_level_and_an_audit_record(
    events: EventFactory, stocked: MakePosition, scenario: Scenario
) -> None:
    before = stocked(10, committed=3, version=5)
    record, event, actor, reason = scenario(events)

    step = apply(before, record, event)

    after = step.position
    assert after.version == 6
    assert step.level is not None
    assert step.level.version == 6
    assert (step.level.sku, step.level.cause_event_id, step.level.event_time_ms) == (
        "lipstick",
        event.event_id,
        event.event_time_ms,
    )
    level_quantities = {
        "on_hand": step.level.on_hand,
        "committed": step.level.committed,
        "safety_reserve": step.level.safety_reserve,
        "unavailable": step.level.unavailable,
        "returns_pending": step.level.returns_pending,
        "incoming": step.level.incoming,
        "sellable": step.level.sellable,
    }
    assert level_quantities == {
        name: value for name, value in after.quantities().items() if name != "transferable"
    }
    audit = step.audit
    assert audit is not None
    assert (audit.sku, audit.event_id, audit.event_type) == ("lipstick", event.event_id, event.type)
    assert (audit.actor, audit.reason) == (actor, reason)
    assert audit.before == before.quantities()
    assert audit.after == after.quantities()
    assert (audit.version, audit.event_time_ms) == (6, event.event_time_ms)
    if step.decision is not None:
        assert step.decision.position_version == 6


@pytest.mark.parametrize("scenario", NO_CHANGES.values(), ids=NO_CHANGES.keys())
def test_no_change_keeps_the_version_and_emits_no_level_and_no_audit_record(
    events: EventFactory,
    stocked: MakePosition,
    scenario: Callable[[EventFactory], tuple[Record | None, SkuEvent]],
) -> None:
    before = stocked(10, committed=3, version=5)
    record, event = scenario(events)

    step = apply(before, record, event)

    assert step.position == before
    assert (step.level, step.audit) == (None, None)
    if step.decision is not None:
        assert step.decision.position_version == 5


def test_a_late_placement_after_its_shipment_oversells_nothing(
    events: EventFactory, book: MakeBook, stocked: MakePosition
) -> None:
    ledger = book(stocked(10))
    ledger.apply(events.placed(quantity=8, line_id="l-1"))
    ledger.apply(events.counted(5))  # the shelf had less than we thought
    ledger.apply(events.shipped(quantity=2, line_id="l-2"))

    late = ledger.apply(events.placed(quantity=2, line_id="l-2"))

    assert late.decision is not None
    assert late.decision.outcome is Outcome.ACCEPTED
    assert late.position.committed == 8  # committed nothing new
    assert late.oversold_units == 0


@pytest.mark.parametrize(
    ("kind", "east"),
    [
        pytest.param("adjusted", WarehouseStock(-3), id="adjusted"),
        pytest.param("transferred_out", WarehouseStock(-3), id="transferred-out"),
        pytest.param("unavailable_changed", WarehouseStock(-3, unavailable=0), id="held"),
        pytest.param("found", WarehouseStock(-1), id="adjusted-up"),
    ],
)
def test_a_movement_out_of_a_warehouse_below_zero_never_adds_sellable_units(
    events: EventFactory, book: MakeBook, stocked: MakePosition, kind: str, east: WarehouseStock
) -> None:
    """Shipments can take a warehouse below 0 (shipped before counted, or more than was
    counted); a decrease then adds nothing, a hold holds nothing (so neither changes
    anything, and neither is announced), an increase adds what it says."""
    ledger = book(stocked(10))
    ledger.apply(events.shipped(quantity=3, warehouse="east"))
    before = ledger.position
    change = {
        "adjusted": lambda: events.adjusted(-1, warehouse="east"),
        "transferred_out": lambda: events.transferred_out(1, warehouse="east"),
        "unavailable_changed": lambda: events.unavailable_changed(1, warehouse="east"),
        "found": lambda: events.adjusted(2, reason="found", warehouse="east"),
    }[kind]()

    step = ledger.apply(change)

    assert (before.on_hand, before.sellable) == (7, 7)
    assert step.position.warehouse("east") == east
    assert step.position.sellable == max(0, step.position.on_hand)
    if east == before.warehouse("east"):
        assert_nothing_changed(step, before)
        assert step.record == MovementRecord()  # remembered, so a redelivery stays a no-op
    else:
        assert step.level is not None
        assert step.level.unavailable >= 0
