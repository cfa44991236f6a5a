"""The simulated platforms' HTTP side: stockcast pushes counts here, people look here.

``PUT /rooms/{channel}/skus/{sku}/stock`` applies a push to a room's display;
``GET /rooms`` shows every room. ``Faults`` scripts 429/5xx answers so the publisher's
retry and back-off paths can be exercised against a real server.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import orjson
from aiohttp import web

from connectors.simulator.rooms import LiveRoom
from connectors.simulator.stock_api import InvalidPush, decode_push

STOCK_ROUTE = "/rooms/{channel}/skus/{sku}/stock"
ROOMS_ROUTE = "/rooms"


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted answer: the status to send instead of handling the push."""

    status: int
    retry_after: str | None = None


class Faults:
    """A queue of scripted failures, consumed one per ``PUT``, before any routing check."""

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()

    def inject(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` pushes with ``status`` (and ``Retry-After`` if given)."""
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
    app.router.add_put(STOCK_ROUTE, _put_stock)
    app.router.add_get(ROOMS_ROUTE, _get_rooms)
    return app


async def _put_stock(request: web.Request) -> web.Response:
    fault = request.app[FAULTS_KEY].take()
    if fault is not None:
        headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
        return _json({"error": f"injected fault {fault.status}"}, fault.status, headers)
    channel = request.match_info["channel"]
    room = request.app[ROOMS_KEY].get(channel)
    if room is None:
        return _json({"error": f"unknown channel {channel!r}"}, 404)
    try:
        push = decode_push(await request.read())
    except InvalidPush as exc:
        return _json({"error": str(exc)}, 400)
    applied = room.apply_push(request.match_info["sku"], push.quantity, push.version)
    return _json({"applied": applied})


async def _get_rooms(request: web.Request) -> web.Response:
    rooms = request.app[ROOMS_KEY]
    return _json({"rooms": {channel: room.snapshot() for channel, room in rooms.items()}})


def _json(
    payload: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload), status=status, headers=headers, content_type="application/json"
    )


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
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    if ":" in bound_host:
        bound_host = f"[{bound_host}]"  # an IPv6 literal needs brackets in a URL
    return RunningServer(url=f"http://{bound_host}:{bound_port}", runner=runner)
