"""Generates the published JSON Schemas from the event dataclasses.

The dataclasses (with constraints in their field metadata) are the single source;
the files in ``sync_worker/schemas`` are what producers read. ``python -m
sync_worker.streaming.schemas`` rewrites the files; a test fails when they drift.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import orjson

from sync_worker.domain import events
from sync_worker.streaming.dead_letters import DeadLetter

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
BASE_URI = "https://stockcast.dev/schemas/"

INPUTS: tuple[type[Any], ...] = (
    *events.ORDER_LINE_EVENTS,
    *events.STOCK_EVENTS,
    *events.ALLOCATION_EVENTS,
    *events.SESSION_EVENTS,
)
OUTPUTS: tuple[type[Any], ...] = (
    events.OrderLineDecided,
    events.CancellationRequested,
    events.StockLevelChanged,
    events.StockQuotaChanged,
    events.AuditRecord,
    events.AlertRaised,
    DeadLetter,
)


def schema_name(event_class: type[Any]) -> str:
    """``order_line.placed.v1``: the event's type and schema version."""
    return f"{events.type_name(event_class)}.v{events.SCHEMA_VERSION}"


def schema_for(event_class: type[Any], *, output: bool) -> dict[str, Any]:
    """The JSON Schema of one event. Outputs always carry every field; inputs may omit
    fields that have a default."""
    hints = typing.get_type_hints(event_class)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in dataclasses.fields(event_class):
        properties[field.name] = {**_type_schema(hints[field.name]), **field.metadata}
        has_default = field.default is not dataclasses.MISSING
        if output or not has_default or field.name in ("type", "schema_version"):
            required.append(field.name)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_URI}{schema_name(event_class)}.json",
        "title": schema_name(event_class),
        "description": " ".join((event_class.__doc__ or "").split()),
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _type_schema(annotation: Any) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        (value,) = typing.get_args(annotation)
        return {"const": value}
    if origin in (Union, types.UnionType):
        options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        (inner,) = options
        schema = _type_schema(inner)
        if "enum" in schema:
            return {"enum": [*schema["enum"], None]}
        return {"type": [schema["type"], "null"]}
    if origin is tuple:
        item, _ = typing.get_args(annotation)
        return {"type": "array", "items": _type_schema(item)}
    if origin is dict:
        _, value_type = typing.get_args(annotation)
        return {"type": "object", "additionalProperties": _type_schema(value_type)}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"enum": [member.value for member in annotation]}
    simple = {str: "string", int: "integer", bool: "boolean"}
    return {"type": simple[annotation]}


def generate() -> dict[str, bytes]:
    """Every schema file's name and content."""
    files = {}
    for event_class, output in [(c, False) for c in INPUTS] + [(c, True) for c in OUTPUTS]:
        schema = schema_for(event_class, output=output)
        content = orjson.dumps(schema, option=orjson.OPT_INDENT_2) + b"\n"
        files[f"{schema_name(event_class)}.json"] = content
    return files


def main() -> int:
    for stale in SCHEMA_DIR.glob("*.json"):
        stale.unlink()
    for name, content in generate().items():
        (SCHEMA_DIR / name).write_bytes(content)
    print(f"wrote {len(INPUTS) + len(OUTPUTS)} schemas to {SCHEMA_DIR}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
