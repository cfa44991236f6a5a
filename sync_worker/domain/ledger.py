"""The per-SKU stock ledger: ``(position, line, event) -> Step``.

Pure and deterministic so that replaying the event log reproduces the state
exactly; the streaming runtime only persists what a ``Step`` returns.

Invariants (checked by the property tests):
- ``committed <= on_hand - safety_reserve`` is never broken by an accepted line;
- an order line changes stock at most once, however often its events arrive;
- units are conserved: ``committed`` equals the sum of accepted, uncancelled lines.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from sync_worker.domain.events import (
    OrderLineCancelled,
    OrderLineDecided,
    OrderLinePlaced,
    Outcome,
    RejectReason,
    SkuEvent,
    StockCounted,
    StockLevelChanged,
    StockReceived,
)


@dataclass(frozen=True, slots=True)
class SkuPosition:
    """One SKU's stock. ``known`` turns true with the first stock event: orders for a
    SKU nobody has counted are rejected rather than sold against zero."""

    sku: str
    on_hand: int = 0
    committed: int = 0
    safety_reserve: int = 0
    version: int = 0
    known: bool = False

    @property
    def sellable(self) -> int:
        return max(0, self.on_hand - self.committed - self.safety_reserve)


class LineStatus(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    CANCELLED_UNSEEN = "cancelled_unseen"
    """The cancellation overtook the placement; the late placement is refused."""


@dataclass(frozen=True, slots=True)
class LineRecord:
    """What the ledger remembers of one order line so that redelivery changes nothing.

    ``quantity`` is what the line holds of ``committed``: non-zero only while accepted.
    """

    status: LineStatus
    quantity: int = 0


@dataclass(frozen=True, slots=True)
class Step:
    """The result of applying one event: new state to persist and events to emit."""

    position: SkuPosition
    line: LineRecord | None
    decision: OrderLineDecided | None
    level: StockLevelChanged | None

    @property
    def oversold_units(self) -> int:
        """Units this step accepted beyond what was there; the invariants keep it 0."""
        if self.decision is None or self.decision.outcome is not Outcome.ACCEPTED:
            return 0
        position = self.position
        return max(0, position.committed + position.safety_reserve - position.on_hand)


def apply(position: SkuPosition, line: LineRecord | None, event: SkuEvent) -> Step:
    """Apply ``event`` to ``position``; ``line`` is the stored record of the event's order line."""
    match event:
        case OrderLinePlaced():
            return _place(position, line, event)
        case OrderLineCancelled():
            return _cancel(position, line, event)
        case StockCounted():
            return _changed(replace(position, on_hand=event.quantity, known=True), line, event)
        case StockReceived():
            new_on_hand = position.on_hand + event.quantity
            return _changed(replace(position, on_hand=new_on_hand, known=True), line, event)


def _place(position: SkuPosition, line: LineRecord | None, event: OrderLinePlaced) -> Step:
    if line is not None:
        if line.status is LineStatus.CANCELLED_UNSEEN:
            cancelled = LineRecord(LineStatus.CANCELLED)
            return _decided(
                position, cancelled, event, Outcome.REJECTED, RejectReason.ALREADY_CANCELLED
            )
        return _decided(position, line, event, Outcome.DUPLICATE, None)
    if not position.known:
        rejected = LineRecord(LineStatus.REJECTED)
        return _decided(position, rejected, event, Outcome.REJECTED, RejectReason.UNKNOWN_SKU)
    if event.quantity > position.sellable:
        rejected = LineRecord(LineStatus.REJECTED)
        return _decided(
            position, rejected, event, Outcome.REJECTED, RejectReason.INSUFFICIENT_STOCK
        )
    accepted = LineRecord(LineStatus.ACCEPTED, event.quantity)
    moved = _bump(replace(position, committed=position.committed + event.quantity))
    return Step(
        position=moved,
        line=accepted,
        decision=_decision(moved, event, Outcome.ACCEPTED, None),
        level=_level(moved, event.event_id, event.event_time_ms),
    )


def _cancel(position: SkuPosition, line: LineRecord | None, event: OrderLineCancelled) -> Step:
    if line is None:
        # Cancel before place: remember a tombstone so the late placement is refused.
        return Step(position, LineRecord(LineStatus.CANCELLED_UNSEEN), None, None)
    if line.status is not LineStatus.ACCEPTED:
        return Step(position, line, None, None)  # nothing held, nothing to release
    released = _bump(replace(position, committed=position.committed - line.quantity))
    return Step(
        position=released,
        line=LineRecord(LineStatus.CANCELLED),
        decision=None,
        level=_level(released, event.event_id, event.event_time_ms),
    )


def _changed(
    position: SkuPosition, line: LineRecord | None, event: StockCounted | StockReceived
) -> Step:
    moved = _bump(position)
    return Step(moved, line, None, _level(moved, event.event_id, event.event_time_ms))


def _decided(
    position: SkuPosition,
    line: LineRecord,
    event: OrderLinePlaced,
    outcome: Outcome,
    reason: RejectReason | None,
) -> Step:
    return Step(position, line, _decision(position, event, outcome, reason), None)


def _bump(position: SkuPosition) -> SkuPosition:
    return replace(position, version=position.version + 1)


def _decision(
    position: SkuPosition, event: OrderLinePlaced, outcome: Outcome, reason: RejectReason | None
) -> OrderLineDecided:
    return OrderLineDecided(
        event_id=event.event_id,
        platform=event.platform,
        channel=event.channel,
        order_id=event.order_id,
        line_id=event.line_id,
        sku=event.sku,
        quantity=event.quantity,
        outcome=outcome,
        reason=reason,
        position_version=position.version,
        event_time_ms=event.event_time_ms,
    )


def _level(position: SkuPosition, cause_event_id: str, event_time_ms: int) -> StockLevelChanged:
    return StockLevelChanged(
        sku=position.sku,
        on_hand=position.on_hand,
        committed=position.committed,
        safety_reserve=position.safety_reserve,
        sellable=position.sellable,
        version=position.version,
        cause_event_id=cause_event_id,
        event_time_ms=event_time_ms,
    )
