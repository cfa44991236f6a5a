"""One SKU's whole decision for one event: the ledger, the allocation, then the alerts.

All run in the same step on the partition that owns the SKU, so every channel's
quota moves atomically with the stock it is carved from and the session rules it
obeys, and the replay guard of ``domain.replay`` covers them all (the allocation and
the sessions live in the position).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from sync_worker.domain import alerts, allocation, events, ledger, replay
from sync_worker.domain.allocation import AllocationPolicy
from sync_worker.domain.position import SkuPosition
from sync_worker.domain.records import BuyerRecord, Record
from sync_worker.domain.sessions import SkuSession, carve, with_hold


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
    """The ledger's step; its position carries the new allocation and sessions."""
    replayed: bool
    quota_changes: tuple[events.StockQuotaChanged, ...] = ()
    alerts: tuple[events.AlertRaised, ...] = ()


def decide(
    seq: int,
    position: SkuPosition,
    record: Record | None,
    event: events.SkuEvent,
    policies: Policies,
    buyer: BuyerRecord | None = None,
) -> Decided:
    """Apply the event at ``seq`` once to the books, the quotas and the alerts."""
    if seq <= position.seq:  # applied before (see ``domain.replay``): restate it
        step = replay.apply_at(seq, position, record, event, policies.ledger, buyer).step
        # Alerts of this very event may not have left before a crash: say them again.
        return Decided(step, True, alerts=_restated_alerts(seq, position, event))
    new = replay.stamped(seq, position, record, event, policies.ledger, buyer)
    step = new.step
    # An allocation event is new unless its record was written by an earlier event.
    fresh = record is None or record.seq == seq
    cause = cause_of(event, position, step, fresh=fresh)
    after = step.position
    # Read once: the quotas, the caps and the alerts all measure against it.
    sellable = after.sellable
    quotas = after.allocation
    quota_events: tuple[events.StockQuotaChanged, ...] = ()
    if cause is not None:
        quotas, changes = allocation.reallocate(
            quotas,
            sellable,
            cause,
            policies.allocation_for(event.sku),
            event.event_time_ms,
            caps=_cap_groups(after.sessions, sellable),
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
    held, raised = _assess_alerts(seq, after.sessions, sellable, event)
    # The ledger's position and step are rebuilt once, with the quotas, the alert state
    # and the stamps ``replay.apply_at`` would put on them.
    after = replace(after, seq=seq, allocation=quotas, sessions=held)
    step = replace(step, position=after, record=new.record, buyer=new.buyer)
    return Decided(step, False, quota_events, raised)


def cap_groups(position: SkuPosition) -> tuple[allocation.CapGroup, ...]:
    """Each capped session's rooms may show no more than the session has left to sell."""
    return _cap_groups(position.sessions, position.sellable)


def _cap_groups(held: tuple[SkuSession, ...], sellable: int) -> tuple[allocation.CapGroup, ...]:
    return tuple(
        allocation.CapGroup(frozenset(s.channels), s.remaining(sellable))
        for s in held
        if s.cap is not None
    )


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
        case events.ChannelUnpinned() if fresh:
            return allocation.Unpinned(event.channel)
        case events.StockIsolated() if fresh:
            return allocation.Isolated(event.channel, event.units)
        case events.IsolationEnded() if fresh:
            return allocation.IsolationEnded(event.channel)
        case events.ReclaimSettled() if fresh:
            return allocation.Settled(event.channel, event.requested, event.applied)
        case events.ChannelObserved() if fresh:
            return allocation.Observed(event.channel, event.displayed)
        case events.ListingChanged() if fresh:
            return allocation.Listing(event.channel, event.listed)
        case events.QuotaMoved() if fresh:
            return allocation.Moved(event.from_channel, event.to_channel, event.units)
        case events.SessionSkuOpened() if fresh and before.session(event.session_id) is None:
            session = step.position.session(event.session_id)
            return allocation.SessionOpened(carve(session) if session is not None else ())
        case events.SessionSkuClosed() if fresh:
            closed = before.session(event.session_id)
            isolated = closed.channels if closed is not None and closed.isolate else ()
            return allocation.SessionClosed(isolated)
    return allocation.StockMoved() if step.level is not None else None


def _assess_alerts(
    seq: int, held: tuple[SkuSession, ...], sellable: int, event: events.SkuEvent
) -> tuple[tuple[SkuSession, ...], tuple[events.AlertRaised, ...]]:
    """The sessions' holds with their alert state after the event, and the alerts fired."""
    raised: list[events.AlertRaised] = []
    for session in held:
        remaining = session.remaining(sellable)
        baseline = session.baseline or remaining  # opened before any stock: the first stock
        fired, firing = alerts.assess(session.alerts_fired, remaining, baseline, session.thresholds)
        if firing:
            raised += (_alert(seq, session, level, remaining, baseline, event) for level in firing)
        alerts_seq = seq if firing else session.alerts_seq
        alerts_last = len(firing) if firing else session.alerts_last
        state = (baseline, fired, alerts_seq, alerts_last)
        # Most events change no session's alert state: build a hold only when one does.
        if state != (
            session.baseline,
            session.alerts_fired,
            session.alerts_seq,
            session.alerts_last,
        ):
            updated = replace(
                session,
                baseline=baseline,
                alerts_fired=fired,
                alerts_seq=alerts_seq,
                alerts_last=alerts_last,
            )
            held = with_hold(held, updated)
    return held, tuple(raised)


def _restated_alerts(
    seq: int, position: SkuPosition, event: events.SkuEvent
) -> tuple[events.AlertRaised, ...]:
    """The alerts the event at ``seq`` fired, rebuilt from the position it left."""
    restated: list[events.AlertRaised] = []
    for session in position.sessions:
        if session.alerts_seq != seq or position.seq != seq:
            continue
        remaining = session.remaining(position.sellable)
        first = session.alerts_fired - session.alerts_last
        for level in alerts.LEVELS[first : session.alerts_fired]:
            restated.append(_alert(seq, session, level, remaining, session.baseline, event))
    return tuple(restated)


def _alert(
    seq: int,
    session: SkuSession,
    level: events.AlertLevel,
    remaining: int,
    baseline: int,
    event: events.SkuEvent,
) -> events.AlertRaised:
    return events.AlertRaised(
        alert_id=f"{session.session_id}:{event.sku}:{level.value}:{seq}",
        sku=event.sku,
        session_id=session.session_id,
        level=level,
        audience=alerts.AUDIENCE[level],
        remaining=remaining,
        baseline=baseline,
        percent_left=remaining * 100 // baseline if baseline else 0,
        threshold_percent=session.thresholds.threshold(level),
        channels=session.channels,
        suggestion=alerts.SUGGESTION[level],
        cause_event_id=event.event_id,
        event_time_ms=event.event_time_ms,
    )
