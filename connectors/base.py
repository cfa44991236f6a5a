"""The connector plugin SDK: what a platform plugin implements and what it may raise.

Imports nothing from ``sync_worker``: a third-party connector depends on this module
alone. Built-in connectors register through the ``stockcast.connectors`` entry-point
group exactly like third-party ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol, Self, runtime_checkable


@dataclass(frozen=True, slots=True)
class StockUpdate:
    """The count one channel should show for one SKU.

    ``version`` grows with every change of the SKU's position; a connector (or the
    platform) must never let an older version overwrite a newer one.
    """

    channel: str
    sku: str
    quantity: int
    version: int
    event_time_ms: int


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
    """An outbound connector: pushes stock counts to one platform.

    Contract: ``start`` is awaited once before any ``push_stock``; ``push_stock`` is
    never called after ``close``; ``close`` is idempotent. ``push_stock`` raises only
    ``ConnectorError`` subclasses.
    """

    platform: ClassVar[str]

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Self:
        """Build from the channel's connector options (base URL, credentials…)."""
        ...

    async def start(self) -> None: ...

    async def push_stock(self, update: StockUpdate) -> None: ...

    async def close(self) -> None: ...
