"""How the ledger's state is stored in the table: keys and orjson values.

One table holds a SKU's position and the records of its order lines and stock
movements. All of a SKU's keys are written while processing that SKU's partition,
so they share one changelog partition, whose order a crash cannot break (see
``domain.replay``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from sync_worker.domain.alerts import AlertThresholds
from sync_worker.domain.allocation import Allocation, ChannelQuota
from sync_worker.domain.events import OrderLineEvent, Outcome, RejectReason, SkuEvent
from sync_worker.domain.orders import AcceptedLine, OrderTally
from sync_worker.domain.position import IncomingBatch, SafetyReserve, SkuPosition, WarehouseStock
from sync_worker.domain.records import (
    BuyerRecord,
    LineRecord,
    LineStatus,
    MovementRecord,
    Record,
)
from sync_worker.domain.sessions import SkuSession

_POSITION = b"p\x00"
_LINE = b"l\x00"
_MOVEMENT = b"m\x00"
_BUYER = b"b\x00"
APPLIED_KEY = b"a\x00"
"""The last input offset whose batch the partition's state holds in full (written
after the batch's writes and outputs were delivered; ``streaming.ledger_service``)."""


def position_key(sku: str) -> bytes:
    return _POSITION + sku.encode()


def positions_in(items: Iterable[tuple[bytes, bytes]]) -> Iterator[SkuPosition]:
    """The SKU positions among a ledger store's items (order lines etc. skipped)."""
    for key, value in items:
        if key.startswith(_POSITION) and value:
            yield decode_position(value)


def record_key(event: SkuEvent) -> bytes:
    """Order lines are identified per SKU (a cancel naming another SKU finds nothing
    there); stock movements and allocation events by their event id."""
    sku = f"{len(event.sku)}:{event.sku}".encode()  # length-prefixed: ids may hold any byte
    if isinstance(event, OrderLineEvent):
        return _LINE + sku + event.line_key.encode()
    return _MOVEMENT + sku + event.event_id.encode()


def buyer_key(sku: str, session_id: str, buyer: str) -> bytes:
    """A buyer's holding of a SKU in one session (every part length-prefixed)."""
    parts = (sku, session_id, buyer)
    return _BUYER + b"".join(f"{len(part)}:{part}".encode() for part in parts)


def encode_offset(offset: int) -> bytes:
    return str(offset).encode()


def decode_offset(raw: bytes) -> int:
    return int(raw)


def encode(value: SkuPosition | Record | BuyerRecord | OrderTally) -> bytes:
    return orjson.dumps(value)


def decode_position(raw: bytes) -> SkuPosition:
    fields = orjson.loads(raw)
    return SkuPosition(
        sku=fields["sku"],
        warehouses=tuple((name, WarehouseStock(**stock)) for name, stock in fields["warehouses"]),
        committed=fields["committed"],
        reserve=SafetyReserve(**fields["reserve"]),
        incoming=tuple(IncomingBatch(**batch) for batch in fields["incoming"]),
        version=fields["version"],
        known=fields["known"],
        seq=fields["seq"],
        allocation=_allocation(fields.get("allocation")),  # absent before allocation existed
        sessions=tuple(_session(session) for session in fields.get("sessions", ())),
    )


def _session(fields: dict[str, Any]) -> SkuSession:
    return SkuSession(
        **{
            **fields,
            "channels": tuple(fields["channels"]),
            "regions_allow": tuple(fields["regions_allow"]),
            "regions_deny": tuple(fields["regions_deny"]),
            "thresholds": AlertThresholds(**fields["thresholds"]),
        }
    )


def decode_buyer(raw: bytes) -> BuyerRecord:
    return BuyerRecord(**orjson.loads(raw))


def _allocation(fields: dict[str, Any] | None) -> Allocation:
    if fields is None:
        return Allocation()
    return Allocation(
        channels=tuple(ChannelQuota(**quota) for quota in fields["channels"]),
        version=fields["version"],
        refreshed_ms=fields["refreshed_ms"],
    )


def decode_record(raw: bytes) -> Record:
    return _record(orjson.loads(raw))


def _record(fields: dict[str, Any]) -> Record:
    if "status" not in fields:
        return MovementRecord(seq=fields["seq"])
    return _line_record(fields)


def _line_record(fields: dict[str, Any]) -> LineRecord:
    previous = fields["previous"]
    return LineRecord(
        status=LineStatus(fields["status"]),
        quantity=fields["quantity"],
        placed=Outcome(fields["placed"]) if fields["placed"] else None,
        reason=RejectReason(fields["reason"]) if fields["reason"] else None,
        paid=fields["paid"],
        shipments=tuple(fields["shipments"]),
        shipped=fields.get("shipped", 0),  # absent from records written before it existed
        session_id=fields.get("session_id"),
        buyer=fields.get("buyer"),
        seq=fields["seq"],
        previous=_line_record(previous) if previous else None,
    )


def decode_tally(raw: bytes) -> OrderTally:
    fields = orjson.loads(raw)
    return OrderTally(
        line_count=fields["line_count"],
        decided=tuple(fields["decided"]),
        accepted=tuple(AcceptedLine(**line) for line in fields["accepted"]),
        released=tuple(AcceptedLine(**line) for line in fields["released"]),
        failed=fields["failed"],
        seq=fields["seq"],
    )
