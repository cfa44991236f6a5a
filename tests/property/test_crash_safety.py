"""Crash safety, the property that matters most: the ledger agent's table after any number
of crashes, each keeping only a prefix of the record/position writes and re-reading from
an offset not yet committed, equals the table of a crash-free run, and no line is ever
answered both ways.

``SessionAgent`` is the agent of live sessions: it runs the whole ``decide()`` and writes
the line's record, the buyer's holding, then the position; ``test_session_properties``
crashes it the same way."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hypothesis import example, given, settings
from hypothesis import strategies as st

from sync_worker.domain.decide import Decided, Policies, decide
from sync_worker.domain.events import (
    AlertRaised,
    OrderLinePlaced,
    SkuEvent,
    StockReceived,
)
from sync_worker.domain.ledger import Step, buyer_slot
from sync_worker.domain.position import SkuPosition
from sync_worker.streaming import state
from tests.property.ledger_logs import POLICY, Agent, Log, Write, line_of, logs

Crash = tuple[int, int, int]
"""(events processed before the crash, writes lost from the tail, seqs re-read before the
first unapplied one)."""
crash_plans = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 6), st.integers(0, 4)), max_size=4
)


@dataclass
class SessionAgent(Agent):
    """The ledger agent of live sessions: ``decide()`` with the buyer holding named by
    ``buyer_slot``, written record first, holding second, position last."""

    policies: Policies = field(default_factory=lambda: Policies(ledger=POLICY))
    alerts: list[tuple[int, AlertRaised]] = field(default_factory=list)
    decided: list[tuple[int, Decided]] = field(default_factory=list)

    def process(self, seq: int, event: SkuEvent) -> Step:
        position_key, record_key = state.position_key(event.sku), state.record_key(event)
        stored_position, stored_record = self.table.get(position_key), self.table.get(record_key)
        position = (
            state.decode_position(stored_position) if stored_position else SkuPosition(event.sku)
        )
        record = state.decode_record(stored_record) if stored_record else None
        slot = buyer_slot(position, record, event)
        buyer_key = state.buyer_key(event.sku, *slot) if slot is not None else None
        stored_buyer = self.table.get(buyer_key) if buyer_key is not None else None
        buyer = state.decode_buyer(stored_buyer) if stored_buyer else None
        decided = decide(seq, position, record, event, self.policies, buyer)
        step = decided.step
        if step.record is not None:
            self._write(Write(seq, record_key, state.encode(step.record), is_position=False))
        if step.buyer is not None:
            assert buyer_key is not None, "a step changed a holding nobody loaded"
            self._write(Write(seq, buyer_key, state.encode(step.buyer), is_position=False))
        self._write(Write(seq, position_key, state.encode(step.position), is_position=True))
        if step.decision is not None:
            self.answers.append((seq, step.decision))
        self.alerts += [(seq, alert) for alert in decided.alerts]
        self.decided.append((seq, decided))
        return step


def crash_free(log: Sequence[SkuEvent], agent: Callable[[], Agent] = Agent) -> Agent:
    crash_free_agent = agent()
    for seq, event in enumerate(log):
        crash_free_agent.process(seq, event)
    return crash_free_agent


def with_crashes(
    log: Sequence[SkuEvent], plan: Sequence[Crash], agent: Callable[[], Agent] = Agent
) -> Agent:
    """``agent()`` processes the log, crashing as ``plan`` says: each crash keeps a prefix
    of the writes and re-reads from an offset at or before the first unapplied event."""
    crashing = agent()
    seq = 0
    for advance, lost, reread in plan:
        stop = min(len(log), seq + advance)
        while seq < stop:
            crashing.process(seq, log[seq])
            seq += 1
        crashing.crash(max(0, len(crashing.writes) - lost))
        seq = max(0, crashing.first_unapplied() - reread)  # an offset not yet committed
    while seq < len(log):
        crashing.process(seq, log[seq])
        seq += 1
    return crashing


def answers_by_line(agent: Agent, log: Sequence[SkuEvent]) -> dict[tuple[str, str], set[object]]:
    """Per line, the answers given, as (outcome, reason), duplicates by their original."""
    answers: dict[tuple[str, str], set[object]] = defaultdict(set)
    for seq, decision in agent.answers:
        event = log[seq]
        assert isinstance(event, OrderLinePlaced)
        outcome = decision.original_outcome or decision.outcome
        answers[line_of(event)].add((outcome, decision.reason))
    return answers


def assert_crashes_change_nothing(
    log: Sequence[SkuEvent], plan: Sequence[Crash], agent: Callable[[], Agent] = Agent
) -> tuple[Agent, Agent]:
    """Returns the crash-free agent and the crashed one, for more checks."""
    expected, crashed = crash_free(log, agent), with_crashes(log, plan, agent)

    assert crashed.table == expected.table
    expected_answers, given_answers = answers_by_line(expected, log), answers_by_line(crashed, log)
    assert given_answers.keys() == expected_answers.keys()
    for line, answers in expected_answers.items():
        assert len(answers) == 1  # a line is never accepted in one answer, rejected in another
        assert given_answers[line] == answers
    answered = {seq for seq, _ in crashed.answers}
    assert answered == {seq for seq, event in enumerate(log) if isinstance(event, OrderLinePlaced)}
    return expected, crashed


def stock_event_delivered_twice() -> Log:
    """The crash falls between the record and position writes of the second delivery."""
    receipt = StockReceived(event_id="r", sku="lipstick", event_time_ms=0, actor="w", quantity=4)
    return Log((receipt,), (receipt, receipt))


@settings(max_examples=500, deadline=None)
@given(logs(redeliver_stock=True), crash_plans)
@example(stock_event_delivered_twice(), [(2, 1, 0)])
def test_crashes_anywhere_leave_the_table_of_a_crash_free_run(log: Log, plan: list[Crash]) -> None:
    assert_crashes_change_nothing(log.delivered, plan)
