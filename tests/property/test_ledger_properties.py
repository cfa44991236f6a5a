"""The ledger's invariants over random event logs (see ``ledger_logs``): no oversell, no
double count, conservation of on hand, idempotency under redelivery, determinism."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sync_worker.domain.events import (
    InspectionResult,
    OrderLinePlaced,
    OrderLineReturnInspected,
    OrderLineReturnReceived,
    OrderLineShipped,
    Outcome,
    RejectReason,
    SkuEvent,
    StockAdjusted,
    StockCounted,
    StockEvent,
    StockReceived,
    StockTransferredIn,
    StockTransferredOut,
    StockUnavailableChanged,
)
from sync_worker.domain.position import SkuPosition
from sync_worker.domain.records import HOLDS_STOCK, SHIPPED_OR_LATER, LineRecord, LineStatus, Record
from sync_worker.streaming import codecs, state
from tests.property.ledger_logs import (
    PROPERTY_SETTINGS,
    WAREHOUSES,
    Books,
    Line,
    Log,
    line_life,
    line_of,
    logs,
    replay,
    run,
    split_shipment,
)


@pytest.fixture(scope="module")
def decoder() -> codecs.SkuEventDecoder:
    """Immutable once built; shared so Hypothesis does not recompile schemas per example."""
    return codecs.SkuEventDecoder()


# --- no oversell --------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(logs())
def test_sellable_is_never_negative_and_no_acceptance_commits_beyond_what_exists(
    log: Log,
) -> None:
    for applied in replay(log.delivered, Books()):
        before, after = applied.before, applied.step.position
        assert after.sellable >= 0
        assert after.committed >= 0
        if applied.step.level is not None:
            assert applied.step.level.sellable == after.sellable
        if after.committed > before.committed:  # only an acceptance commits units
            decision = applied.step.decision
            assert decision is not None
            assert decision.outcome is Outcome.ACCEPTED
            # ... of what the line has not shipped before its placement arrived
            record = applied.record
            early = record.shipped if isinstance(record, LineRecord) else 0
            committed = after.committed - before.committed
            assert decision.quantity - early == committed <= before.sellable
            assert after.oversold == 0
            assert applied.step.oversold_units == 0


def oversold_by_a_late_placement() -> Log:
    """Committed 8 of 10, a count finds 5, then a line ships before it is placed."""
    first = Line("lipstick", "tiktok", "o-1", "l-1", 4, "main")
    second = Line("lipstick", "tiktok", "o-1", "l-2", 4, "main")
    third = Line("lipstick", "tiktok", "o-2", "l-1", 2, "main")
    events: tuple[SkuEvent, ...] = (
        StockCounted(event_id="c1", sku="lipstick", event_time_ms=0, actor="w", quantity=10),
        line_life(first, "p1", "placed", InspectionResult.RESTOCK),
        line_life(second, "p2", "placed", InspectionResult.RESTOCK),
        StockCounted(event_id="c2", sku="lipstick", event_time_ms=0, actor="w", quantity=5),
        line_life(third, "s3", "shipped", InspectionResult.RESTOCK),
        line_life(third, "p3", "placed", InspectionResult.RESTOCK),
    )
    return Log(events, events)


@PROPERTY_SETTINGS
@given(logs())
@example(oversold_by_a_late_placement())
def test_no_step_reports_oversold_units(log: Log) -> None:
    for applied in replay(log.delivered, Books()):
        assert applied.step.oversold_units == 0


# --- no double count ----------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(logs())
def test_committed_is_exactly_the_units_of_the_lines_holding_stock(log: Log) -> None:
    books = Books()
    for applied in replay(log.delivered, books):
        sku = applied.event.sku
        assert books.positions[sku].committed == books.committed_by_lines(sku)
        record = books.records[state.record_key(applied.event)]
        if isinstance(record, LineRecord) and record.status not in HOLDS_STOCK:
            assert record.quantity == 0


@PROPERTY_SETTINGS
@given(logs())
def test_each_line_is_accepted_at_most_once_and_every_placement_is_answered(log: Log) -> None:
    first_answer: dict[tuple[str, str], tuple[Outcome, RejectReason | None]] = {}
    accepted: Counter[tuple[str, str]] = Counter()
    for applied in replay(log.delivered, Books()):
        decision = applied.step.decision
        if not isinstance(applied.event, OrderLinePlaced):
            assert decision is None
            continue
        assert decision is not None
        line = line_of(applied.event)
        if decision.outcome is Outcome.DUPLICATE:
            assert (decision.original_outcome, decision.reason) == first_answer[line]
            continue
        assert line not in first_answer  # decided once; every later answer is a duplicate
        first_answer[line] = (decision.outcome, decision.reason)
        accepted[line] += decision.outcome is Outcome.ACCEPTED
    assert all(count <= 1 for count in accepted.values())


# --- conservation -------------------------------------------------------------------------


def decreased(on_hand: int, amount: int) -> int:
    """A correction or transfer out stops at 0, and never adds units to a warehouse that
    shipments took below 0 already."""
    return max(on_hand - amount, min(on_hand, 0))


def expected_on_hand(before: SkuPosition, record: Record | None, event: SkuEvent) -> dict[str, int]:
    """Each warehouse's on hand after ``event``, from the written rules alone: only
    receipts, counts, adjustments, transfers, shipments (reported, each once by its event
    id, or implied by a return) and inspected returns move it, by exactly what they carry."""
    on_hand = {name: before.warehouse(name).on_hand for name in WAREHOUSES}
    line = record if isinstance(record, LineRecord) else None
    status = line.status if line is not None else LineStatus.PENDING
    shipments = line.shipments if line is not None else ()
    if isinstance(event, StockEvent) and record is not None:
        return on_hand  # a redelivery
    match event:
        case StockReceived() | StockTransferredIn():
            on_hand[event.warehouse] += event.quantity
        case StockCounted():
            on_hand[event.warehouse] = event.quantity
        case StockAdjusted() if event.delta >= 0:
            on_hand[event.warehouse] += event.delta
        case StockAdjusted():
            on_hand[event.warehouse] = decreased(on_hand[event.warehouse], -event.delta)
        case StockTransferredOut():
            on_hand[event.warehouse] = decreased(on_hand[event.warehouse], event.quantity)
        case OrderLineShipped() if (
            status not in SHIPPED_OR_LATER and event.event_id not in shipments
        ):
            on_hand[event.warehouse] -= event.quantity
        case OrderLineReturnReceived() if status not in RETURNED_ALREADY:
            on_hand[event.warehouse] -= implied_shipment(line, event.quantity)
        case OrderLineReturnInspected() if status is not LineStatus.RETURNED:
            on_hand[event.warehouse] += event.quantity - implied_shipment(line, event.quantity)
    return on_hand


RETURNED_ALREADY = (LineStatus.RETURN_PENDING, LineStatus.RETURNED)


def implied_shipment(line: LineRecord | None, returned: int) -> int:
    """A return proves a shipment nobody reported: of what the line still holds (the rest
    of a split shipment), or, before its placement arrived, of what came back beyond the
    parts shipped already."""
    if line is not None and line.status in HOLDS_STOCK:
        return line.quantity
    if line is None:
        return returned
    if line.status is LineStatus.PENDING:
        return max(0, returned - line.shipped)
    return 0


@PROPERTY_SETTINGS
@given(logs())
def test_on_hand_moves_only_through_the_events_that_carry_it(log: Log) -> None:
    for applied in replay(log.delivered, Books()):
        expected = expected_on_hand(applied.before, applied.record, applied.event)
        after = applied.step.position
        assert {name: after.warehouse(name).on_hand for name in WAREHOUSES} == expected
        assert {name for name, _ in after.warehouses} <= set(WAREHOUSES)


@PROPERTY_SETTINGS
@given(logs())
def test_unavailable_stays_within_zero_and_on_hand_when_it_is_changed(log: Log) -> None:
    for applied in replay(log.delivered, Books()):
        event = applied.event
        if isinstance(event, StockUnavailableChanged) and applied.step.level is not None:
            stock = applied.step.position.warehouse(event.warehouse)
            assert 0 <= stock.unavailable <= max(0, stock.on_hand)
        if applied.step.level is not None:
            assert applied.step.level.unavailable >= 0


# --- idempotency and determinism ----------------------------------------------------------


@PROPERTY_SETTINGS
@given(logs())
def test_delivering_any_event_again_yields_the_same_final_state(log: Log) -> None:
    once = run(log.once)

    assert run(log.delivered).final() == once.final()
    assert run([again for event in log.once for again in (event, event)]).final() == once.final()
    assert run([*log.once, *log.once]).final() == once.final()


def first_time_outputs(events: Sequence[SkuEvent]) -> list[object]:
    """What the world sees apart from the answers to redelivered placements."""
    outputs: list[object] = []
    for applied in replay(events, Books()):
        step = applied.step
        if step.decision is not None and step.decision.outcome is not Outcome.DUPLICATE:
            outputs.append(step.decision)
        outputs += [output for output in (step.level, step.audit, step.cancellation) if output]
    return outputs


@PROPERTY_SETTINGS
@given(logs())
def test_a_redelivery_emits_nothing_but_a_duplicate_answer(log: Log) -> None:
    assert first_time_outputs(log.delivered) == first_time_outputs(log.once)


@PROPERTY_SETTINGS
@given(log=logs())
def test_replaying_a_log_from_scratch_reproduces_every_step(
    log: Log, decoder: codecs.SkuEventDecoder
) -> None:
    first = [applied.step for applied in replay(log.delivered, Books())]
    second = [applied.step for applied in replay(log.delivered, Books())]
    over_the_wire = [applied.step for applied in replay(log.delivered, Books(), decoder)]

    assert second == first
    assert over_the_wire == first
    assert [
        codecs.encode(output)
        for step in over_the_wire
        for output in (step.decision, step.level, step.audit, step.cancellation)
        if output is not None
    ] == [
        codecs.encode(output)
        for step in first
        for output in (step.decision, step.level, step.audit, step.cancellation)
        if output is not None
    ]


# --- one line's life in any order ---------------------------------------------------------

NATURAL = ("placed", "paid", "shipped", "return_received", "return_inspected")


NATURAL_SPLIT = ("placed", "paid", "shipped-1", "shipped-2", "return_received", "return_inspected")
"""The same life, the line of two units shipped one unit at a time."""


def life_in_order(order: Sequence[str], result: InspectionResult) -> SkuPosition:
    line = Line("lipstick", "tiktok", "o-1", "l-1", 2, "main")
    count = StockCounted(event_id="c", sku="lipstick", event_time_ms=0, actor="w", quantity=10)
    first, second = split_shipment(line, ("e-s1", "e-s2"), 1)
    parts: dict[str, SkuEvent] = {"shipped-1": first, "shipped-2": second}
    events = [
        count,
        *(parts.get(kind) or line_life(line, f"e-{kind}", kind, result) for kind in order),
    ]
    return run(events).positions["lipstick"]


def without_version(position: SkuPosition) -> SkuPosition:
    return replace(position, version=0)


@PROPERTY_SETTINGS
@given(st.permutations(NATURAL), st.sampled_from(InspectionResult))
@example(
    ["return_received", "placed", "paid", "shipped", "return_inspected"], InspectionResult.RESTOCK
)
def test_a_lines_life_ends_the_same_whatever_order_it_arrives_in(
    order: list[str], result: InspectionResult
) -> None:
    """Placed, paid, shipped, returned and inspected in any order: a skipped step is
    implied, a step already passed changes nothing."""
    assert without_version(life_in_order(order, result)) == without_version(
        life_in_order(NATURAL, result)
    )


def placed_before_shipping(order: Sequence[str]) -> bool:
    return order.index("placed") < min(order.index("shipped-1"), order.index("shipped-2"))


@PROPERTY_SETTINGS
@given(
    st.permutations(NATURAL_SPLIT).filter(placed_before_shipping), st.sampled_from(InspectionResult)
)
@example(
    ["placed", "shipped-2", "return_received", "shipped-1", "paid", "return_inspected"],
    InspectionResult.DAMAGED,
)
def test_a_split_shipments_life_ends_the_same_whatever_order_it_arrives_in_once_placed(
    order: list[str], result: InspectionResult
) -> None:
    """Each part releases what it carries, a return implies the rest, a part arriving
    after the return changes nothing."""
    assert without_version(life_in_order(order, result)) == without_version(
        life_in_order(NATURAL_SPLIT, result)
    )


@PROPERTY_SETTINGS
@given(st.permutations(NATURAL_SPLIT), st.sampled_from(InspectionResult))
@example(
    ["shipped-1", "placed", "paid", "shipped-2", "return_received", "return_inspected"],
    InspectionResult.RESTOCK,
)
def test_a_split_shipments_life_ends_the_same_whatever_order_it_arrives_in(
    order: list[str], result: InspectionResult
) -> None:
    assert without_version(life_in_order(order, result)) == without_version(
        life_in_order(NATURAL_SPLIT, result)
    )
