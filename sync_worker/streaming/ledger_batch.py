"""The ledger agent's step over a batch of SKU events, against any byte table.

Faust-free so that the crash-safety properties drive this very code with a dict.

Per event the table gets the line's record, then the buyer's holding, then the SKU's
position (``domain.replay`` explains why that order makes any crash harmless). Over a
batch the position is written once per SKU, at the end, which is where a hot SKU's
time went. That stays crash-safe as long as, between two writes of a SKU's position,
no record or holding key is written twice: a crash then leaves each of them either
untouched or stamped by the very event that wrote it, which is the case replay knows
how to undo. So when an event of the batch would write a key already written since the
SKU's position was last written (the same line cancelled right after it was placed, a
buyer's second line, a re-delivery), the position is written first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sync_worker.domain import ledger
from sync_worker.domain.decide import Decided, Policies, decide
from sync_worker.domain.events import SkuEvent, StockLevelChanged
from sync_worker.domain.position import SkuPosition
from sync_worker.streaming import state


class ByteTable(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def __setitem__(self, key: bytes, value: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class Stepped:
    """One event's decision, with the position it was decided against."""

    event: SkuEvent
    before: SkuPosition
    decided: Decided


@dataclass(slots=True)
class _Sku:
    position: SkuPosition
    written: set[bytes] = field(default_factory=set)
    """Record and holding keys written since this SKU's position was last written."""


def decide_batch(
    table: ByteTable,
    events: Sequence[tuple[int, SkuEvent]],
    policies: Policies,
) -> list[Stepped]:
    """Decide ``(offset, event)`` pairs in order; write the table; return each step.

    Offsets are the events' input offsets: they only grow per partition, and a SKU lives
    in one partition, so they only grow per SKU, which is all replay needs.
    """
    skus: dict[bytes, _Sku] = {}
    stepped: list[Stepped] = []
    for offset, event in events:
        position_key = state.position_key(event.sku)
        sku = skus.get(position_key)
        if sku is None:
            stored = table.get(position_key)
            initial = state.decode_position(stored) if stored else SkuPosition(event.sku)
            sku = skus[position_key] = _Sku(initial)
        record_key = state.record_key(event)
        stored_record = table.get(record_key)
        record = state.decode_record(stored_record) if stored_record else None
        slot = ledger.buyer_slot(sku.position, record, event)
        buyer_key = state.buyer_key(event.sku, *slot) if slot is not None else None
        stored_buyer = table.get(buyer_key) if buyer_key is not None else None
        if record_key in sku.written or (buyer_key is not None and buyer_key in sku.written):
            _write_position(table, position_key, sku)
        decided = decide(
            offset,
            sku.position,
            record,
            event,
            policies,
            state.decode_buyer(stored_buyer) if stored_buyer else None,
        )
        step = decided.step
        if step.record is not None:
            table[record_key] = state.encode(step.record)
            sku.written.add(record_key)
        if step.buyer is not None and buyer_key is not None:
            table[buyer_key] = state.encode(step.buyer)
            sku.written.add(buyer_key)
        stepped.append(Stepped(event, sku.position, decided))
        sku.position = step.position
    for position_key, sku in skus.items():  # each decided at least one event
        _write_position(table, position_key, sku)
    return stepped


def newest_levels(stepped: Sequence[Stepped]) -> list[StockLevelChanged]:
    """Each SKU's last stock level of the batch: consumers keep the newest version of a
    SKU only, so the ones before it would be records written and read for nothing
    (a hot SKU's batch holds hundreds)."""
    newest: dict[str, StockLevelChanged] = {}
    for step in stepped:
        level = step.decided.step.level
        if level is not None:
            newest[level.sku] = level
    return list(newest.values())


def _write_position(table: ByteTable, key: bytes, sku: _Sku) -> None:
    table[key] = state.encode(sku.position)
    sku.written.clear()
