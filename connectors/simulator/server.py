"""The simulated platforms' HTTP side: stockcast writes counts here, people look here.

The stock routes are described in ``stock_api``: ``GET``/``PUT`` a listing's count (the
PUT outright or compare-and-set) and ``POST`` an adjustment by a delta. ``GET /rooms``
shows every room. ``Faults`` scripts 429/5xx answers to the write routes so the
publisher's retry and back-off paths can be exercised against a real server.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import orjson
from aiohttp import web

from connectors.mock_support import serve_app
from connectors.simulator.rooms import CasOutcome, LiveRoom
from connectors.simulator.stock_api import (
    AdjustmentAnswer,
    InvalidBody,
    PushAnswer,
    StockCount,
    decode_adjustment,
    decode_push,
    encode_adjustment_answer,
    encode_count,
    encode_push_answer,
)

STOCK_ROUTE = "/rooms/{channel}/skus/{sku}/stock"
ADJUSTMENTS_ROUTE = STOCK_ROUTE + "/adjustments"
ROOMS_ROUTE = "/rooms"


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted answer: the status to send instead of handling the write."""

    status: int
    retry_after: str | None = None


class Faults:
    """Scripted failures, consumed one per write (PUT or POST), before any routing check."""

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()

    def inject(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` writes with ``status`` (and ``Retry-After`` if given)."""
        self._queue.extend([Fault(status, retry_after)] * times)

    def take(self) -> Fault | None:
        return self._queue.popleft() if self._queue else None

    def __len__(self) -> int:
        return len(self._queue)


ROOMS_KEY = web.AppKey[Mapping[str, LiveRoom]]("rooms")
FAULTS_KEY = web.AppKey("faults", Faults)


def create_app(rooms: Mapping[str, LiveRoom], *, faults: Faults | None = None) -> web.Application:
    """The simulator app over ``rooms`` (by channel id); the rooms are shared, not copied."""
    app = web.Application()
    app[ROOMS_KEY] = rooms
    app[FAULTS_KEY] = faults if faults is not None else Faults()
    app.router.add_get(STOCK_ROUTE, _get_stock)
    app.router.add_put(STOCK_ROUTE, _put_stock)
    app.router.add_post(ADJUSTMENTS_ROUTE, _post_adjustment)
    app.router.add_get(ROOMS_ROUTE, _get_rooms)
    return app


class _Refused(Exception):
    """Ends a request early with a ready answer (fault, unknown room, bad body)."""

    def __init__(self, response: web.Response) -> None:
        self.response = response


def _room(request: web.Request) -> LiveRoom:
    channel = request.match_info["channel"]
    room = request.app[ROOMS_KEY].get(channel)
    if room is None:
        raise _Refused(_error(f"unknown channel {channel!r}", 404))
    return room


def _writable_room(request: web.Request) -> LiveRoom:
    """The room a write goes to, unless a scripted fault answers first."""
    fault = request.app[FAULTS_KEY].take()
    if fault is not None:
        headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
        raise _Refused(_error(f"injected fault {fault.status}", fault.status, headers))
    return _room(request)


def _count(room: LiveRoom, sku: str) -> bytes:
    return encode_count(StockCount(room.displayed(sku), room.last_version(sku)))


async def _get_stock(request: web.Request) -> web.Response:
    try:
        room = _room(request)
    except _Refused as refused:
        return refused.response
    return _json(_count(room, request.match_info["sku"]))


async def _put_stock(request: web.Request) -> web.Response:
    sku = request.match_info["sku"]
    try:
        room = _writable_room(request)
        push = decode_push(await request.read())
    except _Refused as refused:
        return refused.response
    except InvalidBody as exc:
        return _error(str(exc), 400)
    if push.expected is None:
        applied = room.apply_push(sku, push.quantity, push.version)
    else:
        outcome = room.compare_and_set(sku, push.expected, push.quantity, push.version)
        if outcome is CasOutcome.CONFLICT:
            return _json(_count(room, sku), 409)
        applied = outcome is CasOutcome.APPLIED
    return _json(encode_push_answer(PushAnswer(applied, room.displayed(sku))))


async def _post_adjustment(request: web.Request) -> web.Response:
    try:
        room = _writable_room(request)
        adjustment = decode_adjustment(await request.read())
    except _Refused as refused:
        return refused.response
    except InvalidBody as exc:
        return _error(str(exc), 400)
    applied, displayed = room.apply_delta(
        request.match_info["sku"], adjustment.delta, adjustment.idempotency_key
    )
    return _json(encode_adjustment_answer(AdjustmentAnswer(applied, displayed)))


async def _get_rooms(request: web.Request) -> web.Response:
    rooms = request.app[ROOMS_KEY]
    snapshot = {"rooms": {channel: room.snapshot() for channel, room in rooms.items()}}
    return _json(orjson.dumps(snapshot))


def _error(message: str, status: int, headers: Mapping[str, str] | None = None) -> web.Response:
    return _json(orjson.dumps({"error": message}), status, headers)


def _json(body: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A started simulator; ``url`` is the bound base URL, e.g. ``http://127.0.0.1:41234``."""

    url: str
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


async def start_server(
    app: web.Application, *, host: str = "127.0.0.1", port: int = 0
) -> RunningServer:
    """Serve ``app`` on ``host:port``; port 0 picks a free port, read it from ``url``."""
    runner, url = await serve_app(app, host=host, port=port)
    return RunningServer(url=url, runner=runner)
