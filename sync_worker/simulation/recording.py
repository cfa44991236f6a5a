"""Recording a live run's buyers so ``stockcast simulate`` can replay them.

A platform's order log holds only the buyers it served; a room showing 0 turns buyers
away without a trace, so the log understates demand exactly where a better policy
would have sold more. The simulated platforms of ``stockcast demo`` see every buyer,
served or not, and hand them to an ``ArrivalRecorder``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import IO

from sync_worker.simulation.arrivals import Arrival


class ArrivalRecorder:
    """Writes every buyer of ``sku`` as an arrivals line, time counted from ``start``.

    Called as ``recorder(channel, sku, quantity)`` by the rooms; buyers before ``start``
    and of other SKUs are not recorded.
    """

    def __init__(self, out: IO[str], sku: str, clock_s: Callable[[], float]) -> None:
        self._out = out
        self._sku = sku
        self._clock_s = clock_s
        self._origin_s: float | None = None
        self.recorded = 0

    def start(self) -> None:
        self._origin_s = self._clock_s()

    def __call__(self, channel: str, sku: str, quantity: int) -> None:
        if self._origin_s is None or sku != self._sku:
            return
        time_ms = max(0, round((self._clock_s() - self._origin_s) * 1000))
        self._out.write(Arrival(time_ms, channel, quantity).as_json() + "\n")
        self.recorded += 1


def replay_trace(
    arrivals_file: str, sku: str, stock: int, channels: Sequence[str], *, name: str
) -> str:
    """A trace replaying ``arrivals_file`` (relative to the trace), with typical delays
    and push limits for every channel: edit them to the platforms' real ones."""
    lines = [
        "# Buyers recorded by a live run; replay with: stockcast simulate --trace <this file>",
        f"name = {_string(name)}",
        f"sku = {_string(sku)}",
        f"stock = {stock}",
        f"arrivals = {_string(arrivals_file)}",
    ]
    for channel in channels:
        lines += [
            "",
            "[[channels]]",
            f"name = {_string(channel)}",
            "hear_delay_ms = 30",
            "push_delay_ms = 40",
            "pushes_per_s = 20",
        ]
    return "\n".join(lines) + "\n"


def _string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)
