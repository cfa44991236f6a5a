"""The simulated platform's stock API, pure: the one place both sides agree on it.

- ``GET  /rooms/{channel}/skus/{sku}/stock`` answers ``{"displayed", "version"}``.
- ``PUT  /rooms/{channel}/skus/{sku}/stock`` with ``{"quantity", "version",
  "event_time_ms"}`` and an optional ``"expected"`` sets the count (outright, or only if
  it still shows ``expected``); answers ``{"applied", "displayed"}``, or 409 with the
  current ``{"displayed", "version"}`` when ``expected`` no longer holds.
- ``POST /rooms/{channel}/skus/{sku}/stock/adjustments`` with ``{"delta",
  "idempotency_key"}`` changes the count by ``delta``; answers ``{"applied", "displayed"}``.

The server decodes requests and encodes answers with these functions, the connector
the other way round, so the two cannot drift apart. Decoders raise ``InvalidBody``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import orjson

PUSH_FIELDS: Final = ("quantity", "version", "event_time_ms")


class InvalidBody(ValueError):
    """A body is not what the stock API expects; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class StockPush:
    """A PUT: set the count to ``quantity``, only if it shows ``expected`` when given."""

    quantity: int
    version: int
    event_time_ms: int
    expected: int | None = None


@dataclass(frozen=True, slots=True)
class PushAnswer:
    applied: bool
    displayed: int


@dataclass(frozen=True, slots=True)
class StockAdjustment:
    delta: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class AdjustmentAnswer:
    """``applied`` is ``delta`` unless the display was clamped at 0."""

    applied: int
    displayed: int


@dataclass(frozen=True, slots=True)
class StockCount:
    """A listing's count and the version of the last PUT applied (None before any)."""

    displayed: int
    version: int | None


def stock_path(channel: str, sku: str) -> str:
    """The percent-encoded path of a SKU's stock resource, relative to the base URL.

    Every character outside the unreserved set is encoded, ``/`` included: SKU codes
    like ``"CASE/12"`` exist and must stay one path segment.
    """
    return f"rooms/{quote(channel, safe='')}/skus/{quote(sku, safe='')}/stock"


def adjustments_path(channel: str, sku: str) -> str:
    return f"{stock_path(channel, sku)}/adjustments"


def encode_push(push: StockPush) -> bytes:
    body: dict[str, int] = {
        "quantity": push.quantity,
        "version": push.version,
        "event_time_ms": push.event_time_ms,
    }
    if push.expected is not None:
        body["expected"] = push.expected
    return orjson.dumps(body)


def decode_push(body: bytes) -> StockPush:
    data = _object(body)
    quantity, version, event_time_ms = _ints(data, *PUSH_FIELDS)
    expected = None if data.get("expected") is None else _ints(data, "expected")[0]
    if quantity < 0:
        raise InvalidBody(f"quantity must not be negative, got {quantity}")
    if expected is not None and expected < 0:
        raise InvalidBody(f"expected must not be negative, got {expected}")
    return StockPush(quantity, version, event_time_ms, expected)


def encode_push_answer(answer: PushAnswer) -> bytes:
    return orjson.dumps({"applied": answer.applied, "displayed": answer.displayed})


def decode_push_answer(body: bytes) -> PushAnswer:
    data = _object(body)
    applied = data.get("applied")
    if not isinstance(applied, bool):
        raise InvalidBody(f"applied must be a boolean, got {applied!r}")
    (displayed,) = _ints(data, "displayed")
    return PushAnswer(applied, displayed)


def encode_adjustment(adjustment: StockAdjustment) -> bytes:
    return orjson.dumps({"delta": adjustment.delta, "idempotency_key": adjustment.idempotency_key})


def decode_adjustment(body: bytes) -> StockAdjustment:
    data = _object(body)
    (delta,) = _ints(data, "delta")
    key = data.get("idempotency_key")
    if not isinstance(key, str) or not key:
        raise InvalidBody(f"idempotency_key must be a non-empty string, got {key!r}")
    return StockAdjustment(delta, key)


def encode_adjustment_answer(answer: AdjustmentAnswer) -> bytes:
    return orjson.dumps({"applied": answer.applied, "displayed": answer.displayed})


def decode_adjustment_answer(body: bytes) -> AdjustmentAnswer:
    data = _object(body)
    applied, displayed = _ints(data, "applied", "displayed")
    return AdjustmentAnswer(applied, displayed)


def encode_count(count: StockCount) -> bytes:
    return orjson.dumps({"displayed": count.displayed, "version": count.version})


def decode_count(body: bytes) -> StockCount:
    data = _object(body)
    (displayed,) = _ints(data, "displayed")
    version = None if data.get("version") is None else _ints(data, "version")[0]
    return StockCount(displayed, version)


def _object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidBody(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidBody(f"body must be a JSON object, got {type(data).__name__}")
    return data


def _ints(data: dict[str, Any], *names: str) -> list[int]:
    """The integer fields ``names`` of ``data``, in order; every missing one is named."""
    missing = [name for name in names if name not in data]
    if missing:
        raise InvalidBody(f"missing field(s): {', '.join(missing)}")
    for name in names:
        value = data[name]
        # bool is an int in Python but `true` is not a count in JSON.
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidBody(f"{name} must be an integer, got {value!r}")
    return [data[name] for name in names]
