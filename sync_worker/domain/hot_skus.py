"""Which SKUs are hot: order lines counted per SKU, forgetting the past with a half-life.

Each line adds 1 to its SKU's score, and every score halves each ``half_life_ms``::

    score(t) = sum(2 ** (-(t - t_i) / half_life_ms))   over the SKU's lines at t_i <= t

so a SKU selling now outranks one that sold more an hour ago. Nothing here reads a
clock: times come in milliseconds from the caller. Memory is bounded: past
``capacity`` SKUs the coldest half is forgotten at once (amortised, so a long tail of
SKUs selling once costs no scan per line); a SKU forgotten that sells again starts
from its new lines. Ties rank by SKU, so the same counts always give the same top.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Score:
    value: float
    at_ms: int
    """The time ``value`` is as of: the newest line of the SKU."""


@dataclass(slots=True)
class HotSkus:
    half_life_ms: int = 300_000
    capacity: int = 1024
    _scores: dict[str, _Score] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.half_life_ms <= 0:
            raise ValueError("half_life_ms must be positive")
        if self.capacity < 2:
            raise ValueError("capacity must be at least 2")

    def __contains__(self, sku: object) -> bool:
        return sku in self._scores

    def __len__(self) -> int:
        return len(self._scores)

    def record(self, sku: str, at_ms: int, lines: int = 1) -> None:
        """``lines`` order lines of ``sku`` at ``at_ms``; a late one decays from its time."""
        score = self._scores.get(sku)
        if score is None:
            self._scores[sku] = _Score(float(lines), at_ms)
            if len(self._scores) > self.capacity:
                self._forget_coldest(at_ms)
        elif at_ms >= score.at_ms:
            score.value = score.value * self._decay(at_ms - score.at_ms) + lines
            score.at_ms = at_ms
        else:
            score.value += lines * self._decay(score.at_ms - at_ms)

    def score(self, sku: str, now_ms: int) -> float:
        """The SKU's decayed count of lines at ``now_ms`` (0 when not tracked)."""
        score = self._scores.get(sku)
        if score is None:
            return 0.0
        return score.value * self._decay(max(0, now_ms - score.at_ms))

    def top(self, count: int, now_ms: int) -> list[str]:
        """The ``count`` hottest SKUs at ``now_ms``, hottest first."""
        if count <= 0:
            return []
        ranked = heapq.nsmallest(count, self._scores, key=lambda sku: self._rank(sku, now_ms))
        return list(ranked)

    def retain(self, keep: Callable[[str], bool]) -> None:
        """Forget every SKU ``keep`` refuses (e.g. those of partitions handed away)."""
        for sku in [sku for sku in self._scores if not keep(sku)]:
            del self._scores[sku]

    def _rank(self, sku: str, now_ms: int) -> tuple[float, str]:
        return -self.score(sku, now_ms), sku

    def _forget_coldest(self, now_ms: int) -> None:
        kept = self.top(self.capacity // 2, now_ms)
        self._scores = {sku: self._scores[sku] for sku in kept}

    def _decay(self, elapsed_ms: int) -> float:
        return float(0.5 ** (elapsed_ms / self.half_life_ms))
