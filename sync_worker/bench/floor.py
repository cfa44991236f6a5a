"""``floor``: stockcast's own decision, in process, with no I/O at all.

Each line becomes the ``OrderLinePlaced`` event the worker would read and goes through
``domain.decide`` (ledger, replay guard, allocation, alerts) against plain positions
and records held in dicts, exactly as the ledger agent feeds it; the stock arrives as
one ``StockReceived`` per SKU. No reserve is kept back (the baselines keep none), so
every unit is sellable. What the full path adds on top of this floor is I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace

from sync_worker.bench.system import ClientConfig, Decider, System
from sync_worker.bench.workloads import OrderLine
from sync_worker.domain.decide import Policies, decide
from sync_worker.domain.events import Outcome, StockReceived
from sync_worker.domain.position import SkuPosition
from sync_worker.domain.records import Record

_TEMPLATE = "template-sku"


class FloorSystem(System):
    name = "floor"

    def configs(self, quick: bool) -> Sequence[ClientConfig]:
        return (ClientConfig(1, 1),)  # one thread deciding: more clients only interleave

    @asynccontextmanager
    async def prepare(
        self, stock: Mapping[str, int], config: ClientConfig
    ) -> AsyncIterator[Decider]:
        yield FloorBooks(stock)


class FloorBooks(Decider):
    """The positions and line records of every SKU, in memory."""

    def __init__(self, stock: Mapping[str, int], policies: Policies | None = None) -> None:
        self._policies = policies if policies is not None else Policies()
        self._positions: dict[str, SkuPosition] = {}
        self._records: dict[tuple[str, str], Record] = {}
        self._seq = itertools.count(1)
        # Receiving the same units gives every SKU the same books but for its name: apply
        # each distinct receipt once (10k SKUs would take a second or more each run).
        received: dict[int, SkuPosition] = {}
        for sku, units in stock.items():
            if units not in received:
                received[units] = self._received(units)
            self._positions[sku] = replace(received[units], sku=sku)

    def _received(self, units: int) -> SkuPosition:
        """The books of a SKU that has received ``units`` and nothing else."""
        position = SkuPosition(_TEMPLATE)
        if units <= 0:
            return position
        receipt = StockReceived(
            event_id=f"stock-{units}", sku=_TEMPLATE, event_time_ms=0, actor="bench",
            quantity=units,
        )  # fmt: skip
        return decide(next(self._seq), position, None, receipt, self._policies).step.position

    async def decide(self, lines: Sequence[OrderLine], sent_at: float) -> Sequence[Outcome]:
        now_ms = int(sent_at * 1000)
        return [self._place(line, now_ms) for line in lines]

    async def units_left(self) -> Mapping[str, int]:
        return {sku: position.sellable for sku, position in self._positions.items()}

    def _place(self, line: OrderLine, now_ms: int) -> Outcome:
        seq = next(self._seq)
        placed = line.placed(
            event_id=f"{line.order_id}#{seq}",  # a re-send is a new message for the same line
            sku=line.sku,
            event_time_ms=now_ms,
        )
        key = (line.sku, placed.line_key)
        position = self._positions.get(line.sku) or SkuPosition(line.sku)
        decided = decide(seq, position, self._records.get(key), placed, self._policies)
        self._positions[line.sku] = decided.step.position
        if decided.step.record is not None:
            self._records[key] = decided.step.record
        if decided.step.decision is None:
            raise AssertionError("a placement is always answered")
        return decided.step.decision.outcome
