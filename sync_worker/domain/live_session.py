"""A live session as the live team plans and runs it: schedule, rooms, lineup, moves.

``apply(session, command) -> LiveSession`` is pure; the session service stores each
result on a compacted Kafka topic and turns what it means for each SKU into events on
the SKU's own stream (``sku_events``), where the rules are enforced.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from sync_worker.domain import events, tiers
from sync_worker.domain.events import Tier


class SessionState(StrEnum):
    PLANNED = "planned"
    LIVE = "live"
    ENDED = "ended"


class SessionError(ValueError):
    """A command that does not fit the session (unknown SKU, ended already...)."""


@dataclass(frozen=True, slots=True)
class LineupItem:
    """One product of the lineup. ``None`` settings take the tier's default."""

    sku: str
    tier: Tier = Tier.BEST_SELLER
    name: str = ""
    spec: str = ""
    cap: int | None = None
    """Units this session may sell, all rooms together (a traffic item's exact count)."""
    buyer_limit: int | None = None
    isolate: bool | None = None
    regions_allow: tuple[str, ...] = ()
    regions_deny: tuple[str, ...] = ()
    warn_percent: int | None = None
    critical_percent: int | None = None
    rearm_points: int = 5
    margin_percent: float | None = None
    replenish_quantity: int | None = None
    """Expected replenishment: how many units and when (pre-live checklist)."""
    replenish_eta_ms: int | None = None

    def policy(self) -> tiers.TierPolicy:
        return tiers.POLICIES[self.tier]


@dataclass(frozen=True, slots=True)
class Move:
    """An audited operator action: who, when, what, on which SKU."""

    at_ms: int
    actor: str
    action: str
    sku: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LiveSession:
    session_id: str
    title: str
    channels: tuple[str, ...]
    lineup: tuple[LineupItem, ...]
    starts_at_ms: int
    ends_at_ms: int
    state: SessionState = SessionState.PLANNED
    pinned: str | None = None
    skipped: tuple[str, ...] = ()
    moves: tuple[Move, ...] = ()
    version: int = 0

    def item(self, sku: str) -> LineupItem:
        for item in self.lineup:
            if item.sku == sku:
                return item
        raise SessionError(f"SKU {sku!r} is not in the lineup of session {self.session_id!r}")

    def logged(self, move: Move, **changes: object) -> LiveSession:
        return replace(self, **changes, moves=(*self.moves, move), version=self.version + 1)  # type: ignore[arg-type]


def sku_opened(session: LiveSession, item: LineupItem, event_id: str, at_ms: int, actor: str) -> events.SessionSkuOpened:
    """The SKU's rules for this session, tier defaults applied."""
    policy = item.policy()
    isolate = policy.isolate if item.isolate is None else item.isolate
    return events.SessionSkuOpened(
        event_id=event_id,
        sku=item.sku,
        event_time_ms=at_ms,
        actor=actor,
        session_id=session.session_id,
        channels=session.channels,
        tier=item.tier,
        cap=item.cap,
        buyer_limit=policy.buyer_limit if item.buyer_limit is None else item.buyer_limit,
        regions_allow=item.regions_allow,
        regions_deny=item.regions_deny,
        isolate=isolate and item.cap is not None,
        warn_percent=policy.warn_percent if item.warn_percent is None else item.warn_percent,
        critical_percent=(
            policy.critical_percent if item.critical_percent is None else item.critical_percent
        ),
        rearm_points=item.rearm_points,
    )
