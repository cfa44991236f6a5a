"""The wire edge: bytes <-> domain values, validated against the published schemas.

The JSON Schemas in ``sync_worker/schemas`` are the contract; the decoder enforces
exactly those files, so what we publish and what we accept cannot drift apart.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from typing import Any, Final

import fastjsonschema
import orjson

from sync_worker.domain.events import (
    OrderLineCancelled,
    OrderLinePlaced,
    SkuEvent,
    StockCounted,
    StockLevelChanged,
    StockReceived,
)
from sync_worker.domain.ledger import LineRecord, LineStatus, SkuPosition

SKU_EVENT_TYPES: Final[dict[str, type[SkuEvent]]] = {
    "order_line.placed": OrderLinePlaced,
    "order_line.cancelled": OrderLineCancelled,
    "stock.counted": StockCounted,
    "stock.received": StockReceived,
}


class InvalidEvent(ValueError):
    """An input that breaks the contract; ``reason`` is a short code for dead letters."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def load_schema(name: str) -> dict[str, Any]:
    """One published schema, e.g. ``load_schema("order_line.placed.v1")``."""
    resource = importlib.resources.files("sync_worker.schemas").joinpath(f"{name}.json")
    schema: dict[str, Any] = orjson.loads(resource.read_bytes())
    return schema


class SkuEventDecoder:
    """Validates and decodes messages of the SKU-events topic.

    Built once per app (schema compilation is not free and must not happen at import).
    """

    def __init__(self) -> None:
        self._validators: dict[str, Callable[[Any], Any]] = {
            name: fastjsonschema.compile(load_schema(f"{name}.v1")) for name in SKU_EVENT_TYPES
        }

    def decode(self, key: bytes | None, value: bytes | None) -> SkuEvent:
        """Decode one message; raises ``InvalidEvent`` with a reason code on any problem."""
        if value is None:
            raise InvalidEvent("empty_value", "message has no value")
        try:
            payload = orjson.loads(value)
        except orjson.JSONDecodeError as error:
            raise InvalidEvent("malformed_json", str(error)) from None
        if not isinstance(payload, dict):
            raise InvalidEvent("malformed_json", "top level must be a JSON object")
        event_type = payload.get("type")
        event_class = SKU_EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
        if event_class is None:
            raise InvalidEvent("unknown_type", f"type {event_type!r} is not a SKU event")
        try:
            self._validators[event_type](payload)  # type: ignore[index]
        except fastjsonschema.JsonSchemaValueException as error:
            raise InvalidEvent("schema_violation", error.message) from None
        # JSON Schema counts 2.0 as an integer; the domain must only ever see ints.
        if any(type(field) is float for field in payload.values()):
            raise InvalidEvent("schema_violation", "numbers must be written as integers")
        event = event_class(**payload)
        if key is not None and key.decode("utf-8", "replace") != event.sku:
            raise InvalidEvent("key_mismatch", f"message key {key!r} is not the SKU {event.sku!r}")
        return event


def encode(value: Any) -> bytes:
    """An event or state dataclass as JSON (orjson serialises dataclasses and enums natively)."""
    return orjson.dumps(value)


def decode_position(raw: bytes) -> SkuPosition:
    return SkuPosition(**orjson.loads(raw))


def decode_line(raw: bytes) -> LineRecord:
    fields = orjson.loads(raw)
    return LineRecord(status=LineStatus(fields["status"]), quantity=fields["quantity"])


def decode_level(raw: bytes) -> StockLevelChanged:
    """Our own stock-level output, read back by the publisher."""
    return StockLevelChanged(**orjson.loads(raw))
