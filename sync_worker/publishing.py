"""Pushes stock levels to every channel: latest value wins, never a stale version.

Per (channel, SKU) only the newest pending count is kept, so a burst of changes
collapses into one write; one write per key is in flight at a time; a count older
than one already acknowledged is never sent. Slow platforms therefore delay only
their own channel, never the ledger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from connectors.base import Connector, ConnectorError, RateLimited, StockUpdate, TransientError
from sync_worker.domain.events import StockLevelChanged
from sync_worker.metrics import Metrics

log = logging.getLogger(__name__)

_MAX_ATTEMPTS = 5
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
    pending: dict[str, StockUpdate] = field(default_factory=dict)
    acknowledged: dict[str, int] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class Publisher:
    """Fans stock levels out to channels. ``offer`` never blocks the caller."""

    def __init__(self, channels: Sequence[tuple[str, Connector]], metrics: Metrics) -> None:
        self._channels = [_Channel(name, connector) for name, connector in channels]
        self._metrics = metrics
        self._tasks: list[asyncio.Task[None]] = []

    def offer(self, level: StockLevelChanged) -> None:
        for channel in self._channels:
            if channel.acknowledged.get(level.sku, 0) >= level.version:
                continue
            queued = channel.pending.get(level.sku)
            if queued is not None and queued.version >= level.version:
                continue
            channel.pending[level.sku] = StockUpdate(
                channel=channel.name,
                sku=level.sku,
                quantity=level.sellable,
                version=level.version,
                event_time_ms=level.event_time_ms,
            )
            channel.wake.set()

    async def start(self) -> None:
        for channel in self._channels:
            await channel.connector.start()
            self._tasks.append(asyncio.create_task(self._drain(channel), name=channel.name))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for channel in self._channels:
            await channel.connector.close()

    async def _drain(self, channel: _Channel) -> None:
        while True:
            await channel.wake.wait()
            channel.wake.clear()
            while channel.pending:
                sku = next(iter(channel.pending))
                update = channel.pending.pop(sku)
                if channel.acknowledged.get(sku, 0) < update.version:
                    await self._push(channel, update)

    async def _push(self, channel: _Channel, update: StockUpdate) -> None:
        platform = channel.connector.platform
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((TransientError, RateLimited)),
            wait=_wait,
            stop=stop_after_attempt(_MAX_ATTEMPTS),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await channel.connector.push_stock(update)
        except ConnectorError as error:
            self._metrics.pushes.labels(platform, "failed").inc()
            log.warning("push to %s failed for good: %s", channel.name, error)
            return
        except Exception:
            # A connector breaking its contract must not silence its channel for good.
            self._metrics.pushes.labels(platform, "error").inc()
            log.exception("connector of %s broke its contract", channel.name)
            return
        channel.acknowledged[update.sku] = update.version
        self._metrics.pushes.labels(platform, "ok").inc()
        self._metrics.push_latency.labels(platform).observe(
            max(0.0, time.time() - update.event_time_ms / 1000)
        )
