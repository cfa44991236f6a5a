"""The Douyin 抖店 connector: stock out through ``sku.syncStock``, orders in through pushes.

Registered as the ``douyin`` entry point. Every failure leaves as a ``ConnectorError``
subclass; secrets never appear in its messages (see ``client``).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Final, Self, TypeVar

from connectors.base import (
    ConnectorError,
    InboundRequest,
    InboundResponse,
    MalformedPayload,
    Notification,
    PlatformOrder,
    PushResult,
    Rejected,
    StockUpdate,
    TransientError,
    WriteMode,
)
from connectors.douyin import mapping, push
from connectors.douyin.answers import Answer, error_for
from connectors.douyin.api import (
    ORDER_DETAIL,
    SKU_DETAIL,
    SKU_LIST,
    SYNC_STOCK,
    WEBHOOK_ACK,
    WEBHOOK_NACK,
)
from connectors.douyin.client import ApiClient
from connectors.douyin.mapping import Listing, ShapeError
from connectors.douyin.options import SUPPORTED_WRITE_MODES, DouyinOptions

DRAIN_ATTEMPTS: Final = 5
"""Reads-then-drains per write; each miss means buyers took units in between."""
REMEMBERED_TARGETS: Final = 4096
"""ABSOLUTE targets kept for retries of the same update (oldest forgotten first)."""

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class DouyinConnector:
    """Writes one shop's stock and reads its orders on the Douyin open platform.

    Options (strings, from ``stockcast.toml``): ``base_url``, ``app_key``, ``app_secret``,
    ``access_token``, ``shop_id`` (all required); ``timeout_s`` (per request, default 5);
    ``write_modes`` (comma-separated, default ``delta``; ``absolute`` may be added: it sets
    a fresh read plus the delta with ``incremental=false``); ``sign_method``
    (``hmac-sha256``, the default, or ``md5``); ``throttle_wait_s`` (the back-off reported
    on in-band throttling, which carries no hint; default 1); ``webhook_window_s`` (how
    long after its newest message time a push is still taken, default 72 h: the platform's
    redelivery horizon is unpublished, and refusing a late redelivery would lose the
    order while a replay inside the window is answered as duplicates). Listings: stockcast
    SKU -> ``"<product_id>:<sku_id>"``, both decimal ids, kept as text (they exceed 2**53).

    DELTA writes are ``incremental=true`` with an ``idempotent_id`` derived from the
    update's idempotency key, so a retry applies once. A reduction the platform refuses
    with 库存不足 (it never clamps) becomes a reduction by exactly what is on display now,
    under a second derived id: see ``_drain`` for what is reported when answers get lost.
    """

    platform: ClassVar[str] = "douyin"

    def __init__(
        self,
        options: DouyinOptions,
        listings: Mapping[str, Listing],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        unsupported = options.write_modes - SUPPORTED_WRITE_MODES
        if not options.write_modes or unsupported:
            raise ValueError("douyin writes in delta and/or absolute mode only")
        self._options = options
        self._api = ApiClient(options, clock)
        self._listings = dict(listings)
        self._skus_by_listing = {
            (listing.product_id, listing.sku_id): sku for sku, listing in self._listings.items()
        }
        self._absolute_targets: OrderedDict[str, tuple[int, int]] = OrderedDict()

    @classmethod
    def from_options(
        cls,
        options: Mapping[str, str],
        listings: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> Self:
        """``clock`` (Unix seconds) stamps requests; tests skew it."""
        return cls(
            DouyinOptions.parse(options), mapping.parse_listings(listings or {}), clock=clock
        )

    def __repr__(self) -> str:
        return f"DouyinConnector(shop_id={self.shop_id!r}, listings={len(self._listings)})"

    @property
    def write_modes(self) -> frozenset[WriteMode]:
        return self._options.write_modes

    @property
    def shop_id(self) -> str:
        return self._options.shop_id

    async def start(self) -> None:
        await self._api.start()

    async def close(self) -> None:
        await self._api.close()

    # --- outbound -------------------------------------------------------------------

    async def push_stock(self, update: StockUpdate, mode: WriteMode) -> PushResult:
        if mode not in self._options.write_modes:
            raise Rejected(f"douyin connector is not configured for {mode} writes")
        listing = self._listings.get(update.sku)
        if listing is None:
            raise Rejected(f"SKU {update.sku!r} has no douyin listing")
        if mode is WriteMode.ABSOLUTE:
            result = await self._set(update, listing)
        else:
            result = await self._adjust(update, listing)
        log.debug(
            "wrote %s/%s v%d %s: %s", update.channel, update.sku, update.version, mode, result
        )
        return result

    async def read_stock(self, channel: str, skus: Sequence[str]) -> Mapping[str, int]:
        """One ``sku.list`` per product: every listed SKU of a product in one call."""
        by_product: dict[str, list[tuple[str, Listing]]] = {}
        for sku in dict.fromkeys(skus):
            listing = self._listings.get(sku)
            if listing is not None:
                by_product.setdefault(listing.product_id, []).append((sku, listing))
        counts: dict[str, int] = {}
        for product_id, listed in by_product.items():
            answer = await self._call(SKU_LIST, mapping.sku_list_params(product_id))
            stocks = _shaped(mapping.stocks_of_list, answer.data, SKU_LIST)
            for sku, listing in listed:
                if listing.sku_id in stocks:
                    counts[sku] = stocks[listing.sku_id]
                else:
                    log.warning(
                        "douyin product %s has no SKU %s (%s)", product_id, listing.sku_id, sku
                    )
        return counts

    async def _adjust(self, update: StockUpdate, listing: Listing) -> PushResult:
        if update.delta == 0:
            return PushResult(applied=0, displayed=None)
        params = mapping.sync_stock_params(
            listing,
            stock_num=update.delta,
            incremental=True,
            idempotent=mapping.idempotent_id(update.idempotency_key),
        )
        answer = await self._api.call(SYNC_STOCK, params)
        # A duplicate id means a write under it was executed ("操作已执行") on an earlier
        # try; an incremental write is all or nothing (a refused one is not executed), so
        # it applied the whole delta.
        if answer.ok or answer.duplicate:
            return PushResult(applied=update.delta, displayed=None)
        if update.delta < 0 and answer.stock_short:
            return await self._drain(update, listing)
        raise self._error(answer, SYNC_STOCK)

    async def _drain(self, update: StockUpdate, listing: Listing) -> PushResult:
        """Take off display what is left, never more than the update asked for.

        The drain has its own id, derived from the update's key, so a retry cannot drain
        twice. If that id proves a drain landed on an earlier try whose answer was lost,
        its size is unknown: it took at least one unit (a drain is only sent for one or
        more) and fewer than asked, and reporting more than was taken would free units
        still on display for other channels. So it reports the one unit it can prove.
        When nothing is on display now, nothing is sent and 0 is reported, even if an
        earlier lost drain took some: claiming less keeps units held, the safe side.
        """
        drain_id = mapping.drain_idempotent_id(update.idempotency_key)
        for _ in range(DRAIN_ATTEMPTS):
            displayed = await self._count(listing)
            take = min(displayed, -update.delta)
            if take <= 0:
                return PushResult(applied=0, displayed=displayed)
            params = mapping.sync_stock_params(
                listing, stock_num=-take, incremental=True, idempotent=drain_id
            )
            answer = await self._api.call(SYNC_STOCK, params)
            if answer.ok:
                return PushResult(applied=-take, displayed=None)
            if answer.duplicate:
                return PushResult(applied=-1, displayed=None)
            if not answer.stock_short:  # short again: buyers took more since the read
                raise self._error(answer, SYNC_STOCK)
        raise TransientError(f"douyin stock of {update.sku!r} kept selling out under a drain")

    async def _set(self, update: StockUpdate, listing: Listing) -> PushResult:
        """ABSOLUTE: a fresh read plus the delta, set with ``incremental=false``; a retry of
        the same key resends the same count instead of reading again."""
        remembered = self._absolute_targets.get(update.idempotency_key)
        if remembered is None:
            displayed = await self._count(listing)
            remembered = (displayed, max(0, displayed + update.delta))
            self._absolute_targets[update.idempotency_key] = remembered
            while len(self._absolute_targets) > REMEMBERED_TARGETS:
                self._absolute_targets.popitem(last=False)
        before, target = remembered
        params = mapping.sync_stock_params(listing, stock_num=target, incremental=False)
        answer = await self._api.call(SYNC_STOCK, params)
        if not answer.ok:
            raise self._error(answer, SYNC_STOCK)
        return PushResult(applied=target - before, displayed=target)

    async def _count(self, listing: Listing) -> int:
        answer = await self._call(SKU_DETAIL, mapping.sku_detail_params(listing))
        return _shaped(mapping.stock_of_detail, answer.data, SKU_DETAIL)

    async def _call(self, method: str, params: Mapping[str, Any]) -> Answer:
        answer = await self._api.call(method, params)
        if not answer.ok:
            raise self._error(answer, method)
        return answer

    def _error(self, answer: Answer, method: str) -> ConnectorError:
        error = error_for(answer, method, self._options.throttle_wait_s)
        return error if error is not None else TransientError(f"douyin {method}: no error")

    # --- inbound --------------------------------------------------------------------

    def verify(self, request: InboundRequest, now_s: float) -> None:
        """``event-sign`` over the raw body, then the age of the newest message in it: more
        than ``webhook_window_s`` (default 72 hours) before ``now_s`` is a replay (see
        ``push.verify_push``)."""
        options = self._options
        push.verify_push(
            options.app_key,
            options.app_secret,
            request,
            now_s,
            window_s=options.webhook_window_s,
        )

    def decode(self, request: InboundRequest) -> list[Notification]:
        try:
            return push.notifications(push.parse_push(request.body), self.shop_id)
        except ShapeError as exc:
            raise MalformedPayload(f"douyin push: {exc}") from None

    def acknowledge(self, accepted: bool) -> InboundResponse:
        if accepted:
            return InboundResponse(200, WEBHOOK_ACK)
        return InboundResponse(500, WEBHOOK_NACK)

    async def hydrate(self, notification: Notification) -> PlatformOrder:
        answer = await self._call(ORDER_DETAIL, mapping.order_detail_params(notification.order_id))
        return _shaped(
            lambda data: mapping.order_of_detail(data, self._sku_at), answer.data, ORDER_DETAIL
        )

    def _sku_at(self, product_id: str | None, sku_id: str) -> str | None:
        if product_id is not None:
            return self._skus_by_listing.get((product_id, sku_id))
        matches = [sku for (_, listed), sku in self._skus_by_listing.items() if listed == sku_id]
        return matches[0] if len(matches) == 1 else None


def _shaped(read: Callable[[Any], _T], data: Any, method: str) -> _T:
    """A successful answer's data, read; a misshapen one may be a glitch, so transient."""
    try:
        return read(data)
    except ShapeError as exc:
        raise TransientError(f"douyin {method} answered an unexpected shape: {exc}") from None
