"""The contract suite's view of the simulator: the ``simulator`` connector against a room.

The simulator stands for a platform with no listings and no webhooks, so this is an
``OutboundHarness`` only, and its ``unlisted_sku`` is None: a room shows any SKU it is
written. Its scripted faults answer writes (PUT, POST) only; reads are never faulted.
"""

from __future__ import annotations

import itertools

from connectors.base import Connector
from connectors.simulator.connector import SimulatorConnector
from connectors.simulator.rooms import LiveRoom
from connectors.simulator.server import Faults, RunningServer, create_app, start_server

THROTTLED_RETRY_AFTER_S = "2"


class SimulatorHarness:
    """Implements ``connectors.testing.OutboundHarness``; one live room per harness."""

    platform = "simulator"
    channel = "simulator-room-1"
    listed_skus: tuple[str, ...] = ("lipstick", "mascara")
    unlisted_sku: str | None = None

    def __init__(self) -> None:
        self._room = LiveRoom(self.channel, self.platform, dict.fromkeys(self.listed_skus, 0))
        self._faults = Faults()
        self._server: RunningServer | None = None
        self._connectors: list[SimulatorConnector] = []
        self._ids = itertools.count(1)

    @property
    def room(self) -> LiveRoom:
        """The platform itself, for checks beyond the harness protocol."""
        return self._room

    async def start(self) -> None:
        app = create_app({self.channel: self._room}, faults=self._faults)
        self._server = await start_server(app)

    async def connector(self) -> Connector:
        if self._server is None:
            raise RuntimeError("start the harness before asking for its connector")
        connector = SimulatorConnector.from_options({"base_url": self._server.url})
        await connector.start()
        self._connectors.append(connector)
        return connector

    def set_displayed(self, sku: str, quantity: int) -> None:
        # The room's back office is an adjustment with a key no stockcast write uses.
        delta = quantity - self._room.displayed(sku)
        self._room.apply_delta(sku, delta, f"back-office-{next(self._ids)}")

    def displayed(self, sku: str) -> int:
        return self._room.displayed(sku)

    def buy(self, sku: str, quantity: int, *, buyer: str, region: str | None) -> str | None:
        if not self._room.try_order(sku, quantity):
            return None
        return f"simulator-order-{next(self._ids)}"

    def throttle_next(self, calls: int) -> None:
        self._faults.inject(429, times=calls, retry_after=THROTTLED_RETRY_AFTER_S)

    def fail_next(self, calls: int) -> None:
        self._faults.inject(503, times=calls)

    async def close(self) -> None:
        for connector in self._connectors:
            await connector.close()
        self._connectors.clear()
        if self._server is not None:
            await self._server.stop()
            self._server = None
