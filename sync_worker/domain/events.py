"""The canonical events of stockcast: what happened to a SKU, and what stockcast decided.

These dataclasses are the public contract. Each field's ``metadata`` holds its JSON
Schema constraints; ``sync_worker.streaming.schemas`` turns them into the files
under ``sync_worker/schemas`` (a test keeps the two identical). Removing or
retyping a field is a new major version on a new topic.

Stdlib only: validation happens at the edge, so the domain receives well-formed values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Literal

SCHEMA_VERSION = 1
MAX_QUANTITY = 1_000_000
MAX_STOCK = 1_000_000_000


def spec(description: str, **constraints: Any) -> Any:
    """A field carrying its documentation and JSON Schema constraints."""
    return field(metadata={"description": description, **constraints})


def optional_spec(default: Any, description: str, **constraints: Any) -> Any:
    return field(default=default, metadata={"description": description, **constraints})


_ID = {"minLength": 1, "maxLength": 200}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Event:
    event_id: str = spec("Unique per event; a redelivery carries the same id.", **_ID)
    sku: str = spec("The SKU; also the Kafka message key.", **_ID)
    event_time_ms: int = spec("When it happened, Unix epoch milliseconds.", minimum=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class _OrderLineEvent(_Event):
    platform: str = spec("Platform name, e.g. tiktok, douyin, shopify.", **_ID)
    channel: str = spec("The shop or live room on that platform.", **_ID)
    order_id: str = spec("The platform's order id.", **_ID)
    line_id: str = spec(
        "The line within the order; (platform, order_id, line_id) is unique.", **_ID
    )

    @property
    def line_key(self) -> str:
        return line_key(self.platform, self.order_id, self.line_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderLinePlaced(_OrderLineEvent):
    """A buyer placed an order line; stockcast accepts or rejects it."""

    type: Literal["order_line.placed"] = "order_line.placed"
    schema_version: Literal[1] = 1
    quantity: int = spec("Units ordered.", minimum=1, maximum=MAX_QUANTITY)
    buyer_id: str = spec("The buyer as the platform identifies them.", **_ID)
    region: str | None = optional_spec(None, "Shipping region code, if known.", maxLength=64)
    order_line_count: int = optional_spec(
        1,
        "How many lines the whole order has; with more than one, the order is "
        "all-or-nothing unless its channel allows partial fulfilment.",
        minimum=1,
        maximum=1000,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderLinePaid(_OrderLineEvent):
    """The buyer paid; the units stay committed until shipped or cancelled."""

    type: Literal["order_line.paid"] = "order_line.paid"
    schema_version: Literal[1] = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderLineCancelled(_OrderLineEvent):
    """Cancelled before shipping (buyer, platform, unpaid timeout): held units return."""

    type: Literal["order_line.cancelled"] = "order_line.cancelled"
    schema_version: Literal[1] = 1
    reason: str = spec("Why, e.g. buyer_cancelled, unpaid_timeout.", **_ID)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderLineRefunded(_OrderLineEvent):
    """Money went back. Before shipping it releases the units like a cancellation;
    after shipping it changes no stock (returned units arrive as return events)."""

    type: Literal["order_line.refunded"] = "order_line.refunded"
    schema_version: Literal[1] = 1
    reason: str = spec("Why, e.g. out_of_stock, buyer_request.", **_ID)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderLineShipped(_OrderLineEvent):
    """The units left the warehouse: on hand and committed both drop."""

    type: Literal["order_line.shipped"] = "order_line.shipped"
    schema_version: Literal[1] = 1
    quantity: int = spec("Units shipped.", minimum=1, maximum=MAX_QUANTITY)
    warehouse: str = optional_spec("main", "Warehouse the units left.", **_ID)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderLineReturnReceived(_OrderLineEvent):
    """Returned units arrived and wait for inspection (returns pending)."""

    type: Literal["order_line.return_received"] = "order_line.return_received"
    schema_version: Literal[1] = 1
    quantity: int = spec("Units received back.", minimum=1, maximum=MAX_QUANTITY)
    warehouse: str = optional_spec("main", "Warehouse that received them.", **_ID)


class InspectionResult(StrEnum):
    RESTOCK = "restock"
    DAMAGED = "damaged"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderLineReturnInspected(_OrderLineEvent):
    """Inspection ended: units go back on hand, sellable or (damaged) unavailable."""

    type: Literal["order_line.return_inspected"] = "order_line.return_inspected"
    schema_version: Literal[1] = 1
    quantity: int = spec("Units inspected.", minimum=1, maximum=MAX_QUANTITY)
    result: InspectionResult = spec("restock or damaged.")
    warehouse: str = optional_spec("main", "Warehouse that inspected them.", **_ID)


@dataclass(frozen=True, slots=True, kw_only=True)
class _StockEvent(_Event):
    actor: str = spec("Who did it: a person, a system, a connector.", **_ID)
    warehouse: str = optional_spec("main", "The warehouse concerned.", **_ID)


@dataclass(frozen=True, slots=True, kw_only=True)
class StockReceived(_StockEvent):
    """Units arrived and are on hand now; ``batch_id`` closes an announced incoming batch."""

    type: Literal["stock.received"] = "stock.received"
    schema_version: Literal[1] = 1
    quantity: int = spec("Units received.", minimum=1, maximum=MAX_STOCK)
    batch_id: str | None = optional_spec(
        None, "The incoming batch this receipt closes.", maxLength=200
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StockCounted(_StockEvent):
    """A physical count: the warehouse's on hand becomes exactly ``quantity``."""

    type: Literal["stock.counted"] = "stock.counted"
    schema_version: Literal[1] = 1
    quantity: int = spec("Units counted on hand.", minimum=0, maximum=MAX_STOCK)


@dataclass(frozen=True, slots=True, kw_only=True)
class StockAdjusted(_StockEvent):
    """A correction of on hand by ``delta`` units, with a reason code."""

    type: Literal["stock.adjusted"] = "stock.adjusted"
    schema_version: Literal[1] = 1
    delta: int = spec(
        "Units added (positive) or removed (negative).", minimum=-MAX_STOCK, maximum=MAX_STOCK
    )
    reason: str = spec("Reason code, e.g. found, lost, sample, correction.", **_ID)


@dataclass(frozen=True, slots=True, kw_only=True)
class StockUnavailableChanged(_StockEvent):
    """Units on hand put on (positive) or taken off (negative) hold: damaged, quality control."""

    type: Literal["stock.unavailable_changed"] = "stock.unavailable_changed"
    schema_version: Literal[1] = 1
    delta: int = spec(
        "Units made unavailable (positive) or available again (negative).",
        minimum=-MAX_STOCK,
        maximum=MAX_STOCK,
    )
    reason: str = spec("Reason code, e.g. damaged, qc_hold, qc_released.", **_ID)


@dataclass(frozen=True, slots=True, kw_only=True)
class StockTransferredOut(_StockEvent):
    """Units left this warehouse for another (or another channel's stock)."""

    type: Literal["stock.transferred_out"] = "stock.transferred_out"
    schema_version: Literal[1] = 1
    quantity: int = spec("Units sent.", minimum=1, maximum=MAX_STOCK)
    transfer_id: str = spec("Pairs the out and in halves of one transfer.", **_ID)
    destination: str = spec("Where they go.", **_ID)


@dataclass(frozen=True, slots=True, kw_only=True)
class StockTransferredIn(_StockEvent):
    """Units arrived in this warehouse from a transfer."""

    type: Literal["stock.transferred_in"] = "stock.transferred_in"
    schema_version: Literal[1] = 1
    quantity: int = spec("Units arrived.", minimum=1, maximum=MAX_STOCK)
    transfer_id: str = spec("Pairs the out and in halves of one transfer.", **_ID)
    source: str = spec("Where they came from.", **_ID)


@dataclass(frozen=True, slots=True, kw_only=True)
class StockIncomingAnnounced(_StockEvent):
    """A batch is in transit: ``quantity`` units expected at ``eta_ms``."""

    type: Literal["stock.incoming_announced"] = "stock.incoming_announced"
    schema_version: Literal[1] = 1
    batch_id: str = spec("Identifies the batch; a receipt with this id closes it.", **_ID)
    quantity: int = spec("Units expected.", minimum=1, maximum=MAX_STOCK)
    eta_ms: int = spec("Expected arrival, Unix epoch milliseconds.", minimum=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class SafetyReserveChanged(_StockEvent):
    """The safety reserve kept back from sale: fixed units, a percent of on hand, or both
    (the larger wins)."""

    type: Literal["stock.safety_reserve_changed"] = "stock.safety_reserve_changed"
    schema_version: Literal[1] = 1
    units: int = optional_spec(0, "Units always kept back.", minimum=0, maximum=MAX_STOCK)
    percent: int = optional_spec(0, "Percent of on hand kept back.", minimum=0, maximum=100)


@dataclass(frozen=True, slots=True, kw_only=True)
class _AllocationEvent(_Event):
    actor: str = spec("Who did it: a person, the publisher, a live-session service.", **_ID)
    channel: str = spec("The channel (shop or live room) concerned.", **_ID)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelPinned(_AllocationEvent):
    """The host pinned the product in a room ("上链接"): position quota for the burst
    before it arrives."""

    type: Literal["allocation.pinned"] = "allocation.pinned"
    schema_version: Literal[1] = 1
    duration_ms: int = spec("How long the pin lasts.", minimum=1, maximum=86_400_000)
    expected_units_per_s: int = spec(
        "Expected sales rate in the room while pinned.", minimum=1, maximum=MAX_QUANTITY
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StockIsolated(_AllocationEvent):
    """A flash-sale session: ``units`` carved out of the pool for this channel alone,
    exactly counted, until the isolation ends."""

    type: Literal["allocation.isolated"] = "allocation.isolated"
    schema_version: Literal[1] = 1
    units: int = spec("Units carved out for the channel.", minimum=1, maximum=MAX_STOCK)


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolationEnded(_AllocationEvent):
    """The flash-sale session ended: the channel's unsold units return to the pool."""

    type: Literal["allocation.isolation_ended"] = "allocation.isolation_ended"
    schema_version: Literal[1] = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ReclaimSettled(_AllocationEvent):
    """The publisher's report on a quota reduction: how many of the ``requested`` units
    the platform really took off display (fewer when it sold some meanwhile). Until it
    arrives the reclaimed units are granted to no other channel."""

    type: Literal["allocation.reclaim_settled"] = "allocation.reclaim_settled"
    schema_version: Literal[1] = 1
    version: int = spec("The quota change this settles.", minimum=1)
    requested: int = spec("Units the reduction asked for.", minimum=1, maximum=MAX_STOCK)
    applied: int = spec("Units actually taken off display.", minimum=0, maximum=MAX_STOCK)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelObserved(_AllocationEvent):
    """A read-back of what the platform shows buyers in the channel. Units beyond what
    stockcast let the channel hold (a lost reduction, a write that resurrected sold
    units, a back-office edit) are taken back once a later read-back shows them too: a
    cancellation the platform put back on display first is heard well before that."""

    type: Literal["allocation.channel_observed"] = "allocation.channel_observed"
    schema_version: Literal[1] = 1
    displayed: int = spec("Units the platform shows buyers.", minimum=0, maximum=MAX_STOCK)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelUnpinned(_AllocationEvent):
    """The host took the product off the pin before the pin's time ran out."""

    type: Literal["allocation.unpinned"] = "allocation.unpinned"
    schema_version: Literal[1] = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ListingChanged(_AllocationEvent):
    """Delist (the channel's quota goes to 0 and gets no grants) or relist a SKU."""

    type: Literal["allocation.listing_changed"] = "allocation.listing_changed"
    schema_version: Literal[1] = 1
    listed: bool = spec("True relists, false delists.")
    reason: str = spec("Why, e.g. quality_issue, skip, host_request.", **_ID)


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaMoved(_Event):
    """Move quota between channels: ``units`` are reclaimed from ``from_channel`` and,
    once its platform has taken them off display, granted to ``to_channel`` first."""

    type: Literal["allocation.quota_moved"] = "allocation.quota_moved"
    schema_version: Literal[1] = 1
    actor: str = spec("Who did it.", **_ID)
    from_channel: str = spec("The channel that gives units.", **_ID)
    to_channel: str = spec("The channel that receives them.", **_ID)
    units: int = spec("Units to move.", minimum=1, maximum=MAX_STOCK)


class Tier(StrEnum):
    """Product tiers of a live session, each with its own default policy (see
    ``domain.tiers``)."""

    TRAFFIC = "traffic"
    """Traffic / flash-sale item: exact count isolated, strict per-buyer limit."""
    BEST_SELLER = "best_seller"
    PROFIT = "profit"
    LONG_TAIL = "long_tail"


_NAMES = {"type": "string", **_ID}
"""Each item of an array of ids (the metadata's ``items`` replaces the generated one)."""
_REGIONS = {"items": {"type": "string", "minLength": 1, "maxLength": 64}, "maxItems": 500}


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSkuOpened(_Event):
    """A live session started selling the SKU in its rooms, under these rules. Written by
    the session service when the session starts (tier defaults already applied)."""

    type: Literal["session.sku_opened"] = "session.sku_opened"
    schema_version: Literal[1] = 1
    actor: str = spec("Who started the session.", **_ID)
    session_id: str = spec("The live session.", **_ID)
    channels: tuple[str, ...] = spec(
        "The rooms the session streams on.", minItems=1, maxItems=100, items=_NAMES
    )
    tier: Tier = spec("The SKU's tier in this session.")
    cap: int | None = optional_spec(
        None, "Units the session may sell of the SKU, all its rooms together.", minimum=0
    )
    buyer_limit: int | None = optional_spec(
        None, "Units one buyer may buy of the SKU in this session.", minimum=1
    )
    regions_allow: tuple[str, ...] = optional_spec(
        (), "Only orders shipping to these regions are accepted (empty: any).", **_REGIONS
    )
    regions_deny: tuple[str, ...] = optional_spec(
        (), "Orders shipping to these regions are refused.", **_REGIONS
    )
    isolate: bool = optional_spec(
        False, "Carve ``cap`` units out of the pool for the session's rooms alone."
    )
    warn_percent: int = optional_spec(
        20, "Alert ops when this percent of the starting stock is left.", minimum=1, maximum=99
    )
    critical_percent: int = optional_spec(
        10, "Alert host and ops when this percent is left.", minimum=1, maximum=99
    )
    rearm_points: int = optional_spec(
        5,
        "An alert fires again only after stock rose this many points above its threshold.",
        minimum=0,
        maximum=50,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSkuClosed(_Event):
    """The session stopped selling the SKU (ended, or the host skipped it): its rules
    lapse and isolated units go back to the pool."""

    type: Literal["session.sku_closed"] = "session.sku_closed"
    schema_version: Literal[1] = 1
    actor: str = spec("Who ended it.", **_ID)
    session_id: str = spec("The live session.", **_ID)
    reason: str = spec("ended or skipped.", **_ID)


OrderLineEvent = (
    OrderLinePlaced
    | OrderLinePaid
    | OrderLineCancelled
    | OrderLineRefunded
    | OrderLineShipped
    | OrderLineReturnReceived
    | OrderLineReturnInspected
)
StockEvent = (
    StockReceived
    | StockCounted
    | StockAdjusted
    | StockUnavailableChanged
    | StockTransferredOut
    | StockTransferredIn
    | StockIncomingAnnounced
    | SafetyReserveChanged
)
AllocationEvent = (
    ChannelPinned
    | ChannelUnpinned
    | StockIsolated
    | IsolationEnded
    | ReclaimSettled
    | ChannelObserved
    | ListingChanged
    | QuotaMoved
)
SessionEvent = SessionSkuOpened | SessionSkuClosed
SkuEvent = OrderLineEvent | StockEvent | AllocationEvent | SessionEvent
"""Everything that arrives on the SKU-keyed input topic."""

ORDER_LINE_EVENTS: tuple[type[OrderLineEvent], ...] = (
    OrderLinePlaced,
    OrderLinePaid,
    OrderLineCancelled,
    OrderLineRefunded,
    OrderLineShipped,
    OrderLineReturnReceived,
    OrderLineReturnInspected,
)
STOCK_EVENTS: tuple[type[StockEvent], ...] = (
    StockReceived,
    StockCounted,
    StockAdjusted,
    StockUnavailableChanged,
    StockTransferredOut,
    StockTransferredIn,
    StockIncomingAnnounced,
    SafetyReserveChanged,
)
ALLOCATION_EVENTS: tuple[type[AllocationEvent], ...] = (
    ChannelPinned,
    ChannelUnpinned,
    StockIsolated,
    IsolationEnded,
    ReclaimSettled,
    ChannelObserved,
    ListingChanged,
    QuotaMoved,
)
SESSION_EVENTS: tuple[type[SessionEvent], ...] = (SessionSkuOpened, SessionSkuClosed)


class RejectReason(StrEnum):
    INSUFFICIENT_STOCK = "insufficient_stock"
    UNKNOWN_SKU = "unknown_sku"
    ALREADY_CANCELLED = "already_cancelled"
    ORDER_INCOMPLETE = "order_incomplete"
    """Another line of the same all-or-nothing order was rejected."""
    SESSION_CAP_REACHED = "session_cap_reached"
    """The live session sold its cap of the SKU in its rooms."""
    BUYER_LIMIT_REACHED = "buyer_limit_reached"
    """The buyer already bought the session's per-buyer limit of the SKU."""
    REGION_BLOCKED = "region_blocked"
    """The session does not sell the SKU to the order's region."""
    REGION_UNKNOWN = "region_unknown"
    """The session sells only to listed regions and the order names none."""


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderLineDecided(_OrderLineEvent):
    """stockcast's answer to an order-line placement. The same line placed again (a new
    message) is answered ``duplicate``, with the first answer in ``original_outcome``;
    the same message read again after a crash gets its original answer again."""

    type: Literal["order_line.decided"] = "order_line.decided"
    schema_version: Literal[1] = 1
    quantity: int = spec("Units ordered.", minimum=1, maximum=MAX_QUANTITY)
    outcome: Outcome = spec("accepted, rejected or duplicate.")
    reason: RejectReason | None = optional_spec(None, "Why it was rejected; null otherwise.")
    original_outcome: Outcome | None = optional_spec(
        None, "For a duplicate: what the first delivery was answered."
    )
    position_version: int = spec("The SKU's version the decision was taken against.", minimum=0)
    order_line_count: int = optional_spec(1, "How many lines the whole order has.", minimum=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class CancellationRequested(_OrderLineEvent):
    """stockcast asks the platform to cancel a line it could not accept."""

    type: Literal["order_line.cancellation_requested"] = "order_line.cancellation_requested"
    schema_version: Literal[1] = 1
    reason: RejectReason = spec("Why the line cannot be fulfilled.")


@dataclass(frozen=True, slots=True, kw_only=True)
class StockLevelChanged:
    """The SKU's position after a change; ``version`` orders them (keep the highest)."""

    type: Literal["stock.level_changed"] = "stock.level_changed"
    schema_version: Literal[1] = 1
    sku: str = spec("The SKU; also the Kafka message key.", **_ID)
    on_hand: int = spec("Units on hand, all warehouses.")
    committed: int = spec("Accepted, not yet shipped or released.", minimum=0)
    safety_reserve: int = spec("Units kept back from sale.", minimum=0)
    unavailable: int = spec("On hand but damaged or on hold.", minimum=0)
    returns_pending: int = spec("Returned units awaiting inspection.", minimum=0)
    incoming: int = spec("Units in transit.", minimum=0)
    sellable: int = spec(
        "on hand - committed - safety reserve - unavailable, never below 0.", minimum=0
    )
    version: int = spec("Grows by one with every change.", minimum=1)
    cause_event_id: str = spec("The event that caused this change.", **_ID)
    event_time_ms: int = spec("That event's time, Unix epoch milliseconds.", minimum=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class StockQuotaChanged:
    """What one channel may sell of a SKU changed. Apply ``delta`` to what the platform
    shows now (never set ``quota`` outright where the platform sells on its own: sales
    in flight would be resurrected). ``version`` grows per SKU across all channels."""

    type: Literal["stock.quota_changed"] = "stock.quota_changed"
    schema_version: Literal[1] = 1
    sku: str = spec("The SKU; also the Kafka message key.", **_ID)
    channel: str = spec("The channel whose quota changed.", **_ID)
    quota: int = spec("Units the channel may sell once this change lands.", minimum=0)
    delta: int = spec("Change to apply to the platform's count.")
    version: int = spec("Grows by one with every quota change of the SKU.", minimum=1)
    cause_event_id: str = spec("The event that caused this change.", **_ID)
    event_time_ms: int = spec("That event's time, Unix epoch milliseconds.", minimum=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    """Who changed what, why, and the quantities before and after."""

    type: Literal["stock.audit"] = "stock.audit"
    schema_version: Literal[1] = 1
    sku: str = spec("The SKU; also the Kafka message key.", **_ID)
    event_id: str = spec("The event that made the change.", **_ID)
    event_type: str = spec("Its type.", **_ID)
    actor: str = spec("Who: a person, a system or platform:channel.", minLength=1, maxLength=401)
    reason: str = spec("Why: the event's reason code or type.", **_ID)
    before: dict[str, int] = spec("Quantities before.")
    after: dict[str, int] = spec("Quantities after.")
    version: int = spec("The SKU's version after the change.", minimum=1)
    event_time_ms: int = spec("When it happened, Unix epoch milliseconds.", minimum=0)


class AlertLevel(StrEnum):
    """The three alert levels of a session SKU, lowest stock last."""

    LOW = "low"
    """The warning threshold (default 20%) crossed: for ops."""
    CRITICAL = "critical"
    """The critical threshold (default 10%): host and ops; end early or switch product."""
    SOLD_OUT = "sold_out"
    """Nothing left: sales stopped in every room in the same decision."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRaised:
    """A session SKU's stock crossed an alert threshold downwards. Fired once per
    crossing; a restock that lifts stock past the threshold plus the hysteresis re-arms it."""

    type: Literal["alert.raised"] = "alert.raised"
    schema_version: Literal[1] = 1
    alert_id: str = spec("Unique per crossing; a re-delivery carries the same id.", **_ID)
    sku: str = spec("The SKU; also the Kafka message key.", **_ID)
    session_id: str = spec("The live session.", **_ID)
    level: AlertLevel = spec("low, critical or sold_out.")
    audience: tuple[str, ...] = spec(
        "Who must act: ops, host.", items={"type": "string", "enum": ["ops", "host"]}, minItems=1
    )
    remaining: int = spec("Units the session can still sell.", minimum=0)
    baseline: int = spec("The session's starting sellable stock of the SKU.", minimum=0)
    percent_left: int = spec("remaining / baseline, in whole percent.", minimum=0)
    threshold_percent: int = spec("The threshold crossed (0 for sold out).", minimum=0)
    channels: tuple[str, ...] = spec("The session's rooms.", items=_NAMES)
    suggestion: str = spec("What to do about it.")
    cause_event_id: str = spec("The event that crossed the threshold.", **_ID)
    event_time_ms: int = spec("That event's time, Unix epoch milliseconds.", minimum=0)


def line_key(platform: str, order_id: str, line_id: str) -> str:
    """Order and line ids are only unique within a platform, so the key carries all three.

    Length-prefixed, so no id content can make two different lines share a key.
    """
    return f"{len(platform)}:{platform}{len(order_id)}:{order_id}{len(line_id)}:{line_id}"


_LINE_IDENTITY = tuple(f.name for f in fields(_OrderLineEvent))
"""Looked up once: ``fields()`` is slow, and every placement's answer needs these."""


def line_identity(event: _OrderLineEvent) -> dict[str, Any]:
    """The fields that say which order line an event is about (and which event it is),
    to build an answer or a follow-up event about the same line."""
    return {name: getattr(event, name) for name in _LINE_IDENTITY}


def type_name(event_class: type[Any]) -> str:
    """The ``type`` an event class carries on the wire."""
    return str(next(f.default for f in fields(event_class) if f.name == "type"))
