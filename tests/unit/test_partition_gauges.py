"""How the lag is reckoned from what faust's consumer and the inputs read beside it know.

The worker's real consumer is exercised against the broker in
tests/integration/test_metrics.py; here each source of the position is pinned: the
last message the streams finished, else the committed offset, else the log's start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from faust.exceptions import ConsumerNotStarted
from faust.types import TP

from sync_worker.metrics import Metrics
from sync_worker.streaming.partition_gauges import PartitionGauges

EVENTS, LEVELS, CHANGELOG = "sku-events", "stock-levels", "ledger-changelog"


@dataclass
class StandInConsumer:
    assigned: set[TP] = field(default_factory=set)
    highwaters: dict[TP, int | None] = field(default_factory=dict)
    _committed_offset: dict[TP, int | None] = field(default_factory=dict)
    log_start: dict[TP, int] = field(default_factory=dict)
    started: bool = True

    def assignment(self) -> set[TP]:
        if not self.started:
            raise ConsumerNotStarted("not yet")
        return set(self.assigned)

    def highwater(self, tp: TP) -> int | None:
        assert tp in self.assigned, "Partition is not assigned"
        return self.highwaters.get(tp)

    async def earliest_offsets(self, *tps: TP) -> Mapping[TP, int]:
        return {tp: self.log_start.get(tp, 0) for tp in tps}


@dataclass
class Sensors:
    added: list[Any] = field(default_factory=list)

    def add(self, sensor: Any) -> None:
        self.added.append(sensor)


@dataclass
class StandInApp:
    consumer: StandInConsumer = field(default_factory=StandInConsumer)
    sensors: Sensors = field(default_factory=Sensors)
    rebalancing: bool = False
    started: bool = True
    should_stop: bool = False


@dataclass
class Rig:
    app: StandInApp
    gauges: PartitionGauges
    metrics: Metrics

    def lag(self, topic: str, partition: int) -> float | None:
        labels = {"topic": topic, "partition": str(partition)}
        return self.metrics.registry.get_sample_value("stockcast_consumer_lag_records", labels)

    def assigned(self, topic: str) -> float | None:
        labels = {"topic": topic}
        return self.metrics.registry.get_sample_value("stockcast_assigned_partitions", labels)

    def finish(self, tp: TP, offset: int) -> None:
        """The streams finished the message at ``offset``."""
        self.gauges._finished.on_message_out(tp, offset, cast(Any, None))


def rig() -> Rig:
    app, metrics = StandInApp(), Metrics.create()
    gauges = PartitionGauges(cast(Any, app), (EVENTS, LEVELS), metrics, lambda: app.rebalancing)
    return Rig(app, gauges, metrics)


def assign(r: Rig, *tps: TP, highwater: int) -> None:
    r.app.consumer.assigned.update(tps)
    r.app.consumer.highwaters.update(dict.fromkeys(tps, highwater))


async def test_every_input_topic_starts_with_no_partitions_and_a_sensor_is_added() -> None:
    r = rig()

    await r.gauges.refresh()

    assert (r.assigned(EVENTS), r.assigned(LEVELS)) == (0, 0)
    assert r.app.sensors.added == [r.gauges._finished]


async def test_assigned_partitions_are_counted_per_input_topic_only() -> None:
    r = rig()
    assign(r, TP(EVENTS, 0), TP(EVENTS, 3), TP(LEVELS, 3), TP(CHANGELOG, 1), highwater=0)

    await r.gauges.refresh()

    assert (r.assigned(EVENTS), r.assigned(LEVELS)) == (2, 1)
    assert (
        r.metrics.registry.get_sample_value("stockcast_assigned_partitions", {"topic": CHANGELOG})
        is None
    )
    assert r.lag(CHANGELOG, 1) is None


async def test_lag_counts_from_the_last_message_the_streams_finished() -> None:
    r = rig()
    tp = TP(EVENTS, 0)
    assign(r, tp, highwater=100)
    r.app.consumer._committed_offset[tp] = 40
    r.finish(tp, 89)

    await r.gauges.refresh()

    assert r.lag(EVENTS, 0) == 10  # 90..99 are left


async def test_before_any_message_is_finished_lag_counts_from_the_committed_offset() -> None:
    r = rig()
    tp = TP(EVENTS, 1)
    assign(r, tp, highwater=100)
    r.app.consumer._committed_offset[tp] = 40

    await r.gauges.refresh()

    assert r.lag(EVENTS, 1) == 60


async def test_a_group_that_never_committed_counts_from_the_start_of_the_log() -> None:
    r = rig()
    empty, trimmed = TP(EVENTS, 2), TP(EVENTS, 3)
    assign(r, empty, highwater=0)
    assign(r, trimmed, highwater=100)
    r.app.consumer.log_start[trimmed] = 30  # retention deleted the first 30

    await r.gauges.refresh()

    assert (r.lag(EVENTS, 2), r.lag(EVENTS, 3)) == (0, 70)


async def test_a_rebalance_forgets_the_finished_offsets_faust_seeks_back_from() -> None:
    r = rig()
    tp = TP(EVENTS, 0)
    assign(r, tp, highwater=100)
    r.app.consumer._committed_offset[tp] = 50
    r.finish(tp, 99)
    state = r.gauges._finished.on_rebalance_start(cast(Any, r.app))
    r.gauges._finished.on_rebalance_end(cast(Any, r.app), state)

    await r.gauges.refresh()

    assert r.lag(EVENTS, 0) == 50


async def test_the_series_of_a_revoked_partition_is_removed() -> None:
    r = rig()
    kept, revoked = TP(EVENTS, 0), TP(EVENTS, 1)
    assign(r, kept, revoked, highwater=0)
    await r.gauges.refresh()
    assert (r.lag(EVENTS, 0), r.lag(EVENTS, 1)) == (0, 0)

    r.app.consumer.assigned.discard(revoked)
    await r.gauges.refresh()

    assert (r.lag(EVENTS, 0), r.lag(EVENTS, 1)) == (0, None)
    assert r.assigned(EVENTS) == 1


async def test_a_partition_whose_highwater_is_not_known_yet_has_no_lag_series() -> None:
    r = rig()
    r.app.consumer.assigned.add(TP(EVENTS, 0))

    await r.gauges.refresh()

    assert r.lag(EVENTS, 0) is None
    assert r.assigned(EVENTS) == 1


async def test_a_consumer_not_started_holds_nothing() -> None:
    r = rig()
    assign(r, TP(EVENTS, 0), highwater=5)
    r.app.consumer.started = False

    await r.gauges.refresh()

    assert r.assigned(EVENTS) == 0
    assert r.lag(EVENTS, 0) is None


def test_rebalancing_is_read_at_each_scrape() -> None:
    r = rig()
    value = "stockcast_worker_rebalancing"

    assert r.metrics.registry.get_sample_value(value) == 0
    r.app.rebalancing = True
    assert r.metrics.registry.get_sample_value(value) == 1
    r.app.rebalancing = False
    assert r.metrics.registry.get_sample_value(value) == 0


@dataclass
class StandInFeed:
    """An input read beside faust, reporting its own partitions and lag."""

    topic: str
    lagging: dict[tuple[str, int], int] = field(default_factory=dict)

    def partitions(self) -> set[tuple[str, int]]:
        return set(self.lagging)

    async def lags(self) -> dict[tuple[str, int], int]:
        return dict(self.lagging)


async def test_inputs_read_beside_faust_report_their_partitions_and_lag() -> None:
    app, metrics = StandInApp(), Metrics.create()
    ledger, feed = StandInFeed("ledger-input"), StandInFeed("feed-input")
    gauges = PartitionGauges(
        cast(Any, app), (EVENTS,), metrics, lambda: False, feeds=(ledger, feed)
    )
    r = Rig(app, gauges, metrics)
    await gauges.refresh()
    assert (r.assigned("ledger-input"), r.assigned("feed-input")) == (0, 0)

    ledger.lagging = {("ledger-input", 0): 7, ("ledger-input", 2): 0}
    feed.lagging = {("feed-input", 0): 3}
    await gauges.refresh()
    assert (r.assigned("ledger-input"), r.assigned("feed-input")) == (2, 1)
    assert (r.lag("ledger-input", 0), r.lag("ledger-input", 2), r.lag("feed-input", 0)) == (7, 0, 3)

    ledger.lagging = {("ledger-input", 2): 1}  # partition 0 handed over
    await gauges.refresh()
    assert (r.lag("ledger-input", 0), r.lag("ledger-input", 2)) == (None, 1)
