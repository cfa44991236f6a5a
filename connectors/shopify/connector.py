"""The Shopify connector: stock out over the Admin GraphQL API, orders in over webhooks.

Registered as the ``shopify`` entry point like any third-party connector. Every failure
leaves as a ``ConnectorError`` subclass; the access token and client secret appear in no
message, log line or repr.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import ClassVar, Final, Self

import orjson

from connectors.base import (
    InboundRequest,
    InboundResponse,
    MalformedPayload,
    Notification,
    PlatformOrder,
    PushResult,
    Rejected,
    ReplayRejected,
    SignatureInvalid,
    StockUpdate,
    WriteMode,
)
from connectors.http_support import number_option
from connectors.shopify import api
from connectors.shopify.client import AdminClient
from connectors.shopify.listings import (
    Listing,
    default_location,
    parse_listings,
    parse_variants,
)
from connectors.shopify.mapping import decode_order, order_notification, refund_notification
from connectors.shopify.signing import parse_timestamp, webhook_signature_valid
from connectors.shopify.stock import DEFAULT_CAS_ATTEMPTS, AvailableCounts

DEFAULT_TIMEOUT_S: Final = 5.0
DEFAULT_WEBHOOK_WINDOW_S: Final = 4.25 * 3600
"""Shopify redelivers the original delivery for up to 4 hours after a failure."""
FUTURE_SKEW_S: Final = 60.0
"""How far ahead of our clock a delivery's trigger time may be: clocks drift."""
WRITE_MODES: Final = frozenset({WriteMode.COMPARE_AND_SWAP})

log = logging.getLogger(__name__)


class ShopifyConnector:
    """One Shopify shop (one channel): pushes ``available`` counts, decodes order webhooks.

    Options (all text, as in ``stockcast.toml``):

    - ``base_url`` (required): the shop's admin origin, ``https://<shop>.myshopify.com``.
    - ``access_token`` (required): the offline Admin API token (``X-Shopify-Access-Token``).
    - ``client_secret`` (required): the app's client secret; it signs the webhooks.
    - ``shop_id`` (required): the shop domain, as ``X-Shopify-Shop-Domain`` sends it.
    - ``location_id``: the location whose counts the room sells from; required unless
      every listing names its own.
    - ``api_version``: default ``2026-04`` (the first with ``changeFromQuantity``).
    - ``timeout_s``: total per HTTP call, default 5.
    - ``webhook_window_s``: how long after ``X-Shopify-Triggered-At`` a delivery is still
      accepted, default 4 h 15 min: Shopify redelivers the original for up to 4 hours
      after our ingress failed to answer, and refusing those would lose the orders. A
      replay inside the window changes nothing: its events are answered as duplicates.
    - ``cas_attempts``: sets per write before giving up as transient, default 5.
    - ``variants``: ``<variant_id>=<sku>`` pairs, comma-separated, for order lines whose
      seller SKU is not stockcast's code.

    ``listings`` maps a stockcast SKU to ``<inventory_item_id>[@<location_id>]``.
    """

    platform: ClassVar[str] = "shopify"

    def __init__(
        self,
        *,
        base_url: str,
        access_token: str,
        client_secret: str,
        shop_id: str,
        listings: Mapping[str, Listing],
        api_version: str = api.API_VERSION,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        webhook_window_s: float = DEFAULT_WEBHOOK_WINDOW_S,
        cas_attempts: int = DEFAULT_CAS_ATTEMPTS,
        sku_by_variant: Mapping[str, str] | None = None,
    ) -> None:
        if not math.isfinite(timeout_s) or timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if not math.isfinite(webhook_window_s) or webhook_window_s <= 0:
            raise ValueError(f"webhook_window_s must be positive, got {webhook_window_s}")
        self._client = AdminClient(
            base_url, access_token, api_version=api_version, timeout_s=timeout_s
        )
        self._counts = AvailableCounts(self._client, cas_attempts=cas_attempts)
        self._client_secret = client_secret
        self._shop_id = shop_id
        self._listings = dict(listings)
        self._webhook_window_s = webhook_window_s
        self._sku_by_variant = dict(sku_by_variant or {})

    @classmethod
    def from_options(
        cls, options: Mapping[str, str], listings: Mapping[str, str] | None = None
    ) -> Self:
        required = {
            name: _required(options, name)
            for name in ("base_url", "access_token", "client_secret", "shop_id")
        }
        parsed = parse_listings(listings or {}, default_location(options.get("location_id")))
        return cls(
            **required,
            listings=parsed,
            api_version=options.get("api_version") or api.API_VERSION,
            timeout_s=number_option(options, "timeout_s", DEFAULT_TIMEOUT_S),
            webhook_window_s=number_option(options, "webhook_window_s", DEFAULT_WEBHOOK_WINDOW_S),
            cas_attempts=int(number_option(options, "cas_attempts", DEFAULT_CAS_ATTEMPTS)),
            sku_by_variant=parse_variants(options.get("variants")),
        )

    def __repr__(self) -> str:
        return f"ShopifyConnector(shop_id={self._shop_id!r}, listings={len(self._listings)})"

    @property
    def shop_id(self) -> str:
        return self._shop_id

    @property
    def write_modes(self) -> frozenset[WriteMode]:
        return WRITE_MODES

    async def start(self) -> None:
        await self._client.start()

    async def close(self) -> None:
        await self._client.close()

    async def push_stock(self, update: StockUpdate, mode: WriteMode) -> PushResult:
        if mode not in WRITE_MODES:
            raise Rejected(f"shopify writes only {WriteMode.COMPARE_AND_SWAP}, not {mode}")
        listing = self._listings.get(update.sku)
        if listing is None:
            raise Rejected(f"SKU {update.sku!r} has no listing on shop {self._shop_id}")
        result = await self._counts.compare_and_swap(update, listing)
        log.debug("wrote %s/%s v%d: %s", update.channel, update.sku, update.version, result)
        return result

    async def read_stock(self, channel: str, skus: Sequence[str]) -> Mapping[str, int]:
        listed = {sku: self._listings[sku] for sku in skus if sku in self._listings}
        counts = await self._counts.read(listed.values())
        return {sku: counts[listing] for sku, listing in listed.items() if listing in counts}

    def verify(self, request: InboundRequest, now_s: float) -> None:
        signature = request.headers.get(api.HMAC_HEADER)
        if not signature:
            raise SignatureInvalid("shopify delivery carries no X-Shopify-Hmac-Sha256")
        if not webhook_signature_valid(self._client_secret, request.body, signature):
            raise SignatureInvalid("shopify delivery signature does not match its body")
        triggered = request.headers.get(api.TRIGGERED_AT_HEADER)
        if not triggered:
            raise ReplayRejected("shopify delivery carries no X-Shopify-Triggered-At")
        try:
            triggered_s = parse_timestamp(triggered)
        except ValueError:
            raise ReplayRejected("shopify delivery has an unreadable trigger time") from None
        age_s = now_s - triggered_s
        if age_s > self._webhook_window_s or -age_s > FUTURE_SKEW_S:
            raise ReplayRejected(
                f"shopify delivery triggered {age_s:.0f} s from now, outside the window"
            )

    def decode(self, request: InboundRequest) -> list[Notification]:
        topic = request.headers.get(api.TOPIC_HEADER, "")
        if topic not in api.ORDER_TOPICS and topic != api.REFUNDS_CREATE:
            return []
        notification_id = request.headers.get(api.WEBHOOK_ID_HEADER)
        shop_id = request.headers.get(api.SHOP_DOMAIN_HEADER)
        if not notification_id or not shop_id:
            raise MalformedPayload("shopify delivery without a webhook id or shop domain")
        try:
            payload = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            raise MalformedPayload(f"shopify {topic} delivery is not JSON") from None
        if not isinstance(payload, dict):
            raise MalformedPayload(f"shopify {topic} delivery is not a JSON object")
        if topic == api.REFUNDS_CREATE:
            return [refund_notification(payload, notification_id=notification_id, shop_id=shop_id)]
        return [
            order_notification(
                payload, self._sku_by_variant, notification_id=notification_id, shop_id=shop_id
            )
        ]

    def acknowledge(self, accepted: bool) -> InboundResponse:
        """Shopify reads only the status: any 2xx is received, anything else redelivered."""
        return InboundResponse(200 if accepted else 500, b"", "text/plain")

    async def hydrate(self, notification: Notification) -> PlatformOrder:
        if notification.order is not None:
            return notification.order
        order = await self._client.get_order(notification.order_id)
        return decode_order(order, self._sku_by_variant)


def _required(options: Mapping[str, str], name: str) -> str:
    value = options.get(name)
    if not value:
        raise ValueError(f"the shopify connector needs the option {name!r}")
    return value
