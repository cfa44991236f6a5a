"""The wire edge: bytes <-> domain values, validated against the published schemas.

The JSON Schemas in ``sync_worker/schemas`` are the contract; the decoder enforces
exactly those files, so what we publish and what we accept cannot drift apart.
"""

from __future__ import annotations

import enum
import importlib.resources
import typing
from collections.abc import Callable
from typing import Any, Final

import fastjsonschema
import orjson

from sync_worker.domain.events import (
    ALLOCATION_EVENTS,
    ORDER_LINE_EVENTS,
    SCHEMA_VERSION,
    SESSION_EVENTS,
    STOCK_EVENTS,
    OrderLineDecided,
    Outcome,
    RejectReason,
    SkuEvent,
    StockQuotaChanged,
    type_name,
)

SKU_EVENT_TYPES: Final[dict[str, type[SkuEvent]]] = {
    type_name(event_class): event_class
    for event_class in (*ORDER_LINE_EVENTS, *STOCK_EVENTS, *ALLOCATION_EVENTS, *SESSION_EVENTS)
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
            name: fastjsonschema.compile(load_schema(f"{name}.v{SCHEMA_VERSION}"))
            for name in SKU_EVENT_TYPES
        }
        self._enum_fields = {
            name: {
                field: hint
                for field, hint in typing.get_type_hints(event_class).items()
                if isinstance(hint, type) and issubclass(hint, enum.Enum)
            }
            for name, event_class in SKU_EVENT_TYPES.items()
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
        if not isinstance(event_type, str) or event_type not in SKU_EVENT_TYPES:
            raise InvalidEvent("unknown_type", f"type {event_type!r} is not a SKU event")
        event_class = SKU_EVENT_TYPES[event_type]
        version = payload.get("schema_version")
        if type(version) is int and version > SCHEMA_VERSION:
            raise InvalidEvent(
                "unsupported_schema_version",
                f"{event_type} v{version} is newer than this worker reads (v{SCHEMA_VERSION})",
            )
        try:
            self._validators[event_type](payload)
        except fastjsonschema.JsonSchemaValueException as error:
            raise InvalidEvent("schema_violation", error.message) from None
        # JSON Schema counts 2.0 as an integer; the domain must only ever see ints.
        if any(type(field) is float for field in payload.values()):
            raise InvalidEvent("schema_violation", "numbers must be written as integers")
        for field, enum_class in self._enum_fields[event_type].items():
            if field in payload:
                payload[field] = enum_class(payload[field])
        for field, value in payload.items():
            if type(value) is list:  # events are frozen values: arrays become tuples
                payload[field] = tuple(value)
        event = event_class(**payload)
        if key is not None and key.decode("utf-8", "replace") != event.sku:
            raise InvalidEvent("key_mismatch", f"message key {key!r} is not the SKU {event.sku!r}")
        return event


def encode(value: Any) -> bytes:
    """An event or state dataclass as JSON (orjson serialises dataclasses and enums natively)."""
    return orjson.dumps(value)


def decode_decision(raw: bytes) -> OrderLineDecided:
    """Our own decision output, read back by the order aggregation."""
    fields = orjson.loads(raw)
    return OrderLineDecided(
        **{
            **fields,
            "outcome": Outcome(fields["outcome"]),
            "reason": RejectReason(fields["reason"]) if fields["reason"] else None,
            "original_outcome": (
                Outcome(fields["original_outcome"]) if fields["original_outcome"] else None
            ),
        }
    )


def decode_quota(raw: bytes) -> StockQuotaChanged | None:
    """A quota change from our own stock-levels output, read back by the publisher;
    None for the stock levels beside them."""
    fields = orjson.loads(raw)
    if fields.get("type") != type_name(StockQuotaChanged):
        return None
    return StockQuotaChanged(**fields)
