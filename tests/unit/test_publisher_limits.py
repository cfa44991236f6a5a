"""The publisher's limits: per-channel rate limits, the quota circuit, and dead letters.

A scripted in-test connector stands in for the platform: it fails as told, per SKU, and
records every call with the loop's time. Nothing asserts how fast something happened, only
what happened, in what order, and that nothing happened sooner than it may: a loaded
machine can only make these tests slower, never wrong. The retry backoff is patched down to
a tiny constant so that rounds of five failed attempts take milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar, Self

import pytest
from tenacity import RetryCallState

from connectors.base import (
    ConnectorError,
    PushResult,
    QuotaExhausted,
    RateLimited,
    Rejected,
    StockUpdate,
    TransientError,
    WriteMode,
)
from sync_worker import retrying
from sync_worker.domain.events import ChannelObserved, ReclaimSettled
from sync_worker.metrics import CONNECTOR_ERROR_KINDS, PUSH_RESULTS, Metrics
from sync_worker.publishing import MAX_DEFERRALS, OnDeadLetter, Publisher, error_kind
from sync_worker.retrying import ATTEMPTS
from tests.unit.publisher_support import ROOM, SKU, change, until

OTHER_ROOM = "douyin-room-1"
BACKOFF_S = 0.002
"""Stands in for the exponential backoff between the attempts of one round."""
RETRY_LATER_S = 0.01
RESET_AFTER_S = 0.05
EARLY_S = 1e-3
"""Timers may fire a clock tick early; lower bounds on loop time allow for that."""


@dataclass(frozen=True)
class Call:
    """One ``push_stock`` as the platform saw it."""

    sku: str
    key: str
    delta: int
    at: float
    """Loop time of the call."""
    circuit: float | None
    """The channel's circuit gauge at that moment."""


class Scripted:
    """A DELTA connector that fails as scripted, per SKU, and records every call."""

    platform: ClassVar[str] = "scripted"
    write_modes: frozenset[WriteMode] = frozenset({WriteMode.DELTA})

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.landed: list[Call] = []
        self.script: dict[str, deque[Exception]] = {}
        self.probe: Callable[[], float | None] = lambda: None
        self.shown: dict[str, int] = {}
        """What the platform shows, for read-backs."""
        self.read_errors: deque[Exception] = deque()

    @classmethod
    def from_options(
        cls, options: Mapping[str, str], listings: Mapping[str, str] | None = None
    ) -> Self:
        return cls()

    def fail(self, sku: str, *errors: Exception) -> None:
        """The next writes of ``sku`` raise ``errors``, one each, in order."""
        self.script.setdefault(sku, deque()).extend(errors)

    def calls_of(self, key: str) -> list[Call]:
        return [call for call in self.calls if call.key == key]

    async def start(self) -> None: ...

    async def push_stock(self, update: StockUpdate, mode: WriteMode) -> PushResult:
        assert mode is WriteMode.DELTA
        now = asyncio.get_running_loop().time()
        call = Call(update.sku, update.idempotency_key, update.delta, now, self.probe())
        self.calls.append(call)
        pending = self.script.get(update.sku)
        if pending:
            raise pending.popleft()
        self.landed.append(call)
        return PushResult(applied=update.delta, displayed=None)

    async def read_stock(self, channel: str, skus: Sequence[str]) -> Mapping[str, int]:
        if self.read_errors:
            raise self.read_errors.popleft()
        return {sku: self.shown[sku] for sku in skus if sku in self.shown}

    async def close(self) -> None: ...


class OtherPlatform(Scripted):
    """The same, on another platform: metrics labelled by connector tell the two apart."""

    platform: ClassVar[str] = "other"


@dataclass
class Rig:
    publisher: Publisher
    metrics: Metrics
    connectors: dict[str, Scripted]
    settled: list[ReclaimSettled] = field(default_factory=list)
    dead: list[tuple[StockUpdate, str]] = field(default_factory=list)
    observed: list[ChannelObserved] = field(default_factory=list)

    def pushes(self, result: str, platform: str = Scripted.platform) -> float:
        labels = {"connector": platform, "result": result}
        return self.metrics.registry.get_sample_value("stockcast_pushes_total", labels) or 0.0

    def waits(self, platform: str = Scripted.platform) -> float:
        labels = {"connector": platform}
        value = self.metrics.registry.get_sample_value(
            "stockcast_rate_limit_waits_seconds_total", labels
        )
        return value or 0.0

    def circuit(self, channel: str = ROOM) -> float | None:
        labels = {"channel": channel}
        return self.metrics.registry.get_sample_value("stockcast_connector_circuit_open", labels)

    def sample(self, name: str, **labels: str) -> float | None:
        labels.setdefault("connector", Scripted.platform)
        return self.metrics.registry.get_sample_value(name, labels)

    def errors(self) -> dict[str, float | None]:
        """Failed attempts by kind."""
        name = "stockcast_connector_errors_total"
        return {kind: self.sample(name, kind=kind) for kind in CONNECTOR_ERROR_KINDS}

    def retries(self) -> float | None:
        return self.sample("stockcast_connector_retries_total")


MakeRig = Callable[..., Awaitable[Rig]]


def _tiny_backoff(state: RetryCallState) -> float:
    return BACKOFF_S


@pytest.fixture(autouse=True)
def tiny_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retrying, "_backoff", _tiny_backoff)


@pytest.fixture
async def make_rig() -> AsyncIterator[MakeRig]:
    """A started publisher over scripted connectors (one ``Scripted`` on ``ROOM`` unless
    told otherwise), dead letters collected unless ``dead_letters=False``."""
    running: list[Publisher] = []

    async def make(
        channels: Sequence[tuple[str, Scripted]] | None = None,
        *,
        writes_per_s: Mapping[str, float] | None = None,
        max_deferrals: int = MAX_DEFERRALS,
        dead_letters: bool = True,
        on_dead_letter: OnDeadLetter | None = None,
        read_back_s: float | None = None,
    ) -> Rig:
        pairs = list(channels) if channels is not None else [(ROOM, Scripted())]
        metrics = Metrics.create()
        settled: list[ReclaimSettled] = []
        dead: list[tuple[StockUpdate, str]] = []

        async def collect(event: ReclaimSettled) -> None:
            settled.append(event)

        async def bury(update: StockUpdate, error: str) -> None:
            dead.append((update, error))

        observed: list[ChannelObserved] = []

        async def observe(event: ChannelObserved) -> None:
            observed.append(event)

        publisher = Publisher(
            pairs,
            metrics,
            collect,
            on_dead_letter=on_dead_letter or (bury if dead_letters else None),
            writes_per_s=writes_per_s or {},
            retry_later_s=RETRY_LATER_S,
            max_deferrals=max_deferrals,
            on_observed=None if read_back_s is None else observe,
            read_back_s=read_back_s or 0.0,
        )
        rig = Rig(publisher, metrics, dict(pairs), settled, dead, observed)
        for name, connector in pairs:
            connector.probe = partial(rig.circuit, name)
        await publisher.start()
        running.append(publisher)
        return rig

    yield make
    for publisher in running:
        await publisher.stop()


def key(version: int, sku: str = SKU, channel: str = ROOM) -> str:
    """The idempotency key of a write of one change alone."""
    return f"{channel}:{sku}:{version}-{version}"


def drain_died(rig: Rig) -> bool:
    """Whether a task of the publisher ended: lets a test of a bug that kills the channel
    fail at once instead of at the hang guard."""
    return any(task.done() for task in rig.publisher._tasks)


def transient(count: int) -> list[Exception]:
    """``count`` distinct transient failures; the last one's text is ``503 #<count - 1>``."""
    return [TransientError(f"503 #{n}") for n in range(count)]


# --- our own rate limit ---------------------------------------------------------------


async def test_limits_for_a_channel_not_served_or_below_one_write_are_refused() -> None:
    async def ignore(event: ReclaimSettled) -> None: ...

    with pytest.raises(ValueError, match="unknown channels"):
        Publisher(
            [(ROOM, Scripted())], Metrics.create(), ignore, writes_per_s={"kuaishou-room-1": 5}
        )
    with pytest.raises(ValueError, match="unknown channels"):
        Publisher([(ROOM, Scripted())], Metrics.create(), ignore, writes_in_flight={"kuaishou": 2})
    with pytest.raises(ValueError, match="at least 1"):
        Publisher([(ROOM, Scripted())], Metrics.create(), ignore, writes_in_flight={ROOM: 0})


async def test_a_limited_channel_waits_for_its_limit_and_every_write_lands(
    make_rig: MakeRig,
) -> None:
    limited, unlimited = Scripted(), OtherPlatform()
    rig = await make_rig([(ROOM, limited), (OTHER_ROOM, unlimited)], writes_per_s={ROOM: 20})

    for n in range(40):
        rig.publisher.offer(change(1, delta=1, quota=1, sku=f"sku-{n}"))
        rig.publisher.offer(change(1, delta=1, quota=1, sku=f"sku-{n}", channel=OTHER_ROOM))
    await until(lambda: len(limited.landed) == 40 and len(unlimited.landed) == 40)

    assert {call.sku for call in limited.landed} == {f"sku-{n}" for n in range(40)}
    assert rig.pushes("ok") == 40
    assert rig.waits() > 0
    # A burst of one second's worth (20), then 20 a second: 20 more take a second at least.
    assert limited.landed[-1].at - limited.landed[0].at >= 1.0 - 0.1
    assert rig.pushes("ok", OtherPlatform.platform) == 40
    assert rig.waits(OtherPlatform.platform) == 0


async def test_a_limit_below_one_write_a_second_is_honoured(make_rig: MakeRig) -> None:
    rig = await make_rig(writes_per_s={ROOM: 0.5})
    connector = rig.connectors[ROOM]

    rig.publisher.offer(change(1, delta=1, quota=1, sku="a"))
    rig.publisher.offer(change(1, delta=1, quota=1, sku="b"))
    await until(lambda: len(connector.landed) == 2)

    first, second = connector.landed
    assert second.at - first.at >= 1.5  # 2 s at 0.5 writes a second; 1 s is the bug


# --- the platform's rate limit --------------------------------------------------------


async def test_a_platform_rate_limit_is_waited_out_and_counted_as_a_wait(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig()  # no limit of our own on the channel
    connector = rig.connectors[ROOM]
    connector.fail(SKU, RateLimited("429", retry_after=0.05), RateLimited("429", retry_after=0.03))

    rig.publisher.offer(change(1, delta=7, quota=7))
    await until(lambda: len(connector.landed) == 1)

    first, second, third = connector.calls
    assert {call.key for call in connector.calls} == {key(1)}  # the very same write
    assert second.at - first.at >= 0.05 - EARLY_S
    assert third.at - second.at >= 0.03 - EARLY_S
    assert rig.waits() == pytest.approx(0.08)  # exactly the hints (above the backoff)
    assert (rig.pushes("ok"), rig.pushes("deferred")) == (1, 0)


async def test_backoff_after_a_transient_error_is_not_a_rate_limit_wait(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig()
    connector = rig.connectors[ROOM]
    connector.fail(SKU, *transient(2))

    rig.publisher.offer(change(1, delta=7, quota=7))
    await until(lambda: len(connector.landed) == 1)

    assert len(connector.calls) == 3
    assert rig.waits() == 0


# --- the quota circuit ----------------------------------------------------------------


async def test_a_spent_quota_holds_the_channel_back_until_it_resets(make_rig: MakeRig) -> None:
    rig = await make_rig()
    connector = rig.connectors[ROOM]
    connector.fail("a", QuotaExhausted("daily quota spent", reset_after=RESET_AFTER_S))

    rig.publisher.offer(change(1, delta=3, quota=3, sku="a"))
    await until(lambda: rig.circuit() == 1)
    rig.publisher.offer(change(1, delta=4, quota=4, sku="b"))  # while the circuit is open
    await until(lambda: len(connector.landed) == 2)

    spent, *after = connector.calls
    assert spent.sku == "a"
    assert len(after) == 2  # one attempt at the reset: the quota error is not retried sooner
    assert {call.sku for call in after} == {"a", "b"}
    for call in after:
        assert call.at - spent.at >= RESET_AFTER_S - EARLY_S
        assert call.circuit == 0  # closed again before the channel wrote again
    assert connector.calls_of(key(1, "a")) == [spent, *(c for c in after if c.sku == "a")]
    assert (rig.pushes("deferred"), rig.pushes("ok")) == (1, 2)
    assert rig.circuit() == 0


async def test_a_spent_quota_pauses_only_its_own_channel(make_rig: MakeRig) -> None:
    spent, other = Scripted(), OtherPlatform()
    rig = await make_rig([(ROOM, spent), (OTHER_ROOM, other)])
    spent.fail(SKU, QuotaExhausted("hourly quota spent", reset_after=60.0))

    rig.publisher.offer(change(1, delta=3, quota=3))
    await until(lambda: rig.circuit() == 1)
    rig.publisher.offer(change(1, delta=3, quota=3, sku="mascara"))
    rig.publisher.offer(change(1, delta=5, quota=5, channel=OTHER_ROOM))
    await until(lambda: len(other.landed) == 1)
    await asyncio.sleep(0.05)  # room for a wrong write of the paused channel to show

    assert [call.key for call in spent.calls] == [key(1)]  # mascara waits for the reset too
    assert rig.circuit() == 1
    assert rig.circuit(OTHER_ROOM) in (None, 0)
    assert other.landed[0].key == key(1, channel=OTHER_ROOM)


async def test_the_circuit_closes_when_the_parked_write_is_the_only_work(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig()
    connector = rig.connectors[ROOM]
    connector.fail(SKU, QuotaExhausted("daily quota spent", reset_after=RESET_AFTER_S))

    rig.publisher.offer(change(1, delta=3, quota=3))
    await until(lambda: len(connector.landed) == 1)

    spent, landed = connector.calls
    assert landed.at - spent.at >= RESET_AFTER_S - EARLY_S
    assert rig.circuit() == 0


# --- dead letters ---------------------------------------------------------------------


async def test_a_write_failing_every_round_is_dead_lettered_and_newer_changes_go_on(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig(max_deferrals=2)
    connector = rig.connectors[ROOM]
    rounds = 2 + 1  # parked twice, given up when the third round fails
    connector.fail(SKU, *transient(rounds * ATTEMPTS))

    rig.publisher.offer(change(1, delta=-3, quota=7))
    rig.publisher.offer(change(2, delta=4, quota=11))
    await until(lambda: len(connector.landed) == 1)
    await asyncio.sleep(5 * RETRY_LATER_S)  # room for a wrong retry of the given-up write

    given_up = connector.calls_of(key(1))
    assert len(given_up) == rounds * ATTEMPTS
    for end_of_round in range(ATTEMPTS, len(given_up), ATTEMPTS):
        pause = given_up[end_of_round].at - given_up[end_of_round - 1].at
        assert pause >= RETRY_LATER_S - EARLY_S
    assert [call.key for call in connector.calls[len(given_up) :]] == [key(2)]
    ((update, error),) = rig.dead
    assert (update.sku, update.version, update.delta, update.idempotency_key) == (
        SKU,
        1,
        -3,
        key(1),
    )
    assert error == f"503 #{rounds * ATTEMPTS - 1}"  # the last error
    assert [(s.version, s.requested, s.applied) for s in rig.settled] == [(1, 3, 0)]
    assert rig.pushes("dead_lettered") == 1
    assert rig.pushes("ok") == 1


async def test_a_connector_breaking_its_contract_is_dead_lettered_with_the_error_type(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig(max_deferrals=1)
    connector = rig.connectors[ROOM]
    connector.fail(SKU, *(RuntimeError(f"secret-token-{n} in here") for n in range(2)))

    rig.publisher.offer(change(1, delta=2, quota=2))
    await until(lambda: len(rig.dead) == 1)

    assert len(connector.calls) == 2  # one attempt a round: such errors are not retried
    assert rig.dead[0][1] == "connector error: RuntimeError"  # the type, not the text
    assert rig.settled == []  # an increase is not settled
    assert (rig.pushes("error"), rig.pushes("dead_lettered")) == (2, 1)


async def test_max_deferrals_zero_dead_letters_after_the_first_failed_round(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig(max_deferrals=0)
    connector = rig.connectors[ROOM]
    connector.fail(SKU, *transient(ATTEMPTS))

    rig.publisher.offer(change(1, delta=2, quota=2))
    await until(lambda: len(rig.dead) == 1 or drain_died(rig))

    assert [error for _, error in rig.dead] == [f"503 #{ATTEMPTS - 1}"]
    assert len(connector.calls) == ATTEMPTS


async def test_without_a_dead_letter_callback_a_failing_write_is_retried_for_ever(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig(max_deferrals=1, dead_letters=False)
    connector = rig.connectors[ROOM]
    connector.fail(SKU, *transient(4 * ATTEMPTS))  # well past max_deferrals rounds

    rig.publisher.offer(change(1, delta=-3, quota=7))
    await until(lambda: len(connector.landed) == 1)

    assert [call.key for call in connector.calls] == [key(1)] * (4 * ATTEMPTS + 1)
    assert rig.pushes("dead_lettered") == 0
    assert rig.pushes("deferred") == 4
    assert [(s.version, s.requested, s.applied) for s in rig.settled] == [(1, 3, 3)]


async def test_a_success_resets_the_rounds_a_sku_has_failed(make_rig: MakeRig) -> None:
    rig = await make_rig(max_deferrals=1)
    connector = rig.connectors[ROOM]
    connector.fail(SKU, *transient(ATTEMPTS))  # one failed round, then it lands

    rig.publisher.offer(change(1, delta=2, quota=2))
    await until(lambda: len(connector.landed) == 1)
    connector.fail(SKU, *transient(ATTEMPTS))  # one failed round again: still within bounds
    rig.publisher.offer(change(2, delta=3, quota=5))
    await until(lambda: len(connector.landed) == 2)

    assert [call.key for call in connector.landed] == [key(1), key(2)]
    assert rig.dead == []
    assert rig.pushes("deferred") == 2


async def test_the_round_that_gives_up_is_not_counted_as_deferred(make_rig: MakeRig) -> None:
    rig = await make_rig(max_deferrals=2)
    connector = rig.connectors[ROOM]
    connector.fail(SKU, *transient(3 * ATTEMPTS))

    rig.publisher.offer(change(1, delta=2, quota=2))
    await until(lambda: len(rig.dead) == 1)

    assert rig.pushes("dead_lettered") == 1
    assert rig.pushes("deferred") == 2  # the two rounds that were retried


async def test_a_failing_dead_letter_callback_does_not_stop_the_channel(
    make_rig: MakeRig,
) -> None:
    async def broken(update: StockUpdate, error: str) -> None:
        raise RuntimeError("dead-letter producer gone")

    rig = await make_rig(max_deferrals=1, on_dead_letter=broken)
    connector = rig.connectors[ROOM]
    connector.fail("a", *transient(2 * ATTEMPTS))

    rig.publisher.offer(change(1, delta=2, quota=2, sku="a"))
    await until(lambda: rig.pushes("dead_lettered") == 1)
    rig.publisher.offer(change(1, delta=3, quota=3, sku="b"))
    await until(lambda: len(connector.landed) == 1 or drain_died(rig))

    assert [call.sku for call in connector.landed] == ["b"]


# --- read-backs ---------------------------------------------------------------------------


async def test_a_read_back_reports_only_counts_above_the_quota(make_rig: MakeRig) -> None:
    rig = await make_rig(read_back_s=0.01)
    connector = rig.connectors[ROOM]
    rig.publisher.offer(change(1, 5, 5, sku="over"))
    rig.publisher.offer(change(2, 5, 5, sku="even"))
    await until(lambda: len(connector.landed) == 2)
    connector.shown.update(over=7, even=5)  # a back-office edit put 2 more on display

    await until(lambda: len(rig.observed) >= 2)

    assert {(event.sku, event.displayed) for event in rig.observed} == {("over", 7)}
    assert all(event.channel == ROOM and event.actor == "publisher" for event in rig.observed)


async def test_a_failed_read_back_round_is_followed_by_the_next(make_rig: MakeRig) -> None:
    rig = await make_rig(read_back_s=0.01)
    connector = rig.connectors[ROOM]
    connector.read_errors.extend([TransientError("timeout"), RuntimeError("connector bug")])
    rig.publisher.offer(change(1, 5, 5))
    await until(lambda: len(connector.landed) == 1)
    connector.shown[SKU] = 6

    await until(lambda: len(rig.observed) >= 1)

    assert not connector.read_errors  # both failing rounds came and went
    assert rig.observed[0].displayed == 6


# --- metrics ------------------------------------------------------------------------------


def no_errors(**counts: float) -> dict[str, float]:
    """Every error kind at 0 but those given."""
    return {kind: float(counts.get(kind, 0)) for kind in CONNECTOR_ERROR_KINDS}


async def test_every_connector_and_channel_series_exists_at_zero_before_any_write(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig([(ROOM, Scripted()), (OTHER_ROOM, OtherPlatform())])

    for platform in (Scripted.platform, OtherPlatform.platform):
        for result in PUSH_RESULTS:
            assert rig.pushes(result, platform) == 0
            assert rig.sample("stockcast_pushes_total", connector=platform, result=result) == 0
        for kind in CONNECTOR_ERROR_KINDS:
            name = "stockcast_connector_errors_total"
            assert rig.sample(name, connector=platform, kind=kind) == 0
        assert rig.sample("stockcast_connector_retries_total", connector=platform) == 0
        assert rig.sample("stockcast_push_latency_seconds_count", connector=platform) == 0
        assert rig.sample("stockcast_rate_limit_waits_seconds_total", connector=platform) == 0
    assert (rig.circuit(ROOM), rig.circuit(OTHER_ROOM)) == (0, 0)


async def test_each_failed_attempt_counts_by_kind_and_each_retry_once(make_rig: MakeRig) -> None:
    rig = await make_rig()
    connector = rig.connectors[ROOM]
    connector.fail(SKU, TransientError("503"), RateLimited("429", retry_after=0.0))

    rig.publisher.offer(change(1, delta=7, quota=7))
    await until(lambda: len(connector.landed) == 1)

    assert rig.errors() == no_errors(transient=1, rate_limited=1)
    assert rig.retries() == 2
    assert rig.pushes("ok") == 1


async def test_errors_that_are_not_retried_count_once_and_no_retry(make_rig: MakeRig) -> None:
    rig = await make_rig(max_deferrals=0)
    connector = rig.connectors[ROOM]
    connector.fail("a", Rejected("unknown listing"))
    connector.fail("b", QuotaExhausted("daily quota spent", reset_after=RESET_AFTER_S))
    connector.fail("c", RuntimeError("connector bug"))

    for sku in ("a", "b", "c"):
        rig.publisher.offer(change(1, delta=1, quota=1, sku=sku))
    await until(lambda: len(connector.landed) == 1 and len(rig.dead) == 1)

    assert rig.errors() == no_errors(rejected=1, quota_exhausted=1, contract=1)
    assert rig.retries() == 0


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (RateLimited("429", retry_after=1.0), "rate_limited"),
        (QuotaExhausted("spent", reset_after=1.0), "quota_exhausted"),
        (TransientError("503"), "transient"),
        (Rejected("400"), "rejected"),
        (ConnectorError("an SDK error of no finer kind"), "transient"),
        (KeyError("bug"), "contract"),
    ],
)
def test_an_error_kind_is_the_sdk_error_raised(error: Exception, kind: str) -> None:
    assert error_kind(error) == kind


async def test_push_latency_counts_from_the_decision_not_the_cause_event(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig()
    decided = time.time() - 1000.0  # the change's cause is from 2023 (see ``change``)

    rig.publisher.offer(change(1, delta=7, quota=7), decided=decided)
    await until(lambda: rig.pushes("ok") == 1)

    latency = rig.sample("stockcast_push_latency_seconds_sum")
    assert latency is not None
    assert 1000.0 <= latency < 1_000_000.0


async def test_a_coalesced_write_is_timed_from_its_oldest_decision(make_rig: MakeRig) -> None:
    rig = await make_rig()
    connector = rig.connectors[ROOM]
    connector.fail(SKU, *transient(ATTEMPTS))  # the first round fails: the rest queue behind
    now = time.time()

    rig.publisher.offer(change(1, delta=1, quota=1), decided=now - 3000.0)
    await until(lambda: rig.pushes("deferred") == 1)
    rig.publisher.offer(change(2, delta=1, quota=2), decided=now - 2000.0)
    rig.publisher.offer(change(3, delta=1, quota=3), decided=now - 1000.0)
    await until(lambda: rig.pushes("ok") == 2)

    latency = rig.sample("stockcast_push_latency_seconds_sum")
    assert latency is not None
    assert 3000.0 + 2000.0 <= latency < 3000.0 + 2000.0 + 1000.0


async def test_without_a_decision_time_latency_counts_from_the_offer(make_rig: MakeRig) -> None:
    rig = await make_rig()

    rig.publisher.offer(change(1, delta=7, quota=7))
    await until(lambda: rig.pushes("ok") == 1)

    latency = rig.sample("stockcast_push_latency_seconds_sum")
    assert latency is not None
    assert latency < 1_000_000.0  # not since the cause event's time, in 2023
