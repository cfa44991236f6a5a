"""Shopify's signatures and timestamps, pure.

Admin API calls are not signed: the offline access token in ``X-Shopify-Access-Token``
is the whole proof, so ``request_headers`` is all the outbound side needs. Webhook
deliveries are signed over the raw body only (base64 HMAC-SHA256 keyed with the app's
client secret); nothing in the signature covers time, so staleness is judged from the
``X-Shopify-Triggered-At`` header, which the signature does not protect either: the
window only keeps an old capture from being replayed much later, and dedupe on
``X-Shopify-Webhook-Id`` does the rest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

from connectors.shopify.api import ACCESS_TOKEN_HEADER


def request_headers(access_token: str) -> dict[str, str]:
    """The headers of every Admin API call: the token and a JSON body."""
    return {ACCESS_TOKEN_HEADER: access_token, "Content-Type": "application/json"}


def webhook_signature(client_secret: str, body: bytes) -> str:
    """The ``X-Shopify-Hmac-Sha256`` header of a delivery: base64 of the HMAC-SHA256 of
    the raw body keyed with the client secret (the binary digest, not its hex)."""
    digest = hmac.new(client_secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def webhook_signature_valid(client_secret: str, body: bytes, signature: str) -> bool:
    """Whether ``signature`` signs ``body``, compared in constant time. Base64 is case
    sensitive, so only surrounding whitespace is forgiven."""
    expected = webhook_signature(client_secret, body)
    given = signature.strip().encode("utf-8", errors="replace")
    return hmac.compare_digest(expected.encode("ascii"), given)


def format_triggered_at(at_s: float) -> str:
    """``at_s`` as Shopify writes ``X-Shopify-Triggered-At``: UTC ISO 8601 with a ``Z`` and
    nanosecond digits (``2023-03-29T18:00:27.877041743Z``)."""
    # A float holds about a microsecond at today's epoch: digits past it would be noise.
    micros = round(at_s * 1_000_000)
    whole, fraction = divmod(micros, 1_000_000)
    stamp = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction:06d}000Z"


def parse_timestamp(value: str) -> float:
    """Seconds since the epoch of an ISO 8601 time as Shopify writes them (``Z`` or an
    offset, any number of fraction digits); a time without an offset is taken as UTC.

    Raises ``ValueError`` for anything else.
    """
    text = value.strip()
    if not text or text[0] in "+-":
        raise ValueError(f"not an ISO 8601 time: {value!r}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
