"""Random event logs for the ledger's property tests, and two ways to drive them.

A log is drawn from a pool of distinct events over a few SKUs, warehouses and order lines
(every input type; a line may ship in two parts), shuffled so that any event may overtake
any other, then sprinkled with redeliveries of the very same events (same ``event_id``)
after their first delivery, as Kafka redelivers after a crash or a producer retries. Most
SKUs are counted first, as the warehouse does before a live stream.

``replay``/``run`` apply ``ledger.apply`` with records kept per ``state.record_key``;
``Agent`` is the ledger agent without Kafka: a table of bytes written record first and
position second through ``replay.apply_at``, whose writes a crash can cut at any point.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from sync_worker.domain.events import (
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
    SafetyReserveChanged,
    SkuEvent,
    StockAdjusted,
    StockCounted,
    StockEvent,
    StockIncomingAnnounced,
    StockReceived,
    StockTransferredIn,
    StockTransferredOut,
    StockUnavailableChanged,
)
from sync_worker.domain.ledger import LedgerPolicy, Step, apply
from sync_worker.domain.position import SafetyReserve, SkuPosition
from sync_worker.domain.records import HOLDS_STOCK, LineRecord, Record
from sync_worker.domain.replay import apply_at
from sync_worker.streaming import codecs, state

SKUS = ("lipstick", "mascara")
"""Few SKUs, so that lines compete for the same units."""
WAREHOUSES = ("main", "east")
POLICY = LedgerPolicy(default_reserve=SafetyReserve(units=1, percent=10))
PROPERTY_SETTINGS = settings(max_examples=300, deadline=None)
"""No deadline: these tests never depend on how fast the machine is."""
EPOCH_MS = 1_700_000_000_000


def line_of(event: OrderLineEvent) -> tuple[str, str]:
    """An order line's identity: lines are kept per SKU."""
    return event.sku, event.line_key


# --- logs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Log:
    once: tuple[SkuEvent, ...]
    """Every distinct event exactly once, in the order of first delivery."""
    delivered: tuple[SkuEvent, ...]
    """What was actually delivered: ``once`` plus redeliveries."""


@dataclass(frozen=True)
class Line:
    sku: str
    platform: str
    order_id: str
    line_id: str
    quantity: int
    warehouse: str

    def fields(self, event_id: str) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "sku": self.sku,
            "event_time_ms": EPOCH_MS,
            "platform": self.platform,
            "channel": f"{self.platform}-room",
            "order_id": self.order_id,
            "line_id": self.line_id,
        }


def line_life(line: Line, event_id: str, kind: str, result: InspectionResult) -> OrderLineEvent:
    """One event of ``line``'s life; quantities are the line's, warehouses its own."""
    common = line.fields(event_id)
    q, w = line.quantity, line.warehouse
    events: dict[str, OrderLineEvent] = {
        "placed": OrderLinePlaced(**common, quantity=q, buyer_id="b"),
        "paid": OrderLinePaid(**common),
        "cancelled": OrderLineCancelled(**common, reason="buyer_cancelled"),
        "refunded": OrderLineRefunded(**common, reason="buyer_request"),
        "shipped": OrderLineShipped(**common, quantity=q, warehouse=w),
        "return_received": OrderLineReturnReceived(**common, quantity=q, warehouse=w),
        "return_inspected": OrderLineReturnInspected(
            **common, quantity=q, result=result, warehouse=w
        ),
    }
    return events[kind]


LIFE = ("placed", "paid", "cancelled", "refunded", "shipped", "return_received", "return_inspected")


def split_shipment(
    line: Line, event_ids: tuple[str, str], first: int
) -> tuple[OrderLineShipped, OrderLineShipped]:
    """The line shipped in two parts: different event ids, quantities adding up to the line."""
    first_id, second_id = event_ids
    w = line.warehouse
    return (
        OrderLineShipped(**line.fields(first_id), quantity=first, warehouse=w),
        OrderLineShipped(**line.fields(second_id), quantity=line.quantity - first, warehouse=w),
    )


@st.composite
def stock_events(draw: st.DrawFn, event_id: str) -> StockEvent:
    common: dict[str, Any] = {
        "event_id": event_id,
        "sku": draw(st.sampled_from(SKUS)),
        "event_time_ms": EPOCH_MS,
        "actor": "warehouse",
        "warehouse": draw(st.sampled_from(WAREHOUSES)),
    }
    small = st.integers(1, 8)
    batch = st.sampled_from(("b-1", "b-2"))
    kind = draw(st.integers(0, 7))
    event: StockEvent
    if kind == 0:
        event = StockReceived(**common, quantity=draw(small), batch_id=draw(st.none() | batch))
    elif kind == 1:
        event = StockCounted(**common, quantity=draw(st.integers(0, 12)))
    elif kind == 2:
        event = StockAdjusted(**common, delta=draw(st.integers(-6, 6)), reason="correction")
    elif kind == 3:
        event = StockUnavailableChanged(**common, delta=draw(st.integers(-3, 3)), reason="qc")
    elif kind == 4:
        event = StockTransferredOut(
            **common, quantity=draw(small), transfer_id="t", destination="x"
        )
    elif kind == 5:
        event = StockTransferredIn(**common, quantity=draw(small), transfer_id="t", source="x")
    elif kind == 6:
        event = StockIncomingAnnounced(
            **common, batch_id=draw(batch), quantity=draw(small), eta_ms=1
        )
    else:
        event = SafetyReserveChanged(
            **common, units=draw(st.integers(0, 3)), percent=draw(st.integers(0, 30))
        )
    return event


@st.composite
def logs(draw: st.DrawFn, *, redeliver_stock: bool = True, max_lines: int = 6) -> Log:
    ids = (f"ev-{n}" for n in itertools.count())
    pool: list[SkuEvent] = []
    for number in range(draw(st.integers(0, max_lines))):
        line = Line(
            sku=draw(st.sampled_from(SKUS)),
            platform=draw(st.sampled_from(("tiktok", "douyin"))),
            order_id=f"o-{number // 2}",
            line_id=f"l-{number % 2}",
            quantity=draw(st.integers(1, 4)),
            warehouse=draw(st.sampled_from(WAREHOUSES)),
        )
        result = draw(st.sampled_from(InspectionResult))
        for kind in LIFE:
            if not draw(st.booleans() if kind != "placed" else st.integers(0, 5).map(bool)):
                continue
            if kind == "shipped" and line.quantity > 1 and draw(st.booleans()):
                first = draw(st.integers(1, line.quantity - 1))
                pool += split_shipment(line, (next(ids), next(ids)), first)
            else:
                pool.append(line_life(line, next(ids), kind, result))
        if draw(st.integers(0, 3)) == 0:  # the platform sends the placement again, new id
            pool.append(line_life(line, next(ids), "placed", result))
    pool += [draw(stock_events(next(ids))) for _ in range(draw(st.integers(0, 8)))]
    counts: list[SkuEvent] = [
        StockCounted(
            event_id=next(ids),
            sku=sku,
            event_time_ms=EPOCH_MS,
            actor="warehouse",
            quantity=draw(st.integers(0, 15)),
        )
        for sku in SKUS
        if draw(st.integers(0, 4))  # mostly counted before the live; sometimes not at all
    ]
    once = (*counts, *draw(st.permutations(pool)))
    redeliverable = [
        index
        for index, event in enumerate(once)
        if redeliver_stock or not isinstance(event, StockEvent)
    ]
    redeliveries = (
        draw(
            st.lists(
                st.tuples(st.sampled_from(redeliverable), st.integers(0, len(once))),
                max_size=len(once),
            )
        )
        if redeliverable
        else []
    )
    # First deliveries keep their order; a redelivery lands `delay` slots after the original.
    ordered = [((index, 0, 0), event) for index, event in enumerate(once)]
    ordered += [
        ((index + 1 + delay, 1, number), once[index])
        for number, (index, delay) in enumerate(redeliveries)
    ]
    delivered = tuple(event for _, event in sorted(ordered, key=lambda item: item[0]))
    return Log(once, delivered)


# --- driving the ledger -----------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    event: SkuEvent
    before: SkuPosition
    record: Record | None
    step: Step


@dataclass
class Books:
    positions: dict[str, SkuPosition] = field(default_factory=dict)
    records: dict[bytes, Record] = field(default_factory=dict)
    skus: dict[bytes, str] = field(default_factory=dict)
    """The SKU each record belongs to."""

    def final(self) -> tuple[dict[str, SkuPosition], dict[bytes, Record]]:
        return self.positions, self.records

    def committed_by_lines(self, sku: str) -> int:
        return sum(
            record.quantity
            for key, record in self.records.items()
            if self.skus[key] == sku
            and isinstance(record, LineRecord)
            and record.status in HOLDS_STOCK
        )


def replay(
    events: Sequence[SkuEvent],
    books: Books,
    decoder: codecs.SkuEventDecoder | None = None,
) -> Iterator[Applied]:
    """Drive ``ledger.apply`` like the agent; with a ``decoder``, every event and every
    stored value goes through its wire form first."""
    for delivered in events:
        event = delivered
        if decoder is not None:
            event = decoder.decode(event.sku.encode(), codecs.encode(event))
        key = state.record_key(event)
        before = books.positions.get(event.sku, SkuPosition(event.sku))
        record = books.records.get(key)
        step = apply(before, record, event, POLICY)
        position, stored = step.position, step.record
        if decoder is not None:
            position = state.decode_position(state.encode(position))
            stored = None if stored is None else state.decode_record(state.encode(stored))
        books.positions[event.sku] = position
        if stored is not None:
            books.records[key] = stored
            books.skus[key] = event.sku
        yield Applied(event, before, record, step)


def run(events: Sequence[SkuEvent], decoder: codecs.SkuEventDecoder | None = None) -> Books:
    books = Books()
    for _ in replay(events, books, decoder):
        pass
    return books


@dataclass(frozen=True)
class Write:
    seq: int
    key: bytes
    value: bytes
    is_position: bool


@dataclass
class Agent:
    """The ledger agent without Kafka: a table of bytes, written record first, position
    second, through ``apply_at``; ``crash`` keeps only a prefix of the writes."""

    writes: list[Write] = field(default_factory=list)
    table: dict[bytes, bytes] = field(default_factory=dict)
    answers: list[tuple[int, OrderLineDecided]] = field(default_factory=list)

    def process(self, seq: int, event: SkuEvent) -> Step:
        position_key, record_key = state.position_key(event.sku), state.record_key(event)
        stored_position, stored_record = self.table.get(position_key), self.table.get(record_key)
        applied = apply_at(
            seq,
            state.decode_position(stored_position) if stored_position else SkuPosition(event.sku),
            state.decode_record(stored_record) if stored_record else None,
            event,
            POLICY,
        )
        step = applied.step
        if step.record is not None:
            self._write(Write(seq, record_key, state.encode(step.record), is_position=False))
        self._write(Write(seq, position_key, state.encode(step.position), is_position=True))
        if step.decision is not None:
            self.answers.append((seq, step.decision))
        return step

    def _write(self, write: Write) -> None:
        self.writes.append(write)
        self.table[write.key] = write.value

    def crash(self, keep: int) -> None:
        self.writes = self.writes[:keep]
        self.table = {write.key: write.value for write in self.writes}

    def first_unapplied(self) -> int:
        """Every event before this seq has its position write in the table."""
        return 1 + max((write.seq for write in self.writes if write.is_position), default=-1)
