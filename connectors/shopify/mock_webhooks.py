"""The mock shop's webhook deliveries: signed as Shopify signs them, retried as it retries.

A delivery is the event's payload as it stood when it happened, with every
``X-Shopify-*`` header; its signature is base64 HMAC-SHA256 of the raw body keyed with
the app's client secret. A non-2xx answer (or none within 5 s) is retried with the same
body and webhook id, backing off exponentially; the real schedule spans 4 hours over 8
tries, the mock's ``connectors.mock_support.WebhookSender`` compresses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import aiohttp
import orjson

from connectors.base import InboundRequest
from connectors.shopify.mock_state import WebhookEvent
from connectors.shopify.signing import format_triggered_at, webhook_signature

DELIVERY_TIMEOUT: Final = aiohttp.ClientTimeout(total=5.0, connect=1.0)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook POST: canonical header names, the raw body."""

    headers: dict[str, str]
    body: bytes

    def as_received(self, received_at_s: float = 0.0) -> InboundRequest:
        """As our ingress hands it over: lower-case header names."""
        headers = {name.lower(): value for name, value in self.headers.items()}
        return InboundRequest(headers=headers, body=self.body, received_at_s=received_at_s)


def signed_delivery(
    event: WebhookEvent,
    *,
    client_secret: str,
    shop_domain: str,
    api_version: str,
    triggered_at_s: float,
) -> Delivery:
    body = orjson.dumps(event.payload)
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": event.topic,
        "X-Shopify-Hmac-Sha256": webhook_signature(client_secret, body),
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-API-Version": api_version,
        "X-Shopify-Webhook-Id": event.webhook_id,
        "X-Shopify-Triggered-At": format_triggered_at(triggered_at_s),
        "X-Shopify-Event-Id": event.event_id,
    }
    return Delivery(headers, body)
