"""Factories for the domain's events, shared by the unit tests of the ledger and the codecs."""

from __future__ import annotations

import itertools

import pytest

from sync_worker.domain.events import (
    OrderLineCancelled,
    OrderLinePlaced,
    StockCounted,
    StockReceived,
)


class EventFactory:
    """Builds well-formed SKU events; every event gets a fresh ``event_id`` unless given one.

    Defaults describe one order line (``tiktok`` / ``o-1`` / ``l-1``) of SKU ``lipstick``,
    so a test only spells out what it is about.
    """

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._clock_ms = itertools.count(1_700_000_000_000, 10)

    def _event_id(self, given: str | None) -> str:
        return given if given is not None else f"ev-{next(self._ids)}"

    def placed(
        self,
        *,
        quantity: int = 1,
        sku: str = "lipstick",
        order_id: str = "o-1",
        line_id: str = "l-1",
        platform: str = "tiktok",
        channel: str = "tiktok-room-1",
        event_id: str | None = None,
        region: str | None = None,
    ) -> OrderLinePlaced:
        return OrderLinePlaced(
            event_id=self._event_id(event_id),
            platform=platform,
            channel=channel,
            order_id=order_id,
            line_id=line_id,
            sku=sku,
            quantity=quantity,
            buyer_id="buyer-1",
            region=region,
            event_time_ms=next(self._clock_ms),
        )

    def cancelled(
        self,
        *,
        sku: str = "lipstick",
        order_id: str = "o-1",
        line_id: str = "l-1",
        platform: str = "tiktok",
        channel: str = "tiktok-room-1",
        event_id: str | None = None,
    ) -> OrderLineCancelled:
        return OrderLineCancelled(
            event_id=self._event_id(event_id),
            platform=platform,
            channel=channel,
            order_id=order_id,
            line_id=line_id,
            sku=sku,
            reason="buyer_cancelled",
            event_time_ms=next(self._clock_ms),
        )

    def counted(
        self, quantity: int, *, sku: str = "lipstick", event_id: str | None = None
    ) -> StockCounted:
        return StockCounted(
            event_id=self._event_id(event_id),
            sku=sku,
            quantity=quantity,
            actor="warehouse",
            event_time_ms=next(self._clock_ms),
        )

    def received(
        self, quantity: int, *, sku: str = "lipstick", event_id: str | None = None
    ) -> StockReceived:
        return StockReceived(
            event_id=self._event_id(event_id),
            sku=sku,
            quantity=quantity,
            actor="warehouse",
            event_time_ms=next(self._clock_ms),
        )


@pytest.fixture
def events() -> EventFactory:
    return EventFactory()
