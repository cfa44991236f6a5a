"""The live room the ``stockcast`` bench system pushes to: a local HTTP server speaking
the simulator platform's stock API, which notes when each write arrives.

The worker reaches it as it reaches any platform, through the ``simulator`` connector
loaded from the registry (write mode ``delta``). The bench may not import a platform's
package (the import rules), so the few routes that connector calls are spoken here:

- ``GET  /rooms/{channel}/skus/{sku}/stock`` -> ``{"displayed", "version"}``;
- ``POST /rooms/{channel}/skus/{sku}/stock/adjustments`` with ``{"delta",
  "idempotency_key"}`` -> ``{"applied", "displayed"}``, clamped at 0, once per key;
- ``PUT  /rooms/{channel}/skus/{sku}/stock`` with ``{"quantity", "version", …}`` (and
  ``"expected"`` for compare-and-set) -> ``{"applied", "displayed"}``, or 409.

A write is noted with the newest quota version it carries (a PUT's ``version``; for an
adjustment, the ``<first>-<last>`` range the publisher puts at the end of its
idempotency key) and ``time.perf_counter()`` on arrival, the clock the load generator
stamps its lines with. Like a platform, the room takes units off display when a buyer
orders (``sell``), so the publisher's read-backs find it at or below its quota.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from connectors.mock_support import serve_app

STOCK_ROUTE = "/rooms/{channel}/skus/{sku}/stock"
ADJUSTMENTS_ROUTE = STOCK_ROUTE + "/adjustments"

WriteSeen = Callable[[str, int, float], None]
"""``seen(sku, version, at)``: a write carrying quota versions up to ``version`` arrived at
``at`` (``perf_counter`` seconds)."""


@dataclass(slots=True)
class _Listing:
    displayed: int = 0
    version: int | None = None


class BenchRoom:
    """One room, ``channel``; ``start()`` serves it on 127.0.0.1 at a free port."""

    def __init__(self, channel: str, clock: Callable[[], float]) -> None:
        self.channel = channel
        self._clock = clock
        self._listings: dict[str, _Listing] = {}
        self._adjustments: dict[tuple[str, str], tuple[int, int]] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.on_write: WriteSeen = lambda sku, version, at: None
        self.unreadable_keys: list[str] = []
        """Idempotency keys whose versions could not be read (the publisher changed them)."""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get(STOCK_ROUTE, self._get)
        app.router.add_put(STOCK_ROUTE, self._put)
        app.router.add_post(ADJUSTMENTS_ROUTE, self._adjust)
        self._runner, self.url = await serve_app(app)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def sell(self, sku: str, units: int) -> None:
        """A buyer ordered ``units``: the display drops, never below 0."""
        listing = self._listings.setdefault(sku, _Listing())
        listing.displayed = max(0, listing.displayed - units)

    def forget(self, skus: set[str]) -> None:
        """Drop the listings and adjustment keys of ``skus`` (a finished run's)."""
        for sku in skus:
            self._listings.pop(sku, None)
        self._adjustments = {k: v for k, v in self._adjustments.items() if k[0] not in skus}

    async def _get(self, request: web.Request) -> web.Response:
        if request.match_info["channel"] != self.channel:
            return _unknown_channel(request)
        listing = self._listings.get(request.match_info["sku"], _Listing())
        return _json({"displayed": listing.displayed, "version": listing.version})

    async def _put(self, request: web.Request) -> web.Response:
        arrived = self._clock()
        if request.match_info["channel"] != self.channel:
            return _unknown_channel(request)
        sku = request.match_info["sku"]
        body = orjson.loads(await request.read())
        listing = self._listings.setdefault(sku, _Listing())
        expected = body.get("expected")
        if expected is not None and expected != listing.displayed:
            return _json({"displayed": listing.displayed, "version": listing.version}, 409)
        version = int(body["version"])
        applied = listing.version is None or version > listing.version
        if applied:
            listing.displayed, listing.version = int(body["quantity"]), version
        self.on_write(sku, version, arrived)
        return _json({"applied": applied, "displayed": listing.displayed})

    async def _adjust(self, request: web.Request) -> web.Response:
        arrived = self._clock()
        if request.match_info["channel"] != self.channel:
            return _unknown_channel(request)
        sku = request.match_info["sku"]
        body = orjson.loads(await request.read())
        key, delta = str(body["idempotency_key"]), int(body["delta"])
        answer = self._adjustments.get((sku, key))
        if answer is None:
            listing = self._listings.setdefault(sku, _Listing())
            applied = max(delta, -listing.displayed)
            listing.displayed += applied
            answer = self._adjustments[sku, key] = (applied, listing.displayed)
        version = last_version(key)
        if version is None:
            self.unreadable_keys.append(key)
        else:
            self.on_write(sku, version, arrived)
        return _json({"applied": answer[0], "displayed": answer[1]})


def last_version(idempotency_key: str) -> int | None:
    """The newest version of a publisher write, from its key ``<channel>:<sku>:<a>-<b>``."""
    _, _, versions = idempotency_key.rpartition(":")
    _, _, last = versions.partition("-")
    return int(last) if last.isdigit() else None


def _unknown_channel(request: web.Request) -> web.Response:
    return _json({"error": f"unknown channel {request.match_info['channel']!r}"}, 404)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
