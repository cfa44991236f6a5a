"""The per-SKU stock ledger: ``apply(position, record, event) -> Step``.

Pure and deterministic, so replaying the event log reproduces the state exactly; the
streaming runtime only persists what a ``Step`` returns. ``record`` is what the
ledger remembers of the event's order line (or, for a stock movement, of its
``event_id``). The written rules for duplicates and out-of-order events are in
``docs/ledger.md``; each has a test.

Invariants (checked by the property tests): an accepted line never makes
``committed`` exceed ``on hand - reserve - unavailable``; each order line changes
stock at most once per step of its life; on hand moves only through receipts,
counts, adjustments, transfers, shipments and inspected returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sync_worker.domain import sessions
from sync_worker.domain.events import (
    AllocationEvent,
    AuditRecord,
    CancellationRequested,
    InspectionResult,
    OrderLineCancelled,
    OrderLineDecided,
    OrderLineEvent,
    OrderLinePaid,
    OrderLinePlaced,
    OrderLineRefunded,
    OrderLineReturnInspected,
    OrderLineReturnReceived,
    OrderLineShipped,
    Outcome,
    RejectReason,
    SafetyReserveChanged,
    SessionEvent,
    SessionSkuClosed,
    SessionSkuOpened,
    SkuEvent,
    StockAdjusted,
    StockCounted,
    StockEvent,
    StockIncomingAnnounced,
    StockLevelChanged,
    StockReceived,
    StockTransferredIn,
    StockTransferredOut,
    StockUnavailableChanged,
    line_identity,
)
from sync_worker.domain.position import IncomingBatch, SafetyReserve, SkuPosition
from sync_worker.domain.records import (
    HOLDS_STOCK,
    SHIPPED_OR_LATER,
    BuyerRecord,
    LineRecord,
    LineStatus,
    MovementRecord,
    Record,
)


@dataclass(frozen=True, slots=True)
class LedgerPolicy:
    """Defaults the ledger applies; product tiers refine them per SKU."""

    default_reserve: SafetyReserve = field(default_factory=SafetyReserve)


DEFAULT_POLICY = LedgerPolicy()


@dataclass(frozen=True, slots=True)
class Step:
    """The result of applying one event: state to persist and events to emit."""

    position: SkuPosition
    record: Record | None
    decision: OrderLineDecided | None = None
    level: StockLevelChanged | None = None
    audit: AuditRecord | None = None
    cancellation: CancellationRequested | None = None
    oversold_units: int = 0
    """Units this step committed beyond what could be sold; the rules keep it 0."""
    buyer: BuyerRecord | None = None
    """The buyer's session holding after the step, when the step changed it."""


UNPAID_TIMEOUT = "unpaid_timeout"
"""The cancellation reason of a line whose payment window lapsed (``domain.payments``)."""


def apply(
    position: SkuPosition,
    record: Record | None,
    event: SkuEvent,
    policy: LedgerPolicy = DEFAULT_POLICY,
    buyer: BuyerRecord | None = None,
) -> Step:
    """Apply ``event`` to ``position``; ``record`` is the stored record of its identity
    and ``buyer`` what the buyer named by ``buyer_slot`` holds in its session."""
    if isinstance(event, OrderLinePlaced):
        return _place(position, _line(record), event, buyer)
    if isinstance(event, StockEvent):
        if record is not None:
            return Step(position, record)  # this movement was applied already
        return _move_stock(position, event, policy)
    if isinstance(event, AllocationEvent):
        # Changes no stock; remembered so ``domain.decide`` applies it to quotas once.
        return Step(position, record if record is not None else MovementRecord())
    if isinstance(event, SessionEvent):
        if record is not None:
            return Step(position, record)
        return Step(_session_changed(position, event), MovementRecord())
    return _advance_line(position, _line(record), event, buyer)


def buyer_slot(
    position: SkuPosition, record: Record | None, event: SkuEvent
) -> tuple[str, str] | None:
    """(session id, buyer) whose holding ``event`` reads or changes: a placement in a
    session room with a buyer limit, or the cancellation of a line counted against one."""
    if isinstance(event, OrderLinePlaced):
        session = position.session_for(event.channel)
        if session is None or session.buyer_limit is None:
            return None
        return session.session_id, sessions.buyer_identity(event.platform, event.buyer_id)
    releasing = isinstance(event, (OrderLineCancelled, OrderLineRefunded))
    if releasing and isinstance(record, LineRecord) and record.session_id and record.buyer:
        return record.session_id, record.buyer
    return None


def _session_changed(position: SkuPosition, event: SessionEvent) -> SkuPosition:
    match event:
        case SessionSkuOpened() if position.session(event.session_id) is None:
            return position.with_session(sessions.opened(event, position.sellable))
        case SessionSkuClosed():
            kept = tuple(s for s in position.sessions if s.session_id != event.session_id)
            return replace(position, sessions=kept)
    return position


def _line(record: Record | None) -> LineRecord | None:
    return record if isinstance(record, LineRecord) else None


# --- placements -------------------------------------------------------------------------


def _place(
    position: SkuPosition,
    line: LineRecord | None,
    event: OrderLinePlaced,
    buyer: BuyerRecord | None,
) -> Step:
    if line is not None and line.placed is not None:
        decision = decision_for(position, event, Outcome.DUPLICATE, line.reason, line.placed)
        return Step(position, line, decision)
    if line is not None and line.status is LineStatus.CANCELLED:
        return _reject(position, line, event, RejectReason.ALREADY_CANCELLED)
    # Units shipped before we saw the order (split shipments may ship it in parts).
    shipped = line.shipped if line is not None and line.status is LineStatus.PENDING else 0
    left = event.quantity - shipped
    if line is not None and (line.status in SHIPPED_OR_LATER or (shipped and left <= 0)):
        # All its units left before we saw the order: accept it, nothing more to commit.
        status = LineStatus.SHIPPED if line.status is LineStatus.PENDING else line.status
        accepted = replace(line, status=status, placed=Outcome.ACCEPTED, shipped=0)
        return Step(position, accepted, decision_for(position, event, Outcome.ACCEPTED))
    if not position.known:
        return _reject(position, line, event, RejectReason.UNKNOWN_SKU)
    session = position.session_for(event.channel)
    bought = buyer.units if buyer is not None else 0
    refused = session.refuses(event, left, bought) if session is not None else None
    if refused is not None:
        return _reject(position, line, event, refused)
    if left > position.sellable:
        return _reject(position, line, event, RejectReason.INSUFFICIENT_STOCK)
    paid = line is not None and line.paid
    limited = session is not None and session.buyer_limit is not None
    accepted = LineRecord(
        status=LineStatus.PAID if paid else LineStatus.ACCEPTED,
        quantity=left,
        placed=Outcome.ACCEPTED,
        paid=paid,
        shipments=line.shipments if line is not None else (),
        session_id=session.session_id if session is not None else None,
        buyer=sessions.buyer_identity(event.platform, event.buyer_id) if limited else None,
    )
    held = position.sessions
    if session is not None:
        held = sessions.with_hold(held, session.with_sold(left))
    # Built once, version counted (see ``_changed``): each rebuild of a frozen position
    # costs about as much as the checks above.
    moved = replace(
        position, committed=position.committed + left, sessions=held, version=position.version + 1
    )
    return _changed(
        position,
        moved,
        accepted,
        event,
        _actor(event),
        "order_line.placed",
        decision=decision_for(moved, event, Outcome.ACCEPTED),
        oversold_units=max(0, moved.oversold - position.oversold),
        buyer=BuyerRecord(units=bought + left) if limited else None,
    )


def _reject(
    position: SkuPosition, line: LineRecord | None, event: OrderLinePlaced, reason: RejectReason
) -> Step:
    rejected = LineRecord(
        status=LineStatus.REJECTED,
        placed=Outcome.REJECTED,
        reason=reason,
        paid=bool(line and line.paid),
        shipments=line.shipments if line is not None else (),  # a redelivered part stays applied
    )
    identity = line_identity(event)
    # A line its platform cancelled already (cancel before place) needs no request.
    cancellation = (
        None
        if reason is RejectReason.ALREADY_CANCELLED
        else CancellationRequested(**identity, reason=reason)
    )
    decision = _decision(identity, position, event, Outcome.REJECTED, reason)
    return Step(position, rejected, decision, cancellation=cancellation)


def decision_for(
    position: SkuPosition,
    event: OrderLinePlaced,
    outcome: Outcome,
    reason: RejectReason | None = None,
    original: Outcome | None = None,
) -> OrderLineDecided:
    """The answer to a placement, taken against ``position``."""
    return _decision(line_identity(event), position, event, outcome, reason, original)


def _decision(
    identity: dict[str, Any],
    position: SkuPosition,
    event: OrderLinePlaced,
    outcome: Outcome,
    reason: RejectReason | None = None,
    original: Outcome | None = None,
) -> OrderLineDecided:
    return OrderLineDecided(
        **identity,
        quantity=event.quantity,
        outcome=outcome,
        reason=reason,
        original_outcome=original,
        position_version=position.version,
        order_line_count=event.order_line_count,
    )


# --- the rest of an order line's life ---------------------------------------------------


def _advance_line(
    position: SkuPosition,
    line: LineRecord | None,
    event: OrderLineEvent,
    buyer: BuyerRecord | None,
) -> Step:
    current = line or LineRecord(LineStatus.PENDING)
    match event:
        case OrderLinePaid():
            if current.paid:
                return Step(position, line)
            status = LineStatus.PAID if current.status is LineStatus.ACCEPTED else current.status
            return Step(position, replace(current, status=status, paid=True))
        case OrderLineCancelled() | OrderLineRefunded():
            return _cancel(position, current, event, buyer)
        case OrderLineShipped():
            return _ship(position, current, event)
        case OrderLineReturnReceived():
            return _receive_return(position, current, event)
        case OrderLineReturnInspected():
            return _inspect_return(position, current, event)
    raise AssertionError(f"unhandled order-line event {event.type}")  # pragma: no cover


def _cancel(
    position: SkuPosition,
    line: LineRecord,
    event: OrderLineCancelled | OrderLineRefunded,
    buyer: BuyerRecord | None,
) -> Step:
    if line.status is LineStatus.PENDING:
        return Step(position, replace(line, status=LineStatus.CANCELLED))
    if line.status not in HOLDS_STOCK:
        return Step(position, line)  # rejected, cancelled already, or shipped: nothing held
    if event.reason == UNPAID_TIMEOUT and line.paid:
        return Step(position, line)  # the payment beat the clock
    session = position.session(line.session_id) if line.session_id is not None else None
    held = position.sessions
    if session is not None:  # the session's cap (and the buyer's limit) get the units back
        held = sessions.with_hold(held, session.with_sold(-line.quantity))
    released = replace(
        position,
        committed=position.committed - line.quantity,
        sessions=held,
        version=position.version + 1,
    )
    cancelled = replace(line, status=LineStatus.CANCELLED, quantity=0)
    holding = None
    if buyer is not None and line.buyer is not None:
        holding = BuyerRecord(units=max(0, buyer.units - line.quantity))
    return _changed(
        position, released, cancelled, event, _actor(event), event.reason, buyer=holding
    )


def _ship(position: SkuPosition, line: LineRecord, event: OrderLineShipped) -> Step:
    """A shipment may carry part of a line (split shipments): it releases what it
    carries, and the line is shipped once nothing of it is left committed. Before the
    placement, each part takes its units off hand and the line stays pending, so the
    late placement commits only what has not shipped."""
    if line.status in SHIPPED_OR_LATER or event.event_id in line.shipments:
        return Step(position, line)
    if line.status is LineStatus.PENDING:
        moved = _take_out(position, event.warehouse, event.quantity, 0)
        early = replace(
            line,
            shipped=line.shipped + event.quantity,
            shipments=(*line.shipments, event.event_id),
        )
        return _changed(position, _counted(moved, position), early, event, _actor(event), "shipped")
    holds = line.status in HOLDS_STOCK
    released = min(event.quantity, line.quantity) if holds else 0
    moved = _take_out(position, event.warehouse, event.quantity, released)
    remaining = line.quantity - released
    shipped = replace(
        line,
        status=line.status if holds and remaining else LineStatus.SHIPPED,
        quantity=remaining,
        shipments=(*line.shipments, event.event_id),
    )
    return _changed(position, _counted(moved, position), shipped, event, _actor(event), "shipped")


def _take_out(position: SkuPosition, warehouse: str, units: int, released: int) -> SkuPosition:
    """``units`` physically leave the warehouse; ``released`` of them were committed."""
    stock = position.warehouse(warehouse)
    moved = position.with_warehouse(warehouse, replace(stock, on_hand=stock.on_hand - units))
    return replace(moved, committed=moved.committed - released)


def _implied_shipment(
    position: SkuPosition, line: LineRecord, warehouse: str, returned: int
) -> SkuPosition:
    """A return proves the shipment happened, reported or not."""
    if line.status in HOLDS_STOCK:  # the rest of the line left, unreported
        return _take_out(position, warehouse, line.quantity, line.quantity)
    if line.status is LineStatus.PENDING:  # not even the placement arrived yet
        return _take_out(position, warehouse, max(0, returned - line.shipped), 0)
    return position


def _receive_return(
    position: SkuPosition, line: LineRecord, event: OrderLineReturnReceived
) -> Step:
    if line.status in (LineStatus.RETURN_PENDING, LineStatus.RETURNED):
        return Step(position, line)
    moved = _implied_shipment(position, line, event.warehouse, event.quantity)
    stock = moved.warehouse(event.warehouse)
    pending = replace(stock, returns_pending=stock.returns_pending + event.quantity)
    moved = _counted(moved.with_warehouse(event.warehouse, pending), position)
    returned = replace(line, status=LineStatus.RETURN_PENDING, quantity=0)
    return _changed(position, moved, returned, event, _actor(event), "return_received")


def _inspect_return(
    position: SkuPosition, line: LineRecord, event: OrderLineReturnInspected
) -> Step:
    if line.status is LineStatus.RETURNED:
        return Step(position, line)
    moved = _implied_shipment(position, line, event.warehouse, event.quantity)
    stock = moved.warehouse(event.warehouse)
    if line.status is LineStatus.RETURN_PENDING:
        stock = replace(stock, returns_pending=max(0, stock.returns_pending - event.quantity))
    stock = replace(stock, on_hand=stock.on_hand + event.quantity)
    if event.result is InspectionResult.DAMAGED:
        stock = replace(stock, unavailable=stock.unavailable + event.quantity)
    moved = _counted(moved.with_warehouse(event.warehouse, stock), position)
    inspected = replace(line, status=LineStatus.RETURNED, quantity=0)
    reason = f"return_{event.result.value}"
    return _changed(position, moved, inspected, event, _actor(event), reason)


def _actor(event: OrderLineEvent) -> str:
    return f"{event.platform}:{event.channel}"


# --- stock movements --------------------------------------------------------------------


def _move_stock(position: SkuPosition, event: StockEvent, policy: LedgerPolicy) -> Step:
    start = position
    if not position.known:
        start = replace(position, known=True, reserve=policy.default_reserve)
    stock = start.warehouse(event.warehouse)
    moved = start
    reason = event.type.removeprefix("stock.")
    match event:
        case StockReceived():
            stock = replace(stock, on_hand=stock.on_hand + event.quantity)
            moved = replace(start, incoming=_close_batch(start.incoming, event))
        case StockCounted():
            held = min(stock.unavailable, event.quantity)  # held units are among those counted
            stock = replace(stock, on_hand=event.quantity, unavailable=held)
        case StockAdjusted():
            stock = replace(stock, on_hand=_moved(stock.on_hand, event.delta))
            reason = event.reason
        case StockUnavailableChanged():
            held = min(max(0, stock.on_hand), max(0, stock.unavailable + event.delta))
            stock = replace(stock, unavailable=held)
            reason = event.reason
        case StockTransferredOut():
            stock = replace(stock, on_hand=_moved(stock.on_hand, -event.quantity))
        case StockTransferredIn():
            stock = replace(stock, on_hand=stock.on_hand + event.quantity)
        case StockIncomingAnnounced():
            batch = IncomingBatch(event.batch_id, event.warehouse, event.quantity, event.eta_ms)
            updated = tuple(batch if b.batch_id == batch.batch_id else b for b in start.incoming)
            known = any(b.batch_id == batch.batch_id for b in start.incoming)
            moved = replace(start, incoming=updated if known else (*start.incoming, batch))
        case SafetyReserveChanged():
            moved = replace(start, reserve=SafetyReserve(event.units, event.percent))
    if stock != start.warehouse(event.warehouse):
        moved = moved.with_warehouse(event.warehouse, stock)
    if moved == position:  # e.g. a count that confirms the books: nothing to announce
        return Step(position, MovementRecord())
    moved = _counted(moved, position)
    return _changed(position, moved, MovementRecord(), event, event.actor, reason)


def _moved(on_hand: int, delta: int) -> int:
    """On hand after a correction: a decrease stops at 0 and never adds units (on hand
    can be below 0 already when shipments outran the count)."""
    if delta >= 0:
        return on_hand + delta
    return max(on_hand + delta, min(on_hand, 0))


def _close_batch(
    incoming: tuple[IncomingBatch, ...], event: StockReceived
) -> tuple[IncomingBatch, ...]:
    if event.batch_id is None:
        return incoming
    return tuple(batch for batch in incoming if batch.batch_id != event.batch_id)


# --- emitting a change ------------------------------------------------------------------


def _counted(after: SkuPosition, before: SkuPosition) -> SkuPosition:
    """``after`` as the next version of ``before``."""
    return replace(after, version=before.version + 1)


def _changed(
    before: SkuPosition,
    after: SkuPosition,
    record: Record,
    event: SkuEvent,
    actor: str,
    reason: str,
    *,
    decision: OrderLineDecided | None = None,
    oversold_units: int = 0,
    buyer: BuyerRecord | None = None,
) -> Step:
    """The step of an event that changed the books from ``before`` to ``after``, whose
    version is already the next one: the position is built once per step (callers with
    the books in several pieces finish with ``_counted``)."""
    quantities = after.quantities()  # each walks the warehouses; read both only once
    level = StockLevelChanged(
        sku=after.sku,
        on_hand=quantities["on_hand"],
        committed=quantities["committed"],
        safety_reserve=quantities["safety_reserve"],
        unavailable=quantities["unavailable"],
        returns_pending=quantities["returns_pending"],
        incoming=quantities["incoming"],
        sellable=quantities["sellable"],
        version=after.version,
        cause_event_id=event.event_id,
        event_time_ms=event.event_time_ms,
    )
    audit = AuditRecord(
        sku=after.sku,
        event_id=event.event_id,
        event_type=event.type,
        actor=actor,
        reason=reason,
        before=before.quantities(),
        after=quantities,
        version=after.version,
        event_time_ms=event.event_time_ms,
    )
    return Step(
        after,
        record,
        decision,
        level=level,
        audit=audit,
        oversold_units=oversold_units,
        buyer=buyer,
    )
