"""The payment clock: unpaid lines fire at their platform's deadline, offsets stay safe."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from sync_worker.domain import ledger
from sync_worker.domain.events import (
    OrderLineCancelled,
    OrderLineDecided,
    Outcome,
    RejectReason,
    line_key,
)
from sync_worker.domain.payments import PaymentClock
from tests.unit.conftest import EventFactory, MakePosition

WINDOWS_MS = {"tiktok": 1_000, "douyin": 5_000}
T0 = 1_700_000_000_000

Decide = Callable[..., OrderLineDecided]


def decision(
    line_id: str = "l-1",
    *,
    platform: str = "tiktok",
    outcome: Outcome = Outcome.ACCEPTED,
    event_time_ms: int = T0,
    sku: str = "lipstick",
) -> OrderLineDecided:
    return OrderLineDecided(
        event_id=f"placed-{line_id}",
        sku=sku,
        event_time_ms=event_time_ms,
        platform=platform,
        channel=f"{platform}-room-1",
        order_id="o-1",
        line_id=line_id,
        quantity=2,
        outcome=outcome,
        reason=RejectReason.INSUFFICIENT_STOCK if outcome is Outcome.REJECTED else None,
        original_outcome=Outcome.ACCEPTED if outcome is Outcome.DUPLICATE else None,
        position_version=1,
    )


def test_a_line_fires_at_exactly_its_deadline_and_not_a_millisecond_before() -> None:
    clock = PaymentClock(WINDOWS_MS)
    clock.accept(decision(), partition=0, offset=0)

    assert clock.due(T0 + 999) == []
    assert clock.next_deadline_ms() == T0 + 1_000
    [released] = clock.due(T0 + 1_000)

    assert released == OrderLineCancelled(
        event_id=released.event_id,
        sku="lipstick",
        event_time_ms=T0 + 1_000,
        platform="tiktok",
        channel="tiktok-room-1",
        order_id="o-1",
        line_id="l-1",
        reason=ledger.UNPAID_TIMEOUT,
    )
    assert clock.due(T0 + 10_000) == []
    assert len(clock) == 0
    assert clock.next_deadline_ms() is None


def test_each_platform_has_its_own_window_and_unlisted_platforms_are_never_held() -> None:
    clock = PaymentClock(WINDOWS_MS)
    clock.accept(decision("slow", platform="douyin"), partition=0, offset=0)
    clock.accept(decision("fast", platform="tiktok"), partition=0, offset=1)
    clock.accept(decision("free", platform="shopify"), partition=0, offset=2)

    assert [c.line_id for c in clock.due(T0 + 1_000)] == ["fast"]
    assert clock.due(T0 + 4_999) == []
    assert [c.line_id for c in clock.due(T0 + 5_000)] == ["slow"]
    assert clock.due(T0 + 10**9) == []


def test_due_lines_come_earliest_deadline_first() -> None:
    clock = PaymentClock(WINDOWS_MS)
    clock.accept(decision("late", event_time_ms=T0 + 50), partition=0, offset=0)
    clock.accept(decision("early", event_time_ms=T0), partition=1, offset=0)

    assert [c.line_id for c in clock.due(T0 + 2_000)] == ["early", "late"]


def test_only_accepted_placements_are_held() -> None:
    clock = PaymentClock(WINDOWS_MS)
    clock.accept(decision("rejected", outcome=Outcome.REJECTED), partition=0, offset=0)
    # A duplicate restates a line whose first acceptance was read (and held) already.
    clock.accept(decision("duplicate", outcome=Outcome.DUPLICATE), partition=0, offset=1)

    assert len(clock) == 0
    assert clock.due(T0 + 10**9) == []
    assert clock.safe_offsets() == {0: 2}


def test_an_acceptance_delivered_twice_is_held_once() -> None:
    clock = PaymentClock(WINDOWS_MS)
    clock.accept(decision(), partition=0, offset=3)
    clock.accept(decision(), partition=0, offset=7)

    assert len(clock) == 1
    assert len(clock.due(T0 + 1_000)) == 1
    assert clock.safe_offsets() == {0: 8}


def test_the_release_id_is_derived_from_the_line_alone() -> None:
    first, again = PaymentClock(WINDOWS_MS), PaymentClock(WINDOWS_MS)
    first.accept(decision(), partition=0, offset=0)
    again.accept(decision(), partition=2, offset=41)  # read again elsewhere, after a restart
    other = PaymentClock(WINDOWS_MS)
    other.accept(decision("l-2"), partition=0, offset=0)

    [released] = first.due(T0 + 1_000)
    assert again.due(T0 + 1_000) == [released]
    digest = hashlib.sha256(line_key("tiktok", "o-1", "l-1").encode()).hexdigest()
    assert released.event_id == f"unpaid_timeout:{digest}"
    assert other.due(T0 + 1_000)[0].event_id != released.event_id


def test_safe_offsets_stop_at_the_lowest_unfired_line_of_each_partition() -> None:
    clock = PaymentClock(WINDOWS_MS)
    clock.accept(decision("a", platform="shopify"), partition=0, offset=10)
    clock.accept(decision("b", platform="douyin"), partition=0, offset=11)
    clock.accept(decision("c", platform="tiktok"), partition=0, offset=12)
    clock.accept(decision("d", platform="tiktok"), partition=1, offset=4)
    clock.skip(partition=2, offset=0)

    assert clock.safe_offsets() == {0: 11, 1: 4, 2: 1}
    clock.due(T0 + 1_000)  # c and d fire; b, below c, still holds partition 0
    assert clock.safe_offsets() == {0: 11, 1: 5, 2: 1}
    clock.due(T0 + 5_000)
    assert clock.safe_offsets() == {0: 13, 1: 5, 2: 1}


def test_a_forgotten_partition_is_dropped_and_held_again_when_read_again() -> None:
    clock = PaymentClock(WINDOWS_MS)
    clock.accept(decision("a"), partition=0, offset=0)
    clock.accept(decision("b"), partition=1, offset=0)

    clock.forget([0])
    assert clock.safe_offsets() == {1: 0}
    assert [c.line_id for c in clock.due(T0 + 1_000)] == ["b"]

    clock.accept(decision("a"), partition=0, offset=0)  # its next reader starts over
    assert [c.line_id for c in clock.due(T0 + 1_000)] == ["a"]


def test_the_ledger_releases_an_unpaid_line_the_clock_fires(
    events: EventFactory, stocked: MakePosition
) -> None:
    placed = events.placed(quantity=3)
    accepted = ledger.apply(stocked(10), None, placed)
    assert accepted.decision is not None
    clock = PaymentClock(WINDOWS_MS)
    clock.accept(accepted.decision, partition=0, offset=0)

    [released] = clock.due(placed.event_time_ms + 1_000)
    step = ledger.apply(accepted.position, accepted.record, released)

    assert (accepted.position.committed, step.position.committed) == (3, 0)
    again = ledger.apply(step.position, step.record, released)  # fired again after a restart
    assert again.position == step.position


def test_a_line_paid_in_time_keeps_its_units_when_the_clock_fires(
    events: EventFactory, stocked: MakePosition
) -> None:
    placed = events.placed(quantity=3)
    accepted = ledger.apply(stocked(10), None, placed)
    assert accepted.decision is not None
    paid = ledger.apply(accepted.position, accepted.record, events.paid())
    clock = PaymentClock(WINDOWS_MS)
    clock.accept(accepted.decision, partition=0, offset=0)

    [released] = clock.due(placed.event_time_ms + 1_000)
    step = ledger.apply(paid.position, paid.record, released)

    assert step.position == paid.position
    assert step.position.committed == 3


# --- property: every timed line fires, at or after its deadline; offsets stay safe ----


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    decision: OrderLineDecided

    @property
    def deadline_ms(self) -> int | None:
        window = WINDOWS_MS.get(self.decision.platform)
        if self.decision.outcome is not Outcome.ACCEPTED or window is None:
            return None
        return self.decision.event_time_ms + window


@st.composite
def decision_logs(draw: st.DrawFn) -> list[Record]:
    """Decisions of distinct lines spread over three partitions, in reading order."""
    drawn = draw(
        st.lists(
            st.tuples(
                st.integers(0, 2),
                st.sampled_from(["tiktok", "douyin", "shopify"]),
                st.sampled_from(list(Outcome)),
                st.integers(0, 6_000),
            ),
            max_size=40,
        )
    )
    next_offset = [0, 0, 0]
    log = []
    for index, (partition, platform, outcome, at_ms) in enumerate(drawn):
        made = decision(f"l-{index}", platform=platform, outcome=outcome, event_time_ms=T0 + at_ms)
        log.append(Record(partition, next_offset[partition], made))
        next_offset[partition] += 1
    return log


@given(
    log=decision_logs(),
    steps=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 1_500)), max_size=30),
    restart_at=st.none() | st.integers(0, 29),
)
def test_every_timed_line_fires_after_its_deadline_and_offsets_never_pass_an_unfired_one(
    log: list[Record], steps: list[tuple[int, int]], restart_at: int | None
) -> None:
    clock = PaymentClock(WINDOWS_MS)
    unread = list(log)
    read: list[Record] = []
    fired: dict[str, list[OrderLineCancelled]] = {}
    now_ms = T0
    for index, (reading, advance_ms) in enumerate(steps):
        if index == restart_at:
            # A crash: a new clock reads again from the offsets committed last.
            committed = clock.safe_offsets()
            clock = PaymentClock(WINDOWS_MS)
            unread = [r for r in log if r.offset >= committed.get(r.partition, 0)]
            read = []
        for record in unread[:reading]:
            clock.accept(record.decision, record.partition, record.offset)
            read.append(record)
        del unread[:reading]
        now_ms += advance_ms
        for released in clock.due(now_ms):
            fired.setdefault(released.line_id, []).append(released)

        # Nothing fires early, and nothing due is left behind.
        held = [r for r in read if r.deadline_ms is not None and r.decision.line_id not in fired]
        assert all(r.deadline_ms is not None and r.deadline_ms > now_ms for r in held)
        for line_id, releases in fired.items():
            deadline = next(r.deadline_ms for r in log if r.decision.line_id == line_id)
            assert deadline is not None
            assert all(c.event_time_ms == deadline <= now_ms for c in releases)
        # Committing the safe offsets loses no unfired line and re-reads nothing else.
        for partition, safe in clock.safe_offsets().items():
            mine = [r.offset for r in read if r.partition == partition]
            waiting = [r.offset for r in held if r.partition == partition]
            assert safe == min(waiting, default=max(mine) + 1)

    for record in unread:
        clock.accept(record.decision, record.partition, record.offset)
    for released in clock.due(T0 + 10**9):
        fired.setdefault(released.line_id, []).append(released)
    timed = {r.decision.line_id for r in log if r.deadline_ms is not None}
    assert set(fired) == timed
    if restart_at is None or restart_at >= len(steps):
        assert all(len(releases) == 1 for releases in fired.values())
    # A line fired again after the restart is the very same event: a duplicate.
    assert all(len(set(releases)) == 1 for releases in fired.values())
