"""Crash safety: SIGKILL the worker again and again in the middle of a burst.

The end state must be exactly a replay of the input log: no order lost, none applied
twice, zero oversell. One hot SKU takes most of the burst, because the known faust
failures (lost table updates under read-modify-write of one key with RocksDB,
recovery hangs, duplicates under exactly_once) show up there; many cold SKUs take the
rest. Restarts alternate between the same data dir and a fresh one.

The worker runs at_least_once: faust's exactly_once lost orders and answered placements
twice here (docs/ledger.md). ``CRASH_SEED=<n>`` replays a run's log.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from sync_worker.domain import ledger, replay
from sync_worker.domain.events import OrderLineDecided, Outcome, SkuEvent
from sync_worker.domain.position import SafetyReserve, SkuPosition
from sync_worker.domain.records import HOLDS_STOCK, LineRecord, Record
from sync_worker.streaming import names, state
from sync_worker.streaming.codecs import SkuEventDecoder
from sync_worker.streaming.names import TopicNames
from sync_worker.web.stock import position_view
from tests.integration.support import (
    WorkerProcess,
    encoded,
    event,
    evict_group_members,
    http_get,
)

pytestmark = pytest.mark.integration

# Upper bound on waiting for the worker to finish the log: fails instead of hanging.
PATIENCE_S = 180.0
KILLS = 7
EVENTS_PER_S = 250
BATCH = 25
HOT_SKU = "hot"
EPOCH_MS = 1_750_000_000_000
# The worker_factory config sets the default reserve to 0 percent (and 0 units).
POLICY = ledger.LedgerPolicy(default_reserve=SafetyReserve(units=0, percent=0))


@dataclass(frozen=True)
class LogShape:
    name: str
    events: int
    """Burst events, besides the initial counts and the scheduled late events."""
    cold_skus: int
    hot_share: float
    hot_stock: int


MIXED = LogShape("hot-and-50-skus", events=4000, cold_skus=50, hot_share=0.65, hot_stock=300)
HOT_ONLY = LogShape("hot-only", events=3000, cold_skus=0, hot_share=1.0, hot_stock=300)

Line = tuple[str, str, str, str]
"""An order line as the ledger identifies it: sku, platform, order id, line id."""


def line_of(payload: dict[str, Any] | OrderLineDecided) -> Line:
    if isinstance(payload, OrderLineDecided):
        return (payload.sku, payload.platform, payload.order_id, payload.line_id)
    return (payload["sku"], payload["platform"], payload["order_id"], payload["line_id"])


# --- the ledger replayed without crashes ------------------------------------------------


class ReplayedLedger:
    """The ledger table exactly as the agent keeps it, replayed in one crash-free pass.

    It calls ``replay.apply_at(offset, …)`` like the agent does. In one uninterrupted
    pass every offset is new, so this is ``ledger.apply`` plus the ``seq`` stamps: the
    positions are identical either way, and the stored records match what a worker that
    never crashed would hold.
    """

    def __init__(self) -> None:
        self.positions: dict[str, SkuPosition] = {}
        self.records: dict[bytes, Record] = {}
        self.decisions: list[OrderLineDecided] = []

    def apply(self, seq: int, sku_event: SkuEvent) -> None:
        position = self.positions.get(sku_event.sku, SkuPosition(sku_event.sku))
        record_key = state.record_key(sku_event)
        step = replay.apply_at(seq, position, self.records.get(record_key), sku_event, POLICY).step
        if step.record is not None:
            self.records[record_key] = step.record
        self.positions[sku_event.sku] = step.position
        if step.decision is not None:
            self.decisions.append(step.decision)

    def line(self, record_key: bytes) -> LineRecord | None:
        record = self.records.get(record_key)
        return record if isinstance(record, LineRecord) else None


# --- the seeded event log ---------------------------------------------------------------


def crash_log(seed: int, shape: LogShape) -> list[dict[str, Any]]:
    """A burst of canonical events: counts first, then placements mostly on one hot SKU
    with far more demand than stock, sprinkled with exact redeliveries, payments,
    cancellations (some before the placement), shipments and (duplicated) receipts."""
    writer = _LogWriter(random.Random(seed), shape)
    writer.count_stock()
    for step in range(shape.events):
        writer.emit_due(step)
        writer.step(step)
    writer.emit_due(None)
    return writer.log


@dataclass(frozen=True)
class _Placed:
    payload: dict[str, Any]
    record_key: bytes


@dataclass
class _LogWriter:
    """Replays the log while writing it, so that payments, shipments and cancellations
    name lines the way a platform and a warehouse would (only accepted lines ship)."""

    rng: random.Random
    shape: LogShape
    log: list[dict[str, Any]] = field(default_factory=list)
    placements: list[_Placed] = field(default_factory=list)
    placed_lines: set[Line] = field(default_factory=set)
    due: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    ledger: ReplayedLedger = field(default_factory=ReplayedLedger)
    decoder: SkuEventDecoder = field(default_factory=SkuEventDecoder)
    serial: Iterator[int] = field(default_factory=itertools.count)

    def skus(self) -> list[str]:
        return [HOT_SKU, *(f"sku-{n:02d}" for n in range(self.shape.cold_skus))]

    def count_stock(self) -> None:
        for sku in self.skus():
            quantity = self.shape.hot_stock if sku == HOT_SKU else self.rng.randint(5, 40)
            self.emit(self.stock("stock.counted", sku, quantity=quantity))

    def step(self, step: int) -> None:
        roll = self.rng.random()
        if roll < 0.08:
            self.emit(dict(self.rng.choice(self.log[-8:])))  # a platform retry, soon after
        elif roll < 0.10:
            self.emit(dict(self.rng.choice(self.log)))  # a late redelivery
        elif roll < 0.20 and (line := self.recent_line(HOLDS_STOCK, unpaid=True)):
            self.emit(self.line_event("order_line.paid", line.payload))
        elif roll < 0.27 and (line := self.recent_line(None)):
            reason = self.rng.choice(["buyer_cancelled", "unpaid_timeout"])
            self.emit(self.line_event("order_line.cancelled", line.payload, reason=reason))
        elif roll < 0.29:  # the cancellation overtakes its placement
            placement = self.placement()
            self.emit(self.line_event("order_line.cancelled", placement, reason="platform"))
            self.due[step + self.rng.randint(1, 20)].append(placement)
        elif roll < 0.39 and (line := self.recent_line(HOLDS_STOCK)):
            held = self.ledger.line(line.record_key)
            assert held is not None
            shipped = self.line_event("order_line.shipped", line.payload, quantity=held.quantity)
            self.emit(shipped)
        elif roll < 0.43:
            sku = self.sku()
            receipt = self.stock("stock.received", sku, quantity=self.rng.randint(5, 15))
            self.emit(receipt)
            if self.rng.random() < 0.5:
                self.due[step + self.rng.randint(1, 30)].append(dict(receipt))
        else:
            self.emit(self.placement())

    def emit_due(self, step: int | None) -> None:
        steps = sorted(self.due) if step is None else [step]
        for due in steps:
            for payload in self.due.pop(due, []):
                self.emit(payload)

    def emit(self, payload: dict[str, Any]) -> None:
        sku_event = self.decoder.decode(payload["sku"].encode(), encoded(payload))
        if payload["type"] == "order_line.placed" and line_of(payload) not in self.placed_lines:
            self.placed_lines.add(line_of(payload))
            self.placements.append(_Placed(payload, state.record_key(sku_event)))
        self.ledger.apply(len(self.log), sku_event)
        self.log.append(payload)

    def recent_line(
        self, statuses: frozenset[Any] | None, *, unpaid: bool = False
    ) -> _Placed | None:
        """A line among the last placements, mostly one placed moments ago."""
        recent = self.placements[-30:]
        for placed in self.rng.sample(recent, min(10, len(recent))):
            held = self.ledger.line(placed.record_key)
            if held is None:
                continue
            if statuses is not None and held.status not in statuses:
                continue
            if unpaid and held.paid:
                continue
            return placed
        return None

    def sku(self) -> str:
        if self.shape.cold_skus == 0 or self.rng.random() < self.shape.hot_share:
            return HOT_SKU
        return f"sku-{self.rng.randrange(self.shape.cold_skus):02d}"

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self.serial)}"

    def event_time(self) -> int:
        return EPOCH_MS + 10 * len(self.log)

    def placement(self) -> dict[str, Any]:
        return event(
            "order_line.placed",
            event_id=self.next_id("e"),
            sku=self.sku(),
            event_time_ms=self.event_time(),
            platform=self.rng.choice(["tiktok", "douyin", "kuaishou", "taobao"]),
            channel=f"room-{self.rng.randint(1, 3)}",
            order_id=self.next_id("o"),
            line_id="1",
            quantity=self.rng.randint(1, 3),
            buyer_id=f"b{self.rng.randrange(500)}",
            region=self.rng.choice([None, "CN-31", "CN-44"]),
        )

    def line_event(self, kind: str, placement: dict[str, Any], **fields: Any) -> dict[str, Any]:
        identity = ("sku", "platform", "channel", "order_id", "line_id")
        return event(
            kind,
            event_id=self.next_id("e"),
            event_time_ms=self.event_time(),
            **{name: placement[name] for name in identity},
            **fields,
        )

    def stock(self, kind: str, sku: str, *, quantity: int) -> dict[str, Any]:
        return event(
            kind,
            event_id=self.next_id("s"),
            sku=sku,
            event_time_ms=self.event_time(),
            quantity=quantity,
            actor="warehouse",
        )


# --- Kafka: produce at a pace, read back, watch the group -------------------------------


async def produce_paced(bootstrap: str, topic: str, log: list[dict[str, Any]]) -> None:
    """Send the log in order, ``BATCH`` events at a time, at about ``EVENTS_PER_S``."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        started = time.monotonic()
        for first in range(0, len(log), BATCH):
            sent = [
                await producer.send(topic, key=payload["sku"].encode(), value=encoded(payload))
                for payload in log[first : first + BATCH]
            ]
            await asyncio.gather(*sent)
            ahead = started + (first + BATCH) / EVENTS_PER_S - time.monotonic()
            await asyncio.sleep(max(0.0, ahead))
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed message of ``topic``, partition by partition, in offset order."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        partitions = await partitions_of(bootstrap, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        by_partition: dict[int, list[ConsumerRecord[bytes, bytes]]] = defaultdict(list)
        async with asyncio.timeout(PATIENCE_S):
            while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
                batches = await consumer.getmany(timeout_ms=500)
                for tp, records in batches.items():
                    by_partition[tp.partition].extend(records)
    finally:
        await consumer.stop()
    return [record for n in sorted(by_partition) for record in by_partition[n]]


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    assert partitions, f"topic {topic} has no partitions: {described}"
    return sorted(partitions)


async def consumer_lag(bootstrap: str, group_id: str, topic: str) -> dict[int, int]:
    """Per partition of ``topic``: messages beyond the group's committed offset."""
    partitions = await partitions_of(bootstrap, topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        end = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group_id, partitions=partitions)
    finally:
        await consumer.stop()
        await admin.close()
    return {
        tp.partition: end[tp] - max(0, committed[tp].offset if tp in committed else 0)
        for tp in partitions
    }


def ledger_group(app_id: str) -> str:
    """The consumer group that reads the SKU events: the ledger's, beside faust's."""
    return f"{app_id}-{names.LEDGER_GROUP}"


async def wait_until_consumed(
    bootstrap: str,
    app_id: str,
    topic: str,
    worker: WorkerProcess,
    diagnose: Callable[[], str] = str,
) -> None:
    """Until the ledger's committed offsets reach the end of every input partition."""
    deadline = time.monotonic() + PATIENCE_S
    while any((lag := await consumer_lag(bootstrap, ledger_group(app_id), topic)).values()):
        assert worker.process is not None
        if worker.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"worker never caught up (lag {lag}); {diagnose()}\n{worker.log_tail()}")
        await asyncio.sleep(0.5)


async def replay_input(bootstrap: str, topic: str) -> tuple[ReplayedLedger, int]:
    """The input log read back and replayed the way the agent applies it."""
    decoder, replayed = SkuEventDecoder(), ReplayedLedger()
    records = await read_topic(bootstrap, topic)
    for record in records:
        replayed.apply(record.offset, decoder.decode(record.key, record.value))
    return replayed, len(records)


# --- crashing ---------------------------------------------------------------------------


@dataclass
class CrashRun:
    """The worker running now, and how long each restart took to be ready again."""

    worker: WorkerProcess
    recoveries: list[tuple[str, float]] = field(default_factory=list)


async def kill(worker: WorkerProcess, bootstrap: str, app_id: str) -> None:
    await asyncio.to_thread(worker.stop, signal.SIGKILL)
    # Its ghost members would hold the groups until their session timeout.
    for group_id in (app_id, ledger_group(app_id)):
        await evict_group_members(bootstrap, group_id)


async def crash_repeatedly(
    run: CrashRun,
    next_worker: Callable[[], WorkerProcess],
    rng: random.Random,
    bootstrap: str,
    group_id: str,
) -> None:
    """``KILLS`` times: let the worker run 0.5-3 s, SIGKILL it, start another on the
    same data dir or on a fresh one (each at least three times, in a seeded order)."""
    restarts = ["same-dir"] * (KILLS - KILLS // 2) + ["fresh-dir"] * (KILLS // 2)
    rng.shuffle(restarts)
    for restart in restarts:
        await asyncio.sleep(rng.uniform(0.5, 3.0))
        await kill(run.worker, bootstrap, group_id)
        if restart == "fresh-dir":
            run.worker = next_worker()
        started = time.monotonic()
        await asyncio.to_thread(run.worker.start)
        run.recoveries.append((restart, round(time.monotonic() - started, 1)))


# --- checks -----------------------------------------------------------------------------


def views(worker: WorkerProcess, skus: list[str]) -> dict[str, dict[str, Any]]:
    """``GET /skus/{sku}`` for each SKU; the status alone when it is not 200."""
    shown = {}
    for sku in skus:
        status, body = http_get(f"{worker.url}/skus/{sku}")
        shown[sku] = orjson.loads(body) if status == 200 else {"status": status}
    return shown


def state_mismatches(
    shown: dict[str, dict[str, Any]], expected: ReplayedLedger
) -> dict[str, dict[str, tuple[Any, Any]]]:
    """Per SKU, each field where the worker (first) differs from the replay (second)."""
    mismatches = {}
    for sku, position in expected.positions.items():
        want, got = position_view(position), shown[sku]
        if got != want:
            keys = sorted(set(want) | set(got))
            mismatches[sku] = {
                k: (got.get(k), want.get(k)) for k in keys if got.get(k) != want.get(k)
            }
    return mismatches


def broken_invariants(shown: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """SKUs whose committed units are negative or exceed what can be sold (oversell)."""
    broken = {}
    for sku, view in shown.items():
        if "committed" not in view:
            continue
        sellable_at_most = view["on_hand"] - view["safety_reserve"] - view["unavailable"]
        if not 0 <= view["committed"] <= sellable_at_most:
            broken[sku] = view
    return broken


@dataclass(frozen=True)
class AnswerReport:
    problems: list[str]
    repeated: int
    """Lines whose (same) first answer was given more than once."""
    answers: int


def answer_report(decided: list[dict[str, Any]], expected: ReplayedLedger) -> AnswerReport:
    """Each line's answers on the decisions topic against the replay's: every placement
    answered, the line's answer (accepted or rejected) never contradicted. Re-reading
    from the last committed offset, a restarted worker gives answers again (the same
    ones, see ``domain.replay``): ``repeated`` counts the lines it happened to."""
    wanted: dict[Line, tuple[str, str | None]] = {}
    deliveries: Counter[Line] = Counter()
    for decision in expected.decisions:
        line = line_of(decision)
        deliveries[line] += 1
        if decision.outcome is not Outcome.DUPLICATE:
            wanted[line] = (decision.outcome.value, decision.reason and decision.reason.value)
    answered: dict[Line, list[dict[str, Any]]] = defaultdict(list)
    for answer in decided:
        answered[line_of(answer)].append(answer)
    problems = [f"answered, never placed: {line}" for line in set(answered) - set(wanted)]
    repeated = 0
    for line, (outcome, reason) in wanted.items():
        answers = answered[line]
        firsts = [(a["outcome"], a["reason"]) for a in answers if a["outcome"] != "duplicate"]
        originals = {a["original_outcome"] for a in answers if a["outcome"] == "duplicate"}
        repeated += len(firsts) > 1
        if len(answers) < deliveries[line]:
            problems.append(f"{line}: {len(answers)} answers to {deliveries[line]} placements")
        if set(firsts) != {(outcome, reason)} or originals - {outcome}:
            problems.append(f"{line}: answered {answers}, the replay answers {outcome} {reason}")
    return AnswerReport(problems, repeated, len(decided))


# --- the tests --------------------------------------------------------------------------


@pytest.fixture
def crash_seed() -> int:
    """``CRASH_SEED=<n>`` replays a run's log and kill schedule; otherwise a new seed."""
    seed = int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"reproduce with CRASH_SEED={seed}")
    return seed


@pytest.mark.parametrize("shape", [MIXED, HOT_ONLY], ids=lambda shape: shape.name)
async def test_sigkill_mid_burst_leaves_exactly_the_replayed_state(
    shape: LogShape,
    crash_seed: int,
    worker_factory: Callable[..., WorkerProcess],
    kafka_bootstrap: str,
    topics: TopicNames,
    run_id: str,
) -> None:
    log = crash_log(crash_seed, shape)

    def next_worker() -> WorkerProcess:
        return worker_factory()

    run = CrashRun(next_worker())
    await asyncio.to_thread(run.worker.start)
    producing = asyncio.create_task(produce_paced(kafka_bootstrap, topics.sku_events, log))
    try:
        rng = random.Random(f"kills-{crash_seed}")
        await crash_repeatedly(run, next_worker, rng, kafka_bootstrap, run_id)
        await producing
    finally:
        producing.cancel()
        print(f"restarts (kind, seconds until ready): {run.recoveries}")
    expected, events = await replay_input(kafka_bootstrap, topics.sku_events)
    assert events == len(log)
    skus = sorted(expected.positions)

    def diagnose() -> str:
        mismatches = state_mismatches(views(run.worker, skus), expected)
        return f"the worker's state differs from the replay in {mismatches or 'nothing'}"

    await wait_until_consumed(kafka_bootstrap, run_id, topics.sku_events, run.worker, diagnose)
    shown = views(run.worker, skus)
    assert state_mismatches(shown, expected) == {}, f"CRASH_SEED={crash_seed}"
    assert broken_invariants(shown) == {}, f"CRASH_SEED={crash_seed}"

    decided = [orjson.loads(r.value) for r in await read_topic(kafka_bootstrap, topics.decisions)]
    report = answer_report(decided, expected)
    print(
        f"{report.answers} answers to {len(expected.decisions)} placements; "
        f"{report.repeated} lines answered again after a crash"
    )
    assert report.problems == [], f"CRASH_SEED={crash_seed}"

    # Last, the changelog alone must hold exactly that state.
    await kill(run.worker, kafka_bootstrap, run_id)
    run.worker = next_worker()
    await asyncio.to_thread(run.worker.start)
    recovered = views(run.worker, skus)
    assert state_mismatches(recovered, expected) == {}, f"CRASH_SEED={crash_seed}"


async def wait_for_version(worker: WorkerProcess, sku: str, version: int) -> None:
    """Until the worker's own table (committed to Kafka or not) shows ``version``."""
    async with asyncio.timeout(PATIENCE_S):
        while True:
            if views(worker, [sku])[sku].get("version", 0) >= version:
                return
            await asyncio.sleep(0.05)


async def crash_before_commit(
    worker: WorkerProcess,
    bootstrap: str,
    topics: TopicNames,
    app_id: str,
    events_for: Callable[[str], list[dict[str, Any]]],
    version: int,
) -> str:
    """Counts 10 units of a few SKUs and lets the worker commit; then, one SKU at a time,
    sends ``events_for(sku)``, waits until the worker's table shows ``version`` and SIGKILLs
    the worker if the group has not committed those events yet (the ledger commits once a
    second; when a commit slips in first, the next SKU is tried). Returns that SKU."""
    skus = [f"A{attempt}" for attempt in range(5)]
    counts = [event("stock.counted", event_id=f"c-{sku}", sku=sku, quantity=10) for sku in skus]
    await produce_paced(bootstrap, topics.sku_events, counts)
    await wait_until_consumed(bootstrap, app_id, topics.sku_events, worker)
    for sku in skus:
        await produce_paced(bootstrap, topics.sku_events, events_for(sku))
        await wait_for_version(worker, sku, version)
        lag = await consumer_lag(bootstrap, ledger_group(app_id), topics.sku_events)
        if any(lag.values()):
            await kill(worker, bootstrap, app_id)
            return sku
    pytest.fail("every attempt was committed before the kill: the scenario never ran")


def placed_then_cancelled(sku: str) -> list[dict[str, Any]]:
    return [
        event("order_line.placed", event_id=f"p-{sku}", sku=sku, quantity=3),
        event("order_line.cancelled", event_id=f"x-{sku}", sku=sku, reason="buyer_cancelled"),
    ]


async def test_restart_on_its_own_data_dir_keeps_what_was_applied_just_before_sigkill(
    worker_factory: Callable[..., WorkerProcess],
    kafka_bootstrap: str,
    topics: TopicNames,
    run_id: str,
) -> None:
    """An order and its cancellation are applied, the worker dies before committing them,
    and the next worker starts on the same data dir: both must count exactly once.
    (faust's exactly_once failed exactly this; it is why we do not offer it.)"""
    worker = worker_factory()
    await asyncio.to_thread(worker.start)
    sku = await crash_before_commit(
        worker, kafka_bootstrap, topics, run_id, placed_then_cancelled, version=3
    )
    await asyncio.to_thread(worker.start)
    await wait_until_consumed(kafka_bootstrap, run_id, topics.sku_events, worker)

    view = views(worker, [sku])[sku]
    assert (view["on_hand"], view["committed"], view["sellable"], view["version"]) == (
        10,
        0,
        10,
        3,
    )


async def commit_at_end(bootstrap: str, group_id: str, topic: str) -> None:
    """Commits the group's offsets at the end of every partition of ``topic``, as a
    commit that reached the broker before the state writes of its events would."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = await partitions_of(bootstrap, topic)
        consumer.assign(partitions)
        await consumer.commit(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


@pytest.mark.parametrize("restart", ["same-dir", "fresh-dir"])
async def test_input_committed_ahead_of_the_table_is_read_again(
    restart: str,
    worker_factory: Callable[..., WorkerProcess],
    kafka_bootstrap: str,
    topics: TopicNames,
    run_id: str,
) -> None:
    """Orders whose offsets the group committed but whose effects the state never got
    (here: committed while no worker ran) are decided once the next worker starts: it
    resumes from the last offset its state applied, not from the group's commit."""
    worker = worker_factory()
    await asyncio.to_thread(worker.start)
    counted = event("stock.counted", event_id="c-R", sku="R", quantity=10)
    await produce_paced(kafka_bootstrap, topics.sku_events, [counted])
    await wait_until_consumed(kafka_bootstrap, run_id, topics.sku_events, worker)
    await kill(worker, kafka_bootstrap, run_id)

    placed = [
        event("order_line.placed", event_id=f"p-{n}", sku="R", order_id=f"o{n}", quantity=1)
        for n in range(3)
    ]
    await produce_paced(kafka_bootstrap, topics.sku_events, placed)
    await commit_at_end(kafka_bootstrap, ledger_group(run_id), topics.sku_events)
    if restart == "fresh-dir":
        worker = worker_factory()
    await asyncio.to_thread(worker.start)

    await wait_for_version(worker, "R", version=1 + len(placed))
    view = views(worker, ["R"])["R"]
    assert (view["on_hand"], view["committed"], view["sellable"]) == (10, 3, 7)
    decided = [orjson.loads(r.value) for r in await read_topic(kafka_bootstrap, topics.decisions)]
    assert sorted(d["order_id"] for d in decided if d["outcome"] == "accepted") == [
        "o0",
        "o1",
        "o2",
    ]


async def test_a_backlog_never_committed_is_read_from_its_beginning_after_restarts(
    worker_factory: Callable[..., WorkerProcess],
    kafka_bootstrap: str,
    topics: TopicNames,
    run_id: str,
) -> None:
    """A group that has committed nothing yet, and workers killed one after another: when
    faust read this input, each start fetched the backlog during the rebalance and
    dropped it, and its seek to the committed offset (there was none) left the partition
    where that fetch stopped, so those events were never decided (docs/ledger.md)."""
    counted = [
        event("stock.counted", event_id=f"c-{n}", sku=f"S{n}", quantity=1000) for n in range(20)
    ]
    placed = [
        event(
            "order_line.placed", event_id=f"p-{n}", sku=f"S{n % 20}", order_id=f"o{n}", quantity=1
        )
        for n in range(2000)
    ]
    for start in range(4):  # the first creates the topics; each is killed at once
        worker = worker_factory()
        await asyncio.to_thread(worker.start)
        await kill(worker, kafka_bootstrap, run_id)
        if start == 0:
            await produce_paced(kafka_bootstrap, topics.sku_events, counted + placed)
    worker = worker_factory()
    await asyncio.to_thread(worker.start)
    await wait_until_consumed(kafka_bootstrap, run_id, topics.sku_events, worker)
    shown = views(worker, [f"S{n}" for n in range(20)])
    assert {sku: view["committed"] for sku, view in shown.items()} == {
        f"S{n}": 100 for n in range(20)
    }
