"""Pushes quota changes to every channel as deltas, so no write undoes a sale in flight.

Platforms sell on their own and stockcast hears of it later, so a channel's count is
changed by a delta, never set outright (unless its connector declares that safe). Per
(channel, SKU) one write is in flight at a time and changes apply in version order.
Increases queued behind it coalesce into one write; a reduction is always written alone,
because the allocator holds its units until the publisher reports, as a
``ReclaimSettled``, how many the platform really took off display. A retry resends the
very same write (same idempotency key), so it can never apply twice; a write that keeps
failing stays first in its SKU's line and is tried again later; after
``max_deferrals`` such rounds it goes to the dead-letter topic with the reason (a reduction
is then settled as 0 removed, the safe side). Each channel writes no faster than its rate
limit, and a platform whose call quota is spent pauses only its own channel (the circuit)
until the quota resets. Slow platforms delay only their own channel, never the ledger.

Metrics: every failed attempt counts in ``stockcast_connector_errors_total`` by the kind
of error the connector raised, every attempt made again in
``stockcast_connector_retries_total``; a write that lands is timed from the ledger's
decision (when the worker produced the oldest change it carries) to the platform's
acknowledgement, retries and waits included.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from aiolimiter import AsyncLimiter
from tenacity import RetryCallState

from connectors.base import (
    Connector,
    ConnectorError,
    PushResult,
    QuotaExhausted,
    RateLimited,
    Rejected,
    StockUpdate,
    WriteMode,
    choose_write_mode,
)
from sync_worker.domain.events import ChannelObserved, ReclaimSettled, StockQuotaChanged
from sync_worker.metrics import Metrics
from sync_worker.retrying import platform_retrying

log = logging.getLogger(__name__)

OnSettled = Callable[[ReclaimSettled], Awaitable[None]]
"""Receives the outcome of every quota reduction; the allocator holds its units until then."""
OnObserved = Callable[[ChannelObserved], Awaitable[None]]
"""Receives read-backs that show a channel above its quota, for the allocator to judge."""
OnDeadLetter = Callable[[StockUpdate, str], Awaitable[None]]
"""Receives a write given up on, with the last error (free of secrets, by contract)."""
Decided = float
"""Wall-clock seconds when the ledger decided a change (push latency counts from here)."""

RETRY_LATER_S: Final = 5.0
"""Pause before a write that failed every attempt is tried again."""
READ_BACK_S: Final = 30.0
"""How often each channel's counts are read back and compared with its quotas."""
READ_BACK_BATCH: Final = 100
MAX_DEFERRALS: Final = 12
"""Rounds of failed attempts before a write is dead-lettered (about a minute by default)."""
WRITES_IN_FLIGHT: Final = 8
"""Writes in flight per channel, each for another SKU: one at a time, a channel's many
SKUs would wait a round trip each behind one another."""
SETTLED_BY: Final = "publisher"


def error_kind(error: BaseException) -> str:
    """The ``kind`` label of a failed attempt: the SDK error it raised, ``contract`` for
    anything outside the SDK's error tree. Another ``ConnectorError`` is retried later
    like a transient one, and is counted as one."""
    match error:
        case QuotaExhausted():
            return "quota_exhausted"
        case RateLimited():
            return "rate_limited"
        case Rejected():
            return "rejected"
        case ConnectorError():
            return "transient"
    return "contract"


def _limiter(writes_per_s: float) -> AsyncLimiter:
    """A leaky bucket: a burst of one second's worth, or of one write below 1/s."""
    if writes_per_s >= 1:
        return AsyncLimiter(writes_per_s, 1.0)
    return AsyncLimiter(1, 1 / writes_per_s)


@dataclass(eq=False)
class _Channel:
    name: str
    connector: Connector
    mode: WriteMode
    queued: dict[str, deque[tuple[StockQuotaChanged, Decided]]] = field(default_factory=dict)
    newest: dict[str, int] = field(default_factory=dict)
    """The highest version offered per SKU: anything not above it is a redelivery."""
    quota: dict[str, int] = field(default_factory=dict)
    """The quota of that newest change: what the channel shows once it lands."""
    parked: dict[str, tuple[StockUpdate, Decided]] = field(default_factory=dict)
    """A write that failed every attempt: resent as is, before anything newer of its SKU."""
    deferred: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    ready: dict[str, None] = field(default_factory=dict)
    """SKUs with something to write, oldest first (a dict as an ordered set)."""
    writing: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    """The write in flight per SKU."""
    writes_in_flight: int = WRITES_IN_FLIGHT
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    limiter: AsyncLimiter | None = None
    deferrals: dict[str, int] = field(default_factory=dict)
    """Rounds the parked write of a SKU has failed so far."""
    paused_until: float = 0.0
    """Loop time until which the platform's quota is spent (the circuit is open)."""

    def schedule(self, sku: str) -> None:
        if sku not in self.deferred and sku not in self.writing:
            self.ready[sku] = None
            self.wake.set()

    def park(self, update: StockUpdate, decided: Decided, delay_s: float) -> None:
        """Hold a failed write back for ``delay_s``, then send it again before anything else
        of its SKU; the other SKUs go on meanwhile."""
        self.parked[update.sku] = (update, decided)
        self.ready.pop(update.sku, None)
        self.deferred[update.sku] = asyncio.get_running_loop().call_later(
            delay_s, self.undefer, update.sku
        )

    def undefer(self, sku: str) -> None:
        del self.deferred[sku]
        self.schedule(sku)

    def next_write(self, sku: str) -> tuple[StockUpdate, Decided] | None:
        """The parked write, else the next queued change, with the increases right
        behind it merged in when it is an increase; None when there is nothing to send.
        Comes with when its oldest change was decided."""
        parked = self.parked.pop(sku, None)
        if parked is not None:
            return parked
        queue = self.queued.get(sku)
        if not queue:
            return None
        first, decided = queue.popleft()
        last = first
        delta = first.delta
        while delta >= 0 and queue and queue[0][0].delta >= 0:
            last, _ = queue.popleft()
            delta += last.delta
        if not queue:
            del self.queued[sku]
        if delta == 0:
            return None  # the count the platform shows is already right
        update = StockUpdate(
            channel=self.name,
            sku=sku,
            quantity=last.quota,
            delta=delta,
            version=last.version,
            event_time_ms=last.event_time_ms,
            idempotency_key=f"{self.name}:{sku}:{first.version}-{last.version}",
        )
        return update, decided


class Publisher:
    """Writes quota changes to channels. ``offer`` never blocks the caller.

    Each channel's write mode is the safest its connector declares (``choose_write_mode``);
    a connector that declares none is refused here, at construction.
    """

    def __init__(
        self,
        channels: Sequence[tuple[str, Connector]],
        metrics: Metrics,
        on_settled: OnSettled,
        *,
        on_dead_letter: OnDeadLetter | None = None,
        on_observed: OnObserved | None = None,
        read_back_s: float = READ_BACK_S,
        writes_per_s: Mapping[str, float] = MappingProxyType({}),
        retry_later_s: float = RETRY_LATER_S,
        max_deferrals: int = MAX_DEFERRALS,
        writes_in_flight: Mapping[str, int] = MappingProxyType({}),
    ) -> None:
        """``writes_per_s`` caps a channel's write rate (a leaky bucket that allows a
        burst of one second's worth); channels not named write as fast as answers come.
        ``writes_in_flight``: per channel, each for another SKU (default
        ``WRITES_IN_FLIGHT``)."""
        self._channels = {
            name: _Channel(
                name,
                connector,
                choose_write_mode(connector.write_modes),
                limiter=_limiter(writes_per_s[name]) if name in writes_per_s else None,
                writes_in_flight=writes_in_flight.get(name, WRITES_IN_FLIGHT),
            )
            for name, connector in channels
        }
        if len(self._channels) != len(channels):
            raise ValueError("each channel may be listed only once")
        if unknown := (set(writes_per_s) | set(writes_in_flight)) - set(self._channels):
            raise ValueError(f"settings for unknown channels: {sorted(unknown)}")
        if crowded := {name for name, most in writes_in_flight.items() if most < 1}:
            raise ValueError(f"writes_in_flight must be at least 1: {sorted(crowded)}")
        self._metrics = metrics
        metrics.prime_connectors((name, c.connector.platform) for name, c in self._channels.items())
        self._on_settled = on_settled
        self._on_dead_letter = on_dead_letter
        self._on_observed = on_observed
        self._read_back_s = read_back_s
        self._retry_later_s = retry_later_s
        self._max_deferrals = max_deferrals
        self._tasks: list[asyncio.Task[None]] = []

    def write_mode(self, channel: str) -> WriteMode:
        """The mode the channel's writes use."""
        return self._channels[channel].mode

    def offer(self, change: StockQuotaChanged, decided: Decided | None = None) -> None:
        """Queue a change; one for a channel this publisher does not serve is ignored.
        ``decided`` is when the ledger decided it, in wall-clock seconds (the worker
        passes its record's Kafka timestamp); now, if not given."""
        channel = self._channels.get(change.channel)
        if channel is None:
            return
        platform = channel.connector.platform
        if change.version <= channel.newest.get(change.sku, 0):
            self._metrics.quota_changes.labels(platform, "duplicate").inc()
            return
        channel.newest[change.sku] = change.version
        channel.quota[change.sku] = change.quota
        when = time.time() if decided is None else decided
        channel.queued.setdefault(change.sku, deque()).append((change, when))
        channel.schedule(change.sku)
        self._metrics.quota_changes.labels(platform, "queued").inc()

    async def start(self) -> None:
        for channel in self._channels.values():
            await channel.connector.start()
            self._tasks.append(asyncio.create_task(self._drain(channel), name=channel.name))
            if self._on_observed is not None:
                read_back = self._read_back(channel, self._on_observed)
                self._tasks.append(asyncio.create_task(read_back))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for channel in self._channels.values():
            for timer in channel.deferred.values():
                timer.cancel()
            channel.deferred.clear()
            await channel.connector.close()

    async def _drain(self, channel: _Channel) -> None:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(channel.writes_in_flight)
        try:
            while True:
                await channel.wake.wait()
                channel.wake.clear()
                while channel.ready:
                    await slots.acquire()
                    # After the slot: a write that freed it may just have opened the circuit.
                    if channel.paused_until:  # open until the platform's quota resets
                        if (closed_in := channel.paused_until - loop.time()) > 0:
                            await asyncio.sleep(closed_in)
                        channel.paused_until = 0.0
                        self._metrics.circuit_open.labels(channel.name).set(0)
                    if not channel.ready:  # taken by a park meanwhile
                        slots.release()
                        break
                    sku = next(iter(channel.ready))
                    del channel.ready[sku]
                    write = channel.next_write(sku)
                    if write is None:  # moved nothing: what waits behind it goes next
                        slots.release()
                        if sku in channel.queued:
                            channel.schedule(sku)
                        continue
                    writing = self._write_one(channel, sku, *write, slots)
                    channel.writing[sku] = asyncio.create_task(writing)
                    self._metrics.writes_in_flight.labels(channel.name).set(len(channel.writing))
        finally:
            writes = list(channel.writing.values())
            for task in writes:
                task.cancel()
            await asyncio.gather(*writes, return_exceptions=True)

    async def _write_one(
        self,
        channel: _Channel,
        sku: str,
        update: StockUpdate,
        decided: Decided,
        slots: asyncio.Semaphore,
    ) -> None:
        """One write of ``sku``; then its next, behind the other SKUs already waiting."""
        try:
            await self._write(channel, update, decided)
        finally:
            del channel.writing[sku]
            self._metrics.writes_in_flight.labels(channel.name).set(len(channel.writing))
            slots.release()
            if sku in channel.queued or sku in channel.parked:
                channel.schedule(sku)

    async def _push(self, channel: _Channel, update: StockUpdate) -> PushResult:
        """One attempt, within the channel's rate limit; a failed one is counted by kind."""
        platform = channel.connector.platform
        if channel.limiter is not None:
            started = time.monotonic()
            await channel.limiter.acquire()
            self._metrics.rate_limit_waits.labels(platform).inc(time.monotonic() - started)
        try:
            return await channel.connector.push_stock(update, channel.mode)
        except Exception as error:
            self._metrics.connector_errors.labels(platform, error_kind(error)).inc()
            raise

    async def _read_back(self, channel: _Channel, report: OnObserved) -> None:
        """Read the counts of every SKU pushed to the channel, and report those above their
        quota. Safe beside the writes: a count read while a reduction is on its way is
        still within what the allocator counts the channel as holding. A round that fails
        is logged and the next one comes as usual; none runs while the circuit is open."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._read_back_s)
            if channel.paused_until > loop.time():
                continue
            try:
                await self._read_back_round(channel, report)
            except ConnectorError as error:
                log.warning("read-back of %s failed, next round: %s", channel.name, error)
            except Exception:
                log.exception("read-back of %s failed, next round", channel.name)

    async def _read_back_round(self, channel: _Channel, report: OnObserved) -> None:
        skus = list(channel.quota)
        for start in range(0, len(skus), READ_BACK_BATCH):
            if channel.limiter is not None:
                await channel.limiter.acquire()
            batch = skus[start : start + READ_BACK_BATCH]
            shown = await channel.connector.read_stock(channel.name, batch)
            for sku, displayed in shown.items():
                if displayed > channel.quota.get(sku, displayed):
                    self._metrics.drift_repairs.labels(channel.connector.platform).inc()
                    await report(
                        ChannelObserved(
                            event_id=f"observed:{channel.name}:{sku}:{time.time_ns()}",
                            sku=sku,
                            event_time_ms=int(time.time() * 1000),
                            actor=SETTLED_BY,
                            channel=channel.name,
                            displayed=displayed,
                        )
                    )

    def _before_retry(self, state: RetryCallState) -> None:
        """Counts the retry, and its wait when the platform asked for it."""
        platform = state.args[0].connector.platform  # _push(channel, update)
        self._metrics.connector_retries.labels(platform).inc()
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited):
            self._metrics.rate_limit_waits.labels(platform).inc(state.upcoming_sleep)

    async def _write(self, channel: _Channel, update: StockUpdate, decided: Decided) -> None:
        platform = channel.connector.platform
        retrying = platform_retrying(before_sleep=self._before_retry)
        try:
            result: PushResult = await retrying(self._push, channel, update)
        except QuotaExhausted as error:
            # Retrying before the reset only burns the next quota: open the circuit.
            log.warning("%s: platform quota spent, pausing writes: %s", channel.name, error)
            channel.paused_until = asyncio.get_running_loop().time() + error.reset_after
            self._metrics.circuit_open.labels(channel.name).set(1)
            self._metrics.pushes.labels(platform, "deferred").inc()
            channel.park(update, decided, error.reset_after)
            return
        except Rejected as error:
            channel.deferrals.pop(update.sku, None)
            self._metrics.pushes.labels(platform, "rejected").inc()
            log.warning(
                "%s refused %s v%d for good: %s", channel.name, update.sku, update.version, error
            )
            if update.delta < 0:
                await self._settle(channel, update, applied=0)
            return
        except ConnectorError as error:
            log.warning("write to %s failed: %s", channel.name, error)
            await self._defer(channel, update, decided, str(error))
            return
        except Exception as error:
            # A connector breaking its contract must neither stop its channel nor lose a delta.
            self._metrics.pushes.labels(platform, "error").inc()
            log.exception("connector of %s broke its contract", channel.name)
            await self._defer(channel, update, decided, f"connector error: {type(error).__name__}")
            return
        channel.deferrals.pop(update.sku, None)
        self._metrics.pushes.labels(platform, "ok").inc()
        self._metrics.push_latency.labels(platform).observe(max(0.0, time.time() - decided))
        if update.delta < 0:
            await self._settle(channel, update, applied=-result.applied)

    async def _defer(
        self, channel: _Channel, update: StockUpdate, decided: Decided, error: str
    ) -> None:
        """Park the write for another round, or give it up to the dead-letter topic."""
        platform = channel.connector.platform
        rounds = channel.deferrals.get(update.sku, 0) + 1
        if rounds <= self._max_deferrals or self._on_dead_letter is None:
            self._metrics.pushes.labels(platform, "deferred").inc()
            channel.deferrals[update.sku] = rounds
            channel.park(update, decided, self._retry_later_s)
            return
        channel.deferrals.pop(update.sku, None)
        self._metrics.pushes.labels(platform, "dead_lettered").inc()
        log.error("gave up on %s v%d to %s: %s", update.sku, update.version, channel.name, error)
        try:
            await self._on_dead_letter(update, error)
        except Exception:
            # The channel goes on; the write is in this log line and the drift repair.
            log.exception("could not dead-letter %s v%d", update.sku, update.version)
        if update.delta < 0:
            await self._settle(channel, update, applied=0)  # units stay held: the safe side

    async def _settle(self, channel: _Channel, update: StockUpdate, applied: int) -> None:
        requested = -update.delta
        # A connector's word, kept within the bounds the event's schema allows.
        applied = min(requested, max(0, applied))
        settled = ReclaimSettled(
            event_id=f"settle:{channel.name}:{update.sku}:{update.version}",
            sku=update.sku,
            event_time_ms=int(time.time() * 1000),
            actor=SETTLED_BY,
            channel=channel.name,
            version=update.version,
            requested=requested,
            applied=applied,
        )
        outcome = "full" if applied == requested else "partial" if applied else "none"
        try:
            await self._on_settled(settled)
        except Exception:
            # The reclaimed units stay held until someone settles them by hand: say so loudly.
            outcome = "unreported"
            log.exception("could not report %s", settled)
        self._metrics.reclaims.labels(channel.connector.platform, outcome).inc()
