"""The simulated platform's stock API, pure: the one place both sides agree on it.

``PUT /rooms/{channel}/skus/{sku}/stock`` with ``{"quantity", "version",
"event_time_ms"}``. The server decodes with ``decode_push`` and the connector encodes
with ``encode_push``, so the two cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Final
from urllib.parse import quote

import orjson

PUSH_FIELDS: Final = ("quantity", "version", "event_time_ms")
DEFAULT_RETRY_AFTER_S: Final = 1.0


class InvalidPush(ValueError):
    """The request body is not a valid stock push; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class StockPush:
    quantity: int
    version: int
    event_time_ms: int


def stock_path(channel: str, sku: str) -> str:
    """The percent-encoded path of a SKU's stock resource, relative to the base URL.

    Every character outside the unreserved set is encoded, ``/`` included: SKU codes
    like ``"CASE/12"`` exist and must stay one path segment.
    """
    return f"rooms/{quote(channel, safe='')}/skus/{quote(sku, safe='')}/stock"


def encode_push(push: StockPush) -> bytes:
    return orjson.dumps(
        {"quantity": push.quantity, "version": push.version, "event_time_ms": push.event_time_ms}
    )


def decode_push(body: bytes) -> StockPush:
    """Parse and validate a push body; raises ``InvalidPush`` with a message for a 400."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidPush(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidPush(f"body must be a JSON object, got {type(data).__name__}")
    missing = [name for name in PUSH_FIELDS if name not in data]
    if missing:
        raise InvalidPush(f"missing field(s): {', '.join(missing)}")
    for name in PUSH_FIELDS:
        value = data[name]
        # bool is an int in Python but `true` is not a count in JSON.
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidPush(f"{name} must be an integer, got {value!r}")
    if data["quantity"] < 0:
        raise InvalidPush(f"quantity must not be negative, got {data['quantity']}")
    return StockPush(
        quantity=data["quantity"], version=data["version"], event_time_ms=data["event_time_ms"]
    )


def parse_retry_after(value: str | None, *, now_s: float) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    A missing or unreadable header still means "slow down", so it yields a default
    rather than zero.
    """
    if value is None or not value.strip():
        return DEFAULT_RETRY_AFTER_S
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else DEFAULT_RETRY_AFTER_S
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_S
    return max(0.0, when.timestamp() - now_s)
