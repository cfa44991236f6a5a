"""The whole loop in one process, no broker: simulated buyers -> stockcast's edge decoder,
ledger and allocator -> simulator connector (delta writes) -> the rooms over real HTTP.

This is the cheapest check that what the simulator publishes is what stockcast accepts,
and that what stockcast pushes is what the rooms apply.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from connectors.base import StockUpdate, WriteMode
from connectors.simulator.buyers import (
    Burst,
    BuyerStats,
    Scenario,
    SkuSpec,
    build_rooms,
    initial_stock_messages,
    run_buyers,
)
from connectors.simulator.clock import VirtualClock
from connectors.simulator.connector import SimulatorConnector
from connectors.simulator.rooms import LiveRoom
from connectors.simulator.server import create_app, start_server
from sync_worker.domain.allocation import AllocationPolicy, ChannelRule
from sync_worker.domain.decide import Policies, decide
from sync_worker.domain.events import Outcome, ReclaimSettled, RejectReason, SkuEvent
from sync_worker.domain.position import SkuPosition
from sync_worker.domain.records import Record
from sync_worker.streaming import state
from sync_worker.streaming.codecs import SkuEventDecoder

STOCK = 30


@dataclass
class InProcessStockcast:
    """stockcast's decide-and-push path without Kafka: decode, decide at the next offset with
    records keyed as the agent keys them, push every quota change to its room and feed
    each reduction's settlement back."""

    rooms: dict[str, LiveRoom]
    connector: SimulatorConnector | None
    decoder: SkuEventDecoder = field(default_factory=SkuEventDecoder)
    positions: dict[str, SkuPosition] = field(default_factory=dict)
    records: dict[bytes, Record] = field(default_factory=dict)
    offset: int = 0
    outcomes: Counter[tuple[Outcome, RejectReason | None]] = field(default_factory=Counter)

    async def __call__(self, key: bytes, value: bytes) -> None:
        await self.decide(self.decoder.decode(key, value))

    async def decide(self, event: SkuEvent) -> None:
        position = self.positions.get(event.sku, SkuPosition(event.sku))
        record_key = state.record_key(event)
        rules = tuple(ChannelRule(channel) for channel in self.rooms)
        policies = Policies(allocation=AllocationPolicy(channels=rules))
        decided = decide(self.offset, position, self.records.get(record_key), event, policies)
        step = decided.step
        self.offset += 1
        self.positions[event.sku] = step.position
        if step.record is not None:
            self.records[record_key] = step.record
        if step.decision is not None:
            self.outcomes[step.decision.outcome, step.decision.reason] += 1
        if self.connector is None:
            return
        for change in decided.quota_changes:
            update = StockUpdate(
                channel=change.channel,
                sku=change.sku,
                quantity=change.quota,
                delta=change.delta,
                version=change.version,
                event_time_ms=change.event_time_ms,
                idempotency_key=f"{change.channel}:{change.sku}:{change.version}",
            )
            result = await self.connector.push_stock(update, WriteMode.DELTA)
            if change.delta < 0:
                settled = ReclaimSettled(
                    event_id=f"settle-{change.version}",
                    sku=change.sku,
                    event_time_ms=change.event_time_ms,
                    actor="publisher",
                    channel=change.channel,
                    version=change.version,
                    requested=-change.delta,
                    applied=-result.applied,
                )
                await self.decide(settled)


def loop_scenario() -> Scenario:
    return Scenario(
        skus=(SkuSpec("lipstick", 1.0, STOCK),),
        base_rate_per_s=20.0,
        burst=Burst("lipstick", start_s=1.0, duration_s=1.0, rate_multiplier=20.0),
        cancel_probability=0.1,
        duplicate_probability=0.1,
        seed=11,
    )


async def run_loop(push_back: bool) -> tuple[InProcessStockcast, BuyerStats]:
    scenario = loop_scenario()
    # Pushed rooms start empty and show what stockcast grants; unpushed ones show it all.
    rooms = build_rooms(scenario, stocked=not push_back)
    async with await start_server(create_app(rooms)) as server:
        connector = SimulatorConnector.from_options({"base_url": server.url})
        await connector.start()
        stockcast = InProcessStockcast(rooms, connector if push_back else None)
        try:
            for key, value in initial_stock_messages(scenario, event_time_ms=1):
                await stockcast(key, value)
            stats = await run_buyers(scenario, rooms, stockcast, 4.0, VirtualClock())
        finally:
            await connector.close()
    return stockcast, stats


async def test_with_pushes_the_rooms_follow_stockcast_and_nothing_is_oversold() -> None:
    stockcast, stats = await run_loop(push_back=True)

    position = stockcast.positions["lipstick"]
    assert stats.refused_sold_out > 0  # the burst emptied the rooms
    assert stockcast.outcomes[Outcome.REJECTED, RejectReason.INSUFFICIENT_STOCK] == 0
    assert stockcast.outcomes[Outcome.DUPLICATE, None] > 0  # redeliveries changed nothing
    assert position.committed <= position.on_hand == STOCK
    for channel, room in stockcast.rooms.items():
        quota = position.allocation.channel(channel)
        assert quota is not None
        assert room.displayed("lipstick") == quota.quota
    assert sum(room.displayed("lipstick") for room in stockcast.rooms.values()) <= position.sellable


async def test_without_pushes_the_rooms_oversell_and_stockcast_rejects_the_excess() -> None:
    stockcast, stats = await run_loop(push_back=False)

    position = stockcast.positions["lipstick"]
    accepted = stockcast.outcomes[Outcome.ACCEPTED, None]
    oversold = stockcast.outcomes[Outcome.REJECTED, RejectReason.INSUFFICIENT_STOCK]
    assert oversold > 0
    assert stats.placed_lines == accepted + oversold  # each line decided once
    assert position.committed <= position.on_hand == STOCK
