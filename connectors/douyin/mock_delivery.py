"""The mock platform's message push: signed deliveries, and what acknowledges one.

A delivery is acknowledged by a 2xx answer whose body is the documented
``{"code":0,"msg":"success"}``; anything else is retried by the mock's
``connectors.mock_support.WebhookSender`` with exponential back-off on a compressed
schedule (0.05 s, 0.1 s, 0.2 s…, 8 tries in all), then abandoned.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

import aiohttp

from connectors.base import InboundRequest
from connectors.douyin.api import (
    SIGN_METHOD_MD5,
    WEBHOOK_APP_ID_HEADER,
    WEBHOOK_SIGN_HEADER,
    WEBHOOK_SIGN_METHOD_HEADER,
)
from connectors.douyin.signing import event_sign

DELIVERY_TIMEOUT: Final = aiohttp.ClientTimeout(total=3.0)


def signed_headers(
    app_key: str, app_secret: str, body: bytes, sign_method: str = SIGN_METHOD_MD5
) -> dict[str, str]:
    """The headers of a push, lower-case as our ingress hands them over."""
    headers = {
        "content-type": "application/json",
        WEBHOOK_APP_ID_HEADER: app_key,
        WEBHOOK_SIGN_HEADER: event_sign(app_key, app_secret, body, sign_method),
    }
    if sign_method != SIGN_METHOD_MD5:
        headers[WEBHOOK_SIGN_METHOD_HEADER] = sign_method
    return headers


def inbound(headers: Mapping[str, str], body: bytes, received_at_s: float) -> InboundRequest:
    return InboundRequest(headers=dict(headers), body=body, received_at_s=received_at_s)


def acknowledged(status: int, answer: bytes) -> bool:
    """A 2xx answer with the documented ``{"code":0}`` body takes the delivery."""
    if not 200 <= status < 300:
        return False
    try:
        parsed = json.loads(answer)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("code") == 0
