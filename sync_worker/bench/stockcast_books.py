"""One run of the ``stockcast`` bench system: the ``Decider`` over the worker's books.

Its SKUs are ``<prefix><sku>``, a prefix new for each run, so each run starts on books
holding nothing but its stock. ``decide`` produces each line as an
``order_line.placed`` whose ``event_id`` is the order id, so a re-sent order id is the
very same event delivered again (a platform redelivering), which the ledger answers
``duplicate``; the decision of every placement, duplicates included, is read back
from the decisions topic and matched to its request by SKU and event id, in order.

``units_left`` is read from the worker's published stock levels (the newest version of
each SKU, once it covers every decision made). ``push_latencies`` times each quota
change of the room that a line caused (its ``cause_event_id``), from the line's
``sent_at`` to the arrival in the room of the first write carrying that version.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import deque
from collections.abc import Mapping, Sequence

import orjson

from sync_worker.bench.latency import Latencies
from sync_worker.bench.stockcast_link import KafkaLink
from sync_worker.bench.stockcast_processes import StockcastError
from sync_worker.bench.system import Decider
from sync_worker.bench.workloads import CHANNEL, OrderLine
from sync_worker.domain.events import (
    OrderLineDecided,
    Outcome,
    RejectReason,
    StockLevelChanged,
    StockReceived,
    type_name,
)
from sync_worker.streaming import codecs

DECISION_TIMEOUT_S = 60.0
"""How long a request may wait for its decisions before the bench gives up."""
_LEVEL = type_name(StockLevelChanged)


class StockcastBooks(Decider):
    """One run's view of the worker's books: its SKUs are ``prefix + sku``."""

    def __init__(self, link: KafkaLink, prefix: str, stock: Mapping[str, int]) -> None:
        self._link = link
        self._prefix = prefix
        self._stock = dict(stock)
        self._pending: dict[tuple[str, str], deque[asyncio.Future[OrderLineDecided]]] = {}
        self._decided: dict[str, int] = {}
        """SKU -> the newest position version a decision was taken against."""
        self._levels: dict[str, tuple[int, int]] = {}
        """SKU -> (version, sellable) of its newest stock level."""
        self._sent_at: dict[str, float] = {}
        """Event id -> when its line was first sent."""
        self._changes: dict[str, list[tuple[int, str]]] = {}
        """SKU -> (version, cause event id) of the room's quota changes, in version order."""
        self._writes: dict[str, list[tuple[int, float]]] = {}
        """SKU -> (newest version carried, arrival) of the room's writes, in arrival order."""
        self._landed: dict[str, int] = {}
        """SKU -> the newest version a write brought to the room."""
        self._unlanded: set[str] = set()
        """SKUs whose newest quota change has not reached the room yet."""

    def skus(self) -> list[str]:
        return [self._prefix + sku for sku in self._stock]

    # --- the Decider --------------------------------------------------------------------

    async def decide(self, lines: Sequence[OrderLine], sent_at: float) -> Sequence[Outcome]:
        loop = asyncio.get_running_loop()
        now_ms = int(time.time() * 1000)
        answers: list[asyncio.Future[OrderLineDecided]] = []
        deliveries = []
        for line in lines:
            sku = self._prefix + line.sku
            answer: asyncio.Future[OrderLineDecided] = loop.create_future()
            self._pending.setdefault((sku, line.order_id), deque()).append(answer)
            answers.append(answer)
            if line.order_id not in self._sent_at:  # not a redelivery: a buyer ordered
                self._sent_at[line.order_id] = sent_at
                self._link.room.sell(sku, line.qty)
            placed = line.placed(event_id=line.order_id, sku=sku, event_time_ms=now_ms)
            deliveries.append(await self._link.send(sku, placed))
        try:
            async with asyncio.timeout(DECISION_TIMEOUT_S):
                await asyncio.gather(*deliveries)
                decided = await asyncio.gather(*answers)
        except TimeoutError:
            waiting = sum(not answer.done() for answer in answers)
            raise self._link.explain(
                f"{waiting} of {len(lines)} order lines got no decision within "
                f"{DECISION_TIMEOUT_S:.0f}s"
            ) from None
        return [decision.outcome for decision in decided]

    async def units_left(self) -> Mapping[str, int]:
        behind = {sku for sku, version in self._decided.items() if self._level(sku) < version}

        def caught_up() -> bool:
            behind.difference_update(
                [sku for sku in behind if self._level(sku) >= self._decided[sku]]
            )
            return not behind

        await self._link.until(
            caught_up,
            lambda: f"the stock levels of {len(behind)} SKUs lag behind their decisions",
        )
        await self._settle()
        return {sku: self._levels.get(self._prefix + sku, (0, 0))[1] for sku in self._stock}

    def push_latencies(self) -> Latencies | None:
        latencies = Latencies()
        for sku, changes in self._changes.items():
            landed: list[int] = []  # the newest version landed by each write, rising
            arrivals: list[float] = []
            for version, at in self._writes.get(sku, ()):
                landed.append(max(version, landed[-1]) if landed else version)
                arrivals.append(at)
            for version, cause in changes:
                sent_at = self._sent_at.get(cause)
                first = bisect.bisect_left(landed, version)
                if sent_at is not None and first < len(landed):
                    latencies.record(arrivals[first] - sent_at)
        return latencies

    # --- preparing ----------------------------------------------------------------------

    async def receive_stock(self) -> None:
        """Send the stock and wait until the worker applied it and pushed the counts."""
        now_ms = int(time.time() * 1000)
        deliveries = []
        for sku, units in self._stock.items():
            if units > 0:
                named = self._prefix + sku
                receipt = StockReceived(
                    event_id=f"{named}-stock", sku=named, event_time_ms=now_ms, actor="bench",
                    quantity=units,
                )  # fmt: skip
                deliveries.append(await self._link.send(named, receipt))
        await asyncio.gather(*deliveries)
        missing = {self._prefix + sku for sku, units in self._stock.items() if units > 0}

        def received() -> bool:
            missing.difference_update([sku for sku in missing if sku in self._levels])
            return not missing

        await self._link.until(
            received,
            lambda: (
                f"the worker applied the stock of {len(self._stock) - len(missing)} of "
                f"{len(self._stock)} SKUs"
            ),
        )
        await self._settle()

    async def _settle(self) -> None:
        """Read everything published so far, then wait until its pushes reached the room."""
        await self._link.read_up_to_now()
        await self._link.until(
            lambda: not self._unlanded,
            lambda: f"the counts of {len(self._unlanded)} SKUs did not reach the room",
        )
        if self._link.room.unreadable_keys:
            raise StockcastError(
                f"the room could not read the version of the publisher's writes "
                f"(idempotency key {self._link.room.unreadable_keys[0]!r}): update stockcast_room"
            )

    # --- what the link hands over -------------------------------------------------------

    def owns(self, sku: str) -> bool:
        return sku.startswith(self._prefix)

    def on_decision(self, decision: OrderLineDecided) -> None:
        key = (decision.sku, decision.event_id)
        waiting = self._pending.get(key)
        if not waiting:
            return
        answer = waiting.popleft()
        if not waiting:
            del self._pending[key]
        if decision.position_version > self._decided.get(decision.sku, -1):
            self._decided[decision.sku] = decision.position_version
        if answer.done():
            return
        if decision.reason is RejectReason.UNKNOWN_SKU:
            # Every SKU of the run was stocked, and its stock applied, before the run.
            answer.set_exception(
                self._link.explain(
                    f"the worker answered {decision.order_id} unknown_sku although it had "
                    f"applied the stock of {decision.sku}: it decided against empty books"
                )
            )
        else:
            answer.set_result(decision)

    def on_stock_level(self, sku: str, raw: bytes) -> None:
        fields = orjson.loads(raw)
        if fields.get("type") == _LEVEL:
            if fields["version"] > self._level(sku):
                self._levels[sku] = (fields["version"], fields["sellable"])
            return
        change = codecs.decode_quota(raw)
        if change is None or change.channel != CHANNEL:
            return
        self._changes.setdefault(sku, []).append((change.version, change.cause_event_id))
        if self._landed.get(sku, -1) < change.version:
            self._unlanded.add(sku)

    def on_room_write(self, sku: str, version: int, at: float) -> None:
        self._writes.setdefault(sku, []).append((version, at))
        landed = self._landed[sku] = max(version, self._landed.get(sku, -1))
        changes = self._changes.get(sku)
        if changes and landed >= changes[-1][0]:
            self._unlanded.discard(sku)

    def fail(self, error: StockcastError) -> None:
        for waiting in self._pending.values():
            for answer in waiting:
                if not answer.done():
                    answer.set_exception(error)
        self._pending.clear()

    def abandon(self) -> None:
        """The run is over: nobody waits for what is still pending."""
        for waiting in self._pending.values():
            for answer in waiting:
                answer.cancel()
        self._pending.clear()

    def _level(self, sku: str) -> int:
        return self._levels.get(sku, (-1, 0))[0]
