"""``GET /live/{channel}``: what each live room may sell now, pushed to overlays and host
screens as Server-Sent Events, or as a WebSocket when the request asks to upgrade.

The ``LiveHub`` keeps the newest count per (channel, SKU); ``update`` hands a change to
every subscriber of the channel without awaiting any of them, so one slow screen never
holds up the publisher or the other screens. Each subscriber keeps at most one pending
change per SKU (a newer one replaces it), so a stalled client costs memory bounded by
the room's SKU count and still ends on the newest value once it catches up. A
subscriber starts from a snapshot of the room, taken together with its registration, so
no change falls between the two; a reconnecting client simply starts over from one.

Beside the count, a message carries the SKU's pace for the host (``LivePace``): units
per minute, seconds to sell-out and the next restock's arrival, each null until known.
``update_pace`` sends them without a count change, and only when they change as shown
(two significant digits), so a hot SKU whose pace moves a little with every sale does
not flood the room's screens.

The hub lives on the event loop and is not thread-safe. Call ``close`` when the server
shuts down: every stream ends, and aiohttp's graceful shutdown does not wait on them.
Without ``handler_cancellation`` aiohttp does not tell a handler that its SSE client
left, so such a subscriber is noticed at its next change or heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Final, Self

import orjson
from aiohttp import HttpVersion11, web
from prometheus_client import Gauge

from sync_worker.metrics import Metrics

LIVE_ROUTE: Final = "/live/{channel}"
HEARTBEAT_S: Final = 15.0
_SSE_HEARTBEAT: Final = b": heartbeat\n\n"
_DIRECT_BUFFER_LIMIT: Final = 64 * 1024
"""Bytes a subscriber may have unsent before its changes queue (and coalesce) instead."""
_SSE_HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # proxies such as nginx must not hold events back
}


@dataclass(frozen=True, slots=True)
class LivePace:
    """How fast a SKU sells and when it runs out or comes back, as screens show it;
    None where not known. Build it with ``shown`` so equal displays compare equal."""

    velocity_per_min: float | None = None
    eta_s: int | None = None
    """Seconds to sell-out from when it was sent."""
    restock_eta_ms: int | None = None
    """When the next announced batch arrives, Unix epoch milliseconds."""

    @classmethod
    def shown(
        cls, velocity_per_min: float | None, eta_s: float | None, restock_eta_ms: int | None
    ) -> LivePace:
        """Rounded to two significant digits, to 0.1 unit/min and whole seconds at the
        finest: enough for a viewer, and a pace moving 1% per sale changes nothing.
        An infinite ETA (nothing selling) shows as None."""
        velocity = None if velocity_per_min is None else _two_digits(velocity_per_min, -1)
        eta = None if eta_s is None or not math.isfinite(eta_s) else int(_two_digits(eta_s, 0))
        return cls(velocity, eta, restock_eta_ms)


def _two_digits(value: float, finest_exponent: int) -> float:
    if value <= 0:
        return 0.0
    return round(value, -max(finest_exponent, math.floor(math.log10(value)) - 1))


@dataclass(frozen=True, slots=True)
class LiveStock:
    """What a room may sell of a SKU; ``version`` grows with every change of the SKU's
    quotas (a pace-only change keeps it, and ``event_time_ms`` is the count's)."""

    channel: str
    sku: str
    quantity: int
    version: int
    event_time_ms: int
    pace: LivePace = LivePace()

    def view(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "sku": self.sku,
            "quantity": self.quantity,
            "version": self.version,
            "event_time_ms": self.event_time_ms,
            "velocity_per_min": self.pace.velocity_per_min,
            "eta_s": self.pace.eta_s,
            "restock_eta_ms": self.pace.restock_eta_ms,
        }


class HubClosed(Exception):
    """The hub was closed: the server is shutting down."""


class Subscription:
    """One subscriber of one room: ``snapshot`` as it was on subscribing, then changes.

    Invariant: changes hold at most one entry per SKU, the newest offered.
    """

    def __init__(
        self,
        channel: str,
        snapshot: tuple[LiveStock, ...],
        on_end: Callable[[Subscription], None],
    ) -> None:
        self.channel = channel
        self.snapshot = snapshot
        self._on_end = on_end
        self._pending: dict[str, LiveStock] = {}
        self._wakeup = asyncio.Event()
        self._ended = False
        self.direct: Callable[[LiveStock], bool] | None = None

    def offer(self, stock: LiveStock) -> None:
        """Queue a change; never blocks. A pending change of the same SKU is replaced.

        With ``direct`` set and nothing pending, the change is written at once instead:
        one call per subscriber, no task to wake, which is what keeps a room of a
        thousand screens within milliseconds. ``direct`` says False when it cannot write
        now (a slow reader's buffer is full), and the change queues as usual."""
        if self._ended:
            return
        if not self._pending and self.direct is not None and self.direct(stock):
            return
        self._pending.pop(stock.sku, None)  # re-inserted last: changes keep arrival order
        self._pending[stock.sku] = stock
        self._wakeup.set()

    async def changes(self, idle_s: float | None = None) -> list[LiveStock] | None:
        """Every change pending, waiting for one if there is none; ``[]`` after ``idle_s``
        seconds without any (time for a heartbeat); None once the subscription ended."""
        if not self._pending and not self._ended:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle_s):
                    await self._wakeup.wait()
        self._wakeup.clear()
        if self._ended:
            return None
        batch = list(self._pending.values())
        self._pending.clear()
        return batch

    @property
    def pending(self) -> int:
        return len(self._pending)

    def end(self) -> None:
        """Stop receiving changes and wake the reader; idempotent."""
        if not self._ended:
            self._ended = True
            self._pending.clear()
            self._wakeup.set()
            self._on_end(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.end()


Seed = Callable[[str], Iterable[LiveStock]]
"""What a room shows now as the worker's books hold it, for a room no change reached yet."""


class LiveHub:
    """The newest count of every (channel, SKU), and the subscribers of each channel.

    Changes arrive as they happen; a room's first subscriber after a restart gets
    ``seed(channel)`` first, so a quiet SKU does not look empty until it next changes.
    """

    def __init__(self, seed: Seed | None = None) -> None:
        self._rooms: dict[str, dict[str, LiveStock]] = {}
        # Apart from the counts: a pace may come before the SKU's first count.
        self._paces: dict[str, dict[str, LivePace]] = {}
        self._subscribers: dict[str, set[Subscription]] = {}
        self._closed = False
        self._seed = seed
        self._seeded: set[str] = set()

    def update(
        self, channel: str, sku: str, quantity: int, version: int, event_time_ms: int
    ) -> bool:
        """Record a change and fan it out; False (ignored) unless ``version`` is newer
        than the one held: redeliveries and reordered changes never move a count back."""
        if self._closed:
            return False
        held = self._rooms.get(channel, {}).get(sku)
        if held is not None and version <= held.version:
            return False
        pace = self._paces.get(channel, {}).get(sku, LivePace())
        self._publish(LiveStock(channel, sku, quantity, version, event_time_ms, pace))
        return True

    def update_pace(
        self,
        channel: str,
        sku: str,
        *,
        velocity_per_min: float | None,
        eta_s: float | None,
        restock_eta_ms: int | None = None,
    ) -> bool:
        """Record the SKU's pace in the room, as ``LivePace.shown`` rounds it, and fan it
        out with the count held; False (nothing sent) when it shows the same as before.
        Before the room's first count of the SKU it is kept, and rides with that count."""
        if self._closed:
            return False
        pace = LivePace.shown(velocity_per_min, eta_s, restock_eta_ms)
        paces = self._paces.setdefault(channel, {})
        if paces.get(sku, LivePace()) == pace:
            return False
        paces[sku] = pace
        held = self._rooms.get(channel, {}).get(sku)
        if held is not None:
            self._publish(replace(held, pace=pace))
        return True

    def _publish(self, stock: LiveStock) -> None:
        self._rooms.setdefault(stock.channel, {})[stock.sku] = stock
        for subscription in self._subscribers.get(stock.channel, ()):
            subscription.offer(stock)

    def snapshot(self, channel: str) -> tuple[LiveStock, ...]:
        """Every SKU of the room, by SKU."""
        room = self._rooms.get(channel, {})
        return tuple(room[sku] for sku in sorted(room))

    def subscribe(self, channel: str) -> Subscription:
        """A subscription starting from the room's snapshot; raises ``HubClosed`` once the
        hub is closed. End it (``end`` or ``with``) when the subscriber leaves."""
        if self._closed:
            raise HubClosed("the live stream is shutting down")
        if self._seed is not None and channel not in self._seeded:
            self._seeded.add(channel)
            for stock in self._seed(channel):  # older than any change already held: ignored
                self.update(
                    stock.channel, stock.sku, stock.quantity, stock.version, stock.event_time_ms
                )
        subscription = Subscription(channel, self.snapshot(channel), self._forget)
        self._subscribers.setdefault(channel, set()).add(subscription)
        return subscription

    def subscriber_count(self, channel: str) -> int:
        return len(self._subscribers.get(channel, ()))

    def close(self) -> None:
        """End every subscription; later subscriptions are refused. Idempotent."""
        self._closed = True
        for subscriptions in list(self._subscribers.values()):
            for subscription in list(subscriptions):
                subscription.end()

    def _forget(self, subscription: Subscription) -> None:
        subscriptions = self._subscribers.get(subscription.channel)
        if subscriptions is not None:
            subscriptions.discard(subscription)
            if not subscriptions:
                del self._subscribers[subscription.channel]


def live_routes(
    hub: LiveHub,
    metrics: Metrics,
    *,
    heartbeat_s: float = HEARTBEAT_S,
    channels: Collection[str] | None = None,
) -> list[web.RouteDef]:
    """The stream route. With ``channels``, any other channel is a 404 (a mistyped room
    would otherwise wait forever for changes that never come)."""

    async def stream(request: web.Request) -> web.StreamResponse:
        channel = request.match_info["channel"]
        if channels is not None and channel not in channels:
            raise web.HTTPNotFound(text=f"no live room {channel!r}")
        websocket = web.WebSocketResponse(heartbeat=heartbeat_s)
        protocol = "websocket" if websocket.can_prepare(request).ok else "sse"
        try:
            subscription = hub.subscribe(channel)
        except HubClosed:
            raise web.HTTPServiceUnavailable(text="shutting down") from None
        gauge = metrics.live_subscribers.labels(protocol=protocol)
        with subscription, _counted(gauge):
            if protocol == "websocket":
                return await _serve_websocket(request, websocket, subscription)
            return await _serve_sse(request, subscription, heartbeat_s)

    return [web.get(LIVE_ROUTE, stream)]


@contextlib.contextmanager
def _counted(gauge: Gauge) -> Iterator[None]:
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


async def _serve_sse(
    request: web.Request, subscription: Subscription, heartbeat_s: float
) -> web.StreamResponse:
    response = web.StreamResponse(headers=_SSE_HEADERS)
    with contextlib.suppress(ConnectionError):  # the subscriber left
        await response.prepare(request)
        snapshot = {"channel": subscription.channel, "skus": _views(subscription.snapshot)}
        await response.write(_sse_event("snapshot", snapshot))
        subscription.direct = _direct_sse(request)
        while (batch := await subscription.changes(heartbeat_s)) is not None:
            if not batch:
                await response.write(_SSE_HEARTBEAT)
                continue
            await response.write(b"".join(_sse_change(stock) for stock in batch))
    return response


def _direct_sse(request: web.Request) -> Callable[[LiveStock], bool]:
    """Writes a change straight to the connection, framed as the response is (chunked on
    HTTP/1.1), while its send buffer is short; False otherwise."""
    transport = request.transport
    chunked = request.version >= HttpVersion11

    def write(stock: LiveStock) -> bool:
        if transport is None or transport.is_closing():
            return False
        if transport.get_write_buffer_size() > _DIRECT_BUFFER_LIMIT:
            return False
        data = _sse_change(stock)
        transport.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        return True

    return write


@functools.lru_cache(maxsize=4096)
def _sse_change(stock: LiveStock) -> bytes:
    """Encoded once per change, however many subscribers it goes to."""
    return _sse_event("stock", stock.view(), event_id=stock.version)


@functools.lru_cache(maxsize=4096)
def _websocket_change(stock: LiveStock) -> str:
    return orjson.dumps({"type": "stock", **stock.view()}).decode()


def _sse_event(name: str, data: dict[str, Any], *, event_id: int | None = None) -> bytes:
    # orjson never writes a raw newline, so the data fits one ``data:`` line.
    head = f"event: {name}\n" + ("" if event_id is None else f"id: {event_id}\n")
    return head.encode() + b"data: " + orjson.dumps(data) + b"\n\n"


async def _serve_websocket(
    request: web.Request, websocket: web.WebSocketResponse, subscription: Subscription
) -> web.WebSocketResponse:
    await websocket.prepare(request)
    reader = asyncio.create_task(_read_until_closed(websocket, subscription))
    try:
        with contextlib.suppress(ConnectionError):
            snapshot = {
                "type": "snapshot",
                "channel": subscription.channel,
                "skus": _views(subscription.snapshot),
            }
            await websocket.send_str(orjson.dumps(snapshot).decode())
            while (batch := await subscription.changes()) is not None:
                for stock in batch:
                    await websocket.send_str(_websocket_change(stock))
        await websocket.close()
        await reader
    finally:
        reader.cancel()
    return websocket


async def _read_until_closed(websocket: web.WebSocketResponse, subscription: Subscription) -> None:
    """Clients send nothing we use; reading notices their close (and answers pings)."""
    async for _ in websocket:
        pass
    subscription.end()


def _views(stocks: tuple[LiveStock, ...]) -> list[dict[str, Any]]:
    return [stock.view() for stock in stocks]
