"""The session gauges SessionPace keeps: stock left, sell-out ETA and the alert level of
every lineup SKU of a live session, removed when the session ends."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from sync_worker.domain.live_session import LineupItem, LiveSession, SessionState
from sync_worker.domain.position import SkuPosition, WarehouseStock
from sync_worker.domain.sessions import SkuSession
from sync_worker.metrics import Metrics
from sync_worker.streaming.pace import SessionPace
from sync_worker.web.live import LiveHub

SESSION = "launch-night"
NOW_MS = 1_700_000_000_000


def session(state: SessionState = SessionState.LIVE) -> LiveSession:
    return LiveSession(
        session_id=SESSION,
        title="Launch night",
        channels=("room-a",),
        lineup=(LineupItem("lipstick"), LineupItem("mascara")),
        starts_at_ms=NOW_MS,
        ends_at_ms=NOW_MS + 3_600_000,
        state=state,
    )


def held(sku: str, on_hand: int, alerts_fired: int) -> SkuPosition:
    hold = SkuSession(SESSION, ("room-a",), "best_seller", baseline=100, alerts_fired=alerts_fired)
    return SkuPosition(
        sku, warehouses=(("main", WarehouseStock(on_hand=on_hand)),), known=True, sessions=(hold,)
    )


@dataclass
class Rig:
    sessions: list[LiveSession]
    positions: dict[str, SkuPosition]
    metrics: Metrics = field(default_factory=Metrics.create)

    def pace(self) -> SessionPace:
        return SessionPace(lambda: self.sessions, self.positions.get, LiveHub(), self.metrics)

    def level(self, sku: str) -> float | None:
        labels = {"session": SESSION, "sku": sku}
        return self.metrics.registry.get_sample_value("stockcast_session_alert_level", labels)

    def remaining(self, sku: str) -> float | None:
        labels = {"session": SESSION, "sku": sku}
        return self.metrics.registry.get_sample_value("stockcast_session_remaining_units", labels)


@pytest.mark.parametrize(("fired", "level"), [(0, 0), (1, 1), (2, 2), (3, 3)])
def test_the_alert_level_is_the_highest_level_fired_and_not_rearmed(fired: int, level: int) -> None:
    rig = Rig([session()], {"lipstick": held("lipstick", 15, fired)})

    rig.pace().refresh(NOW_MS)

    assert rig.level("lipstick") == level
    assert rig.remaining("lipstick") == 15


def test_a_restock_that_rearms_the_alerts_lowers_the_level() -> None:
    rig = Rig([session()], {"lipstick": held("lipstick", 5, alerts_fired=2)})
    pace = rig.pace()
    pace.refresh(NOW_MS)

    rig.positions["lipstick"] = held("lipstick", 80, alerts_fired=0)
    pace.refresh(NOW_MS + 1000)

    assert rig.level("lipstick") == 0


def test_skus_not_owned_here_or_not_held_have_no_series() -> None:
    rig = Rig([session()], {"mascara": SkuPosition("mascara", known=True)})

    rig.pace().refresh(NOW_MS)

    assert rig.level("lipstick") is None
    assert rig.level("mascara") is None


def test_every_series_of_a_session_goes_when_it_ends() -> None:
    positions = {"lipstick": held("lipstick", 5, 2), "mascara": held("mascara", 50, 0)}
    rig = Rig([session()], positions)
    pace = rig.pace()
    pace.refresh(NOW_MS)
    assert (rig.level("lipstick"), rig.level("mascara")) == (2, 0)

    rig.sessions = [replace(session(), state=SessionState.ENDED)]
    pace.refresh(NOW_MS + 1000)

    names = {family.name for family in rig.metrics.registry.collect() if family.samples}
    assert not {name for name in names if name.startswith("stockcast_session_")}
