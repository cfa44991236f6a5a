"""Douyin's message push, pure: verifying a delivery and reading its order messages.

A push is a JSON array of thin messages ``{tag, msg_id, data}`` signed as a whole with
``event-sign``; it carries no timestamp header, so its age is read from the Unix times
inside the messages' ``data``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.base import InboundRequest, Notification, ReplayRejected, SignatureInvalid
from connectors.douyin.api import (
    MESSAGE_TIME_FIELDS,
    ORDER_TAGS,
    SIGN_METHOD_MD5,
    SIGN_METHODS,
    WEBHOOK_APP_ID_HEADER,
    WEBHOOK_SIGN_HEADER,
    WEBHOOK_SIGN_METHOD_HEADER,
    WEBHOOK_WINDOW_S,
)
from connectors.douyin.mapping import ShapeError, decimal_id, json_object
from connectors.douyin.signing import event_signature_valid


@dataclass(frozen=True, slots=True)
class PushMessage:
    tag: str
    msg_id: str
    data: Mapping[str, Any]


def verify_push(
    app_key: str,
    app_secret: str,
    request: InboundRequest,
    now_s: float,
    *,
    window_s: float = WEBHOOK_WINDOW_S,
) -> None:
    """``event-sign`` over the raw body (constant time), then the delivery's age.

    A delivery whose newest message time is more than ``window_s`` (default
    ``WEBHOOK_WINDOW_S``, 72 hours) before ``now_s`` is refused as a replay; a redelivery
    inside it is taken, and its events are answered as duplicates. A delivery with
    messages but no time in any of them cannot be placed in the window and is refused; an
    unreadable body passes here and is refused by ``parse_push``.
    """
    signature = request.headers.get(WEBHOOK_SIGN_HEADER)
    if not signature:
        raise SignatureInvalid("douyin push has no event-sign header")
    app_id = request.headers.get(WEBHOOK_APP_ID_HEADER)
    if app_id is not None and app_id.strip() != app_key:
        raise SignatureInvalid("douyin push is for another app")
    method = request.headers.get(WEBHOOK_SIGN_METHOD_HEADER, SIGN_METHOD_MD5).strip().lower()
    if method not in SIGN_METHODS or not event_signature_valid(
        app_key, app_secret, request.body, signature, method
    ):
        raise SignatureInvalid("douyin push event-sign does not match its body")
    try:
        messages = parse_push(request.body)
    except ShapeError:
        return
    times = [t for t in map(message_time_s, messages) if t is not None]
    if messages and not times:
        raise ReplayRejected("douyin push carries no message time to check its age")
    if times and max(times) < now_s - window_s:
        raise ReplayRejected(
            f"douyin push is {now_s - max(times):.0f} s old (window {window_s:.0f} s)"
        )


def parse_push(body: bytes) -> list[PushMessage]:
    """A push body: a JSON array of ``{tag, msg_id, data}``, ``data`` a JSON string (the Go
    SDK's shape) or an object (SKIT's samples, which also spell ``msgId``)."""
    try:
        messages = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ShapeError("push body is not JSON") from None
    if not isinstance(messages, list):
        raise ShapeError(f"push body must be a JSON array, got {type(messages).__name__}")
    return [_message(item, index) for index, item in enumerate(messages)]


def _message(item: object, index: int) -> PushMessage:
    where = f"message {index}"
    message = json_object(item, where)
    tag = _text_or_int(message.get("tag"))
    msg_id = _text_or_int(message.get("msg_id", message.get("msgId")))
    if not tag:
        raise ShapeError(f"{where}: tag must be a non-empty string")
    if not msg_id:
        raise ShapeError(f"{where}: msg_id must be a non-empty string")
    data = message.get("data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            raise ShapeError(f"{where}: data is not JSON") from None
    return PushMessage(tag, msg_id, json_object(data, f"{where} data"))


def _text_or_int(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else ""


def message_time_s(message: PushMessage) -> int | None:
    """When the change happened: the newest Unix-second time field of the message."""
    times = [
        int(text)
        for name in MESSAGE_TIME_FIELDS
        if (text := _text_or_int(message.data.get(name))).isdigit()
    ]
    return max(times, default=None)


def notifications(messages: Sequence[PushMessage], default_shop_id: str) -> list[Notification]:
    """One notification per order message, in push order; other tags are dropped. A
    message without a time of its own takes the newest of the delivery."""
    delivery_s = max((t for t in map(message_time_s, messages) if t is not None), default=0)
    found = []
    for message in messages:
        if message.tag not in ORDER_TAGS:
            continue
        where = f"message {message.msg_id}"
        has_shop = message.data.get("shop_id") is not None
        occurred_s = message_time_s(message)
        found.append(
            Notification(
                notification_id=message.msg_id,
                shop_id=decimal_id(message.data, "shop_id", where) if has_shop else default_shop_id,
                order_id=decimal_id(message.data, "p_id", where),
                occurred_at_ms=(delivery_s if occurred_s is None else occurred_s) * 1000,
            )
        )
    return found
