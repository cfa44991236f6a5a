"""A live session's rules for one SKU, enforced inside the SKU's own decision.

The session service opens a SKU with ``session.sku_opened``; from then on every order
line from one of the session's rooms passes the region lists, the session cap and the
buyer's limit before it may take stock, in the same step that takes it. Nothing
outside the SKU's partition is consulted, so no race can get around a rule.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, replace

from sync_worker.domain.alerts import AlertThresholds
from sync_worker.domain.events import OrderLinePlaced, RejectReason, SessionSkuOpened


@dataclass(frozen=True, slots=True)
class SkuSession:
    """One session's hold on a SKU. ``sold`` counts units accepted in its rooms and not
    cancelled; ``baseline`` is the sellable stock it started with (the cap, if smaller)."""

    session_id: str
    channels: tuple[str, ...]
    tier: str
    cap: int | None = None
    buyer_limit: int | None = None
    regions_allow: tuple[str, ...] = ()
    regions_deny: tuple[str, ...] = ()
    isolate: bool = False
    thresholds: AlertThresholds = field(default_factory=AlertThresholds)
    baseline: int = 0
    sold: int = 0
    alerts_fired: int = 0
    """How many alert levels fired and are not re-armed (see ``domain.alerts``)."""
    alerts_seq: int = -1
    """The input sequence number of the event that last fired alerts: a replay of that
    event restates them (they may not have left before a crash)."""
    alerts_last: int = 0
    """How many levels that event fired (the last ones of ``alerts_fired``)."""

    def remaining(self, sellable: int) -> int:
        """Units the session can still sell: the stock, or what is left of its cap."""
        if self.cap is None:
            return sellable
        return max(0, min(sellable, self.cap - self.sold))

    def refuses(self, event: OrderLinePlaced, units: int, bought: int) -> RejectReason | None:
        """Why the line may not take ``units``; ``bought`` is what its buyer holds already."""
        region = normalise_region(event.region or "") or None  # blank: no region named
        if region is not None and region in self.regions_deny:
            return RejectReason.REGION_BLOCKED
        if self.regions_allow and region is None:
            return RejectReason.REGION_UNKNOWN
        if self.regions_allow and region not in self.regions_allow:
            return RejectReason.REGION_BLOCKED
        if self.cap is not None and self.sold + units > self.cap:
            return RejectReason.SESSION_CAP_REACHED
        if self.buyer_limit is not None and bought + units > self.buyer_limit:
            return RejectReason.BUYER_LIMIT_REACHED
        return None

    def with_sold(self, delta: int) -> SkuSession:
        return replace(self, sold=max(0, self.sold + delta))


def with_hold(holds: tuple[SkuSession, ...], hold: SkuSession) -> tuple[SkuSession, ...]:
    """``holds`` with ``hold`` in place of the session's previous one, moved last."""
    return (*(s for s in holds if s.session_id != hold.session_id), hold)


def opened(event: SessionSkuOpened, sellable: int) -> SkuSession:
    """The session's hold as it starts, measured against the stock it finds."""
    baseline = sellable if event.cap is None else min(sellable, event.cap)
    return SkuSession(
        session_id=event.session_id,
        channels=tuple(event.channels),
        tier=event.tier.value,
        cap=event.cap,
        buyer_limit=event.buyer_limit,
        regions_allow=tuple(sorted({normalise_region(r) for r in event.regions_allow})),
        regions_deny=tuple(sorted({normalise_region(r) for r in event.regions_deny})),
        isolate=event.isolate,
        thresholds=AlertThresholds(event.warn_percent, event.critical_percent, event.rearm_points),
        baseline=baseline,
    )


def carve(session: SkuSession) -> tuple[tuple[str, int], ...]:
    """A flash sale's isolated units per room: the cap split evenly, the first rooms
    taking the remainder."""
    if not session.isolate or session.cap is None:
        return ()
    share, extra = divmod(session.cap, len(session.channels))
    return tuple(
        (channel, share + (1 if index < extra else 0))
        for index, channel in enumerate(session.channels)
    )


def normalise_region(region: str) -> str:
    """Region codes compare case- and width-insensitively ("cn-GD" is "CN-GD")."""
    return unicodedata.normalize("NFKC", region).strip().upper()


def buyer_identity(platform: str, buyer_id: str) -> str:
    """One buyer, however the platform spells them: Unicode-normalised, trimmed and
    case-folded, and for an e-mail address without its ``+tag``, so that "Ann@x.com"
    and "ann+live@x.com" share one limit. Scoped by platform: ids of different
    platforms never collide."""
    identity = unicodedata.normalize("NFKC", buyer_id).strip().casefold()
    local, at, domain = identity.partition("@")
    if at:
        identity = f"{local.split('+', 1)[0]}@{domain}"
    return f"{len(platform)}:{platform}:{identity}"
