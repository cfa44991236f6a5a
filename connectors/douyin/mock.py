"""A mock of the Douyin 抖店 open platform for one shop, served on 127.0.0.1.

It behaves as the platform's published documents describe (see ``mock_gateway``,
``mock_handlers``, ``mock_state``): the same paths and signed query, the ±600 s timestamp
window, canonical ``param_json``, the documented error answers on HTTP 200, in-band
throttling, and its own stock counter per listing that simulated buyers take from.
Pushes are signed JSON arrays of thin messages, delivered on request (``webhook``) or to a
URL in the background (``deliver_to``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Final

from aiohttp import web

from connectors.base import InboundRequest
from connectors.douyin import api
from connectors.douyin.api import ApiError
from connectors.douyin.mock_delivery import (
    DELIVERY_TIMEOUT,
    acknowledged,
    inbound,
    signed_headers,
)
from connectors.douyin.mock_gateway import Gateway, Identity, MockStats
from connectors.douyin.mock_handlers import HANDLERS, Refused
from connectors.douyin.mock_payloads import envelope, messages, push_body
from connectors.douyin.mock_state import MockOrder, MockShop
from connectors.mock_support import LocalServer, WebhookSender

DEFAULT_SHOP_ID: Final = "73521460"
DEFAULT_APP_KEY: Final = "7152316418109823511"
DEFAULT_APP_SECRET: Final = "mock-douyin-app-secret-1f0c9a"
DEFAULT_ACCESS_TOKEN: Final = "mock-douyin-access-token-6b2e7d"


class DouyinMock:
    """One shop on a mock Douyin platform; see the module docstring.

    ``throttle_error`` is the answer a throttled call gets: the documented "系统繁忙"
    (50002 / ``isv.business-failed:2010401``) by default, since the platform's
    flow-control code is not published [U]. ``webhook_sign_method`` is ``md5`` (the
    documented ``event-sign``) or ``hmac-sha256`` [U]. ``clock`` is the platform's clock
    (Unix seconds), for its timestamp window and its order times.
    """

    def __init__(
        self,
        *,
        shop_id: str = DEFAULT_SHOP_ID,
        app_key: str = DEFAULT_APP_KEY,
        app_secret: str = DEFAULT_APP_SECRET,
        access_token: str = DEFAULT_ACCESS_TOKEN,
        rate_limit_per_s: float | None = None,
        throttle_error: ApiError = api.SYSTEM_BUSY,
        webhook_sign_method: str = api.SIGN_METHOD_MD5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not shop_id.isdigit():
            raise ValueError(f"a douyin shop id is a decimal number, got {shop_id!r}")
        self._identity = Identity(app_key, app_secret, access_token)
        self._shop_id = shop_id
        self._clock = clock
        self._webhook_sign_method = webhook_sign_method
        self.stats = MockStats()
        self._shop = MockShop(int(shop_id), clock)
        self._gateway = Gateway(
            self._identity,
            self.stats,
            throttle_error=throttle_error,
            rate_limit_per_s=rate_limit_per_s,
            clock=clock,
        )
        self._server = LocalServer(self._app)
        self._webhooks = WebhookSender(
            self.stats.deliveries, timeout=DELIVERY_TIMEOUT, acknowledged=acknowledged
        )

    def __repr__(self) -> str:
        return f"DouyinMock(shop_id={self._shop_id!r}, url={self._server.url_if_started!r})"

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> str:
        """Serve on 127.0.0.1 at a free port; returns the base URL."""
        return await self._server.start()

    async def stop(self) -> None:
        """Stop serving and cancel pending deliveries; idempotent."""
        await self._webhooks.close()
        await self._server.stop()

    @property
    def url(self) -> str:
        return self._server.url

    # --- listings and counters ------------------------------------------------------

    def add_listing(self, sku: str, displayed: int = 0, *, product: str | None = None) -> str:
        """List ``sku`` (seller SKU code = ``sku``); returns ``"<product_id>:<sku_id>"``.
        Listings naming the same ``product`` are SKUs of one product."""
        return self._shop.add_listing(sku, displayed, product=product).reference

    def listings(self) -> dict[str, str]:
        return {listing.sku: listing.reference for listing in self._shop.listings()}

    def connector_options(self) -> dict[str, str]:
        return {
            "base_url": self.url,
            "app_key": self._identity.app_key,
            "app_secret": self._identity.app_secret,
            "access_token": self._identity.access_token,
            "shop_id": self._shop_id,
        }

    def displayed(self, sku: str) -> int:
        return self._shop.listing(sku).stock_num

    def set_displayed(self, sku: str, quantity: int) -> None:
        """The merchant's back office sets the counter."""
        self._shop.set_stock(self._shop.listing(sku), quantity)

    def executed(self, idempotent_id: str) -> int | None:
        """What the write under ``idempotent_id`` applied (the platform never says)."""
        return self._shop.executed(idempotent_id)

    # --- buyers ---------------------------------------------------------------------

    def buy(self, sku: str, quantity: int, *, buyer: str, region: str | None) -> str | None:
        """A buyer orders: the counter drops at once; None (nothing taken) when short."""
        return self.buy_lines([(sku, quantity)], buyer=buyer, region=region)

    def buy_lines(
        self, items: Sequence[tuple[str, int]], *, buyer: str, region: str | None
    ) -> str | None:
        """One order of several SKUs; None (nothing taken) when any is short."""
        order = self._shop.place(items, buyer=buyer, region=region)
        if order is None:
            return None
        self._pushed(order)
        return str(order.order_id)

    def pay(self, order_id: str) -> None:
        self._pushed(self._shop.pay(order_id))

    def cancel(self, order_id: str) -> None:
        """Cancelled before or after payment; the units go back on display."""
        self._pushed(self._shop.cancel(order_id))

    def refund(self, order_id: str) -> None:
        """A paid order refunded before shipping; the units go back on display [U]."""
        self._pushed(self._shop.refund(order_id))

    # --- pushes ---------------------------------------------------------------------

    def webhook(self, order_id: str, now_s: float) -> InboundRequest:
        """The signed push for the order's latest change, as if it happened at ``now_s``
        (the push's messages carry their time in their data, and nowhere else)."""
        order = self._shop.order(order_id)
        if order is None:
            raise KeyError(f"no order {order_id!r} on the mock")
        body = self._push(order, int(now_s))
        return inbound(self._signed(body), body, now_s)

    def deliver_to(self, url: str | None) -> None:
        """From now on every buy, payment, cancellation and refund is pushed to ``url``
        (``None``: no longer pushed). Deliveries already under way go on."""
        self._webhooks.deliver_to(url)

    async def settle_deliveries(self) -> None:
        """Wait until every push so far is acknowledged or abandoned."""
        await self._webhooks.drain()

    def _pushed(self, order: MockOrder) -> None:
        if self._webhooks.url is not None:
            body = self._push(order, order.changes[-1].at_s)
            self._webhooks.send(self._signed(body), body)

    def _push(self, order: MockOrder, at_s: int) -> bytes:
        return push_body(messages(order, order.changes[-1], self._shop.shop_id, at_s))

    def _signed(self, body: bytes) -> dict[str, str]:
        identity = self._identity
        return signed_headers(
            identity.app_key, identity.app_secret, body, self._webhook_sign_method
        )

    # --- faults ---------------------------------------------------------------------

    def throttle_next(self, calls: int) -> None:
        """The next ``calls`` API calls answer the throttle shape."""
        self._gateway.inject("throttle", calls)

    def fail_next(self, calls: int, *, in_band: bool = False) -> None:
        """The next ``calls`` API calls fail: HTTP 503, or in-band 20000
        ``isp.service-error`` with ``in_band``."""
        self._gateway.inject("fail_in_band" if in_band else "fail", calls)

    # --- the HTTP side --------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application()
        for method in HANDLERS:
            app.router.add_post(api.path_of(method), self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        method = api.method_of(request.path)
        self.stats.calls[method] += 1
        body = await request.read()
        fault = self._gateway.take_fault()
        if fault == "fail":
            self.stats.failed += 1
            return web.Response(status=503, text="Service Unavailable")
        if fault == "fail_in_band":
            self.stats.failed += 1
            return self._answer(error=api.SERVICE_ERROR)
        if fault == "throttle":
            return self._answer(error=self._gateway.throttle())
        checked = self._gateway.check(method, request.query, body)
        if isinstance(checked, ApiError):
            return self._answer(error=checked)
        try:
            data = HANDLERS[method](self._shop, checked, self.stats, self._identity.app_key)
        except Refused as refused:
            return self._answer(error=refused.error)
        return self._answer(data)

    def _answer(self, data: object = None, error: ApiError | None = None) -> web.Response:
        return web.Response(
            body=envelope(self._gateway.log_id(), data, error), content_type="application/json"
        )
