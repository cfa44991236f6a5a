"""How fast a SKU sells, per channel and overall, and when it sells out at that pace.

Fed with accepted sales and with units going back (cancellations, releases), each at
its event time in milliseconds; nothing here reads a clock. The tracker's clock is the
newest event time it has seen, and a read never moves it back.

Both measures count **net** consumption, ``sold - returned``: a cancelled unit is back
on the shelf, so it no longer counts towards how fast the stock drains. A wave of
cancellations reads as a pause (every rate is floored at 0), never as a negative pace.
The SKU's measures are of all its channels' net flow together, so a room's returns
lower the SKU's pace but never another room's.

**Windowed** (what sold in the last minute, exact but blocky)::

    windowed_per_min = net units in the last N buckets * 60_000 / window_ms

with ``N = window_ms / bucket_ms``: the bucket holding now and the N - 1 before it,
so the window spans the last ``window_ms`` to within one bucket and memory stays at
N counts per channel. An event late by less than the window lands in its own bucket;
an older one is dropped (``sold`` and ``returned`` return False).

**Smoothed** (what the host screen and the gauges show): each unit adds an impulse
that decays with half-life ``H``, i.e. an exponentially weighted moving average of
the instantaneous sales rate::

    smoothed_per_min(t) = 60_000 * ln 2 / H * sum(units_i * 2 ** (-(t - t_i) / H))

A steady rate ``r`` reads ``r`` once a few half-lives have passed; a burst after a
quiet spell shows at once (``units * 60_000 * ln 2 / H`` per unit, 1.4/min per unit
with the default 30 s) and climbs faster than the minute window does; after a stop it
halves every ``H``, and below ``idle_below_per_min`` it reads 0 (idle), so a SKU that
stopped selling reads idle after a while instead of "sells out in three days". A late
event decays from its own time, so the order events arrive in does not matter; the
same window rule as above drops one older than the window.

**Sell-out ETA**: ``remaining * 60 / smoothed_per_min`` seconds; None when the pace is
0, and 0 when nothing remains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class VelocitySettings:
    window_ms: int = 60_000
    bucket_ms: int = 1_000
    """The window's resolution; ``window_ms`` must be a whole number of buckets."""
    half_life_ms: int = 30_000
    """How fast the smoothed pace forgets. The allocator's 500 ms sizes quotas against
    bursts; a host screen needs a number that holds still for a few seconds."""
    idle_below_per_min: float = 0.1
    """A smoothed pace below this reads 0: one unit per ten minutes is not selling."""

    def __post_init__(self) -> None:
        if self.bucket_ms <= 0 or self.window_ms <= 0 or self.window_ms % self.bucket_ms:
            raise ValueError("window_ms must be a positive multiple of a positive bucket_ms")
        if self.half_life_ms <= 0:
            raise ValueError("half_life_ms must be positive")

    @property
    def buckets(self) -> int:
        return self.window_ms // self.bucket_ms

    @property
    def impulse_per_min(self) -> float:
        """What one unit adds to the smoothed pace when it sells."""
        return 60_000 * math.log(2) / self.half_life_ms

    def decay(self, elapsed_ms: int) -> float:
        return float(0.5 ** (elapsed_ms / self.half_life_ms))


@dataclass(frozen=True, slots=True)
class Velocity:
    """A channel's or the SKU's pace at one moment, in units per minute, never negative."""

    windowed_per_min: float
    smoothed_per_min: float


def sellout_eta_s(remaining: int, units_per_min: float) -> float | None:
    """Seconds until ``remaining`` units are gone at ``units_per_min``; None when idle."""
    if remaining <= 0:
        return 0.0
    if units_per_min <= 0:
        return None
    return remaining * 60 / units_per_min


@dataclass(slots=True)
class _Flow:
    """One channel's (or the whole SKU's) net units: per-bucket counts and the smoothed
    pace as of ``level_at_ms``. Invariant: only buckets inside the window are held."""

    buckets: dict[int, int] = field(default_factory=dict)
    level_per_min: float = 0.0
    level_at_ms: int = 0

    def add(self, units: int, at_ms: int, oldest: int, settings: VelocitySettings) -> None:
        bucket = at_ms // settings.bucket_ms
        if bucket not in self.buckets:  # a new bucket: the oldest may have left the window
            for stale in [held for held in self.buckets if held < oldest]:
                del self.buckets[stale]
        self.buckets[bucket] = self.buckets.get(bucket, 0) + units
        impulse = units * settings.impulse_per_min
        if at_ms >= self.level_at_ms:
            decayed = self.level_per_min * settings.decay(at_ms - self.level_at_ms)
            self.level_per_min, self.level_at_ms = decayed + impulse, at_ms
        else:  # late: it has been decaying since it happened
            self.level_per_min += impulse * settings.decay(self.level_at_ms - at_ms)

    def velocity(self, now_ms: int, oldest: int, settings: VelocitySettings) -> Velocity:
        in_window = sum(units for bucket, units in self.buckets.items() if bucket >= oldest)
        smoothed = self.level_per_min * settings.decay(now_ms - self.level_at_ms)
        return Velocity(
            windowed_per_min=max(0, in_window) * 60_000 / settings.window_ms,
            smoothed_per_min=smoothed if smoothed >= settings.idle_below_per_min else 0.0,
        )


class SkuVelocity:
    """One SKU's pace, per channel and overall. In memory and derived: after a restart
    it starts empty and reads true again within a window. Not thread-safe."""

    def __init__(self, settings: VelocitySettings | None = None) -> None:
        self._settings = settings or VelocitySettings()
        self._now_ms: int | None = None
        self._sku = _Flow()
        self._channels: dict[str, _Flow] = {}

    @property
    def channels(self) -> tuple[str, ...]:
        """Every channel that has sold or returned units, by name."""
        return tuple(sorted(self._channels))

    def sold(self, channel: str, units: int, at_ms: int) -> bool:
        """``units`` sold in ``channel`` at ``at_ms``; False (ignored) if older than the
        window."""
        return self._record(channel, _count(units), at_ms)

    def returned(self, channel: str, units: int, at_ms: int) -> bool:
        """``units`` went back to stock from ``channel`` (a cancellation, a release);
        False (ignored) if older than the window."""
        return self._record(channel, -_count(units), at_ms)

    def velocity(self, now_ms: int, channel: str | None = None) -> Velocity:
        """The channel's pace, or the SKU's with no channel, at ``now_ms`` (or at the
        newest event seen, if that is later)."""
        flow = self._sku if channel is None else self._channels.get(channel)
        if flow is None or self._now_ms is None:
            return Velocity(0.0, 0.0)
        now_ms = max(now_ms, self._now_ms)
        return flow.velocity(now_ms, self._oldest_bucket(now_ms), self._settings)

    def eta_s(self, remaining: int, now_ms: int) -> float | None:
        """Seconds until ``remaining`` units sell out at the SKU's smoothed pace."""
        return sellout_eta_s(remaining, self.velocity(now_ms).smoothed_per_min)

    def _record(self, channel: str, units: int, at_ms: int) -> bool:
        now_ms = at_ms if self._now_ms is None else max(self._now_ms, at_ms)
        oldest = self._oldest_bucket(now_ms)
        if at_ms // self._settings.bucket_ms < oldest:
            return False
        self._now_ms = now_ms
        self._sku.add(units, at_ms, oldest, self._settings)
        self._channels.setdefault(channel, _Flow()).add(units, at_ms, oldest, self._settings)
        return True

    def _oldest_bucket(self, now_ms: int) -> int:
        return now_ms // self._settings.bucket_ms - self._settings.buckets + 1


def _count(units: int) -> int:
    """Which way units move is the method's name; a negative count is a caller's bug."""
    if units < 0:
        raise ValueError(f"units must not be negative, got {units}")
    return units
