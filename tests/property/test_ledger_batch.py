"""The ledger agent's batches (``decide_batch``): one position write per SKU per batch
must give what one event at a time gives, and stay as crash-safe.

The reference is ``SessionAgent`` of ``test_crash_safety``: record, holding, position,
per event. Here the same logs are cut into batches of any sizes; a crash keeps any prefix
of the batch writes and re-reads from an offset at or before the first event whose
effects the surviving position does not hold, as an uncommitted Kafka offset would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from sync_worker.domain.decide import Decided, Policies
from sync_worker.domain.events import SkuEvent, StockLevelChanged
from sync_worker.streaming import state
from sync_worker.streaming.ledger_batch import decide_batch, newest_levels
from tests.property.ledger_logs import POLICY
from tests.property.test_crash_safety import SessionAgent, crash_free
from tests.property.test_session_properties import SKU, session_logs

SETTINGS = settings(max_examples=300, deadline=None)


@dataclass
class RecordingTable:
    """A byte table that remembers the order of its writes, so a crash can cut them."""

    table: dict[bytes, bytes] = field(default_factory=dict)
    writes: list[tuple[bytes, bytes]] = field(default_factory=list)

    def get(self, key: bytes) -> bytes | None:
        return self.table.get(key)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes.append((key, value))
        self.table[key] = value

    def crash(self, keep: int) -> None:
        self.writes = self.writes[:keep]
        self.table = dict(self.writes)

    def first_unapplied(self) -> int:
        stored = self.table.get(state.position_key(SKU))
        return 0 if stored is None else state.decode_position(stored).seq + 1


@dataclass
class BatchAgent:
    table: RecordingTable = field(default_factory=RecordingTable)
    decided: list[tuple[int, Decided]] = field(default_factory=list)
    levels: list[StockLevelChanged] = field(default_factory=list)
    """The stock levels published: each batch's newest per SKU."""
    policies: Policies = field(default_factory=lambda: Policies(ledger=POLICY))

    def process(self, items: Sequence[tuple[int, SkuEvent]]) -> None:
        batch = decide_batch(self.table, items, self.policies)
        for (seq, _), stepped in zip(items, batch, strict=True):
            self.decided.append((seq, stepped.decided))
        self.levels += newest_levels(batch)


def newest_known(levels: Sequence[StockLevelChanged]) -> dict[str, StockLevelChanged]:
    """What a consumer keeping each SKU's highest version knows after reading ``levels``."""
    known: dict[str, StockLevelChanged] = {}
    for level in levels:
        if level.sku not in known or level.version > known[level.sku].version:
            known[level.sku] = level
    return known


def batches(log: Sequence[SkuEvent], start: int, sizes: Sequence[int]) -> list[list[int]]:
    """Offsets ``start..`` cut by ``sizes`` (cycled), the last batch taking the rest."""
    cuts, seq, n = [], start, 0
    while seq < len(log):
        size = sizes[n % len(sizes)] if sizes else len(log)
        cuts.append(list(range(seq, min(len(log), seq + size))))
        seq, n = seq + size, n + 1
    return cuts


def answers(decided: Sequence[tuple[int, Decided]]) -> dict[int, tuple[object, object]]:
    """Per offset, the last answer given, duplicates by their original."""
    given_: dict[int, tuple[object, object]] = {}
    for seq, one in decided:
        if one.step.decision is not None:
            decision = one.step.decision
            given_[seq] = (decision.original_outcome or decision.outcome, decision.reason)
    return given_


sizes_ = st.lists(st.integers(1, 8), min_size=1, max_size=4)


@SETTINGS
@given(session_logs(), sizes_)
def test_batches_give_the_decisions_and_table_of_one_event_at_a_time(
    log: tuple[SkuEvent, ...], sizes: list[int]
) -> None:
    expected = crash_free(log, SessionAgent)
    assert isinstance(expected, SessionAgent)
    batched = BatchAgent()
    for cut in batches(log, 0, sizes):
        batched.process([(seq, log[seq]) for seq in cut])

    assert batched.table.table == expected.table
    assert [(seq, d.step.decision) for seq, d in batched.decided] == [
        (seq, d.step.decision) for seq, d in expected.decided
    ]
    assert [d.alerts for _, d in batched.decided] == [d.alerts for _, d in expected.decided]
    # One level per SKU and batch tells a consumer what every level would have.
    every_level = [d.step.level for _, d in expected.decided if d.step.level is not None]
    assert newest_known(batched.levels) == newest_known(every_level)
    assert len(batched.levels) <= len(batches(log, 0, sizes))


@SETTINGS
@given(
    session_logs(),
    sizes_,
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 12), st.integers(0, 3)), max_size=3),
)
def test_a_crash_anywhere_inside_a_batch_changes_nothing(
    log: tuple[SkuEvent, ...], sizes: list[int], plan: list[tuple[int, int, int]]
) -> None:
    """Each crash: ``advance`` batches processed, ``lost`` writes cut from the tail, the
    log re-read from ``reread`` offsets before the first unapplied event."""
    expected = crash_free(log, SessionAgent)
    assert isinstance(expected, SessionAgent)
    agent, seq = BatchAgent(), 0
    for advance, lost, reread in plan:
        for cut in batches(log, seq, sizes)[:advance]:
            agent.process([(offset, log[offset]) for offset in cut])
            seq = cut[-1] + 1
        agent.table.crash(max(0, len(agent.table.writes) - lost))
        seq = max(0, min(seq, agent.table.first_unapplied()) - reread)
    for cut in batches(log, seq, sizes):
        agent.process([(offset, log[offset]) for offset in cut])

    assert agent.table.table == expected.table
    # Every offset answered, each the way the crash-free run answered it.
    assert answers(agent.decided) == answers(expected.decided)
    assert {alert for _, d in agent.decided for alert in d.alerts} == {
        alert for _, d in expected.decided for alert in d.alerts
    }
    every_level = [d.step.level for _, d in expected.decided if d.step.level is not None]
    assert newest_known(agent.levels) == newest_known(every_level)
