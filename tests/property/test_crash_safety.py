"""Crash safety, the property that matters most: the ledger agent's table after any number
of crashes, each keeping only a prefix of the record/position writes and re-reading from
an offset not yet committed, equals the table of a crash-free run, and no line is ever
answered both ways."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from hypothesis import example, given, settings
from hypothesis import strategies as st

from sync_worker.domain.events import (
    OrderLinePlaced,
    SkuEvent,
    StockReceived,
)
from tests.property.ledger_logs import Agent, Log, line_of, logs

Crash = tuple[int, int, int]
"""(events processed before the crash, writes lost from the tail, seqs re-read before the
first unapplied one)."""
crash_plans = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 6), st.integers(0, 4)), max_size=4
)


def crash_free(log: Sequence[SkuEvent]) -> Agent:
    agent = Agent()
    for seq, event in enumerate(log):
        agent.process(seq, event)
    return agent


def with_crashes(log: Sequence[SkuEvent], plan: Sequence[Crash]) -> Agent:
    agent = Agent()
    seq = 0
    for advance, lost, reread in plan:
        stop = min(len(log), seq + advance)
        while seq < stop:
            agent.process(seq, log[seq])
            seq += 1
        agent.crash(max(0, len(agent.writes) - lost))
        seq = max(0, agent.first_unapplied() - reread)  # an offset not yet committed
    while seq < len(log):
        agent.process(seq, log[seq])
        seq += 1
    return agent


def answers_by_line(agent: Agent, log: Sequence[SkuEvent]) -> dict[tuple[str, str], set[object]]:
    """Per line, the answers given, as (outcome, reason), duplicates by their original."""
    answers: dict[tuple[str, str], set[object]] = defaultdict(set)
    for seq, decision in agent.answers:
        event = log[seq]
        assert isinstance(event, OrderLinePlaced)
        outcome = decision.original_outcome or decision.outcome
        answers[line_of(event)].add((outcome, decision.reason))
    return answers


def assert_crashes_change_nothing(log: Sequence[SkuEvent], plan: Sequence[Crash]) -> None:
    expected, crashed = crash_free(log), with_crashes(log, plan)

    assert crashed.table == expected.table
    expected_answers, given_answers = answers_by_line(expected, log), answers_by_line(crashed, log)
    assert given_answers.keys() == expected_answers.keys()
    for line, answers in expected_answers.items():
        assert len(answers) == 1  # a line is never accepted in one answer, rejected in another
        assert given_answers[line] == answers
    answered = {seq for seq, _ in crashed.answers}
    assert answered == {seq for seq, event in enumerate(log) if isinstance(event, OrderLinePlaced)}


def stock_event_delivered_twice() -> Log:
    """The crash falls between the record and position writes of the second delivery."""
    receipt = StockReceived(event_id="r", sku="lipstick", event_time_ms=0, actor="w", quantity=4)
    return Log((receipt,), (receipt, receipt))


@settings(max_examples=500, deadline=None)
@given(logs(redeliver_stock=True), crash_plans)
@example(stock_event_delivered_twice(), [(2, 1, 0)])
def test_crashes_anywhere_leave_the_table_of_a_crash_free_run(log: Log, plan: list[Crash]) -> None:
    assert_crashes_change_nothing(log.delivered, plan)
