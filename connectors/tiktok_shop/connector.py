"""The TikTok Shop connector: stock out through the Partner API 202309, orders in by webhook.

TikTok Shop's only stock write is an absolute per-warehouse set, and the platform keeps
selling while a write travels. So a push reads the count, sets read + delta, and
remembers that target per idempotency key: a retry resends the same target instead of
reading again, and a write that already landed changes nothing the second time (a write
the platform throttled never landed, so its retry reads afresh). Only units
sold within that one round trip are at risk, and drift repair finds them.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Self, TypeVar

from connectors.base import (
    InboundRequest,
    InboundResponse,
    MalformedPayload,
    Notification,
    PlatformOrder,
    PushResult,
    RateLimited,
    Rejected,
    ReplayRejected,
    SignatureInvalid,
    StockUpdate,
    TransientError,
    WriteMode,
)
from connectors.http_support import number_option
from connectors.tiktok_shop import api, mapping
from connectors.tiktok_shop.client import Credentials, PartnerApi
from connectors.tiktok_shop.signing import webhook_signature_valid

DEFAULT_TIMEOUT_S: Final = 5.0
DEFAULT_REMEMBERED_WRITES: Final = 10_000
DEFAULT_WEBHOOK_WINDOW_S: Final = float(api.WEBHOOK_REDELIVERY_S)
"""TikTok redelivers a webhook with its original timestamp for up to 72 hours."""
REQUIRED_OPTIONS: Final = (
    "base_url",
    "app_key",
    "app_secret",
    "access_token",
    "shop_cipher",
    "shop_id",
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Target:
    """What one write found and what it sets; resent unchanged on a retry."""

    found: int
    target: int


class TikTokShopConnector:
    """One TikTok Shop shop: pushes counts (``Connector``) and takes its order webhooks
    (``InboundConnector``).

    Options (strings, from ``stockcast.toml``): ``base_url`` (the API host, e.g.
    ``https://open-api.tiktokglobalshop.com``), ``app_key``, ``app_secret``,
    ``access_token``, ``shop_cipher`` and ``shop_id``, all required; ``timeout_s`` (total per
    request, default 5); ``remembered_writes`` (how many writes' targets are kept for their
    retries, default 10000); ``webhook_window_s`` (how long after its ``timestamp`` a
    delivery is still accepted, default 72 h: the platform redelivers the original for up
    to 72 hours after our ingress failed to answer, and refusing those would lose the
    orders; a replay inside the window changes nothing, its events are answered as
    duplicates). A delivery may be stamped up to 30 s ahead of our clock.

    Listings: stockcast SKU -> ``"<product_id>:<sku_id>[@<warehouse_id>]"``; without a
    warehouse the SKU lives in the shop's single default warehouse.
    """

    platform: ClassVar[str] = "tiktok_shop"

    def __init__(
        self,
        *,
        base_url: str,
        credentials: Credentials,
        shop_id: str,
        listings: Mapping[str, api.ListingRef],
        timeout_s: float = DEFAULT_TIMEOUT_S,
        remembered_writes: int = DEFAULT_REMEMBERED_WRITES,
        webhook_window_s: float = DEFAULT_WEBHOOK_WINDOW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if not math.isfinite(webhook_window_s) or webhook_window_s <= 0:
            raise ValueError(f"webhook_window_s must be positive, got {webhook_window_s}")
        if remembered_writes < 1:
            raise ValueError(f"remembered_writes must be at least 1, got {remembered_writes}")
        self._credentials = credentials
        self._shop_id = shop_id
        self._listings = dict(listings)
        self._skus_by_platform_sku = _reverse(self._listings)
        self._api = PartnerApi(base_url, credentials, timeout_s=timeout_s, clock=clock)
        self._targets: OrderedDict[str, _Target] = OrderedDict()
        self._remembered_writes = remembered_writes
        self._webhook_window_s = webhook_window_s

    @classmethod
    def from_options(
        cls,
        options: Mapping[str, str],
        listings: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> Self:
        """``clock`` (Unix seconds) dates every request's signature; tests move it."""
        missing = [name for name in REQUIRED_OPTIONS if not options.get(name, "").strip()]
        if missing:
            raise ValueError(f"the tiktok_shop connector needs the option(s): {', '.join(missing)}")
        refs = {}
        for sku, text in (listings or {}).items():
            try:
                refs[sku] = api.ListingRef.parse(text)
            except ValueError as exc:
                raise ValueError(f"listing of SKU {sku!r}: {exc}") from None
        return cls(
            base_url=options["base_url"].strip(),
            credentials=Credentials(
                app_key=options["app_key"].strip(),
                app_secret=options["app_secret"].strip(),
                access_token=options["access_token"].strip(),
                shop_cipher=options["shop_cipher"].strip(),
            ),
            shop_id=options["shop_id"].strip(),
            listings=refs,
            timeout_s=number_option(options, "timeout_s", DEFAULT_TIMEOUT_S),
            remembered_writes=int(
                number_option(options, "remembered_writes", DEFAULT_REMEMBERED_WRITES)
            ),
            webhook_window_s=number_option(options, "webhook_window_s", DEFAULT_WEBHOOK_WINDOW_S),
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"TikTokShopConnector(shop_id={self._shop_id!r}, listings={len(self._listings)})"

    @property
    def write_modes(self) -> frozenset[WriteMode]:
        return frozenset({WriteMode.ABSOLUTE})

    @property
    def shop_id(self) -> str:
        return self._shop_id

    async def start(self) -> None:
        await self._api.start()

    async def close(self) -> None:
        await self._api.close()

    # --- outbound -----------------------------------------------------------------------

    async def push_stock(self, update: StockUpdate, mode: WriteMode) -> PushResult:
        if mode not in self.write_modes:
            raise Rejected(f"TikTok Shop offers only absolute writes, not {mode}")
        listing = self._listings.get(update.sku)
        if listing is None:
            raise Rejected(f"SKU {update.sku!r} has no TikTok Shop listing")
        planned = self._targets.get(update.idempotency_key)
        if planned is None:
            found = await self._count(update.sku, listing)
            planned = _Target(found, min(max(0, found + update.delta), api.MAX_QUANTITY))
            self._remember(update.idempotency_key, planned)
        else:
            self._targets.move_to_end(update.idempotency_key)
        try:
            await self._set(listing, planned.target)
        except RateLimited:
            # Throttled at the gate, so surely not applied: the retry may read afresh and
            # keep the units sold during the back-off.
            self._targets.pop(update.idempotency_key, None)
            raise
        log.debug(
            "set %s v%d to %d (found %d, delta %d)",
            update.sku,
            update.version,
            planned.target,
            planned.found,
            update.delta,
        )
        return PushResult(applied=planned.target - planned.found, displayed=planned.target)

    async def read_stock(self, channel: str, skus: Sequence[str]) -> Mapping[str, int]:
        """Batched by up to 600 SKU ids; a listed SKU the platform does not know is left out
        (and logged), so one bad listing does not blind drift repair to the others."""
        listed = {sku: self._listings[sku] for sku in dict.fromkeys(skus) if sku in self._listings}
        refs = list(listed.items())
        counts: dict[str, int] = {}
        for start in range(0, len(refs), api.MAX_SEARCH_SKU_IDS):
            chunk = refs[start : start + api.MAX_SEARCH_SKU_IDS]
            inventory = await self._inventory([ref.sku_id for _, ref in chunk])
            for sku, ref in chunk:
                found = inventory.get(ref.sku_id)
                count = None if found is None else found.available(ref.warehouse_id)
                if count is None:
                    log.warning("TikTok Shop does not know the listing of %s (%s)", sku, ref)
                else:
                    counts[sku] = count
        return counts

    def _remember(self, key: str, target: _Target) -> None:
        self._targets[key] = target
        while len(self._targets) > self._remembered_writes:
            self._targets.popitem(last=False)

    async def _count(self, sku: str, listing: api.ListingRef) -> int:
        found = (await self._inventory([listing.sku_id])).get(listing.sku_id)
        count = None if found is None else found.available(listing.warehouse_id)
        if count is None:
            raise Rejected(f"TikTok Shop does not know the listing of {sku!r} ({listing})")
        return count

    async def _inventory(self, sku_ids: list[str]) -> dict[str, mapping.SkuInventory]:
        data = await self._api.call("POST", api.INVENTORY_SEARCH_PATH, body={"sku_ids": sku_ids})
        return _decoded(mapping.decode_inventory, data)

    async def _set(self, listing: api.ListingRef, quantity: int) -> None:
        stock: dict[str, Any] = {"quantity": quantity}
        if listing.warehouse_id is not None:
            stock["warehouse_id"] = listing.warehouse_id
        body = {"skus": [{"id": listing.sku_id, "inventory": [stock]}]}
        path = api.inventory_update_path(listing.product_id)
        data = await self._api.call("POST", path, body=body)
        errors = [
            error
            for error in _decoded(mapping.decode_update_errors, data)
            if error.sku_id in (None, listing.sku_id)
        ]
        if errors:
            first = errors[0]
            message = (
                f"{path}: SKU {listing.sku_id} not updated: code {first.code}: {first.message}"
            )
            if first.code in api.RETRYABLE_CODES:
                raise TransientError(message)
            raise Rejected(message)

    # --- inbound ------------------------------------------------------------------------

    def verify(self, request: InboundRequest, now_s: float) -> None:
        signature = request.headers.get(api.WEBHOOK_SIGNATURE_HEADER)
        if not signature:
            raise SignatureInvalid("TikTok Shop delivery without an Authorization signature")
        creds = self._credentials
        if not webhook_signature_valid(creds.app_key, creds.app_secret, request.body, signature):
            raise SignatureInvalid("TikTok Shop delivery signature does not match its body")
        timestamp = mapping.delivery_timestamp(request.body)
        if timestamp is None:
            raise ReplayRejected("TikTok Shop delivery carries no timestamp to check")
        earliest = now_s - self._webhook_window_s
        latest = now_s + api.TIMESTAMP_FUTURE_WINDOW_S
        if not earliest <= timestamp <= latest:
            raise ReplayRejected(
                f"TikTok Shop delivery sent at {timestamp}, outside {earliest:.0f}..{latest:.0f}"
            )

    def decode(self, request: InboundRequest) -> list[Notification]:
        return mapping.decode_notifications(request.body)

    def acknowledge(self, accepted: bool) -> InboundResponse:
        """TikTok Shop reads only the status: 200 takes the delivery, anything else makes
        it redeliver. The body is not looked at, so it stays empty."""
        if accepted:
            return InboundResponse(status=200, body=b"", content_type="text/plain")
        return InboundResponse(status=503, body=b"", content_type="text/plain")

    async def hydrate(self, notification: Notification) -> PlatformOrder:
        """Get Order Detail for the order; for an order already shipped, Search Returns
        too, since a completed refund changes nothing in the order itself."""
        if notification.shop_id != self._shop_id:
            raise Rejected(
                f"notification for shop {notification.shop_id} reached shop {self._shop_id}"
            )
        order_id = notification.order_id
        data = await self._api.call("GET", api.ORDERS_PATH, params={"ids": order_id})
        order = _decoded(mapping.decode_orders, data).get(order_id)
        if order is None:
            raise Rejected(f"TikTok Shop does not know order {order_id}")
        refunded: frozenset[str] = frozenset()
        if order.get("status") in api.SHIPPED_STATUSES:
            returns = await self._api.call(
                "POST",
                api.RETURNS_SEARCH_PATH,
                params={"page_size": "50"},
                body={"order_ids": [order_id]},
            )
            refunded = _decoded(mapping.decode_refunded_lines, returns)
        try:
            return mapping.decode_order(order, self._skus_by_platform_sku, refunded)
        except mapping.UnknownStatus as exc:
            raise MalformedPayload(f"order {order_id}: {exc}") from None
        except mapping.InvalidAnswer as exc:
            raise TransientError(f"order {order_id} is unreadable: {exc}") from None


def _decoded(decode: Callable[[Mapping[str, Any]], _T], data: Mapping[str, Any]) -> _T:
    """Decode an answer's data; a garbled one may be a glitch, and every call is safe to
    repeat (a write resends its remembered target)."""
    try:
        return decode(data)
    except mapping.InvalidAnswer as exc:
        raise TransientError(f"TikTok Shop answered an unreadable body: {exc}") from None


def _reverse(listings: Mapping[str, api.ListingRef]) -> dict[str, str]:
    """Platform SKU id -> stockcast SKU; one platform SKU serves one stockcast SKU, or an
    order line could not say which SKU it sold."""
    reverse: dict[str, str] = {}
    for sku, ref in listings.items():
        other = reverse.setdefault(ref.sku_id, sku)
        if other != sku:
            raise ValueError(f"SKUs {other!r} and {sku!r} share the TikTok SKU id {ref.sku_id}")
    return reverse
