"""The ledger agent against a reference model of docs/ledger.md, step by step.

Hypothesis drives a ``RuleBasedStateMachine``: every rule delivers one event (a new one,
or the very same event again) to the ``Agent`` (``apply_at`` over a table of bytes) and to
``Model``, a plain transcription of the written rules that shares no code with the
ledger. After every step the two must agree on every quantity of every SKU, on which
warehouses it has entries for, on what each line holds and which shipments it took, on
the answer to each placement and whether it asks for a cancellation, and on whether the
step announced a change (level and audit record, whose before and after must be the
model's quantities).

Left out on purpose (``may_return``): a return for a line that was rejected, or released
before shipping, and never reported shipped. What such a return implies is a business
question the written rules leave open; the ledger implies no shipment.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sync_worker.domain.events import (
    InspectionResult,
    OrderLineCancelled,
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
from sync_worker.domain.position import SkuPosition
from sync_worker.domain.records import HOLDS_STOCK, LineRecord
from sync_worker.streaming import state
from tests.property.ledger_logs import EPOCH_MS, POLICY, SKUS, WAREHOUSES, Agent, Line

LINES = tuple(
    Line(
        sku=SKUS[n % 2],
        platform="douyin" if n % 3 == 0 else "tiktok",
        order_id=f"o-{n // 2}",
        line_id=f"l-{n % 2}",
        quantity=1 + n % 3,
        warehouse=WAREHOUSES[1] if n % 3 == 2 else WAREHOUSES[0],
    )
    for n in range(6)
)
"""Six lines over both SKUs and warehouses, one to three units each."""

Answer = tuple[Outcome, RejectReason | None]


# --- the reference model ------------------------------------------------------------------


@dataclass
class ModelLine:
    answer: Answer | None = None
    """The first answer to the line's placement."""
    stage: str = "open"
    """open (holding stock, possibly shipped in part), cancelled (before its placement or
    while holding stock), shipped, return_pending, returned."""
    held: int = 0
    early: int = 0
    """Units shipped before the placement arrived (while the line is open, unanswered)."""
    shipments: set[str] = field(default_factory=set)
    """Event ids of the shipments applied."""


@dataclass
class ModelSku:
    known: bool = False
    on_hand: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unavailable: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    returns_pending: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    committed: int = 0
    reserve: tuple[int, int] = (0, 0)
    incoming: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Batch id -> (warehouse, units), in the order the batches were first announced."""
    version: int = 0
    movements: set[str] = field(default_factory=set)
    entries: set[str] = field(default_factory=set)
    """Warehouses the position lists: those whose stock some change touched."""

    @property
    def total(self) -> int:
        return sum(self.on_hand.values())

    @property
    def safety_reserve(self) -> int:
        units, percent = self.reserve
        return max(units, -(-max(0, self.total) * percent // 100))  # percent rounds up

    @property
    def sellable(self) -> int:
        held_back = self.committed + self.safety_reserve + sum(self.unavailable.values())
        return max(0, self.total - held_back)

    def quantities(self) -> dict[str, int]:
        """As an audit record shows them."""
        return {
            "on_hand": self.total,
            "committed": self.committed,
            "safety_reserve": self.safety_reserve,
            "unavailable": sum(self.unavailable.values()),
            "returns_pending": sum(self.returns_pending.values()),
            "incoming": sum(units for _, units in self.incoming.values()),
            "sellable": self.sellable,
            "transferable": self.sellable,
        }

    def stock(self, warehouse: str) -> tuple[int, int, int]:
        return (
            self.on_hand[warehouse],
            self.unavailable[warehouse],
            self.returns_pending[warehouse],
        )

    def books(self) -> tuple[object, ...]:
        """Everything a stock event can change, to tell whether one changed anything."""
        names = {*self.on_hand, *self.unavailable, *self.returns_pending}
        stocks = {w: self.stock(w) for w in names}
        return (
            self.known,
            {w: stock for w, stock in stocks.items() if stock != (0, 0, 0)},
            self.reserve,
            dict(self.incoming),
        )


PAST_SHIPPING = ("shipped", "return_pending", "returned")


def decreased(on_hand: int, amount: int) -> int:
    """Stops at 0; never adds units to a warehouse that shipments took below 0."""
    return min(on_hand, max(0, on_hand - amount))


@dataclass
class Model:
    skus: dict[str, ModelSku] = field(default_factory=lambda: defaultdict(ModelSku))
    lines: dict[tuple[str, str], ModelLine] = field(default_factory=lambda: defaultdict(ModelLine))

    def place(self, event: OrderLinePlaced) -> tuple[Outcome, Answer]:
        """The outcome given now, and the line's first answer."""
        sku, line = self.skus[event.sku], self.lines[event.sku, event.line_key]
        if line.answer is not None:
            return Outcome.DUPLICATE, line.answer
        early, line.early = line.early, 0
        left = event.quantity - early  # only what has not shipped yet is committed
        if line.stage == "cancelled":
            line.answer = (Outcome.REJECTED, RejectReason.ALREADY_CANCELLED)
        elif line.stage in PAST_SHIPPING or (early and left <= 0):
            line.answer = (Outcome.ACCEPTED, None)  # the units left already
            line.stage = "shipped" if line.stage == "open" else line.stage
        elif not sku.known:
            line.answer = (Outcome.REJECTED, RejectReason.UNKNOWN_SKU)
        elif left > sku.sellable:
            line.answer = (Outcome.REJECTED, RejectReason.INSUFFICIENT_STOCK)
        else:
            line.answer, line.held = (Outcome.ACCEPTED, None), left
            sku.committed += left
            sku.version += 1
        return line.answer[0], line.answer

    def advance(self, event: OrderLineEvent) -> None:
        sku, line = self.skus[event.sku], self.lines[event.sku, event.line_key]
        match event:
            case OrderLineCancelled() | OrderLineRefunded():
                if line.held:
                    self._release(sku, line)
                    line.stage = "cancelled"
                    sku.version += 1
                elif line.answer is None and line.stage == "open":
                    line.stage = "cancelled"
            case OrderLineShipped() if (
                line.stage not in PAST_SHIPPING and event.event_id not in line.shipments
            ):
                # A part releases what it carries, of what the line still holds; before the
                # placement each part only takes its units off hand (the placement commits
                # the rest); a line holding nothing (rejected or released) is shipped by its
                # first shipment.
                line.shipments.add(event.event_id)
                sku.on_hand[event.warehouse] -= event.quantity
                if line.answer is None and line.stage == "open":
                    line.early += event.quantity
                else:
                    released = min(event.quantity, line.held)
                    sku.committed -= released
                    line.held -= released
                    if not line.held:
                        line.stage = "shipped"
                sku.entries.add(event.warehouse)
                sku.version += 1
            case OrderLineReturnReceived() if line.stage not in PAST_SHIPPING[1:]:
                self._imply_shipment(sku, line, event.warehouse, event.quantity)
                sku.returns_pending[event.warehouse] += event.quantity
                line.stage = "return_pending"
                sku.entries.add(event.warehouse)
                sku.version += 1
            case OrderLineReturnInspected() if line.stage != "returned":
                self._imply_shipment(sku, line, event.warehouse, event.quantity)
                if line.stage == "return_pending":
                    pending = sku.returns_pending[event.warehouse] - event.quantity
                    sku.returns_pending[event.warehouse] = max(0, pending)
                sku.on_hand[event.warehouse] += event.quantity
                if event.result is InspectionResult.DAMAGED:
                    sku.unavailable[event.warehouse] += event.quantity
                line.stage = "returned"
                sku.entries.add(event.warehouse)
                sku.version += 1

    def _imply_shipment(
        self, sku: ModelSku, line: ModelLine, warehouse: str, returned: int
    ) -> None:
        """A return proves the units left: a shipment nobody reported is implied, of what the
        line still holds (the rest of a split shipment), or (not placed yet) of what came
        back beyond the parts already shipped."""
        if line.stage in PAST_SHIPPING:
            return
        sku.on_hand[warehouse] -= line.held or max(0, returned - line.early)
        line.early = 0
        self._release(sku, line)

    @staticmethod
    def _release(sku: ModelSku, line: ModelLine) -> None:
        sku.committed -= line.held
        line.held = 0

    def move(self, event: StockEvent) -> None:
        sku = self.skus[event.sku]
        if event.event_id in sku.movements:
            return
        sku.movements.add(event.event_id)  # even when it changes nothing
        books, stock = sku.books(), sku.stock(event.warehouse)
        if not sku.known:
            default = POLICY.default_reserve
            sku.known, sku.reserve = True, (default.units, default.percent)
        w = event.warehouse
        match event:
            case StockReceived():
                sku.on_hand[w] += event.quantity
                if event.batch_id is not None:
                    sku.incoming.pop(event.batch_id, None)
            case StockCounted():
                sku.on_hand[w] = event.quantity
                sku.unavailable[w] = min(sku.unavailable[w], event.quantity)
            case StockAdjusted() if event.delta >= 0:
                sku.on_hand[w] += event.delta
            case StockAdjusted():
                sku.on_hand[w] = decreased(sku.on_hand[w], -event.delta)
            case StockUnavailableChanged():
                sku.unavailable[w] = max(0, min(sku.on_hand[w], sku.unavailable[w] + event.delta))
            case StockTransferredOut():
                sku.on_hand[w] = decreased(sku.on_hand[w], event.quantity)
            case StockTransferredIn():
                sku.on_hand[w] += event.quantity
            case StockIncomingAnnounced():
                sku.incoming[event.batch_id] = (w, event.quantity)
            case SafetyReserveChanged():
                sku.reserve = (event.units, event.percent)
        if sku.stock(w) != stock:
            sku.entries.add(w)
        if sku.books() != books:
            sku.version += 1


# --- the machine --------------------------------------------------------------------------

line_numbers = st.integers(0, len(LINES) - 1)
skus = st.sampled_from(SKUS)
warehouses = st.sampled_from(WAREHOUSES)
units = st.integers(1, 8)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.agent = Agent()
        self.model = Model()
        self.seq = 0
        self.ids = (f"ev-{n}" for n in itertools.count())
        self.delivered: list[SkuEvent] = []

    def deliver(self, event: SkuEvent) -> None:
        step = self.agent.process(self.seq, event)
        self.seq += 1
        self.delivered.append(event)
        sku = self.model.skus[event.sku]
        version, before = sku.version, sku.quantities()
        requested = False
        if isinstance(event, OrderLinePlaced):
            outcome, (first, reason) = self.model.place(event)
            assert step.decision is not None
            assert (step.decision.outcome, step.decision.reason) == (outcome, reason)
            if outcome is Outcome.DUPLICATE:
                assert step.decision.original_outcome is first
            # Every rejection asks the platform to cancel, but of a line it cancelled itself.
            requested = outcome is Outcome.REJECTED and reason is not RejectReason.ALREADY_CANCELLED
        elif isinstance(event, StockEvent):
            self.model.move(event)
        else:
            self.model.advance(event)
        assert (step.cancellation is not None) == requested
        # A change is announced, with the quantities before and after; no change, nothing.
        changed = sku.version != version
        assert (step.level is not None, step.audit is not None) == (changed, changed)
        if step.audit is not None:
            assert (step.audit.before, step.audit.after) == (before, sku.quantities())

    # order lines

    def line_event(self, number: int, kind: type[OrderLineEvent], **extra: Any) -> None:
        line = LINES[number]
        self.deliver(kind(**line.fields(next(self.ids)), **extra))

    def model_line(self, number: int) -> ModelLine:
        line = LINES[number]
        return self.model.lines[line.sku, line_key_of(line)]

    @rule(number=line_numbers)
    def place(self, number: int) -> None:
        self.line_event(number, OrderLinePlaced, quantity=LINES[number].quantity, buyer_id="b")

    @rule(number=line_numbers)
    def pay(self, number: int) -> None:
        self.line_event(number, OrderLinePaid)

    @rule(number=line_numbers, refund=st.booleans())
    def cancel(self, number: int, refund: bool) -> None:
        kind = OrderLineRefunded if refund else OrderLineCancelled
        self.line_event(number, kind, reason="buyer_request")

    @rule(number=line_numbers)
    def ship(self, number: int) -> None:
        line = LINES[number]
        self.line_event(number, OrderLineShipped, quantity=line.quantity, warehouse=line.warehouse)

    @rule(number=line_numbers, part=st.integers(1, 4))
    def ship_part(self, number: int, part: int) -> None:
        """A shipment of part of the line, the rest of it, or more than the rest."""
        self.line_event(number, OrderLineShipped, quantity=part, warehouse=LINES[number].warehouse)

    def may_return(self, number: int) -> bool:
        # Not for a line rejected or released and never shipped (see the module docstring).
        line = self.model_line(number)
        not_placed_yet = line.answer is None and line.stage == "open"
        return line.held > 0 or line.stage in PAST_SHIPPING or not_placed_yet

    @rule(number=line_numbers)
    def return_received(self, number: int) -> None:
        if self.may_return(number):
            line = LINES[number]
            self.line_event(
                number, OrderLineReturnReceived, quantity=line.quantity, warehouse=line.warehouse
            )

    @rule(number=line_numbers, result=st.sampled_from(InspectionResult))
    def return_inspected(self, number: int, result: InspectionResult) -> None:
        if self.may_return(number):
            line = LINES[number]
            self.line_event(
                number,
                OrderLineReturnInspected,
                quantity=line.quantity,
                result=result,
                warehouse=line.warehouse,
            )

    # stock

    def stock_event(self, kind: type[StockEvent], sku: str, warehouse: str, **extra: Any) -> None:
        self.deliver(
            kind(
                event_id=next(self.ids),
                sku=sku,
                event_time_ms=EPOCH_MS,
                actor="warehouse",
                warehouse=warehouse,
                **extra,
            )
        )

    @rule(sku=skus, warehouse=warehouses, quantity=units, batch=st.none() | st.just("b-1"))
    def receive(self, sku: str, warehouse: str, quantity: int, batch: str | None) -> None:
        self.stock_event(StockReceived, sku, warehouse, quantity=quantity, batch_id=batch)

    @rule(sku=skus, warehouse=warehouses, quantity=st.integers(0, 15))
    def count(self, sku: str, warehouse: str, quantity: int) -> None:
        self.stock_event(StockCounted, sku, warehouse, quantity=quantity)

    @rule(sku=skus, warehouse=warehouses, delta=st.integers(-8, 8))
    def adjust(self, sku: str, warehouse: str, delta: int) -> None:
        self.stock_event(StockAdjusted, sku, warehouse, delta=delta, reason="correction")

    @rule(sku=skus, warehouse=warehouses, delta=st.integers(-4, 4))
    def hold(self, sku: str, warehouse: str, delta: int) -> None:
        self.stock_event(StockUnavailableChanged, sku, warehouse, delta=delta, reason="qc")

    @rule(sku=skus, warehouse=warehouses, quantity=units, inbound=st.booleans())
    def transfer(self, sku: str, warehouse: str, quantity: int, inbound: bool) -> None:
        if inbound:
            self.stock_event(
                StockTransferredIn, sku, warehouse, quantity=quantity, transfer_id="t", source="x"
            )
        else:
            self.stock_event(
                StockTransferredOut,
                sku,
                warehouse,
                quantity=quantity,
                transfer_id="t",
                destination="x",
            )

    @rule(sku=skus, warehouse=warehouses, quantity=units, batch=st.sampled_from(("b-1", "b-2")))
    def announce(self, sku: str, warehouse: str, quantity: int, batch: str) -> None:
        self.stock_event(
            StockIncomingAnnounced, sku, warehouse, batch_id=batch, quantity=quantity, eta_ms=1
        )

    @rule(sku=skus, reserve_units=st.integers(0, 3), percent=st.integers(0, 50))
    def reserve(self, sku: str, reserve_units: int, percent: int) -> None:
        self.stock_event(SafetyReserveChanged, sku, "main", units=reserve_units, percent=percent)

    # the same event again

    @precondition(lambda self: self.delivered)
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        self.deliver(data.draw(st.sampled_from(self.delivered)))

    # the two must agree

    @invariant()
    def every_quantity_agrees(self) -> None:
        for name, expected in self.model.skus.items():
            stored = self.agent.table.get(state.position_key(name))
            position = state.decode_position(stored) if stored else SkuPosition(name)
            for warehouse in WAREHOUSES:
                stock = position.warehouse(warehouse)
                assert (stock.on_hand, stock.unavailable, stock.returns_pending) == (
                    expected.on_hand[warehouse],
                    expected.unavailable[warehouse],
                    expected.returns_pending[warehouse],
                ), warehouse
            assert position.committed == expected.committed
            assert (position.reserve.units, position.reserve.percent) == expected.reserve
            assert position.safety_reserve == expected.safety_reserve
            assert position.sellable == expected.sellable
            # In order: a new batch goes last, a batch announced again keeps its place.
            assert [
                (batch.batch_id, (batch.warehouse, batch.quantity)) for batch in position.incoming
            ] == list(expected.incoming.items())
            assert (position.version, position.known) == (expected.version, expected.known)
            assert {warehouse for warehouse, _ in position.warehouses} == expected.entries

    @invariant()
    def every_line_holds_what_the_model_says(self) -> None:
        for number, line in enumerate(LINES):
            stored = self.agent.table.get(state.record_key(self.probe(number)))
            record = state.decode_record(stored) if stored else None
            expected = self.model_line(number)
            if record is None:
                assert expected == ModelLine()
                continue
            assert isinstance(record, LineRecord)
            assert record.quantity == expected.held
            assert (record.status in HOLDS_STOCK) == (expected.held > 0)
            assert set(record.shipments) == expected.shipments
            placed = None if expected.answer is None else expected.answer[0]
            assert record.placed is placed, line

    def probe(self, number: int) -> OrderLinePaid:
        return OrderLinePaid(**LINES[number].fields("probe"))


def line_key_of(line: Line) -> str:
    return OrderLinePaid(**line.fields("probe")).line_key


LedgerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestLedgerAgainstTheModel = LedgerMachine.TestCase
