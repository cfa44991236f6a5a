"""Three-level stock alerts of a session SKU, with hysteresis.

Stock left is measured against the session's starting sellable stock. Each threshold
fires once when stock falls to it; it fires again only after stock rose above the
threshold plus ``rearm_points`` (a restock), so units trickling back from
cancellations around a threshold never make an alert flap.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync_worker.domain.events import AlertLevel

LEVELS = (AlertLevel.LOW, AlertLevel.CRITICAL, AlertLevel.SOLD_OUT)
"""In the order stock reaches them."""

AUDIENCE = {
    AlertLevel.LOW: ("ops",),
    AlertLevel.CRITICAL: ("host", "ops"),
    AlertLevel.SOLD_OUT: ("host", "ops"),
}
SUGGESTION = {
    AlertLevel.LOW: "Stock is running low: prepare a restock or a transfer.",
    AlertLevel.CRITICAL: "End this product early or switch to the next one; restock if it "
    "must go on.",
    AlertLevel.SOLD_OUT: "Sold out: sales stopped in every room. Restock or move on.",
}


@dataclass(frozen=True, slots=True)
class AlertThresholds:
    warn_percent: int = 20
    critical_percent: int = 10
    rearm_points: int = 5

    def threshold(self, level: AlertLevel) -> int:
        """The percent of the starting stock at or below which ``level`` fires."""
        if level is AlertLevel.LOW:
            return self.warn_percent
        if level is AlertLevel.CRITICAL:
            return self.critical_percent
        return 0


def reached(level: AlertLevel, remaining: int, baseline: int, thresholds: AlertThresholds) -> bool:
    """Stock is at or below the level's threshold."""
    if level is AlertLevel.SOLD_OUT:
        return remaining <= 0
    return remaining * 100 <= baseline * thresholds.threshold(level)


def rearmed(level: AlertLevel, remaining: int, baseline: int, thresholds: AlertThresholds) -> bool:
    """Stock rose far enough above the level's threshold for it to fire again."""
    above = thresholds.threshold(level) + thresholds.rearm_points
    if level is AlertLevel.SOLD_OUT:
        return remaining > 0 and remaining * 100 > baseline * thresholds.rearm_points
    return remaining * 100 > baseline * above


def assess(
    fired: int, remaining: int, baseline: int, thresholds: AlertThresholds
) -> tuple[int, tuple[AlertLevel, ...]]:
    """``fired`` is how many levels have fired and not re-armed (0…3). Returns the new
    count and the levels that fire now, in order: a sale that jumps two thresholds
    fires both."""
    if baseline <= 0:
        return fired, ()
    while fired > 0 and rearmed(LEVELS[fired - 1], remaining, baseline, thresholds):
        fired -= 1
    firing = []
    while fired < len(LEVELS) and reached(LEVELS[fired], remaining, baseline, thresholds):
        firing.append(LEVELS[fired])
        fired += 1
    return fired, tuple(firing)
