"""One SKU's whole decision for one event: the ledger, then the allocation.

Both run in the same step on the partition that owns the SKU, so every channel's
quota moves atomically with the stock it is carved from, and the replay guard of
``domain.replay`` covers both (the allocation lives in the position).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from sync_worker.domain import allocation, events, ledger, replay
from sync_worker.domain.allocation import AllocationPolicy
from sync_worker.domain.position import SkuPosition
from sync_worker.domain.records import Record


@dataclass(frozen=True, slots=True)
class Policies:
    """Everything a decision is configured by; ``allocation_by_sku`` overrides the
    default allocation policy per SKU."""

    ledger: ledger.LedgerPolicy = ledger.DEFAULT_POLICY
    allocation: AllocationPolicy = AllocationPolicy()
    allocation_by_sku: Mapping[str, AllocationPolicy] = field(default_factory=dict)

    def allocation_for(self, sku: str) -> AllocationPolicy:
        return self.allocation_by_sku.get(sku, self.allocation)


@dataclass(frozen=True, slots=True)
class Decided:
    step: ledger.Step
    """The ledger's step; its position carries the new allocation."""
    replayed: bool
    quota_changes: tuple[events.StockQuotaChanged, ...] = ()


def decide(
    seq: int,
    position: SkuPosition,
    record: Record | None,
    event: events.SkuEvent,
    policies: Policies,
) -> Decided:
    """Apply the event at ``seq`` once to the books and to the quotas."""
    applied = replay.apply_at(seq, position, record, event, policies.ledger)
    step = applied.step
    # An allocation event is new unless its record was written by an earlier event.
    fresh = record is None or record.seq == seq
    cause = None if applied.replayed else cause_of(event, position, step, fresh=fresh)
    if cause is None:
        return Decided(step, applied.replayed)
    moved, changes = allocation.reallocate(
        step.position.allocation,
        step.position.sellable,
        cause,
        policies.allocation_for(event.sku),
        event.event_time_ms,
    )
    quota_events = tuple(
        events.StockQuotaChanged(
            sku=event.sku,
            channel=change.channel,
            quota=change.quota,
            delta=change.delta,
            version=change.version,
            cause_event_id=event.event_id,
            event_time_ms=event.event_time_ms,
        )
        for change in changes
    )
    position_after = replace(step.position, allocation=moved)
    return Decided(replace(step, position=position_after), False, quota_events)


def cause_of(
    event: events.SkuEvent, before: SkuPosition, step: ledger.Step, *, fresh: bool
) -> allocation.Cause | None:
    """What the event means for the quotas; None when it changes nothing there."""
    match event:
        case events.OrderLinePlaced():
            accepted = (
                step.decision is not None and step.decision.outcome is events.Outcome.ACCEPTED
            )
            return allocation.Sold(event.channel, event.quantity) if accepted else None
        case events.OrderLineCancelled() | events.OrderLineRefunded():
            released = before.committed - step.position.committed
            return allocation.Released(event.channel, released) if released > 0 else None
        case events.ChannelPinned() if fresh:
            until = event.event_time_ms + event.duration_ms
            return allocation.Pinned(event.channel, until, float(event.expected_units_per_s))
        case events.StockIsolated() if fresh:
            return allocation.Isolated(event.channel, event.units)
        case events.IsolationEnded() if fresh:
            return allocation.IsolationEnded(event.channel)
        case events.ReclaimSettled() if fresh:
            return allocation.Settled(event.channel, event.requested, event.applied)
        case events.ChannelObserved() if fresh:
            return allocation.Observed(event.channel, event.displayed)
    return allocation.StockMoved() if step.level is not None else None
