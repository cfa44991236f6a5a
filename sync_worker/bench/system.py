"""The one interface every benchmarked system implements, baselines and stockcast alike.

The load generator, the sweeps, the invariant checks and the report only ever see a
``System`` and the ``Decider`` it prepares, so adding a system is one subclass and one
line in ``sync_worker.bench.catalog``; nothing of the framework changes.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Generic, Protocol, Self, TypeVar

from sync_worker.bench.latency import Latencies
from sync_worker.bench.workloads import OrderLine
from sync_worker.domain.events import Outcome

__all__ = ["ClientConfig", "Decider", "Outcome", "ServerSystem", "System"]


@dataclass(frozen=True, slots=True, order=True)
class ClientConfig:
    """How the load generator drives a system: ``concurrency`` clients, each with at
    most ``batch`` lines in one request (Redis: the pipeline depth; PostgreSQL: lines
    per transaction; stockcast: messages produced before awaiting their decisions)."""

    concurrency: int = 1
    batch: int = 1

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.batch < 1:
            raise ValueError(f"concurrency and batch must be >= 1, got {self}")

    @property
    def label(self) -> str:
        return f"c={self.concurrency} b={self.batch}"


class Decider(ABC):
    """A system prepared with one run's stock, ready to decide order lines.

    Invariants the load generator relies on:

    - ``decide`` may be called by up to ``config.concurrency`` clients at once, each
      call with 1 to ``config.batch`` lines; it returns one ``Outcome`` per line, in
      order, only once each outcome is final (durable as far as the system promises:
      committed for PostgreSQL, applied for Redis, emitted on the decisions topic for
      stockcast).
    - ``ACCEPTED`` means the line's units were taken from its SKU's stock; ``REJECTED``
      that they were not (not enough stock, unknown SKU); ``DUPLICATE`` that a line
      with the same order id was decided before (it takes no stock).
    - ``units_left`` is read from the system's own state, after the last ``decide``,
      never from what the answers said: it is what the stranded-units check compares.
    - Nothing is called after the context manager that yielded it has exited.
    """

    @abstractmethod
    async def decide(self, lines: Sequence[OrderLine], sent_at: float) -> Sequence[Outcome]:
        """Decide ``lines``. ``sent_at`` (``time.perf_counter()`` seconds) is when the
        load generator counts them as sent: in open loop, the scheduled time of the
        earliest of them. A system
        that measures more than the answer (stockcast: order -> push to the room)
        measures it from there."""

    @abstractmethod
    async def units_left(self) -> Mapping[str, int]:
        """Units each SKU of the stock can still sell, as the system's books say."""

    def push_latencies(self) -> Latencies | None:
        """Order -> push latencies (from each line's ``sent_at`` to the moment the new
        count reached the room), for systems that push; None for the others."""
        return None


class System(ABC):
    """A system under test, entered with ``async with``: entering starts whatever it
    runs on (servers, brokers, workers) and exiting stops and removes it all, also
    when the bench is interrupted.

    The stockcast full path (``stockcast_system``) starts a Kafka broker, a worker
    subprocess and a live room in ``start``; ``prepare`` gives the run SKU names of its
    own, sends the stock as stock events and waits until the worker has applied them;
    ``decide`` produces ``OrderLinePlaced`` events and awaits their ``OrderLineDecided``
    answers (and ``push_latencies`` times order -> push); ``cpu_roles`` returns
    ``{"worker": [...], "broker": [...]}``.
    """

    name: ClassVar[str]
    """Its name on the command line and in the report."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:  # noqa: B027 (optional hook: in-process systems need none)
        """Install (if needed) and start what the system runs on."""

    async def stop(self) -> None:  # noqa: B027
        """Stop and remove everything ``start`` started; safe to call after a failed start."""

    @abstractmethod
    def configs(self, quick: bool) -> Sequence[ClientConfig]:
        """The client configurations to sweep; the best one is reported."""

    def cpu_roles(self) -> Mapping[str, Sequence[int]]:
        """The processes whose CPU counts per role (``server``; stockcast: ``worker``,
        ``broker``), children included. The bench's own process is always counted as
        ``client``; an in-process system returns nothing."""
        return {}

    @abstractmethod
    def prepare(
        self, stock: Mapping[str, int], config: ClientConfig
    ) -> AbstractAsyncContextManager[Decider]:
        """Fresh books holding ``stock`` (nothing left of an earlier run: no stock, no
        order ids) and clients opened for ``config``; closed on exit."""


class RunningServer(Protocol):
    @property
    def pid(self) -> int: ...


_Server = TypeVar("_Server", bound=RunningServer)


class ServerSystem(System, Generic[_Server]):
    """A baseline that runs on one server process (PostgreSQL, Redis): ``start`` enters
    the server into ``_servers`` and keeps it as ``_server``; ``stop`` exits it. Every
    such baseline sweeps the same client configurations and counts the server's CPU as
    ``server``."""

    def __init__(self) -> None:
        self._servers = contextlib.ExitStack()
        self._server: _Server | None = None

    async def stop(self) -> None:
        self._servers.close()
        self._server = None

    def configs(self, quick: bool) -> Sequence[ClientConfig]:
        if quick:
            return tuple(ClientConfig(c, b) for c in (4, 16) for b in (1, 16))
        return tuple(ClientConfig(c, b) for c in (1, 4, 16, 64) for b in (1, 16))

    def cpu_roles(self) -> Mapping[str, Sequence[int]]:
        return {"server": [self._server.pid]} if self._server is not None else {}
