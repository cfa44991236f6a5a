"""The discrete-event loop: the real ``decide()`` against platforms that sell on their own.

Time is simulated milliseconds from 0, kept in a heap of ``(time_ms, seq, happening)``;
``seq`` breaks ties in the order things were scheduled, so a run is a pure function of
its scenario, buyers and policy.

Per channel the platform keeps a ``displayed`` counter. A buyer wanting ``q`` buys if
``displayed >= q`` (the platform takes the units off at once) and the ledger hears the
order ``hear_delay_ms`` later; otherwise the buyer is turned away, a *lost sale* when
units existed somewhere at that moment. Each ``StockQuotaChanged`` goes to the channel's
publisher: one write in flight, at most ``pushes_per_s`` writes a second, pending
increases coalesced, each reduction written alone. A write lands ``push_delay_ms`` after
it is sent; a reduction takes off what the platform still shows (it stops at 0) and its
settlement is heard ``hear_delay_ms`` after landing. A line the ledger rejects is
cancelled on its platform, which puts the units back on display when the cancellation
lands (``push_delay_ms`` after the decision).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter, deque
from dataclasses import dataclass, field

from sync_worker.domain import events
from sync_worker.domain.allocation import PolicyKind
from sync_worker.domain.decide import Policies, decide
from sync_worker.domain.ledger import LedgerPolicy
from sync_worker.domain.position import SafetyReserve, SkuPosition
from sync_worker.domain.records import Record
from sync_worker.simulation.arrivals import Arrival
from sync_worker.simulation.trace import ChannelSpec, Pin, Scenario
from sync_worker.streaming.state import record_key

WAREHOUSE = "main"
ACTOR = "simulator"


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one policy did with one scenario's buyers."""

    policy: PolicyKind
    stock: int
    buyers: int
    sales: int
    """Buyers served (orders placed on the platforms)."""
    units_sold: int
    oversold_units: int
    """Units platforms sold that the ledger then rejected."""
    lost_sales: int
    """Buyers turned away while enough units existed on other channels or in the pool."""
    lost_units: int
    turned_away: int
    """Every buyer turned away, lost sale or not (nothing left)."""
    unsold_units: int
    pushes: int
    """Writes sent to platforms."""
    lost_by_channel: dict[str, int] = field(default_factory=dict)
    first_lost_ms: int | None = None
    last_lost_ms: int | None = None

    @property
    def stranded_units(self) -> int:
        """Units left unsold at the end although some buyer was turned away."""
        return self.unsold_units if self.turned_away else 0

    @property
    def lost_pct(self) -> float:
        return 100.0 * self.lost_sales / self.stock if self.stock else 0.0

    @property
    def pushes_per_order(self) -> float:
        return self.pushes / self.sales if self.sales else float(self.pushes)


def run(scenario: Scenario, buyers: tuple[Arrival, ...], kind: PolicyKind) -> RunResult:
    """Play ``buyers`` against ``scenario`` with the allocation policy ``kind``."""
    return _Run(scenario, kind).play(buyers)


# --- what can happen --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _BuyerArrives:
    arrival: Arrival


@dataclass(frozen=True, slots=True)
class _LedgerHears:
    event: events.SkuEvent


@dataclass(frozen=True, slots=True)
class _WriteLands:
    channel: str
    write: _Write


@dataclass(frozen=True, slots=True)
class _PublisherReady:
    channel: str


@dataclass(frozen=True, slots=True)
class _CancellationLands:
    channel: str
    units: int


_Happening = _BuyerArrives | _LedgerHears | _WriteLands | _PublisherReady | _CancellationLands


@dataclass(frozen=True, slots=True)
class _Write:
    delta: int
    version: int


@dataclass(slots=True)
class PlatformRoom:
    """One channel: the platform's counter (``displayed``) and our publisher's queue of
    writes to it. Increases waiting in the queue coalesce into one write; a reduction
    is always written alone (its settlement names it)."""

    spec: ChannelSpec
    displayed: int = 0
    queue: deque[_Write] = field(default_factory=deque)
    in_flight: bool = False
    next_send_ms: int = 0
    wake_scheduled: bool = False

    def enqueue(self, delta: int, version: int) -> None:
        if delta > 0 and self.queue and self.queue[-1].delta > 0:
            self.queue[-1] = _Write(self.queue[-1].delta + delta, version)  # coalesce
        else:
            self.queue.append(_Write(delta, version))


class _Run:
    def __init__(self, scenario: Scenario, kind: PolicyKind) -> None:
        self.scenario = scenario
        self.policies = Policies(
            ledger=LedgerPolicy(default_reserve=SafetyReserve()),
            allocation=scenario.allocation_policy(kind),
        )
        self.kind = kind
        self.position = SkuPosition(scenario.sku)
        self.records: dict[bytes, Record] = {}
        self.rooms = {spec.name: PlatformRoom(spec) for spec in scenario.channels}
        self.heap: list[tuple[int, int, _Happening]] = []
        self.order = itertools.count()
        self.seq = itertools.count(1)
        self.ids = itertools.count(1)
        self.now = 0
        # tallies
        self.buyers = self.sales = self.units_sold = self.oversold = 0
        self.lost_sales = self.lost_units = self.turned_away = self.pushes = 0
        self.lost_by_channel: Counter[str] = Counter()
        self.first_lost: int | None = None
        self.last_lost: int | None = None

    def at(self, time_ms: int, happening: _Happening) -> None:
        heapq.heappush(self.heap, (time_ms, next(self.order), happening))

    def play(self, buyers: tuple[Arrival, ...]) -> RunResult:
        self.hear(self.stock_received())
        for pin in self.scenario.pins:
            self.at(pin.at_ms, _LedgerHears(self.pinned(pin)))
        for arrival in buyers:
            self.at(arrival.time_ms, _BuyerArrives(arrival))
        while self.heap:
            self.now, _, happening = heapq.heappop(self.heap)
            self.handle(happening)
        return RunResult(
            policy=self.kind,
            stock=self.scenario.stock,
            buyers=self.buyers,
            sales=self.sales,
            units_sold=self.units_sold,
            oversold_units=self.oversold,
            lost_sales=self.lost_sales,
            lost_units=self.lost_units,
            turned_away=self.turned_away,
            unsold_units=self.scenario.stock - self.units_sold,
            pushes=self.pushes,
            lost_by_channel=dict(sorted(self.lost_by_channel.items())),
            first_lost_ms=self.first_lost,
            last_lost_ms=self.last_lost,
        )

    def handle(self, happening: _Happening) -> None:
        match happening:
            case _BuyerArrives(arrival):
                self.buyer(arrival)
            case _LedgerHears(event):
                self.hear(event)
            case _WriteLands(channel, write):
                self.land(self.rooms[channel], write)
            case _PublisherReady(channel):
                self.rooms[channel].wake_scheduled = False
                self.send(self.rooms[channel])
            case _CancellationLands(channel, units):
                self.rooms[channel].displayed += units

    # the platforms

    def buyer(self, arrival: Arrival) -> None:
        room = self.rooms[arrival.channel]
        self.buyers += 1
        if room.displayed >= arrival.quantity:
            room.displayed -= arrival.quantity
            self.sales += 1
            self.units_sold += arrival.quantity
            self.at(self.now + room.spec.hear_delay_ms, _LedgerHears(self.placed(arrival)))
            return
        self.turned_away += 1
        if self.scenario.stock - self.units_sold >= arrival.quantity:
            self.lost_sales += 1
            self.lost_units += arrival.quantity
            self.lost_by_channel[arrival.channel] += 1
            self.first_lost = self.now if self.first_lost is None else self.first_lost
            self.last_lost = self.now

    def land(self, room: PlatformRoom, write: _Write) -> None:
        room.in_flight = False
        if write.delta > 0:
            room.displayed += write.delta
        else:
            applied = min(-write.delta, room.displayed)
            room.displayed -= applied
            settled = self.settled(room.spec.name, write, applied)
            self.at(self.now + room.spec.hear_delay_ms, _LedgerHears(settled))
        self.send(room)

    # the publisher

    def send(self, room: PlatformRoom) -> None:
        if room.in_flight or not room.queue:
            return
        if self.now < room.next_send_ms:
            if not room.wake_scheduled:
                room.wake_scheduled = True
                self.at(room.next_send_ms, _PublisherReady(room.spec.name))
            return
        write = room.queue.popleft()
        room.in_flight = True
        room.next_send_ms = self.now + math.ceil(1000 / room.spec.pushes_per_s)
        self.pushes += 1
        self.at(self.now + room.spec.push_delay_ms, _WriteLands(room.spec.name, write))

    # the ledger

    def hear(self, event: events.SkuEvent) -> None:
        key = record_key(event)
        decided = decide(next(self.seq), self.position, self.records.get(key), event, self.policies)
        self.position = decided.step.position
        if decided.step.record is not None:
            self.records[key] = decided.step.record
        decision = decided.step.decision
        if (
            decision is not None
            and decision.outcome is events.Outcome.REJECTED
            and isinstance(event, events.OrderLinePlaced)
        ):
            self.oversold += event.quantity
            room = self.rooms[event.channel]
            self.at(
                self.now + room.spec.push_delay_ms,
                _CancellationLands(event.channel, event.quantity),
            )
        for change in decided.quota_changes:
            room = self.rooms[change.channel]
            room.enqueue(change.delta, change.version)
            self.send(room)

    # events as the platforms and the publisher would send them

    def stock_received(self) -> events.StockReceived:
        return events.StockReceived(
            event_id=f"sim-{next(self.ids)}",
            sku=self.scenario.sku,
            event_time_ms=0,
            actor=ACTOR,
            warehouse=WAREHOUSE,
            quantity=self.scenario.stock,
        )

    def placed(self, arrival: Arrival) -> events.OrderLinePlaced:
        number = next(self.ids)
        return events.OrderLinePlaced(
            event_id=f"sim-{number}",
            sku=self.scenario.sku,
            event_time_ms=arrival.time_ms,
            platform=arrival.channel,
            channel=arrival.channel,
            order_id=f"o-{number}",
            line_id="1",
            quantity=arrival.quantity,
            buyer_id=f"b-{number}",
        )

    def settled(self, channel: str, write: _Write, applied: int) -> events.ReclaimSettled:
        return events.ReclaimSettled(
            event_id=f"sim-{next(self.ids)}",
            sku=self.scenario.sku,
            event_time_ms=self.now,
            actor=ACTOR,
            channel=channel,
            version=write.version,
            requested=-write.delta,
            applied=applied,
        )

    def pinned(self, pin: Pin) -> events.ChannelPinned:
        return events.ChannelPinned(
            event_id=f"sim-{next(self.ids)}",
            sku=self.scenario.sku,
            event_time_ms=pin.at_ms,
            actor=ACTOR,
            channel=pin.channel,
            duration_ms=pin.duration_ms,
            expected_units_per_s=pin.expected_units_per_s,
        )
