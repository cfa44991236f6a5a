"""What every platform mock shares: serving on a local port, and delivering webhooks.

Part of the SDK (a flat module, not a platform): it imports only aiohttp and the
standard library. A mock keeps what is its platform's own (signing, the envelope, what
counts as an acknowledgement) and hands the mechanics here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import aiohttp
from aiohttp import web

DEFAULT_MAX_TRIES: Final = 8
DEFAULT_BASE_DELAY_S: Final = 0.05
DEFAULT_DELIVERY_TIMEOUT: Final = aiohttp.ClientTimeout(total=5.0)

log = logging.getLogger(__name__)


async def serve_app(
    app: web.Application, *, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``host:port`` (0: a free port); the runner and the bound base URL.

    Nothing is left running when the site fails to start.
    """
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
    return runner, f"http://{bound_host}:{bound_port}"


class LocalServer:
    """One mock's HTTP side on 127.0.0.1 at a free port.

    ``start`` builds the application with ``make_app`` and serves it; starting a started
    server returns its URL again. ``stop`` is idempotent, and a stopped server may start
    again (at another port).
    """

    def __init__(self, make_app: Callable[[], web.Application]) -> None:
        self._make_app = make_app
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The base URL; only while serving."""
        if self._url is None:
            raise RuntimeError("the mock is not started")
        return self._url

    @property
    def url_if_started(self) -> str | None:
        return self._url

    async def start(self) -> str:
        """Serve; returns the base URL, e.g. ``http://127.0.0.1:41234``."""
        if self._url is None:
            self._runner, self._url = await serve_app(self._make_app())
        return self._url

    async def stop(self) -> None:
        runner, self._runner, self._url = self._runner, None, None
        if runner is not None:
            await runner.cleanup()


@dataclass(slots=True)
class DeliveryCounts:
    """What a ``WebhookSender`` did; tests read these."""

    attempts: int = 0
    """POSTs made, first tries and retries alike."""
    retries: int = 0
    """POSTs that were a retry of an unacknowledged delivery."""
    acknowledged: int = 0
    """Deliveries the receiver acknowledged."""
    abandoned: int = 0
    """Deliveries given up after the last try."""


def acknowledged_by_status(status: int, body: bytes) -> bool:
    """The common rule: any 2xx answer acknowledges, whatever its body."""
    return 200 <= status < 300


class WebhookSender:
    """POSTs signed deliveries to one URL in background tasks, retrying until acknowledged.

    A delivery is tried ``max_tries`` times in all, the same bytes each time, waiting
    ``base_delay_s * 2**n`` before the n-th retry: the platforms' exponential schedules,
    compressed so tests need not wait. ``acknowledged(status, body)`` decides whether an
    answer takes the delivery. Invariants: nothing is sent without a target
    (``deliver_to``); a delivery under way keeps the URL it was sent to; ``send`` needs a
    running event loop; ``close`` cancels what is pending and a later ``send`` starts
    afresh.
    """

    def __init__(
        self,
        counts: DeliveryCounts,
        *,
        max_tries: int = DEFAULT_MAX_TRIES,
        base_delay_s: float = DEFAULT_BASE_DELAY_S,
        timeout: aiohttp.ClientTimeout = DEFAULT_DELIVERY_TIMEOUT,
        acknowledged: Callable[[int, bytes], bool] = acknowledged_by_status,
    ) -> None:
        if max_tries < 1:
            raise ValueError(f"max_tries must be at least 1, got {max_tries}")
        self._counts = counts
        self._max_tries = max_tries
        self._base_delay_s = base_delay_s
        self._timeout = timeout
        self._acknowledged = acknowledged
        self._url: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str | None:
        """Where new deliveries go; None: nowhere."""
        return self._url

    def deliver_to(self, url: str | None) -> None:
        """Send every later delivery to ``url`` (None: stop sending new ones)."""
        self._url = url

    def send(self, headers: Mapping[str, str], body: bytes) -> None:
        """Deliver in the background; a no-op without a target."""
        if self._url is None:
            return
        delivery = self._deliver(self._url, dict(headers), body)
        task = asyncio.get_running_loop().create_task(delivery)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every delivery so far is acknowledged or abandoned."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel pending deliveries and close the HTTP session; idempotent."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _deliver(self, url: str, headers: dict[str, str], body: bytes) -> None:
        for attempt in range(self._max_tries):
            if attempt:
                self._counts.retries += 1
                await asyncio.sleep(self._base_delay_s * 2 ** (attempt - 1))
            self._counts.attempts += 1
            if await self._post(url, headers, body, attempt):
                self._counts.acknowledged += 1
                return
        self._counts.abandoned += 1
        log.warning("mock gave up a delivery to %s after %d tries", url, self._max_tries)

    async def _post(self, url: str, headers: dict[str, str], body: bytes, attempt: int) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(url, data=body, headers=headers) as response:
                answer = await response.read()
                if self._acknowledged(response.status, answer):
                    return True
                log.debug("delivery refused with %d (try %d)", response.status, attempt + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.debug("delivery failed: %s (try %d)", type(exc).__name__, attempt + 1)
        return False
