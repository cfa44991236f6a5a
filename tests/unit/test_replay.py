"""``replay.apply_at``: each event's effect lands once, however often it is delivered and
wherever a crash cuts the record and position writes (see ``domain.replay``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from sync_worker.domain.events import Outcome, RejectReason, SkuEvent
from sync_worker.domain.ledger import LedgerPolicy, Step, apply
from sync_worker.domain.position import SafetyReserve, SkuPosition
from sync_worker.domain.records import LineRecord, LineStatus, MovementRecord, Record
from sync_worker.domain.replay import Applied, apply_at

if TYPE_CHECKING:
    from tests.unit.conftest import EventFactory, MakePosition


def accepted(quantity: int, *, seq: int) -> LineRecord:
    return LineRecord(LineStatus.ACCEPTED, quantity, placed=Outcome.ACCEPTED, seq=seq)


# --- a new event ------------------------------------------------------------------------


def test_a_new_event_stamps_its_seq_on_the_position_and_the_record(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = stocked(10)

    applied = apply_at(7, position, None, events.placed(quantity=3))

    assert not applied.replayed
    assert applied.step.position == replace(position, committed=3, version=2, seq=7)
    assert applied.step.record == accepted(3, seq=7)
    assert applied.step.decision is not None
    assert applied.step.decision.outcome is Outcome.ACCEPTED
    assert applied.step.level is not None
    assert applied.step.audit is not None


def test_a_new_event_gives_the_ledgers_step_with_only_the_seqs_added(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = replace(stocked(10), seq=3)
    record = accepted(3, seq=2)
    event = events.shipped(quantity=3)
    plain = apply(position, record, event)

    stamped = apply_at(4, position, record, event).step

    assert stamped == replace(
        plain,
        position=replace(plain.position, seq=4),
        record=replace(plain.record, seq=4, previous=record),
    )


def test_the_record_remembers_the_record_before_it_one_level_deep(
    events: EventFactory, stocked: MakePosition
) -> None:
    placed = apply_at(1, stocked(10), None, events.placed(quantity=3)).step
    paid = apply_at(2, placed.position, placed.record, events.paid()).step

    shipped = apply_at(3, paid.position, paid.record, events.shipped(quantity=3)).step

    assert placed.record == accepted(3, seq=1)  # nothing before the first event
    assert isinstance(paid.record, LineRecord)
    assert paid.record.previous == placed.record
    assert isinstance(shipped.record, LineRecord)
    assert shipped.record.previous == replace(paid.record, previous=None)
    assert shipped.record.status is LineStatus.SHIPPED


def test_a_stock_event_stamps_its_movement_record(
    events: EventFactory, stocked: MakePosition
) -> None:
    applied = apply_at(5, stocked(10), None, events.received(4))

    assert applied.step.record == MovementRecord(seq=5)
    assert applied.step.position.seq == 5
    assert applied.step.position.on_hand == 14


def test_an_event_that_changes_nothing_still_moves_the_positions_seq(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = replace(stocked(10), seq=1)

    applied = apply_at(2, position, None, events.paid())

    assert applied.step.position == replace(position, seq=2)
    assert applied.step.record == LineRecord(LineStatus.PENDING, paid=True, seq=2)
    assert (applied.step.level, applied.step.audit) == (None, None)


def test_the_policy_reaches_the_ledger(events: EventFactory) -> None:
    policy = LedgerPolicy(default_reserve=SafetyReserve(percent=10))

    applied = apply_at(0, SkuPosition("lipstick"), None, events.received(50), policy)

    assert applied.step.position.safety_reserve == 5


def test_a_stock_event_redelivered_at_a_new_offset_changes_nothing(
    events: EventFactory, stocked: MakePosition
) -> None:
    receipt = events.received(4)
    first = apply_at(3, stocked(10), None, receipt).step

    again = apply_at(9, first.position, first.record, receipt)

    assert not again.replayed  # a new offset: the ledger's own dedup answers it
    assert again.step.record == first.record == MovementRecord(seq=3)  # not re-stamped
    assert again.step.position == replace(first.position, seq=9)
    assert again.step.position.on_hand == 14
    assert (again.step.level, again.step.audit) == (None, None)


# --- an event applied before ------------------------------------------------------------


@pytest.mark.parametrize("offset", [0, 1, 5], ids=["same-seq", "one-before", "long-before"])
def test_an_event_at_or_below_the_positions_seq_is_replayed_and_changes_nothing(
    events: EventFactory, stocked: MakePosition, offset: int
) -> None:
    receipt = events.received(4)
    first = apply_at(10, stocked(10), None, receipt).step

    again = apply_at(10 - offset, first.position, first.record, receipt)

    assert again == Applied(Step(first.position, first.record), replayed=True)


@pytest.mark.parametrize(
    ("on_hand", "outcome", "reason"),
    [
        pytest.param(10, Outcome.ACCEPTED, None, id="accepted"),
        pytest.param(1, Outcome.REJECTED, RejectReason.INSUFFICIENT_STOCK, id="rejected"),
    ],
)
def test_a_replayed_placement_gives_its_decision_again_from_the_record(
    events: EventFactory,
    stocked: MakePosition,
    on_hand: int,
    outcome: Outcome,
    reason: RejectReason | None,
) -> None:
    placement = events.placed(quantity=3)
    first = apply_at(4, stocked(on_hand), None, placement).step
    assert first.decision is not None

    again = apply_at(4, first.position, first.record, placement)

    assert again.replayed
    assert (again.step.position, again.step.record) == (first.position, first.record)
    assert again.step.decision == first.decision
    assert (again.step.decision.outcome, again.step.decision.reason) == (outcome, reason)
    assert (again.step.level, again.step.audit, again.step.cancellation) == (None, None, None)


def test_a_replayed_placement_answers_as_first_decided_even_after_later_events(
    events: EventFactory, stocked: MakePosition
) -> None:
    placement = events.placed(quantity=3)
    placed = apply_at(4, stocked(10), None, placement).step
    cancelled = apply_at(6, placed.position, placed.record, events.cancelled()).step

    again = apply_at(4, cancelled.position, cancelled.record, placement)

    assert again.replayed
    assert again.step.decision is not None
    assert again.step.decision.outcome is Outcome.ACCEPTED
    assert (again.step.position, again.step.record) == (cancelled.position, cancelled.record)


def test_a_replayed_event_other_than_a_placement_gives_no_decision(
    events: EventFactory, stocked: MakePosition
) -> None:
    placed = apply_at(1, stocked(10), None, events.placed(quantity=3)).step
    cancellation = events.cancelled()
    cancelled = apply_at(2, placed.position, placed.record, cancellation).step

    again = apply_at(2, cancelled.position, cancelled.record, cancellation)

    assert again == Applied(Step(cancelled.position, cancelled.record), replayed=True)


def test_a_replayed_accepted_placement_oversells_nothing(
    events: EventFactory, stocked: MakePosition
) -> None:
    placement = events.placed(quantity=8)
    placed = apply_at(1, stocked(10), None, placement).step
    short = apply_at(2, placed.position, None, events.counted(5)).step

    again = apply_at(1, short.position, placed.record, placement)

    assert again.replayed
    assert again.step.oversold_units == 0


# --- a crash between the record write and the position write ----------------------------

Stored = tuple[SkuPosition, Record | None, SkuEvent]
"""The position and the record as stored before the event, and the event itself."""

SEQ = 20


def _line(status: LineStatus, quantity: int = 0, **changes: object) -> LineRecord:
    return replace(LineRecord(status, quantity, placed=Outcome.ACCEPTED, seq=SEQ - 5), **changes)


CRASH_CASES: dict[str, Callable[[EventFactory], tuple[Record | None, SkuEvent]]] = {
    "placement-accepted": lambda e: (None, e.placed(quantity=3)),
    "placement-rejected": lambda e: (None, e.placed(quantity=30)),
    "placement-duplicate": lambda e: (_line(LineStatus.ACCEPTED, 3), e.placed(quantity=3)),
    "late-placement-after-cancel": lambda e: (
        _line(LineStatus.CANCELLED, placed=None),
        e.placed(quantity=3),
    ),
    "paid": lambda e: (_line(LineStatus.ACCEPTED, 3), e.paid()),
    "paid-before-place": lambda e: (None, e.paid()),
    "cancel-releases": lambda e: (_line(LineStatus.ACCEPTED, 3), e.cancelled()),
    "cancel-before-place": lambda e: (None, e.cancelled()),
    "cancel-again": lambda e: (_line(LineStatus.CANCELLED), e.cancelled()),
    "shipped": lambda e: (_line(LineStatus.PAID, 3, paid=True), e.shipped(quantity=3)),
    "ship-before-place": lambda e: (None, e.shipped(quantity=3)),
    "return-received-implies-ship": lambda e: (
        _line(LineStatus.ACCEPTED, 3),
        e.return_received(quantity=3),
    ),
    "return-inspected": lambda e: (
        _line(LineStatus.RETURN_PENDING),
        e.return_inspected(quantity=3),
    ),
    "stock-received": lambda e: (None, e.received(4)),
    "stock-counted": lambda e: (None, e.counted(4)),
    "reserve-changed": lambda e: (None, e.safety_reserve_changed(percent=10)),
}


@pytest.mark.parametrize("case", CRASH_CASES.values(), ids=CRASH_CASES.keys())
def test_a_record_written_without_its_position_is_recomputed_to_the_identical_step(
    events: EventFactory,
    stocked: MakePosition,
    case: Callable[[EventFactory], tuple[Record | None, SkuEvent]],
) -> None:
    position = replace(stocked(10, committed=3, returns_pending=3), seq=SEQ - 1)
    record, event = case(events)
    first = apply_at(SEQ, position, record, event)

    # The crash kept the record write and lost the position write that followed it.
    recovered = apply_at(SEQ, position, first.step.record, event)

    assert recovered == first
    assert not recovered.replayed


def test_a_record_written_without_its_position_keeps_its_history(
    events: EventFactory, stocked: MakePosition
) -> None:
    position = replace(stocked(10, committed=3), seq=SEQ - 1)
    record = _line(LineStatus.ACCEPTED, 3, previous=_line(LineStatus.PENDING, paid=True))
    first = apply_at(SEQ, position, record, events.cancelled())

    recovered = apply_at(SEQ, position, first.step.record, events.cancelled())

    assert isinstance(recovered.step.record, LineRecord)
    assert recovered.step.record.previous == replace(record, previous=None)
    assert recovered.step.position.committed == 0


def test_a_crash_after_a_redelivered_stock_event_does_not_apply_it_again(
    events: EventFactory, stocked: MakePosition
) -> None:
    receipt = events.received(4)
    first = apply_at(3, replace(stocked(10), seq=2), None, receipt).step
    second = apply_at(9, first.position, first.record, receipt).step  # a producer retry

    recovered = apply_at(9, first.position, second.record, receipt).step

    assert recovered == second
    assert recovered.position.on_hand == 14


def test_a_duplicate_placement_at_a_new_offset_keeps_the_lines_stamp(
    events: EventFactory, stocked: MakePosition
) -> None:
    placement = events.placed(quantity=3)
    first = apply_at(3, stocked(10), None, placement).step

    again = apply_at(9, first.position, first.record, placement).step
    recovered = apply_at(9, first.position, again.record, placement).step

    assert again.record == first.record
    assert again.decision is not None
    assert again.decision.outcome is Outcome.DUPLICATE
    assert recovered == again
