"""The connector plugin SDK: what a platform plugin implements and what it may raise.

Imports nothing from ``sync_worker``: a third-party connector depends on this module
alone. Built-in connectors register through the ``stockcast.connectors`` entry-point
group exactly like third-party ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Protocol, Self, runtime_checkable


class WriteMode(StrEnum):
    """How a connector changes a platform's stock counter.

    Platforms sell on their own and tell stockcast later, so a write must not undo sales
    that happened while it was on its way: only DELTA and COMPARE_AND_SWAP are safe there.
    """

    DELTA = "delta"
    """Adjust the count by ``delta``; ``idempotency_key`` makes a retried write apply once."""
    COMPARE_AND_SWAP = "compare_and_swap"
    """Read the count, set count + ``delta`` only if it is unchanged, retry on conflict."""
    ABSOLUTE = "absolute"
    """Set the count to ``quantity`` outright. Resurrects units sold while the write was in
    flight, so a connector declares it only where the platform sells nothing on its own."""


_PREFERENCE = (WriteMode.DELTA, WriteMode.COMPARE_AND_SWAP, WriteMode.ABSOLUTE)


def choose_write_mode(modes: Iterable[WriteMode]) -> WriteMode:
    """The safest mode among ``modes``: DELTA, else COMPARE_AND_SWAP, else ABSOLUTE.

    Raises ``ValueError`` when there is none: a connector that cannot write is unusable.
    """
    offered = frozenset(modes)
    for mode in _PREFERENCE:
        if mode in offered:
            return mode
    raise ValueError("the connector declares no write mode, so it cannot push stock")


@dataclass(frozen=True, slots=True, kw_only=True)
class StockUpdate:
    """A change of one channel's count of one SKU.

    ``delta`` is what to apply to whatever the platform shows now; ``quantity`` is the
    count the channel should show once the change lands (what an ABSOLUTE write sets).
    ``version`` grows with every change of the SKU; a platform must never let an older
    version overwrite a newer one. ``idempotency_key`` is the same on every retry of one
    write, so the platform can apply it once however often it is sent.
    """

    channel: str
    sku: str
    quantity: int
    delta: int
    version: int
    event_time_ms: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class PushResult:
    """What the platform did with a write.

    ``applied`` is the change it really made: ``delta``, unless it clamped a reduction at
    0 because buyers took units meanwhile. ``displayed`` is its count after, when it says.
    """

    applied: int
    displayed: int | None


class ConnectorError(Exception):
    """Base of every error a connector raises; messages never contain secrets."""


class RateLimited(ConnectorError):
    """The platform asked us to slow down; retry no sooner than ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(ConnectorError):
    """Timeout, 5xx or a dropped connection: the same write may succeed if retried."""


class Rejected(ConnectorError):
    """The platform refused the write for good (bad SKU, bad credentials): do not retry."""


@runtime_checkable
class Connector(Protocol):
    """An outbound connector: pushes stock changes to one platform.

    Contract: ``start`` is awaited once before any ``push_stock``; ``push_stock`` is
    never called after ``close``; ``close`` is idempotent. ``push_stock`` raises only
    ``ConnectorError`` subclasses, and is only called with a mode of ``write_modes``.
    A write may be retried with the very same ``StockUpdate``: in DELTA mode the
    platform must change the count once per ``idempotency_key``, and in the other modes
    the connector must make a retry of a write that already landed change nothing.
    """

    platform: ClassVar[str]

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Self:
        """Build from the channel's connector options (base URL, credentials…)."""
        ...

    @property
    def write_modes(self) -> frozenset[WriteMode]:
        """The modes this connector can write safely on its platform."""
        ...

    async def start(self) -> None: ...

    async def push_stock(self, update: StockUpdate, mode: WriteMode) -> PushResult:
        """Apply ``update`` in ``mode`` and say what the platform really applied."""
        ...

    async def close(self) -> None: ...
