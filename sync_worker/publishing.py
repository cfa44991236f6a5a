"""Pushes quota changes to every channel as deltas, so no write undoes a sale in flight.

Platforms sell on their own and stockcast hears of it later, so a channel's count is
changed by a delta, never set outright (unless its connector declares that safe). Per
(channel, SKU) one write is in flight at a time and changes apply in version order.
Increases queued behind it coalesce into one write; a reduction is always written alone,
because the allocator holds its units until the publisher reports, as a
``ReclaimSettled``, how many the platform really took off display. A retry resends the
very same write (same idempotency key), so it can never apply twice; a write that keeps
failing stays first in its SKU's line and is tried again later, never dropped. Slow
platforms delay only their own channel, never the ledger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from connectors.base import (
    Connector,
    ConnectorError,
    PushResult,
    RateLimited,
    Rejected,
    StockUpdate,
    TransientError,
    WriteMode,
    choose_write_mode,
)
from sync_worker.domain.events import ReclaimSettled, StockQuotaChanged
from sync_worker.metrics import Metrics

log = logging.getLogger(__name__)

OnSettled = Callable[[ReclaimSettled], Awaitable[None]]
"""Receives the outcome of every quota reduction; the allocator holds its units until then."""

RETRY_LATER_S: Final = 5.0
"""Pause before a write that failed every attempt is tried again."""
SETTLED_BY: Final = "publisher"
_MAX_ATTEMPTS: Final = 5
_backoff = wait_exponential_jitter(multiplier=0.05, max=5.0, jitter=0.05)


def _wait(state: RetryCallState) -> float:
    """Back off exponentially with jitter, but never sooner than the platform asked."""
    error = state.outcome.exception() if state.outcome else None
    hint = error.retry_after if isinstance(error, RateLimited) else 0.0
    return max(hint, _backoff(state))


@dataclass(eq=False)
class _Channel:
    name: str
    connector: Connector
    mode: WriteMode
    queued: dict[str, deque[StockQuotaChanged]] = field(default_factory=dict)
    newest: dict[str, int] = field(default_factory=dict)
    """The highest version offered per SKU: anything not above it is a redelivery."""
    parked: dict[str, StockUpdate] = field(default_factory=dict)
    """A write that failed every attempt: resent as is, before anything newer of its SKU."""
    deferred: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    ready: dict[str, None] = field(default_factory=dict)
    """SKUs with something to write, oldest first (a dict as an ordered set)."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def schedule(self, sku: str) -> None:
        if sku not in self.deferred:
            self.ready[sku] = None
            self.wake.set()

    def park(self, update: StockUpdate, delay_s: float) -> None:
        """Hold a failed write back for ``delay_s``, then send it again before anything else
        of its SKU; the other SKUs go on meanwhile."""
        self.parked[update.sku] = update
        self.ready.pop(update.sku, None)
        self.deferred[update.sku] = asyncio.get_running_loop().call_later(
            delay_s, self.undefer, update.sku
        )

    def undefer(self, sku: str) -> None:
        del self.deferred[sku]
        self.schedule(sku)

    def next_write(self, sku: str) -> StockUpdate | None:
        """The parked write, else the next queued change, with the increases right
        behind it merged in when it is an increase; None when there is nothing to send."""
        parked = self.parked.pop(sku, None)
        if parked is not None:
            return parked
        queue = self.queued.get(sku)
        if not queue:
            return None
        first = last = queue.popleft()
        delta = first.delta
        while delta >= 0 and queue and queue[0].delta >= 0:
            last = queue.popleft()
            delta += last.delta
        if not queue:
            del self.queued[sku]
        if delta == 0:
            return None  # the count the platform shows is already right
        return StockUpdate(
            channel=self.name,
            sku=sku,
            quantity=last.quota,
            delta=delta,
            version=last.version,
            event_time_ms=last.event_time_ms,
            idempotency_key=f"{self.name}:{sku}:{first.version}-{last.version}",
        )


class Publisher:
    """Writes quota changes to channels. ``offer`` never blocks the caller.

    Each channel's write mode is the safest its connector declares (``choose_write_mode``);
    a connector that declares none is refused here, at construction.
    """

    def __init__(
        self,
        channels: Sequence[tuple[str, Connector]],
        metrics: Metrics,
        on_settled: OnSettled,
        *,
        retry_later_s: float = RETRY_LATER_S,
    ) -> None:
        self._channels = {
            name: _Channel(name, connector, choose_write_mode(connector.write_modes))
            for name, connector in channels
        }
        if len(self._channels) != len(channels):
            raise ValueError("each channel may be listed only once")
        self._metrics = metrics
        self._on_settled = on_settled
        self._retry_later_s = retry_later_s
        self._tasks: list[asyncio.Task[None]] = []

    def write_mode(self, channel: str) -> WriteMode:
        """The mode the channel's writes use."""
        return self._channels[channel].mode

    def offer(self, change: StockQuotaChanged) -> None:
        """Queue a change; one for a channel this publisher does not serve is ignored."""
        channel = self._channels.get(change.channel)
        if channel is None:
            return
        platform = channel.connector.platform
        if change.version <= channel.newest.get(change.sku, 0):
            self._metrics.quota_changes.labels(platform, "duplicate").inc()
            return
        channel.newest[change.sku] = change.version
        channel.queued.setdefault(change.sku, deque()).append(change)
        channel.schedule(change.sku)
        self._metrics.quota_changes.labels(platform, "queued").inc()

    async def start(self) -> None:
        for channel in self._channels.values():
            await channel.connector.start()
            self._tasks.append(asyncio.create_task(self._drain(channel), name=channel.name))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for channel in self._channels.values():
            for timer in channel.deferred.values():
                timer.cancel()
            channel.deferred.clear()
            await channel.connector.close()

    async def _drain(self, channel: _Channel) -> None:
        while True:
            await channel.wake.wait()
            channel.wake.clear()
            while channel.ready:
                sku = next(iter(channel.ready))
                del channel.ready[sku]
                update = channel.next_write(sku)
                if update is not None:
                    await self._write(channel, update)
                if sku in channel.queued:
                    channel.schedule(sku)  # behind the other SKUs already waiting

    async def _write(self, channel: _Channel, update: StockUpdate) -> None:
        platform = channel.connector.platform
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((TransientError, RateLimited)),
            wait=_wait,
            stop=stop_after_attempt(_MAX_ATTEMPTS),
            reraise=True,
        )
        try:
            result: PushResult = await retrying(channel.connector.push_stock, update, channel.mode)
        except Rejected as error:
            self._metrics.pushes.labels(platform, "rejected").inc()
            log.warning(
                "%s refused %s v%d for good: %s", channel.name, update.sku, update.version, error
            )
            if update.delta < 0:
                await self._settle(channel, update, applied=0)
            return
        except ConnectorError as error:
            self._metrics.pushes.labels(platform, "deferred").inc()
            log.warning("write to %s failed, retrying later: %s", channel.name, error)
            channel.park(update, self._retry_later_s)
            return
        except Exception:
            # A connector breaking its contract must neither stop its channel nor lose a delta.
            self._metrics.pushes.labels(platform, "error").inc()
            log.exception("connector of %s broke its contract; retrying later", channel.name)
            channel.park(update, self._retry_later_s)
            return
        self._metrics.pushes.labels(platform, "ok").inc()
        self._metrics.push_latency.labels(platform).observe(
            max(0.0, time.time() - update.event_time_ms / 1000)
        )
        if update.delta < 0:
            await self._settle(channel, update, applied=-result.applied)

    async def _settle(self, channel: _Channel, update: StockUpdate, applied: int) -> None:
        requested = -update.delta
        # A connector's word, kept within the bounds the event's schema allows.
        applied = min(requested, max(0, applied))
        settled = ReclaimSettled(
            event_id=f"settle:{channel.name}:{update.sku}:{update.version}",
            sku=update.sku,
            event_time_ms=int(time.time() * 1000),
            actor=SETTLED_BY,
            channel=channel.name,
            version=update.version,
            requested=requested,
            applied=applied,
        )
        outcome = "full" if applied == requested else "partial" if applied else "none"
        try:
            await self._on_settled(settled)
        except Exception:
            # The reclaimed units stay held until someone settles them by hand: say so loudly.
            outcome = "unreported"
            log.exception("could not report %s", settled)
        self._metrics.reclaims.labels(channel.connector.platform, outcome).inc()
