"""Latencies in an HDR histogram: microsecond resolution, 3 significant digits, up to
ten minutes, constant memory whatever the number of lines."""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

_LOWEST_US = 1
_HIGHEST_US = 600_000_000
_DIGITS = 3


class Latencies:
    """Durations in seconds in, percentiles in milliseconds out."""

    def __init__(self) -> None:
        self._histogram = HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)

    def record(self, seconds: float) -> None:
        micros = min(_HIGHEST_US, max(_LOWEST_US, round(seconds * 1e6)))
        self._histogram.record_value(micros)

    @property
    def count(self) -> int:
        return int(self._histogram.get_total_count())

    def percentile_ms(self, percentile: float) -> float:
        """The latency ``percentile`` percent of the recorded ones stay within (0 if none)."""
        if self.count == 0:
            return 0.0
        return int(self._histogram.get_value_at_percentile(percentile)) / 1000.0

    def max_ms(self) -> float:
        return int(self._histogram.get_max_value()) / 1000.0 if self.count else 0.0
