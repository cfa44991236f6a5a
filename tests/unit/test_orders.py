"""All-or-nothing multi-line orders: the pure aggregation of line answers per order."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sync_worker.domain.events import OrderLineDecided, Outcome, RejectReason
from sync_worker.domain.orders import ALL_OR_NOTHING, OrderPolicy, OrderTally, Settled, on_decision

Decide = Callable[..., OrderLineDecided]


@pytest.fixture
def answer() -> Decide:
    def build(
        line_id: str,
        outcome: Outcome,
        *,
        sku: str | None = None,
        lines: int = 3,
        channel: str = "room-1",
    ) -> OrderLineDecided:
        return OrderLineDecided(
            event_id=f"e-{line_id}",
            sku=sku or f"sku-{line_id}",
            event_time_ms=1,
            platform="tiktok",
            channel=channel,
            order_id="o1",
            line_id=line_id,
            quantity=1,
            outcome=outcome,
            reason=RejectReason.INSUFFICIENT_STOCK if outcome is Outcome.REJECTED else None,
            position_version=1,
            order_line_count=lines,
        )

    return build


def run(answers: list[OrderLineDecided], policy: OrderPolicy = ALL_OR_NOTHING) -> list[Settled]:
    tally: OrderTally | None = None
    settled = []
    for seq, decision in enumerate(answers):
        step = on_decision(seq, tally, decision, policy)
        tally = step.tally
        settled.append(step)
    return settled


def released(steps: list[Settled]) -> list[str]:
    return [release.line_id for step in steps for release in step.releases]


def test_a_fully_accepted_order_releases_nothing_and_is_forgotten(answer: Decide) -> None:
    steps = run([answer(n, Outcome.ACCEPTED) for n in ("1", "2", "3")])
    assert released(steps) == []
    assert steps[-1].tally is None


def test_a_rejected_line_releases_every_line_accepted_before_it(answer: Decide) -> None:
    steps = run(
        [
            answer("1", Outcome.ACCEPTED),
            answer("2", Outcome.ACCEPTED),
            answer("3", Outcome.REJECTED),
        ]
    )
    assert released(steps) == ["1", "2"]
    release = steps[-1].releases[0]
    assert (release.sku, release.reason, release.type) == (
        "sku-1",
        "order_incomplete",
        "order_line.cancelled",
    )
    assert [r.reason for r in steps[-1].requests] == [RejectReason.ORDER_INCOMPLETE] * 2


def test_a_line_accepted_after_the_order_failed_is_released_at_once(answer: Decide) -> None:
    steps = run(
        [
            answer("1", Outcome.REJECTED),
            answer("2", Outcome.ACCEPTED),
            answer("3", Outcome.ACCEPTED),
        ]
    )
    assert [len(step.releases) for step in steps] == [0, 1, 1]


def test_repeated_and_duplicate_answers_change_nothing(answer: Decide) -> None:
    steps = run(
        [
            answer("1", Outcome.ACCEPTED),
            answer("1", Outcome.ACCEPTED),
            answer("1", Outcome.DUPLICATE),
            answer("2", Outcome.REJECTED),
        ]
    )
    assert released(steps) == ["1"]


def test_a_replayed_answer_releases_again_so_a_crash_loses_no_release(answer: Decide) -> None:
    first = on_decision(0, None, answer("1", Outcome.ACCEPTED))
    failed = on_decision(1, first.tally, answer("2", Outcome.REJECTED))
    assert [r.line_id for r in failed.releases] == ["1"]
    # The tally reached the changelog, the release did not: Kafka redelivers offset 1.
    replayed = on_decision(1, failed.tally, answer("2", Outcome.REJECTED))
    assert [(r.line_id, r.event_id) for r in replayed.releases] == [
        (r.line_id, r.event_id) for r in failed.releases
    ]
    assert replayed.tally == failed.tally


def test_single_line_orders_and_partial_channels_are_left_alone(answer: Decide) -> None:
    assert released(run([answer("1", Outcome.REJECTED, lines=1)])) == []
    partial = OrderPolicy(frozenset({"partial-room"}))
    steps = run(
        [
            answer("1", Outcome.ACCEPTED, channel="partial-room"),
            answer("2", Outcome.REJECTED, channel="partial-room"),
        ],
        partial,
    )
    assert released(steps) == []


def test_a_release_is_named_after_its_line_short_and_the_same_for_the_platform(
    answer: Decide,
) -> None:
    steps = run([answer("1", Outcome.ACCEPTED), answer("2", Outcome.ACCEPTED)])
    failed = on_decision(9, steps[-1].tally, answer("3", Outcome.REJECTED))
    again = on_decision(10, steps[-1].tally, answer("3", Outcome.REJECTED))

    ids = [release.event_id for release in failed.releases]
    assert ids == [release.event_id for release in again.releases]  # deterministic
    assert ids == [request.event_id for request in failed.requests]
    assert len(set(ids)) == 2
    assert all(event_id.startswith("order_incomplete:") for event_id in ids)
    assert max(len(event_id) for event_id in ids) <= 200
