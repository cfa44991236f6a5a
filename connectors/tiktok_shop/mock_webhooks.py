"""The mock platform's webhook deliveries, signed as the platform signs them.

A delivery is one event in the documented envelope, signed in ``Authorization`` with
HMAC-SHA256(app_secret, app_key + body). The platform redelivers an unacknowledged one
for up to 72 hours (see ``api.WEBHOOK_REDELIVERY_S``) on a schedule it does not publish
[U]; the mock's ``connectors.mock_support.WebhookSender`` redelivers the same bytes on a
compressed exponential schedule, which keeps the at-least-once shape without making
tests wait.
"""

from __future__ import annotations

import orjson

from connectors.base import InboundRequest
from connectors.tiktok_shop.mock_gate import AppCredentials
from connectors.tiktok_shop.mock_state import Event
from connectors.tiktok_shop.signing import webhook_signature


def delivery(
    credentials: AppCredentials, shop_id: str, event: Event, timestamp: int
) -> InboundRequest:
    """``event`` as our ingress receives it: raw body, lower-case header names."""
    body = orjson.dumps(
        {
            "type": event.type,
            "tts_notification_id": event.notification_id,
            "shop_id": shop_id,
            "timestamp": timestamp,
            "data": event.data,
        }
    )
    signature = webhook_signature(credentials.app_key, credentials.app_secret, body)
    return InboundRequest(
        headers={"authorization": signature, "content-type": "application/json"},
        body=body,
        received_at_s=float(timestamp),
    )
