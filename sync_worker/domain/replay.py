"""Exactly-once effects over an at-least-once log: ``apply_at(seq, …)``.

Every event on a SKU's input partition has a sequence number that only grows (the
Kafka offset). The position remembers the last ``seq`` applied, and the event's
record remembers the ``seq`` that last wrote it and the record before that. The
runtime writes the record first and the position second, into one changelog
partition, so whatever a crash leaves behind is a prefix of those writes:

- ``seq <= position.seq``: the event is fully applied. Nothing changes; the stored
  state is handed back so the runtime can re-write it (repairing a changelog that
  lost the tail of the writes) and the placement's answer is given again.
- the record says ``seq`` but the position does not: the crash fell between the two
  writes. The event is recomputed from ``record.previous``, which yields the very
  same step, because the ledger is deterministic and the position is unchanged.
- otherwise the event is new.

A buyer's session holding (``BuyerRecord``) is shared by the buyer's lines and written
between the line's record and the position, with the same stamp, so the same three
cases cover it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

from sync_worker.domain import ledger
from sync_worker.domain.events import OrderLinePlaced, SkuEvent
from sync_worker.domain.position import SkuPosition
from sync_worker.domain.records import BuyerRecord, LineRecord, Record


@dataclass(frozen=True, slots=True)
class Applied:
    step: ledger.Step
    replayed: bool
    """True when the event had been applied before: the step only restates the state."""


def apply_at(
    seq: int,
    position: SkuPosition,
    record: Record | None,
    event: SkuEvent,
    policy: ledger.LedgerPolicy = ledger.DEFAULT_POLICY,
    buyer: BuyerRecord | None = None,
) -> Applied:
    """Apply the event at ``seq`` once, however often it is delivered."""
    if seq <= position.seq:
        return Applied(_restated(position, record, event), replayed=True)
    new = stamped(seq, position, record, event, policy, buyer)
    position = replace(new.step.position, seq=seq)
    return Applied(replace(new.step, position=position, record=new.record, buyer=new.buyer), False)


class Stamped(NamedTuple):
    """An event not applied yet, applied: the ledger's step, and the record and buyer's
    holding to store instead of the step's, stamped with the event's ``seq``. The
    step's position is still to be stamped with ``seq`` too."""

    step: ledger.Step
    record: Record | None
    buyer: BuyerRecord | None


def stamped(
    seq: int,
    position: SkuPosition,
    record: Record | None,
    event: SkuEvent,
    policy: ledger.LedgerPolicy = ledger.DEFAULT_POLICY,
    buyer: BuyerRecord | None = None,
) -> Stamped:
    """The work of ``apply_at`` for an event with ``seq > position.seq``, leaving the step
    to be built by the caller: ``domain.decide`` builds it once, with the quotas."""
    before = record
    if record is not None and record.seq == seq:  # written by this very event: undo it
        before = record.previous if isinstance(record, LineRecord) else None
    buyer_before = buyer
    if buyer is not None and buyer.seq == seq:
        buyer_before = BuyerRecord(units=buyer.previous)
    step = ledger.apply(position, before, event, policy, buyer_before)
    # An unchanged record (a duplicate) keeps its stamp: re-stamping it would make a
    # crash right after this write look like "this event wrote it" on replay.
    unchanged = step.record is before or step.record == before
    held = buyer_before.units if buyer_before is not None else 0
    buyer_after = (
        None if step.buyer is None else BuyerRecord(units=step.buyer.units, seq=seq, previous=held)
    )
    return Stamped(step, record if unchanged else _stamp(step.record, seq, before), buyer_after)


def _stamp(record: Record | None, seq: int, before: Record | None) -> Record | None:
    """Mark ``record`` as written at ``seq``, keeping one level of history."""
    if isinstance(record, LineRecord):
        previous = before if isinstance(before, LineRecord) else None
        if previous is not None and previous.previous is not None:  # rebuilt only if it must
            previous = replace(previous, previous=None)
        return replace(record, seq=seq, previous=previous)
    return None if record is None else replace(record, seq=seq)


def _restated(position: SkuPosition, record: Record | None, event: SkuEvent) -> ledger.Step:
    decision = None
    if (
        isinstance(event, OrderLinePlaced)
        and isinstance(record, LineRecord)
        and record.placed is not None
    ):
        decision = ledger.decision_for(position, event, record.placed, record.reason)
    return ledger.Step(position, record, decision=decision)
