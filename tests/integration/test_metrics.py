"""The worker's /metrics against the real broker: what one worker owns, then two sharing
the partitions, where every SKU's and partition's series must sit on its owner only.

Two simulated rooms receive the pushes; orders go through the rooms first (they take
the units off display, as platforms do) and then to stockcast. Nothing waits for a
fixed time: each step polls until the state it needs shows, within a hang guard.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client.parser import text_string_to_metric_families

from connectors.simulator.rooms import LiveRoom
from connectors.simulator.server import create_app, start_server
from sync_worker.streaming.names import TopicNames
from tests.integration.support import WorkerProcess, encoded, event, http_get, produce

pytestmark = pytest.mark.integration

PARTITIONS = 4
ROOMS = {"room-a": "tiktok", "room-b": "douyin"}
HANG_GUARD_S = 120.0
"""A bound on waiting for what must happen, not a speed requirement."""
DAY_MS = 86_400_000


def partition_of(sku: str) -> int:
    """Where the test's producer (aiokafka's default partitioner) puts the SKU's events."""
    every = list(range(PARTITIONS))
    partition: int = DefaultPartitioner()(sku.encode(), every, every)
    return partition


def one_sku_per_partition(prefix: str) -> list[str]:
    """SKU names, one in each partition, so whichever partitions move some SKU moves."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < PARTITIONS:
        found.setdefault(partition_of(f"{prefix}-{n}"), f"{prefix}-{n}")
        n += 1
    return [found[p] for p in range(PARTITIONS)]


WATCHED = one_sku_per_partition("hero")
HOT = "flash-deal"
WARM = "warm-seller"
QUIET = one_sku_per_partition("quiet")
STOCKED = [*WATCHED, HOT, WARM, *QUIET]


@dataclass(frozen=True)
class Scrape:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def get(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def labelled(self, name: str, label: str) -> set[str]:
        """The values ``label`` takes among the series of ``name``."""
        return {dict(labels)[label] for sample, labels in self.samples if sample == name}

    def lag_partitions(self, topic: str) -> set[int]:
        return {
            int(dict(labels)["partition"])
            for name, labels in self.samples
            if name == "stockcast_consumer_lag_records" and dict(labels)["topic"] == topic
        }


def parse(body: bytes) -> Scrape:
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }
    return Scrape(samples)


async def scrape(worker: WorkerProcess) -> Scrape:
    status, body = await asyncio.to_thread(http_get, f"{worker.url}/metrics")
    assert status == 200, worker.log_tail()
    return parse(body)


Check = Callable[[list[Scrape]], str]
"""What is not there yet in the workers' scrapes; empty once all is."""


async def until(workers: Iterable[WorkerProcess], check: Check) -> list[Scrape]:
    """Scrape ``workers`` until ``check`` finds nothing missing; those scrapes."""
    workers = list(workers)
    deadline = time.monotonic() + HANG_GUARD_S
    while True:
        scrapes = [await scrape(worker) for worker in workers]
        if not (missing := check(scrapes)):
            return scrapes
        if time.monotonic() > deadline:
            pytest.fail(f"metrics never settled: {missing}\n{workers[-1].log_tail(20)}")
        await asyncio.sleep(0.2)


def shown(rooms: dict[str, LiveRoom], channel: str) -> int:
    return sum(rooms[channel].displayed(sku) for sku in STOCKED)


def settled(rooms: dict[str, LiveRoom], topics: TopicNames) -> Check:
    """Every worker caught up, the rooms show exactly the quotas the workers sum up, and
    all four partitions of each input topic are held by exactly one worker."""
    inputs = (topics.sku_events, topics.order_decisions, topics.stock_levels)

    def check(scrapes: list[Scrape]) -> str:
        for topic in inputs:
            held = [s.lag_partitions(topic) for s in scrapes]
            if sorted(p for partitions in held for p in partitions) != list(range(PARTITIONS)):
                return f"lag series of {topic}: {held}"
            for s, partitions in zip(scrapes, held, strict=True):
                assigned = s.get("stockcast_assigned_partitions", topic=topic)
                if assigned != len(partitions):
                    return f"{topic}: {assigned} assigned, lag series of {partitions}"
        lags = {
            labels: value
            for s in scrapes
            for (name, labels), value in s.samples.items()
            if name == "stockcast_consumer_lag_records" and value
        }
        if lags:
            return f"lagging: {lags}"
        rebalancing = [s.get("stockcast_worker_rebalancing") for s in scrapes]
        if any(rebalancing):
            return f"rebalancing: {rebalancing}"
        for channel in ROOMS:
            quota = sum(
                s.get("stockcast_channel_quota_units", channel=channel) or 0 for s in scrapes
            )
            if not quota == shown(rooms, channel) > 0:
                return f"{channel}: quotas {quota}, shown {shown(rooms, channel)}"
        return ""

    return check


class RebalanceWatch:
    """Scrapes a worker as fast as it answers, on a thread, and remembers whether
    ``stockcast_worker_rebalancing`` was ever 1."""

    def __init__(self, worker: WorkerProcess) -> None:
        self.seen: set[float] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(worker.url,), daemon=True)
        self._thread.start()

    def _watch(self, url: str) -> None:
        while not self._stop.is_set():
            status, body = http_get(f"{url}/metrics")
            if status == 200:
                value = parse(body).get("stockcast_worker_rebalancing")
                if value is not None:
                    self.seen.add(value)
            self._stop.wait(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


async def sell(rooms: dict[str, LiveRoom], topic: str, bootstrap: str) -> dict[str, int]:
    """Orders through the rooms: HOT the most, WARM once, one from an unknown room.
    Returns the order lines placed per channel label."""
    messages, placed = [], {"room-a": 0, "room-b": 0, "other": 0}
    orders = [(HOT, "room-a")] * 3 + [(HOT, "room-b")] * 2 + [(WARM, "room-b")]
    for n, (sku, channel) in enumerate(orders):
        assert rooms[channel].try_order(sku, 1)
        line = event(
            "order_line.placed",
            event_id=f"order-{n}",
            sku=sku,
            platform=ROOMS[channel],
            channel=channel,
            order_id=f"order-{n}",
            quantity=1,
        )
        messages.append((sku.encode(), encoded(line)))
        placed[channel] += 1
    typo = event(
        "order_line.placed", event_id="typo", sku=QUIET[0], channel="room-typo", quantity=1
    )
    messages.append((QUIET[0].encode(), encoded(typo)))
    placed["other"] += 1
    await produce(bootstrap, topic, messages)
    return placed


async def test_each_worker_shows_what_it_owns_and_nothing_of_what_it_handed_over(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str, topics: TopicNames
) -> None:
    rooms = {channel: LiveRoom(channel, platform) for channel, platform in ROOMS.items()}
    async with await start_server(create_app(rooms)) as server:
        channels = "".join(
            f'\n[[channels]]\nname = "{channel}"\nconnector = "simulator"\n'
            f'options = {{ base_url = "{server.url}" }}\n'
            for channel in rooms
        )
        allowlist = ", ".join(f'"{sku}"' for sku in WATCHED)
        config = (
            f'\n[allocation]\npolicy = "fixed_ratio"\n'
            f"\n[metrics]\nsku_allowlist = [{allowlist}]\ntop_skus = 1\n{channels}"
        )
        first = worker_factory(config)
        await asyncio.to_thread(first.start)

        # Stock counted a day ago: push latency must count from the decision, not from it.
        counted_at = int(time.time() * 1000) - DAY_MS
        counts = [
            (
                sku.encode(),
                encoded(
                    event(
                        "stock.counted",
                        event_id=f"count-{sku}",
                        sku=sku,
                        quantity=20,
                        event_time_ms=counted_at,
                    )
                ),
            )
            for sku in STOCKED
        ]
        await produce(kafka_bootstrap, topics.sku_events, counts)
        await until([first], settled(rooms, topics))
        placed = await sell(rooms, topics.sku_events, kafka_bootstrap)

        def sold(scrapes: list[Scrape]) -> str:
            received = {
                channel: scrapes[0].get("stockcast_order_lines_received_total", channel=channel)
                for channel in placed
            }
            if received != placed:
                return f"received {received}"
            return settled(rooms, topics)(scrapes)

        [alone] = await until([first], sold)

        assert alone.get("stockcast_assigned_partitions", topic=topics.sku_events) == PARTITIONS
        assert alone.labelled("stockcast_sku_sellable_units", "sku") == {*WATCHED, HOT}
        for sku in (*WATCHED, HOT):
            sellable = 20 - (5 if sku == HOT else 0)
            assert alone.get("stockcast_sku_sellable_units", sku=sku) == sellable
            for channel, room in rooms.items():
                quota = alone.get("stockcast_sku_quota_units", sku=sku, channel=channel)
                assert quota == room.displayed(sku)
        latency_count = alone.get("stockcast_push_latency_seconds_count", connector="simulator")
        latency_sum = alone.get("stockcast_push_latency_seconds_sum", connector="simulator")
        assert latency_count
        assert latency_sum is not None
        assert latency_sum / latency_count < DAY_MS / 1000
        # Known at start, so at 0 rather than missing; and the process's own metrics.
        errors = "stockcast_connector_errors_total"
        assert alone.get(errors, connector="simulator", kind="contract") == 0
        assert alone.get("stockcast_dead_letters_total", reason="push_failed") == 0
        assert alone.get("stockcast_connector_circuit_open", channel="room-a") == 0
        assert alone.get("stockcast_connector_writes_in_flight", channel="room-a") is not None
        assert (alone.get("process_cpu_seconds_total") or 0) > 0
        assert (alone.get("process_resident_memory_bytes") or 0) > 0
        assert alone.labelled("python_info", "implementation")

        watch = RebalanceWatch(first)
        second = worker_factory(config)
        try:
            await asyncio.to_thread(second.start)
            scrapes = await until([first, second], settled(rooms, topics))
        finally:
            watch.stop()
        assert 1.0 in watch.seen  # the first worker said so while it rebalanced

    for scrape_ in scrapes:
        owned = scrape_.lag_partitions(topics.sku_events)
        assert 0 < len(owned) < PARTITIONS
        expected = {sku for sku in WATCHED if partition_of(sku) in owned}
        # Only the first worker saw HOT and WARM sell (the second never heats them); its
        # one top slot goes to WARM once HOT's partition was handed over.
        if scrape_ is scrapes[0]:
            hottest = [sku for sku in (HOT, WARM) if partition_of(sku) in owned][:1]
            expected.update(hottest)
        assert scrape_.labelled("stockcast_sku_sellable_units", "sku") == expected
        assert scrape_.labelled("stockcast_sku_quota_units", "sku") == expected
        # The publisher pushes the SKUs whose events this worker decides.
        assert scrape_.lag_partitions(topics.stock_levels) == owned
    assert scrapes[1].get("stockcast_order_lines_received_total", channel="room-a") == 0
