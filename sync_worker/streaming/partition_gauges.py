"""What this worker holds of its input topics: assigned partitions, lag, rebalancing.

Once a second, for every partition of the input topics (those faust's agents read)
assigned to this worker::

    stockcast_consumer_lag_records{topic,partition} = highwater - position

The position is the offset after the last message every stream finished with (a
faust sensor sees each one go out); until one is finished after a rebalance, it is
where faust sought to, the group's committed offset, or the start of the log when
the group never committed there. The highwater is the one the consumer last fetched.
Inputs read beside faust (the ledger's SKU events, the publisher's feed) report their
own partitions and lag. Series of partitions no longer assigned are removed at the next
refresh.

``stockcast_worker_rebalancing`` is read at scrape time: 1 from the moment faust's or
the ledger's partitions are revoked until the new ones are assigned and their state
rebuilt.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import faust
import mode
from faust.exceptions import ConsumerNotStarted
from faust.types import TP, AppT, Message

from sync_worker.metrics import Metrics

log = logging.getLogger(__name__)

REFRESH_S = 1.0


class FinishedOffsets(faust.Sensor):
    """The offset of the last message every stream finished with, per partition, since
    the last rebalance (faust seeks back to the committed offsets in one)."""

    def __init__(self) -> None:
        super().__init__()
        self.last: dict[TP, int] = {}

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        self.last[tp] = offset

    def on_rebalance_start(self, app: AppT) -> dict[Any, Any]:
        self.last.clear()  # called on the consumer's thread; a dict's clear is atomic
        return super().on_rebalance_start(app)

    def on_rebalance_end(self, app: AppT, state: dict[Any, Any]) -> None:
        self.last.clear()  # messages finished before the seek back are read again
        super().on_rebalance_end(app, state)


class Feed(Protocol):
    """An input read beside faust by a plain consumer (the ledger, the publisher's feed)."""

    topic: str

    def partitions(self) -> set[tuple[str, int]]: ...

    async def lags(self) -> dict[tuple[str, int], int]: ...


class PartitionGauges(mode.Service):
    def __init__(
        self,
        app: faust.App,
        topics: Iterable[str],
        metrics: Metrics,
        rebalancing: Callable[[], bool],
        feeds: Iterable[Feed] = (),
    ) -> None:
        """``topics``: the input topics faust's agents read, whose partitions are counted
        and whose lag is measured (changelogs and faust's own topics are not); ``feeds``:
        the inputs read beside faust, counted and measured likewise. ``rebalancing`` is
        read at scrape time."""
        super().__init__()
        self._app, self._metrics = app, metrics
        self._topics = tuple(topics)
        self._feeds = tuple(feeds)
        self._finished = FinishedOffsets()
        app.sensors.add(self._finished)
        metrics.worker_rebalancing.set_function(lambda: 1.0 if rebalancing() else 0.0)
        for topic in (*self._topics, *(feed.topic for feed in self._feeds)):
            metrics.assigned_partitions.labels(topic).set(0)
        self._labelled: set[tuple[str, int]] = set()

    async def on_start(self) -> None:
        self.add_future(self._refreshing())

    async def _refreshing(self) -> None:
        while not self.should_stop:
            try:
                await self.refresh()
            except Exception:  # a consumer mid-rebalance: the next round reads again
                log.debug("could not read the consumer's partitions", exc_info=True)
            await asyncio.sleep(REFRESH_S)

    async def refresh(self) -> None:
        assigned = self._assignment()
        counts = Counter(tp.topic for tp in assigned)
        for topic in self._topics:
            self._metrics.assigned_partitions.labels(topic).set(counts[topic])
        highwaters = {tp: hw for tp in assigned if (hw := self._highwater(tp)) is not None}
        positions = await self._positions(highwaters)
        lags = {
            (tp.topic, tp.partition): max(0, hw - positions[tp]) for tp, hw in highwaters.items()
        }
        for feed in self._feeds:
            self._metrics.assigned_partitions.labels(feed.topic).set(len(feed.partitions()))
            lags |= await feed.lags()
        for (topic, partition), lag in lags.items():
            self._metrics.consumer_lag.labels(topic, str(partition)).set(lag)
        for topic, partition in self._labelled - set(lags):
            self._metrics.consumer_lag.remove(topic, str(partition))
        self._labelled = set(lags)

    def _assignment(self) -> set[TP]:
        if not self._app.started or self._app.should_stop:
            return set()
        try:
            assigned = self._app.consumer.assignment()
        except ConsumerNotStarted:
            return set()
        return {tp for tp in assigned if tp.topic in self._topics}

    def _highwater(self, tp: TP) -> int | None:
        try:
            highwater: int | None = self._app.consumer.highwater(tp)
        except (AssertionError, ConsumerNotStarted):  # revoked since the assignment was read
            return None
        return highwater

    async def _positions(self, highwaters: Mapping[TP, int]) -> dict[TP, int]:
        """The next offset this worker will process in each partition."""
        committed: Mapping[TP, int | None] = getattr(self._app.consumer, "_committed_offset", {})
        positions: dict[TP, int] = {}
        unknown = []
        for tp, highwater in highwaters.items():
            if (finished := self._finished.last.get(tp)) is not None:
                positions[tp] = finished + 1
            elif (offset := committed.get(tp)) is not None:
                positions[tp] = offset
            elif highwater == 0:
                positions[tp] = 0  # nothing was ever written there
            else:
                unknown.append(tp)
        if unknown:  # never committed: the group starts at the start of the log
            earliest = await self._app.consumer.earliest_offsets(*unknown)
            positions |= {tp: earliest.get(tp, 0) for tp in unknown}
        return positions
