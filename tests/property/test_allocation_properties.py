"""The allocator inside ``decide()`` against platforms that sell on their own.

A model of the platforms like the simulator's: each channel's ``displayed`` counter
moves only through our writes (applied as deltas, a reduction clamped at 0), its
buyers and the cancellation of a line the ledger rejected. Hypothesis interleaves
buyers, late and reordered sales, writes landing late, late settlements, stock
received or counted down, pins and isolation, and the properties hold after every step:

- no oversell: while the stock only grows, the ledger never rejects a sale a platform made;
- a grant never leaves the channels holding more than is sellable;
- every change moves something (delta != 0), versions strictly increase, and a
  reduction never asks back more than the channel's quota;
- every unit the allocator counts as out is on display, in a write on its way, in a
  sale or a settlement not heard yet (so, once all is delivered, ``out == displayed``);
- conservation: the stock received is sold or unsold, nothing else.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from sync_worker.domain import events
from sync_worker.domain.allocation import AllocationPolicy, ChannelRule, PolicyKind
from sync_worker.domain.decide import Policies, decide
from sync_worker.domain.ledger import LedgerPolicy
from sync_worker.domain.position import SafetyReserve, SkuPosition
from sync_worker.domain.records import Record
from sync_worker.streaming.state import record_key

SETTINGS = settings(max_examples=200, deadline=None)
SKU = "lipstick"
CHANNELS = ("a", "b", "c")

ACTIONS = (
    *["buyer"] * 5,
    *["land"] * 4,
    *["hear_sale"] * 3,
    *["hear_settlement"] * 2,
    "read_back",
    "receive",
    "count_down",
    "pin",
    "isolate",
    "end_isolation",
)


@dataclass(frozen=True)
class Write:
    delta: int
    version: int


@dataclass(frozen=True)
class Sale:
    channel: str
    units: int
    event: events.OrderLinePlaced


@dataclass(frozen=True)
class Settlement:
    channel: str
    requested: int
    applied: int
    version: int


@dataclass
class World:
    policies: Policies
    shrinks: bool
    position: SkuPosition = field(default_factory=lambda: SkuPosition(SKU))
    records: dict[bytes, Record] = field(default_factory=dict)
    displayed: Counter[str] = field(default_factory=Counter)
    writes: dict[str, list[Write]] = field(default_factory=lambda: {c: [] for c in CHANNELS})
    sales: list[Sale] = field(default_factory=list)
    settlements: list[Settlement] = field(default_factory=list)
    received: int = 0
    platform_sold: int = 0
    rejected: int = 0
    last_version: int = 0
    now: int = 0
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def common(self) -> dict[str, object]:
        return {"event_id": f"e-{next(self.ids)}", "sku": SKU, "event_time_ms": self.now}

    # the ledger

    def hear(self, event: events.SkuEvent) -> None:
        key = record_key(event)
        before = self.position.allocation
        decided = decide(next(self.seq), self.position, self.records.get(key), event, self.policies)
        self.position = decided.step.position
        if decided.step.record is not None:
            self.records[key] = decided.step.record
        decision = decided.step.decision
        if decision is not None and decision.outcome is events.Outcome.REJECTED:
            assert isinstance(event, events.OrderLinePlaced)
            assert self.shrinks, f"the ledger rejected a sale a platform made: {decision}"
            self.rejected += event.quantity
            self.displayed[event.channel] += event.quantity  # the line is cancelled there
        self.check_changes(decided.quota_changes, before.version)
        for change in decided.quota_changes:
            self.writes[change.channel].append(Write(change.delta, change.version))
        self.check_accounts()

    def check_changes(self, changes: tuple[events.StockQuotaChanged, ...], before: int) -> None:
        allocation = self.position.allocation
        versions = [change.version for change in changes]
        assert versions == list(range(before + 1, before + 1 + len(changes)))
        assert all(version > self.last_version for version in versions)
        self.last_version = allocation.version
        assert all(change.delta != 0 for change in changes)
        if any(change.delta > 0 for change in changes):
            assert sum(q.out for q in allocation.channels) <= self.position.sellable
        last = {change.channel: change for change in changes}
        for name, change in last.items():
            quota = allocation.channel(name)
            assert quota is not None
            assert change.quota == quota.quota
            if change.delta < 0:  # the reclaim fitted within the channel's quota
                assert quota.out - quota.reclaiming >= 0

    def check_accounts(self) -> None:
        for quota in self.position.allocation.channels:
            name = quota.channel
            granting = sum(w.delta for w in self.writes[name] if w.delta > 0)
            reclaims = sum(-w.delta for w in self.writes[name] if w.delta < 0)
            unheard = sum(s.units for s in self.sales if s.channel == name)
            applied = sum(s.applied for s in self.settlements if s.channel == name)
            asked = sum(s.requested for s in self.settlements if s.channel == name)
            assert quota.out == self.displayed[name] + granting + unheard + applied, name
            assert quota.reclaiming == reclaims + asked, name
        if not self.shrinks:
            unheard = sum(sale.units for sale in self.sales)
            assert self.position.on_hand == self.received
            assert self.position.committed == self.platform_sold - unheard
            assert self.received == self.platform_sold - unheard + self.position.sellable

    # the platforms and the publisher

    def buyer(self, channel: str, units: int) -> None:
        if self.displayed[channel] < units:
            return  # turned away
        self.displayed[channel] -= units
        self.platform_sold += units
        number = next(self.ids)
        placed = events.OrderLinePlaced(
            event_id=f"e-{number}",
            sku=SKU,
            event_time_ms=self.now,
            platform="p",
            channel=channel,
            order_id=f"o-{number}",
            line_id="1",
            quantity=units,
            buyer_id="b",
        )
        self.sales.append(Sale(channel, units, placed))

    def land(self, channel: str) -> None:
        if not self.writes[channel]:
            return
        write = self.writes[channel].pop(0)  # the publisher keeps a channel's writes in order
        if write.delta > 0:
            self.displayed[channel] += write.delta
            return
        applied = min(-write.delta, self.displayed[channel])
        self.displayed[channel] -= applied
        self.settlements.append(Settlement(channel, -write.delta, applied, write.version))

    def hear_sale(self, pick: int) -> None:
        if self.sales:
            self.hear(self.sales.pop(pick % len(self.sales)).event)

    def hear_settlement(self, pick: int) -> None:
        if not self.settlements:
            return
        settled = self.settlements.pop(pick % len(self.settlements))
        self.hear(
            events.ReclaimSettled(
                **self.common(),  # type: ignore[arg-type]
                actor="publisher",
                channel=settled.channel,
                version=settled.version,
                requested=settled.requested,
                applied=settled.applied,
            )
        )

    def read_back(self, channel: str) -> None:
        """A truthful read-back never finds drift: the platform shows at most what the
        channel holds."""
        self.hear(
            events.ChannelObserved(
                **self.common(),  # type: ignore[arg-type]
                actor="publisher",
                channel=channel,
                displayed=self.displayed[channel],
            )
        )
        quota = self.position.allocation.channel(channel)
        assert quota is None or quota.excess_seen == 0, "a truthful read-back looked like drift"

    def drain(self, limit: int = 300) -> bool:
        """Deliver everything; True once nothing moves any more."""
        for _ in range(limit):
            if any(self.writes.values()):
                for channel in CHANNELS:
                    self.land(channel)
            elif self.sales:
                self.hear_sale(0)
            elif self.settlements:
                self.hear_settlement(0)
            else:
                return True
        return False

    def check_settled(self) -> None:
        for quota in self.position.allocation.channels:
            assert quota.reclaiming == 0
            assert quota.out == self.displayed[quota.channel]
        assert sum(self.displayed.values()) <= self.position.sellable


@st.composite
def policies(draw: st.DrawFn) -> Policies:
    rules = tuple(
        ChannelRule(
            name,
            ratio=draw(st.none() | st.sampled_from([0.1, 0.25, 0.3])),
            plus=draw(st.integers(-2, 2)),
            floor=draw(st.integers(0, 5)),
            ceiling=draw(st.none() | st.integers(0, 30)),
            latency_ms=draw(st.integers(1, 500)),
        )
        for name in CHANNELS
    )
    allocation = AllocationPolicy(
        kind=draw(st.sampled_from(PolicyKind)),
        channels=rules,
        refresh_ms=draw(st.integers(1, 3_000)),
        lease_units=draw(st.integers(1, 8)),
        min_buffer=draw(st.integers(0, 3)),
        cover=draw(st.floats(0.5, 5)),
        rate_half_life_ms=draw(st.integers(50, 2_000)),
        dry_claw_ratio=draw(st.floats(1.5, 20)),
    )
    return Policies(ledger=LedgerPolicy(default_reserve=SafetyReserve()), allocation=allocation)


actions = st.lists(
    st.tuples(
        st.sampled_from(ACTIONS),
        st.sampled_from(CHANNELS),
        st.integers(0, 1_000),  # which delivery, or how many units
        st.integers(0, 400),  # milliseconds that pass first
    ),
    max_size=120,
)


def play(world: World, initial: int, steps: list[tuple[str, str, int, int]]) -> None:
    world.received = initial
    world.hear(
        events.StockReceived(**world.common(), actor="w", quantity=initial)  # type: ignore[arg-type]
    )
    for channel in CHANNELS:  # the first grants land before the session starts
        world.land(channel)
    for action, channel, number, elapsed in steps:
        world.now += elapsed
        match action:
            case "buyer":
                world.buyer(channel, 1 if number % 4 else 2)
            case "hear_sale":
                world.hear_sale(number)
            case "land":
                world.land(channel)
            case "hear_settlement":
                world.hear_settlement(number)
            case "read_back":
                world.read_back(channel)
            case "receive":
                world.received += 1 + number % 20
                world.hear(
                    events.StockReceived(
                        **world.common(),  # type: ignore[arg-type]
                        actor="w",
                        quantity=1 + number % 20,
                    )
                )
            case "count_down" if world.shrinks:
                counted = max(0, world.position.on_hand - 1 - number % 10)
                world.hear(
                    events.StockCounted(**world.common(), actor="w", quantity=counted)  # type: ignore[arg-type]
                )
            case "pin":
                world.hear(
                    events.ChannelPinned(
                        **world.common(),  # type: ignore[arg-type]
                        actor="host",
                        channel=channel,
                        duration_ms=1 + number * 5,
                        expected_units_per_s=1 + number % 200,
                    )
                )
            case "isolate":
                world.hear(
                    events.StockIsolated(
                        **world.common(),  # type: ignore[arg-type]
                        actor="host",
                        channel=channel,
                        units=1 + number % 15,
                    )
                )
            case "end_isolation":
                world.hear(
                    events.IsolationEnded(**world.common(), actor="host", channel=channel)  # type: ignore[arg-type]
                )
    # Every step above checked the accounts; once all is delivered they must balance.
    # (Whether the allocator ever stops moving units is a separate, known-broken property.)
    if world.drain():
        world.check_settled()


@SETTINGS
@given(policies(), st.integers(1, 60), actions)
def test_while_stock_only_grows_no_sale_is_ever_rejected(
    policy: Policies, initial: int, steps: list[tuple[str, str, int, int]]
) -> None:
    world = World(policy, shrinks=False)

    play(world, initial, steps)

    assert world.rejected == 0
    assert world.received == world.platform_sold + world.position.sellable


@SETTINGS
@given(policies(), st.integers(1, 60), actions)
def test_when_stock_shrinks_the_quotas_still_add_up(
    policy: Policies, initial: int, steps: list[tuple[str, str, int, int]]
) -> None:
    world = World(policy, shrinks=True)

    play(world, initial, steps)

    # Conservation: what platforms sold is accepted or was rejected (and cancelled).
    assert world.platform_sold == world.position.committed + world.rejected


def shared_pool_short_of_stock() -> World:
    rules = tuple(ChannelRule(name) for name in CHANNELS)
    allocation = AllocationPolicy(kind=PolicyKind.SHARED_POOL, channels=rules, lease_units=3)
    policy = Policies(ledger=LedgerPolicy(default_reserve=SafetyReserve()), allocation=allocation)
    world = World(policy, shrinks=False)
    play(world, 5, [("buyer", "a", 1, 0)])
    return world


def test_the_shared_pool_settles_once_nothing_happens() -> None:
    # 5 units, 3 channels, leases of 3: a gets 3, b 2, c none. One buyer at a; then no
    # buyer at all. Found by Hypothesis: every settlement used to make the next reclaim,
    # a <-> b, without end.
    world = shared_pool_short_of_stock()

    assert world.drain(limit=1_000)
