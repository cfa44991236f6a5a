"""Factories for the domain's events and positions, shared by the unit tests of the ledger,
the replay guard, the stored state and the codecs; ``Books`` feeds ``decide()`` the way the
ledger agent does."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from sync_worker.domain.decide import Decided, Policies, decide
from sync_worker.domain.events import (
    ChannelObserved,
    ChannelPinned,
    ChannelUnpinned,
    InspectionResult,
    IsolationEnded,
    ListingChanged,
    OrderLineCancelled,
    OrderLinePaid,
    OrderLinePlaced,
    OrderLineRefunded,
    OrderLineReturnInspected,
    OrderLineReturnReceived,
    OrderLineShipped,
    QuotaMoved,
    ReclaimSettled,
    SafetyReserveChanged,
    SessionSkuClosed,
    SessionSkuOpened,
    SkuEvent,
    StockAdjusted,
    StockCounted,
    StockIncomingAnnounced,
    StockIsolated,
    StockReceived,
    StockTransferredIn,
    StockTransferredOut,
    StockUnavailableChanged,
    Tier,
)
from sync_worker.domain.ledger import buyer_slot
from sync_worker.domain.position import IncomingBatch, SafetyReserve, SkuPosition, WarehouseStock
from sync_worker.domain.records import BuyerRecord, LineRecord, Record
from sync_worker.domain.sessions import SkuSession, buyer_identity
from sync_worker.streaming.state import record_key


class EventFactory:
    """Builds well-formed SKU events; every event gets a fresh ``event_id`` unless given one.

    Defaults describe one order line (``tiktok`` / ``tiktok-room-1`` / ``o-1`` / ``l-1``) of
    SKU ``lipstick`` in warehouse ``main``, so a test only spells out what it is about.
    """

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._clock_ms = itertools.count(1_700_000_000_000, 10)

    def _common(self, event_id: str | None, sku: str) -> dict[str, Any]:
        return {
            "event_id": event_id if event_id is not None else f"ev-{next(self._ids)}",
            "sku": sku,
            "event_time_ms": next(self._clock_ms),
        }

    def _line(
        self,
        *,
        sku: str = "lipstick",
        order_id: str = "o-1",
        line_id: str = "l-1",
        platform: str = "tiktok",
        channel: str = "tiktok-room-1",
        event_id: str | None = None,
    ) -> dict[str, Any]:
        return {
            **self._common(event_id, sku),
            "platform": platform,
            "channel": channel,
            "order_id": order_id,
            "line_id": line_id,
        }

    def _stock(
        self,
        *,
        sku: str = "lipstick",
        warehouse: str = "main",
        actor: str = "warehouse",
        event_id: str | None = None,
    ) -> dict[str, Any]:
        return {**self._common(event_id, sku), "warehouse": warehouse, "actor": actor}

    # --- order lines ------------------------------------------------------------------

    def placed(
        self,
        *,
        quantity: int = 1,
        region: str | None = None,
        order_line_count: int = 1,
        buyer_id: str = "buyer-1",
        **line: Any,
    ) -> OrderLinePlaced:
        return OrderLinePlaced(
            **self._line(**line),
            quantity=quantity,
            buyer_id=buyer_id,
            region=region,
            order_line_count=order_line_count,
        )

    def paid(self, **line: Any) -> OrderLinePaid:
        return OrderLinePaid(**self._line(**line))

    def cancelled(self, *, reason: str = "buyer_cancelled", **line: Any) -> OrderLineCancelled:
        return OrderLineCancelled(**self._line(**line), reason=reason)

    def refunded(self, *, reason: str = "buyer_request", **line: Any) -> OrderLineRefunded:
        return OrderLineRefunded(**self._line(**line), reason=reason)

    def shipped(
        self, *, quantity: int = 1, warehouse: str = "main", **line: Any
    ) -> OrderLineShipped:
        return OrderLineShipped(**self._line(**line), quantity=quantity, warehouse=warehouse)

    def return_received(
        self, *, quantity: int = 1, warehouse: str = "main", **line: Any
    ) -> OrderLineReturnReceived:
        return OrderLineReturnReceived(**self._line(**line), quantity=quantity, warehouse=warehouse)

    def return_inspected(
        self,
        *,
        quantity: int = 1,
        result: InspectionResult = InspectionResult.RESTOCK,
        warehouse: str = "main",
        **line: Any,
    ) -> OrderLineReturnInspected:
        return OrderLineReturnInspected(
            **self._line(**line), quantity=quantity, result=result, warehouse=warehouse
        )

    # --- stock ------------------------------------------------------------------------

    def received(
        self, quantity: int, *, batch_id: str | None = None, **stock: Any
    ) -> StockReceived:
        return StockReceived(**self._stock(**stock), quantity=quantity, batch_id=batch_id)

    def counted(self, quantity: int, **stock: Any) -> StockCounted:
        return StockCounted(**self._stock(**stock), quantity=quantity)

    def adjusted(self, delta: int, *, reason: str = "correction", **stock: Any) -> StockAdjusted:
        return StockAdjusted(**self._stock(**stock), delta=delta, reason=reason)

    def unavailable_changed(
        self, delta: int, *, reason: str = "qc_hold", **stock: Any
    ) -> StockUnavailableChanged:
        return StockUnavailableChanged(**self._stock(**stock), delta=delta, reason=reason)

    def transferred_out(
        self, quantity: int, *, transfer_id: str = "t-1", destination: str = "east", **stock: Any
    ) -> StockTransferredOut:
        return StockTransferredOut(
            **self._stock(**stock),
            quantity=quantity,
            transfer_id=transfer_id,
            destination=destination,
        )

    def transferred_in(
        self, quantity: int, *, transfer_id: str = "t-1", source: str = "west", **stock: Any
    ) -> StockTransferredIn:
        return StockTransferredIn(
            **self._stock(**stock), quantity=quantity, transfer_id=transfer_id, source=source
        )

    def incoming_announced(
        self, quantity: int, *, batch_id: str = "b-1", eta_ms: int = 1_700_000_900_000, **stock: Any
    ) -> StockIncomingAnnounced:
        return StockIncomingAnnounced(
            **self._stock(**stock), quantity=quantity, batch_id=batch_id, eta_ms=eta_ms
        )

    def safety_reserve_changed(
        self, *, units: int = 0, percent: int = 0, **stock: Any
    ) -> SafetyReserveChanged:
        return SafetyReserveChanged(**self._stock(**stock), units=units, percent=percent)

    # --- allocation -------------------------------------------------------------------

    def _allocation(
        self,
        *,
        sku: str = "lipstick",
        channel: str = "tiktok-room-1",
        actor: str = "live-ops",
        event_id: str | None = None,
    ) -> dict[str, Any]:
        return {**self._common(event_id, sku), "channel": channel, "actor": actor}

    def pinned(
        self, *, duration_ms: int = 60_000, units_per_s: int = 50, **where: Any
    ) -> ChannelPinned:
        return ChannelPinned(
            **self._allocation(**where),
            duration_ms=duration_ms,
            expected_units_per_s=units_per_s,
        )

    def isolated(self, units: int, **where: Any) -> StockIsolated:
        return StockIsolated(**self._allocation(**where), units=units)

    def isolation_ended(self, **where: Any) -> IsolationEnded:
        return IsolationEnded(**self._allocation(**where))

    def settled(
        self, *, version: int, requested: int, applied: int, **where: Any
    ) -> ReclaimSettled:
        return ReclaimSettled(
            **self._allocation(**{"actor": "publisher", **where}),
            version=version,
            requested=requested,
            applied=applied,
        )

    def observed(self, displayed: int, **where: Any) -> ChannelObserved:
        return ChannelObserved(
            **self._allocation(**{"actor": "publisher", **where}), displayed=displayed
        )

    def unpinned(self, **where: Any) -> ChannelUnpinned:
        return ChannelUnpinned(**self._allocation(**where))

    def listing_changed(
        self, *, listed: bool = False, reason: str = "quality_issue", **where: Any
    ) -> ListingChanged:
        return ListingChanged(**self._allocation(**where), listed=listed, reason=reason)

    def quota_moved(
        self,
        units: int,
        *,
        from_channel: str = "tiktok-room-1",
        to_channel: str = "douyin-room-1",
        sku: str = "lipstick",
        actor: str = "live-ops",
        event_id: str | None = None,
    ) -> QuotaMoved:
        return QuotaMoved(
            **self._common(event_id, sku),
            actor=actor,
            from_channel=from_channel,
            to_channel=to_channel,
            units=units,
        )

    # --- live sessions ----------------------------------------------------------------

    def session_opened(
        self,
        *,
        session_id: str = "s-1",
        channels: tuple[str, ...] = ("tiktok-room-1",),
        tier: Tier = Tier.BEST_SELLER,
        cap: int | None = None,
        buyer_limit: int | None = None,
        regions_allow: tuple[str, ...] = (),
        regions_deny: tuple[str, ...] = (),
        isolate: bool = False,
        warn_percent: int = 20,
        critical_percent: int = 10,
        rearm_points: int = 5,
        sku: str = "lipstick",
        actor: str = "live-ops",
        event_id: str | None = None,
    ) -> SessionSkuOpened:
        """Session ``s-1`` opens the SKU in ``tiktok-room-1``, with no rules unless given."""
        return SessionSkuOpened(
            **self._common(event_id, sku),
            actor=actor,
            session_id=session_id,
            channels=channels,
            tier=tier,
            cap=cap,
            buyer_limit=buyer_limit,
            regions_allow=regions_allow,
            regions_deny=regions_deny,
            isolate=isolate,
            warn_percent=warn_percent,
            critical_percent=critical_percent,
            rearm_points=rearm_points,
        )

    def session_closed(
        self,
        *,
        session_id: str = "s-1",
        reason: str = "ended",
        sku: str = "lipstick",
        actor: str = "live-ops",
        event_id: str | None = None,
    ) -> SessionSkuClosed:
        return SessionSkuClosed(
            **self._common(event_id, sku), actor=actor, session_id=session_id, reason=reason
        )

    def every_input_type(self) -> list[SkuEvent]:
        """One event of each of the 25 input types, all fields non-default where possible."""
        return [
            self.placed(quantity=3, region="CN-31", order_line_count=2),
            self.paid(),
            self.cancelled(),
            self.refunded(),
            self.shipped(quantity=3, warehouse="east"),
            self.return_received(quantity=2, warehouse="east"),
            self.return_inspected(quantity=2, result=InspectionResult.DAMAGED, warehouse="east"),
            self.received(7, batch_id="b-7", warehouse="east"),
            self.counted(0),
            self.adjusted(-4, reason="lost"),
            self.unavailable_changed(2, reason="damaged"),
            self.transferred_out(5, transfer_id="t-9", destination="east"),
            self.transferred_in(5, transfer_id="t-9", source="main", warehouse="east"),
            self.incoming_announced(40, batch_id="b-7", eta_ms=1_700_003_600_000),
            self.safety_reserve_changed(units=3, percent=10),
            self.pinned(duration_ms=30_000, units_per_s=200),
            self.isolated(100, channel="douyin-room-1"),
            self.isolation_ended(channel="douyin-room-1"),
            self.settled(version=4, requested=6, applied=5),
            self.observed(9),
            self.unpinned(channel="douyin-room-1", actor="host"),
            self.listing_changed(listed=True, reason="host_request", channel="douyin-room-1"),
            self.quota_moved(4, from_channel="douyin-room-1", to_channel="tiktok-room-1"),
            self.session_opened(
                session_id="s-9",
                channels=("tiktok-room-1", "douyin-room-1"),
                tier=Tier.TRAFFIC,
                cap=50,
                buyer_limit=2,
                regions_allow=("CN-31", "CN-44"),
                regions_deny=("CN-65",),
                isolate=True,
                warn_percent=30,
                critical_percent=15,
                rearm_points=8,
                actor="host",
            ),
            self.session_closed(session_id="s-9", reason="skipped", actor="host"),
        ]


@pytest.fixture
def events() -> EventFactory:
    return EventFactory()


MakePosition = Callable[..., SkuPosition]
NO_RESERVE = SafetyReserve()


def make_position(
    on_hand: int = 10,
    *,
    committed: int = 0,
    reserve: SafetyReserve = NO_RESERVE,
    unavailable: int = 0,
    returns_pending: int = 0,
    warehouse: str = "main",
    others: Iterable[tuple[str, WarehouseStock]] = (),
    incoming: tuple[IncomingBatch, ...] = (),
    version: int = 1,
    sku: str = "lipstick",
    known: bool = True,
) -> SkuPosition:
    """A position with one warehouse described by the arguments, plus ``others``."""
    stock = WarehouseStock(on_hand, unavailable, returns_pending)
    return SkuPosition(
        sku,
        warehouses=tuple(sorted([(warehouse, stock), *others])),
        committed=committed,
        reserve=reserve,
        incoming=incoming,
        version=version,
        known=known,
    )


@pytest.fixture
def stocked() -> MakePosition:
    """A counted SKU (``known``), by default 10 on hand in ``main``, nothing committed, no
    reserve, version 1."""
    return make_position


@dataclass
class Books:
    """One SKU's stored state, fed one event at a time like the ledger agent: the line's
    (or movement's) record, the buyer holding named by ``buyer_slot``, then the position.
    ``seq`` grows by one per event fed, like the input offset."""

    policies: Policies = field(default_factory=Policies)
    position: SkuPosition = field(default_factory=lambda: SkuPosition("lipstick"))
    records: dict[bytes, Record] = field(default_factory=dict)
    buyers: dict[tuple[str, str], BuyerRecord] = field(default_factory=dict)
    seq: int = 0

    def feed(self, event: SkuEvent) -> Decided:
        self.seq += 1
        key = record_key(event)
        record = self.records.get(key)
        slot = buyer_slot(self.position, record, event)
        buyer = self.buyers.get(slot) if slot is not None else None
        decided = decide(self.seq, self.position, record, event, self.policies, buyer)
        step = decided.step
        if step.record is not None:
            self.records[key] = step.record
        if step.buyer is not None:
            assert slot is not None, "a step changed a holding nobody loaded"
            self.buyers[slot] = step.buyer
        self.position = step.position
        return decided

    def holding(self, buyer_id: str, *, platform: str = "tiktok", session_id: str = "s-1") -> int:
        slot = (session_id, buyer_identity(platform, buyer_id))
        return self.buyers.get(slot, BuyerRecord()).units

    def session(self, session_id: str = "s-1") -> SkuSession:
        session = self.position.session(session_id)
        assert session is not None, f"session {session_id} is not open"
        return session

    def line(self, event: SkuEvent) -> LineRecord:
        record = self.records[record_key(event)]
        assert isinstance(record, LineRecord)
        return record

    def quota(self, channel: str) -> int:
        held = self.position.allocation.channel(channel)
        return 0 if held is None else held.quota

    def quotas(self) -> dict[str, int]:
        return {quota.channel: quota.quota for quota in self.position.allocation.channels}
