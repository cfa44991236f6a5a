"""Consumption velocity and sell-out ETA of the SKUs of live sessions, kept per worker.

The ledger agent reports each decision (``observe``); once a second the pace of every
lineup SKU this worker owns goes to the gauges and to the rooms' live streams, so a
pace that decays after sales stop is seen without any new event; the gauges beside it
(stock left, sell-out ETA, alert level) come from the position's session hold. In
memory: after a restart it reads true again within a minute (``domain.velocity``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import mode

from sync_worker.domain import alerts, events
from sync_worker.domain.decide import Decided
from sync_worker.domain.live_session import LiveSession, SessionState
from sync_worker.domain.position import SkuPosition
from sync_worker.domain.sessions import SkuSession
from sync_worker.domain.velocity import SkuVelocity
from sync_worker.metrics import Metrics
from sync_worker.web.live import LiveHub

REFRESH_S = 1.0


class SessionPace(mode.Service):
    def __init__(
        self,
        sessions: Callable[[], list[LiveSession]],
        position_of: Callable[[str], SkuPosition | None],
        live: LiveHub,
        metrics: Metrics,
    ) -> None:
        super().__init__()
        self._sessions, self._position_of = sessions, position_of
        self._live, self._metrics = live, metrics
        self._trackers: dict[str, SkuVelocity] = {}
        self._labelled: set[tuple[str, str, str]] = set()

    def observe(self, event: events.SkuEvent, before: SkuPosition, decided: Decided) -> None:
        """Counts what a decision sold or gave back, for SKUs a session is selling."""
        step = decided.step
        if decided.replayed or not (before.sessions or step.position.sessions):
            return
        tracker = self._trackers.setdefault(event.sku, SkuVelocity())
        match event:
            case events.OrderLinePlaced() if (
                step.decision is not None and step.decision.outcome is events.Outcome.ACCEPTED
            ):
                tracker.sold(event.channel, event.quantity, event.event_time_ms)
            case events.OrderLineCancelled() | events.OrderLineRefunded():
                released = before.committed - step.position.committed
                if released > 0:
                    tracker.returned(event.channel, released, event.event_time_ms)

    def session_board(self, session: LiveSession) -> list[dict[str, Any]]:
        """Each lineup SKU as this worker's ledger table holds it (SKUs of its
        partitions): stock left, sold, cap, alert level, room quotas, pace and ETA."""
        board = []
        for item in session.lineup:
            position = self._position_of(item.sku)
            row: dict[str, Any] = {"sku": item.sku, "tier": item.tier.value, "name": item.name}
            if item.sku in session.skipped:
                row["skipped"] = True
            if position is None:
                board.append({**row, "owned_here": False})
                continue
            hold = position.session(session.session_id)
            quotas = {c: position.allocation.channel(c) for c in session.channels}
            row |= {
                "owned_here": True,
                "sellable": position.sellable,
                "incoming": [dataclasses.asdict(batch) for batch in position.incoming],
                "quotas": {c: q.quota if q else 0 for c, q in quotas.items()},
                "delisted": sorted(c for c, q in quotas.items() if q is not None and q.delisted),
            }
            remaining = hold.remaining(position.sellable) if hold is not None else None
            if hold is not None and remaining is not None:
                fired = hold.alerts_fired
                row |= {
                    "cap": hold.cap,
                    "sold": hold.sold,
                    "remaining": remaining,
                    "baseline": hold.baseline,
                    "percent_left": remaining * 100 // hold.baseline if hold.baseline else None,
                    "alert": alerts.LEVELS[fired - 1].value if fired else None,
                }
            board.append(row | self._pace(session, item.sku, remaining))
        return board

    def _pace(self, session: LiveSession, sku: str, remaining: int | None) -> dict[str, Any]:
        """The SKU's pace for the session board."""
        tracker = self._trackers.get(sku)
        if tracker is None:
            return {"velocity_per_min": 0.0, "rooms_per_min": {}, "eta_s": None}
        now_ms = _now_ms()
        rooms = {c: tracker.velocity(now_ms, c).smoothed_per_min for c in session.channels}
        return {
            "velocity_per_min": tracker.velocity(now_ms).smoothed_per_min,
            "rooms_per_min": rooms,
            "eta_s": None if remaining is None else tracker.eta_s(remaining, now_ms),
        }

    async def on_start(self) -> None:
        self.add_future(self._refreshing())

    async def _refreshing(self) -> None:
        while not self.should_stop:
            self.refresh(_now_ms())
            await asyncio.sleep(REFRESH_S)

    def refresh(self, now_ms: int) -> None:
        """Gauges and live streams for every lineup SKU of a live session owned here;
        series of sessions that ended are removed (bounded cardinality)."""
        labelled: set[tuple[str, str, str]] = set()
        for session in self._sessions():
            if session.state is not SessionState.LIVE:
                continue
            for item in session.selling():
                position = self._position_of(item.sku)
                hold = position.session(session.session_id) if position is not None else None
                if position is None or hold is None:
                    continue
                remaining = hold.remaining(position.sellable)
                tracker = self._trackers.setdefault(item.sku, SkuVelocity())
                eta = tracker.eta_s(remaining, now_ms)
                restock = min((batch.eta_ms for batch in position.incoming), default=None)
                key = (session.session_id, item.sku)
                self._metrics.session_remaining.labels(*key).set(remaining)
                self._metrics.session_eta.labels(*key).set(math.inf if eta is None else eta)
                self._metrics.session_alert_level.labels(*key).set(alert_level(hold))
                labelled.add((*key, ""))
                for channel in session.channels:
                    pace = tracker.velocity(now_ms, channel).smoothed_per_min
                    self._metrics.session_velocity.labels(*key, channel).set(pace)
                    labelled.add((*key, channel))
                    self._live.update_pace(
                        channel,
                        item.sku,
                        velocity_per_min=pace,
                        eta_s=eta,
                        restock_eta_ms=restock,
                    )
        for session_id, sku, channel in self._labelled - labelled:
            if channel:
                self._metrics.session_velocity.remove(session_id, sku, channel)
            else:
                self._metrics.session_remaining.remove(session_id, sku)
                self._metrics.session_eta.remove(session_id, sku)
                self._metrics.session_alert_level.remove(session_id, sku)
        self._labelled = labelled


def alert_level(hold: SkuSession) -> int:
    """0 none, 1 low, 2 critical, 3 sold out: the highest of ``alerts.LEVELS`` that has
    fired and not re-armed (the hold counts them in that order)."""
    return hold.alerts_fired


def _now_ms() -> int:
    return int(time.time() * 1000)
