"""Product tiers and the policy each one brings by default, overridable per SKU.

A tier says how a product is sold in a stream: a traffic item is a loss-leader with an
exact count and strict limits; a best-seller shares the pool and is watched; a profit
item carries the margin; a long-tail item has little stock and is restocked on demand.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync_worker.domain.events import Tier


@dataclass(frozen=True, slots=True)
class TierPolicy:
    isolate: bool
    """Carve the session cap out of the pool for the session's rooms alone."""
    buyer_limit: int | None
    warn_percent: int
    critical_percent: int
    returns_unsold: bool
    """Unsold isolated units go back to the pool when the session ends."""
    restock_open: bool
    """Keep a restock channel open: alerts suggest restocking rather than moving on."""
    shows_margin: bool
    note: str


POLICIES: dict[Tier, TierPolicy] = {
    Tier.TRAFFIC: TierPolicy(
        isolate=True,
        buyer_limit=1,
        warn_percent=20,
        critical_percent=10,
        returns_unsold=True,
        restock_open=False,
        shows_margin=False,
        note="Exact count carved from the pool, one per buyer; unsold units return at the end.",
    ),
    Tier.BEST_SELLER: TierPolicy(
        isolate=False,
        buyer_limit=None,
        warn_percent=20,
        critical_percent=10,
        returns_unsold=False,
        restock_open=True,
        shows_margin=False,
        note="Shared pool; watch the sales rate and keep a restock on standby.",
    ),
    Tier.PROFIT: TierPolicy(
        isolate=False,
        buyer_limit=None,
        warn_percent=20,
        critical_percent=10,
        returns_unsold=False,
        restock_open=False,
        shows_margin=True,
        note="Medium stock; the margin is shown to the live team.",
    ),
    Tier.LONG_TAIL: TierPolicy(
        isolate=False,
        buyer_limit=None,
        warn_percent=30,
        critical_percent=15,
        returns_unsold=False,
        restock_open=True,
        shows_margin=False,
        note="Low stock, restocked on demand: alerts come earlier.",
    ),
}
