"""A live session's rules over random logs: placements from several buyers (however their
platform spells them), rooms and regions, payments, cancellations, unpaid timeouts,
refunds, shipments, restocks, redeliveries, in any order, with the session opened (and
maybe closed) anywhere among them. After every step:

- nothing is oversold, and no session sells beyond its cap;
- no buyer holds more than the session's limit, and the buyers of a limited session
  together hold exactly what it sold (conservation);
- a line refused by a rule came from the session's rooms while it was open, and its
  cancellation request carries the same reason;
- no channel shows more than is sellable, and the session's rooms no more than it has
  left to sell;
- each alert level fires exactly when stock crosses it while armed, so at most once per
  crossing (a model of the hysteresis written from the docs).

And crashes anywhere, each keeping a prefix of the record / holding / position writes,
leave the table, the answers and the alerts of a crash-free run.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sync_worker.domain.allocation import AllocationPolicy, ChannelRule, PolicyKind
from sync_worker.domain.decide import Decided, Policies, decide
from sync_worker.domain.events import (
    AlertLevel,
    OrderLineCancelled,
    OrderLinePaid,
    OrderLinePlaced,
    OrderLineRefunded,
    OrderLineShipped,
    Outcome,
    RejectReason,
    SessionSkuClosed,
    SessionSkuOpened,
    SkuEvent,
    StockCounted,
    StockReceived,
    Tier,
)
from sync_worker.domain.ledger import UNPAID_TIMEOUT, buyer_slot
from sync_worker.domain.position import SkuPosition
from sync_worker.domain.records import BuyerRecord, Record
from sync_worker.streaming.state import record_key
from tests.property.test_crash_safety import (
    Crash,
    SessionAgent,
    assert_crashes_change_nothing,
    crash_plans,
)

SKU = "lipstick"
SESSION = "s-1"
ROOMS = ("room-a", "room-b")
"""The session's rooms."""
SHOP = "shop"
"""A channel outside the session, on the same platform as room-a."""
PLATFORM = {"room-a": "tiktok", "room-b": "douyin", SHOP: "tiktok"}
BUYERS = ("ann@x.com", "Ann+live@X.com", " ann@x.com ", "bob", "BOB", "cy")
"""Two buyers spelt three and two ways, and a third."""
REGIONS = (None, "CN-44", " cn-44", "CN-31", "US-CA", "")
SESSION_REASONS = frozenset(
    {
        RejectReason.REGION_BLOCKED,
        RejectReason.REGION_UNKNOWN,
        RejectReason.SESSION_CAP_REACHED,
        RejectReason.BUYER_LIMIT_REACHED,
    }
)
POLICIES = Policies(
    allocation=AllocationPolicy(
        kind=PolicyKind.ADAPTIVE, channels=tuple(ChannelRule(c) for c in (*ROOMS, SHOP))
    )
)
EPOCH_MS = 1_700_000_000_000
SETTINGS = settings(max_examples=300, deadline=None)
"""No deadline: these tests never depend on how fast the machine is."""


# --- logs -------------------------------------------------------------------------------


@st.composite
def openings(draw: st.DrawFn, event_id: str) -> SessionSkuOpened:
    warn = draw(st.integers(2, 60))
    cap = draw(st.none() | st.integers(0, 12))
    return SessionSkuOpened(
        event_id=event_id,
        sku=SKU,
        event_time_ms=EPOCH_MS,
        actor="live-ops",
        session_id=SESSION,
        channels=ROOMS,
        tier=draw(st.sampled_from(Tier)),
        cap=cap,
        buyer_limit=draw(st.none() | st.integers(1, 3)),
        regions_allow=tuple(draw(st.sets(st.sampled_from(("CN-44", "cn-31"))))),
        regions_deny=tuple(draw(st.sets(st.sampled_from(("US-CA", " cn-31"))))),
        isolate=cap is not None and draw(st.booleans()),
        warn_percent=warn,
        critical_percent=draw(st.integers(1, warn - 1)),
        rearm_points=draw(st.integers(0, 10)),
    )


def line_events(draw: st.DrawFn, ids: Iterator[str], number: int) -> list[SkuEvent]:
    """One order line's events: mostly placed (sometimes twice, as a platform retries),
    maybe paid, then maybe cancelled (by the buyer or the payment clock), refunded or
    shipped."""
    channel = draw(st.sampled_from((*ROOMS, SHOP)))
    line: dict[str, Any] = {
        "sku": SKU,
        "event_time_ms": EPOCH_MS,
        "platform": PLATFORM[channel],
        "channel": channel,
        "order_id": f"o-{number}",
        "line_id": "l-1",
    }
    quantity = draw(st.integers(1, 3))
    placed: dict[str, Any] = {
        "quantity": quantity,
        "buyer_id": draw(st.sampled_from(BUYERS)),
        "region": draw(st.sampled_from(REGIONS)),
    }
    events: list[SkuEvent] = []
    for _ in range(draw(st.sampled_from((0, 1, 1, 1, 1, 2)))):
        events.append(OrderLinePlaced(event_id=next(ids), **line, **placed))
    if draw(st.booleans()):
        events.append(OrderLinePaid(event_id=next(ids), **line))
    end = draw(st.sampled_from(("none", "cancelled", "unpaid", "refunded", "shipped")))
    if end in ("cancelled", "unpaid"):
        reason = UNPAID_TIMEOUT if end == "unpaid" else "buyer_cancelled"
        events.append(OrderLineCancelled(event_id=next(ids), **line, reason=reason))
    elif end == "refunded":
        events.append(OrderLineRefunded(event_id=next(ids), **line, reason="buyer_request"))
    elif end == "shipped":
        events.append(OrderLineShipped(event_id=next(ids), **line, quantity=quantity))
    return events


@st.composite
def session_logs(draw: st.DrawFn) -> tuple[SkuEvent, ...]:
    """A counted SKU (mostly), then lines and restocks in any order, the session opened
    somewhere among them and maybe closed later, then redeliveries. Event times follow
    the order of first delivery."""
    ids = (f"ev-{n}" for n in itertools.count())
    pool: list[SkuEvent] = []
    for number in range(draw(st.integers(0, 12))):
        pool += line_events(draw, ids, number)
    for _ in range(draw(st.integers(0, 3))):
        pool.append(
            StockReceived(
                event_id=next(ids),
                sku=SKU,
                event_time_ms=EPOCH_MS,
                actor="warehouse",
                quantity=draw(st.integers(1, 6)),
            )
        )
    body = list(draw(st.permutations(pool)))
    opened_at = draw(st.integers(0, len(body)))
    body.insert(opened_at, draw(openings(next(ids))))
    if draw(st.booleans()):
        closed = SessionSkuClosed(
            event_id=next(ids),
            sku=SKU,
            event_time_ms=EPOCH_MS,
            actor="live-ops",
            session_id=SESSION,
            reason="ended",
        )
        body.insert(draw(st.integers(opened_at + 1, len(body))), closed)
    if draw(st.integers(0, 5)):
        count = draw(st.integers(0, 15))
        body.insert(
            0,
            StockCounted(
                event_id=next(ids), sku=SKU, event_time_ms=EPOCH_MS, actor="w", quantity=count
            ),
        )
    once = [replace(event, event_time_ms=EPOCH_MS + 10 * n) for n, event in enumerate(body)]
    redelivered = draw(
        st.lists(st.tuples(st.integers(0, len(once) - 1), st.integers(0, 3)), max_size=4)
    )
    ordered = [((index, 0, 0), event) for index, event in enumerate(once)]
    ordered += [
        ((index + 1 + delay, 1, n), once[index]) for n, (index, delay) in enumerate(redelivered)
    ]
    return tuple(event for _, event in sorted(ordered, key=lambda item: item[0]))


# --- a model of the alerts, from the docs -----------------------------------------------


def threshold(opened: SessionSkuOpened, level: AlertLevel) -> int:
    return {
        AlertLevel.LOW: opened.warn_percent,
        AlertLevel.CRITICAL: opened.critical_percent,
        AlertLevel.SOLD_OUT: 0,
    }[level]


@dataclass
class AlertModel:
    """Each level is armed until it fires; it fires when stock falls to its threshold (sold
    out: to 0) and re-arms once stock is back above threshold + rearm points."""

    opened: SessionSkuOpened
    armed: dict[AlertLevel, bool] = field(default_factory=lambda: dict.fromkeys(AlertLevel, True))

    def expect(self, remaining: int, baseline: int) -> list[AlertLevel]:
        if baseline <= 0:
            return []
        for level in AlertLevel:
            above = threshold(self.opened, level) + self.opened.rearm_points
            if remaining > 0 and remaining * 100 > baseline * above:
                self.armed[level] = True
        firing = [
            level
            for level in AlertLevel
            if self.armed[level]
            and (
                remaining <= 0
                if level is AlertLevel.SOLD_OUT
                else remaining * 100 <= baseline * threshold(self.opened, level)
            )
        ]
        for level in firing:
            self.armed[level] = False
        return firing


# --- the properties ---------------------------------------------------------------------


@dataclass
class Run:
    """The ledger fed like the agent feeds it, its invariants checked after every step."""

    position: SkuPosition = field(default_factory=lambda: SkuPosition(SKU))
    records: dict[bytes, Record] = field(default_factory=dict)
    buyers: dict[tuple[str, str], BuyerRecord] = field(default_factory=dict)
    opened: SessionSkuOpened | None = None
    model: AlertModel | None = None
    alert_ids: set[str] = field(default_factory=set)
    refused_by_rules: int = 0

    def feed(self, seq: int, event: SkuEvent) -> None:
        key = record_key(event)
        record = self.records.get(key)
        slot = buyer_slot(self.position, record, event)
        buyer = self.buyers.get(slot) if slot is not None else None
        before = self.position
        decided = decide(seq, before, record, event, POLICIES, buyer)
        step = decided.step
        if step.record is not None:
            self.records[key] = step.record
        if step.buyer is not None:
            assert slot is not None
            self.buyers[slot] = step.buyer
        self.position = step.position
        if isinstance(event, SessionSkuOpened) and self.opened is None:
            self.opened, self.model = event, AlertModel(event)
        self.check_step(before, event, decided)
        self.check_session()
        self.check_quotas()
        self.check_alerts(decided)

    def check_step(self, before: SkuPosition, event: SkuEvent, decided: Decided) -> None:
        step = decided.step
        assert step.oversold_units == 0  # no placement commits beyond what can be sold
        decision = step.decision
        if decision is None or decision.outcome is not Outcome.REJECTED:
            return
        assert isinstance(event, OrderLinePlaced)
        if decision.reason in SESSION_REASONS:
            self.refused_by_rules += 1
            session = before.session_for(event.channel)
            assert session is not None, "a rule refused a line outside any open session"
            assert event.channel in ROOMS
        if decision.reason is not RejectReason.ALREADY_CANCELLED:
            assert step.cancellation is not None
            assert step.cancellation.reason is decision.reason
            assert step.cancellation.line_key == event.line_key

    def check_session(self) -> None:
        session = self.position.session(SESSION)
        if session is None or self.opened is None:
            return
        if session.cap is not None:
            assert 0 <= session.sold <= session.cap
        limit = self.opened.buyer_limit
        held = [record.units for (sid, _), record in self.buyers.items() if sid == SESSION]
        if limit is not None:
            assert all(0 <= units <= limit for units in held)
            assert sum(held) == session.sold  # conservation: every unit sold has one buyer
        else:
            assert held == []

    def check_quotas(self) -> None:
        allocation, sellable = self.position.allocation, self.position.sellable
        assert sum(quota.quota for quota in allocation.channels) <= sellable
        session = self.position.session(SESSION)
        if session is not None and session.cap is not None:
            shown = sum(q.quota for q in allocation.channels if q.channel in session.channels)
            assert shown <= session.remaining(sellable)

    def check_alerts(self, decided: Decided) -> None:
        session = self.position.session(SESSION)
        if session is None or self.model is None:
            assert decided.alerts == ()
            return
        remaining = session.remaining(self.position.sellable)
        expected = self.model.expect(remaining, session.baseline)
        assert [alert.level for alert in decided.alerts] == expected
        for alert in decided.alerts:
            assert alert.alert_id not in self.alert_ids
            self.alert_ids.add(alert.alert_id)
            assert (alert.remaining, alert.baseline) == (remaining, session.baseline)


@SETTINGS
@given(session_logs())
def test_the_rules_hold_after_every_step(log: tuple[SkuEvent, ...]) -> None:
    run = Run()
    for seq, event in enumerate(log):
        run.feed(seq, event)


def session_agent() -> SessionAgent:
    return SessionAgent(policies=POLICIES)


@SETTINGS
@given(session_logs(), crash_plans)
def test_crashes_anywhere_leave_the_state_answers_and_alerts_of_a_crash_free_run(
    log: tuple[SkuEvent, ...], plan: list[Crash]
) -> None:
    expected, crashed = assert_crashes_change_nothing(log, plan, session_agent)

    assert isinstance(expected, SessionAgent)
    assert isinstance(crashed, SessionAgent)
    # Every alert is raised again after a crash (at least once), always the same.
    assert {alert for _, alert in crashed.alerts} == {alert for _, alert in expected.alerts}
    assert len({alert.alert_id for _, alert in expected.alerts}) == len(expected.alerts)


@SETTINGS
@given(session_logs())
def test_a_crash_inside_any_events_writes_is_repaired_by_reading_the_event_again(
    log: tuple[SkuEvent, ...],
) -> None:
    """Every crash point, one event at a time: the event's writes (record, holding,
    position) cut after any prefix, then the event read again, gives exactly the decision
    and table of the uncut run; read again once fully applied, it restates its answer and
    its alerts and changes nothing."""
    agent = session_agent()
    for seq, event in enumerate(log):
        table_before, written_before = dict(agent.table), len(agent.writes)
        agent.process(seq, event)
        (_, first), own = agent.decided[-1], agent.writes[written_before:]
        for kept in range(1, len(own)):
            crashed = session_agent()
            crashed.table = {**table_before, **{write.key: write.value for write in own[:kept]}}
            crashed.process(seq, event)
            assert crashed.table == agent.table
            assert crashed.decided[-1][1] == first
        again = session_agent()
        again.table = dict(agent.table)
        again.process(seq, event)
        (_, restated) = again.decided[-1]
        assert restated.replayed
        assert again.table == agent.table
        assert restated.alerts == first.alerts
        if first.step.decision is not None:
            assert restated.step.decision is not None
            answer = first.step.decision.original_outcome or first.step.decision.outcome
            assert (restated.step.decision.outcome, restated.step.decision.reason) == (
                answer,
                first.step.decision.reason,
            )
