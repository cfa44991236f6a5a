"""What the publisher's two test modules share: the channel, the SKU, quota changes and
a bounded wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sync_worker.domain.events import StockQuotaChanged

ROOM = "tiktok-room-1"
SKU = "lipstick"
HANG_GUARD_S = 30.0
"""A bound on waiting for what must happen, so a hang fails the test; not a speed goal."""


def change(
    version: int, delta: int, quota: int, sku: str = SKU, channel: str = ROOM
) -> StockQuotaChanged:
    return StockQuotaChanged(
        sku=sku,
        channel=channel,
        quota=quota,
        delta=delta,
        version=version,
        cause_event_id=f"ev-{version}",
        event_time_ms=1_700_000_000_000 + version,
    )


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        # Polled, not event-driven: the conditions span rooms, connectors and metrics.
        while True:
            if condition():
                return
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), HANG_GUARD_S)
