"""Time for the buyer generator, injected so tests run in virtual time.

Event timestamps need epoch time while pacing needs a clock that never jumps; the
system clock gives both by anchoring the monotonic clock to the epoch once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """``now_s`` is epoch seconds and never goes backwards; ``sleep`` lets it advance."""

    def now_s(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time: epoch at construction plus monotonic time elapsed since."""

    def __init__(self) -> None:
        self._epoch_anchor = time.time()
        self._monotonic_anchor = time.monotonic()

    def now_s(self) -> float:
        return self._epoch_anchor + (time.monotonic() - self._monotonic_anchor)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class VirtualClock:
    """Time that moves only when slept on, so a minute of buyers runs instantly.

    ``sleep`` still yields to the event loop, so other tasks interleave as they would.
    ``sleep_calls`` lets a test check how often the caller paused.
    """

    def __init__(self, start_s: float = 1_700_000_000.0) -> None:
        self._now_s = start_s
        self.sleep_calls = 0

    def now_s(self) -> float:
        return self._now_s

    async def sleep(self, seconds: float) -> None:
        self.sleep_calls += 1
        self._now_s += max(0.0, seconds)
        await asyncio.sleep(0)
