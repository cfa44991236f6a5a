"""A mock TikTok Shop (Partner API 202309) serving one shop on 127.0.0.1.

It plays the platform as its documents describe it: the same paths and query parameters,
the request signature over the raw body, the -300/+30 s timestamp window, the access-token
header and shop cipher, the common error codes, 429 + ``36009002`` throttling with
``Retry-After``, absolute per-warehouse inventory updates with partial failures in
``data.errors``, thin signed webhooks, and order detail without quantities (one line item
per unit). Its own counters move when simulated buyers buy, so a connector that writes
blindly over them is caught.

The gateway lives in ``mock_gate``, the endpoints in ``mock_endpoints``, the books in
``mock_state`` and deliveries in ``mock_webhooks``; this module wires them to aiohttp and
offers the test-facing API.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Final

import orjson
from aiohttp import web

from connectors.base import InboundRequest
from connectors.mock_support import LocalServer, WebhookSender
from connectors.tiktok_shop import api
from connectors.tiktok_shop.mock_endpoints import (
    ApiError,
    JsonObject,
    json_body,
    order_detail,
    search_inventory,
    search_returns,
    update_inventory,
)
from connectors.tiktok_shop.mock_gate import AppCredentials, Gate, MockStats, Refusal
from connectors.tiktok_shop.mock_state import ShopBooks
from connectors.tiktok_shop.mock_webhooks import delivery

DEFAULT_SHOP_ID: Final = "7495000000000000001"
_UPDATE_PATTERN: Final = re.compile(r"^/product/202309/products/[^/]+/inventory/update$")
_KNOWN_PATHS: Final = frozenset(
    {api.INVENTORY_SEARCH_PATH, api.ORDERS_PATH, api.RETURNS_SEARCH_PATH}
)

Endpoint = Callable[[web.Request, bytes], JsonObject]


class TikTokShopMock:
    """One shop of one app. Start it, list SKUs, hand ``connector_options()`` and
    ``listings()`` to the connector, then buy, pay and cancel as the shop's buyers.

    ``clock`` is the platform's wall clock (Unix seconds) for timestamp windows and event
    times; ``rate_limit_per_s`` turns on a token bucket over every API call.
    """

    def __init__(
        self,
        shop_id: str = DEFAULT_SHOP_ID,
        app_key: str = "6abcmock01",
        app_secret: str = "mock-app-secret-0d9f",
        access_token: str = "ROW_mockaccesstoken_5c21",
        shop_cipher: str = "ROW_mockshopcipher_AAAB",
        rate_limit_per_s: float | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stats = MockStats()
        self._credentials = AppCredentials(app_key, app_secret, access_token, shop_cipher)
        self._clock = clock
        self._books = ShopBooks(shop_id, clock)
        self._gate = Gate(
            self._credentials, self.stats, clock=clock, rate_limit_per_s=rate_limit_per_s
        )
        self._webhooks = WebhookSender(self.stats.deliveries)
        self._request_ids = itertools.count(1)
        self._lost_write_answers = 0
        self._server = LocalServer(self._app)

    def __repr__(self) -> str:
        return f"TikTokShopMock(shop_id={self.shop_id!r}, url={self._server.url_if_started!r})"

    @property
    def shop_id(self) -> str:
        return self._books.shop_id

    @property
    def url(self) -> str:
        return self._server.url

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> str:
        """Serve on 127.0.0.1 at a free port; returns the base URL."""
        return await self._server.start()

    async def stop(self) -> None:
        """Stop serving and cancel deliveries still pending; idempotent."""
        await self._webhooks.close()
        await self._server.stop()

    # --- the merchant -----------------------------------------------------------------

    def add_listing(
        self,
        sku: str,
        displayed: int = 0,
        *,
        product_id: str | None = None,
        warehouse_id: str | None = None,
    ) -> str:
        """List ``sku`` (its seller SKU) with ``displayed`` units; returns its reference.

        A new product unless ``product_id`` names one listed before; the shop's default
        warehouse unless ``warehouse_id`` names another (then updates must name it too).
        """
        listing = self._books.add_listing(
            sku, displayed, product_id=product_id, warehouse_id=warehouse_id
        )
        return str(listing.reference)

    def listings(self) -> dict[str, str]:
        return {sku: str(each.reference) for sku, each in self._books.listings.items()}

    def connector_options(self) -> dict[str, str]:
        creds = self._credentials
        return {
            "base_url": self.url,
            "app_key": creds.app_key,
            "app_secret": creds.app_secret,
            "access_token": creds.access_token,
            "shop_cipher": creds.shop_cipher,
            "shop_id": self.shop_id,
        }

    def displayed(self, sku: str) -> int:
        return self._books.listing(sku).available

    def committed(self, sku: str) -> int:
        return self._books.listing(sku).committed

    def set_displayed(self, sku: str, quantity: int) -> None:
        if not 0 <= quantity <= api.MAX_QUANTITY:
            raise ValueError(f"quantity must be 0..{api.MAX_QUANTITY}, got {quantity}")
        self._books.listing(sku).available = quantity

    def set_live(self, sku: str, live: bool) -> None:
        """Deactivate (or reactivate) a SKU: the platform refuses updates of SKUs not live."""
        self._books.listing(sku).live = live

    # --- buyers -----------------------------------------------------------------------

    def buy(self, sku: str, quantity: int, *, buyer: str, region: str | None) -> str | None:
        order = self._books.buy(sku, quantity, buyer, region)
        if order is None:
            return None
        self._announce(order.id)
        return order.id

    def pay(self, order_id: str) -> None:
        self._books.pay(order_id)
        self._announce(order_id)

    def cancel(self, order_id: str) -> None:
        """Units go back on sale; a paid order announces the cancellation, then CANCELLED."""
        before = len(self._books.orders[order_id].events) if order_id in self._books.orders else 0
        self._books.cancel(order_id)
        self._announce(order_id, since=before)

    def ship(self, order_id: str) -> None:
        self._books.ship(order_id)
        self._announce(order_id)

    def deliver(self, order_id: str) -> None:
        self._books.deliver(order_id)
        self._announce(order_id)

    def refund(self, order_id: str) -> None:
        """A completed returnless refund of the whole (shipped) order."""
        self._books.refund(order_id)
        self._announce(order_id)

    def order_status(self, order_id: str) -> str:
        return self._books.orders[order_id].status

    # --- webhooks ---------------------------------------------------------------------

    def webhook(self, order_id: str, now_s: float) -> InboundRequest:
        """The signed delivery of the order's latest event, sent at ``now_s``."""
        return self.webhooks(order_id, now_s)[-1]

    def webhooks(self, order_id: str, now_s: float) -> list[InboundRequest]:
        """Every event of the order so far, oldest first, as deliveries sent at ``now_s``."""
        events = self._books.orders[order_id].events
        return [delivery(self._credentials, self.shop_id, e, math.floor(now_s)) for e in events]

    def deliver_to(self, url: str | None) -> None:
        """From now on POST every new event to ``url`` (None stops), redelivering on
        anything but 2xx; needs a running event loop."""
        self._webhooks.deliver_to(url)

    async def drain_deliveries(self) -> None:
        """Wait until every delivery so far was acknowledged or given up."""
        await self._webhooks.drain()

    def _announce(self, order_id: str, since: int | None = None) -> None:
        events = self._books.orders[order_id].events
        now = math.floor(self._clock())
        for event in events[len(events) - 1 if since is None else since :]:
            request = delivery(self._credentials, self.shop_id, event, now)
            self._webhooks.send(request.headers, request.body)

    # --- faults -----------------------------------------------------------------------

    def throttle_next(
        self, calls: int, retry_after_s: float = 1.0, *, endpoint: str | None = None
    ) -> None:
        """The next ``calls`` API calls (to ``endpoint`` only, a route of ``api``, when
        given) get 429 + ``36009002`` with ``Retry-After``."""
        self._gate.throttle_next(calls, retry_after_s, endpoint=endpoint)

    def fail_next(self, calls: int) -> None:
        """The next ``calls`` API calls get 500 + ``36009003`` (internal error)."""
        self._gate.fail_next(calls)

    def lose_next_write_answers(self, writes: int) -> None:
        """The next ``writes`` inventory updates land, but their caller hears a timeout
        (``36009007``): the case a retry must not apply twice."""
        self._lost_write_answers += writes

    # --- HTTP -------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application()
        routes = [
            ("POST", api.INVENTORY_SEARCH_PATH, self._search_inventory),
            ("POST", api.INVENTORY_UPDATE_ROUTE, self._update_inventory),
            ("GET", api.ORDERS_PATH, self._order_detail),
            ("POST", api.RETURNS_SEARCH_PATH, self._search_returns),
        ]
        for method, route, endpoint in routes:
            app.router.add_route(method, route, self._handler(route, endpoint))
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        return app

    def _handler(
        self, route: str, endpoint: Endpoint
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            self.stats.requests += 1
            body = await request.read()
            refusal = self._gate.check(
                method=request.method,
                endpoint=route,
                path=request.path,
                query=dict(request.query),
                headers={name.lower(): value for name, value in request.headers.items()},
                body=body,
                is_write=bool(_UPDATE_PATTERN.match(request.path)),
            )
            if refusal is not None:
                return self._refused(refusal)
            try:
                data = endpoint(request, body)
            except ApiError as error:
                return self._answer(error.code, error.message, status=error.http_status)
            return self._answer(api.SUCCESS, "Success", data)

        return handle

    def _search_inventory(self, request: web.Request, body: bytes) -> JsonObject:
        return search_inventory(self._books, json_body(body), self.stats)

    def _update_inventory(self, request: web.Request, body: bytes) -> JsonObject:
        product_id = request.match_info["product_id"]
        data = update_inventory(self._books, product_id, json_body(body), self.stats)
        if self._lost_write_answers:
            self._lost_write_answers -= 1
            raise ApiError(api.REQUEST_TIMEOUT, "Request timeout.", http_status=408)
        return data

    def _order_detail(self, request: web.Request, body: bytes) -> JsonObject:
        return order_detail(self._books, request.query.get("ids"), self.stats)

    def _search_returns(self, request: web.Request, body: bytes) -> JsonObject:
        return search_returns(self._books, json_body(body), self.stats)

    async def _unknown(self, request: web.Request) -> web.Response:
        self.stats.requests += 1
        if request.path in _KNOWN_PATHS or _UPDATE_PATTERN.match(request.path):
            return self._answer(api.INVALID_METHOD, "Invalid method.", status=405)
        return self._answer(api.INVALID_PATH, "Invalid path.", status=404)

    def _refused(self, refusal: Refusal) -> web.Response:
        headers = {}
        if refusal.retry_after_s is not None:
            # Retry-After counts whole seconds; round up so a client never comes back early.
            headers["Retry-After"] = str(max(1, math.ceil(refusal.retry_after_s)))
        return self._answer(
            refusal.code, refusal.message, status=refusal.http_status, headers=headers
        )

    def _answer(
        self,
        code: int,
        message: str,
        data: JsonObject | None = None,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        envelope: JsonObject = {
            "code": code,
            "message": message,
            "request_id": f"2024{next(self._request_ids):016d}",
        }
        if data is not None:
            envelope["data"] = data
        return web.Response(
            body=orjson.dumps(envelope),
            status=status,
            headers=headers,
            content_type="application/json",
        )
