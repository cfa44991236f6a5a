"""The connector plugin SDK: what a platform plugin implements and what it may raise.

Imports nothing from ``sync_worker``: a third-party connector depends on this module
alone. Built-in connectors register through the ``stockcast.connectors`` entry-point
group exactly like third-party ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
    """Set the count outright, where the platform offers nothing safer. Setting
    ``quantity`` resurrects every unit sold since stockcast last heard, so a connector to a
    platform that sells on its own sets a fresh read plus ``delta`` instead, and resends
    that same count on a retry of the same ``idempotency_key``: only units sold within
    that one round trip are at risk, and drift repair finds them."""


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


class QuotaExhausted(ConnectorError):
    """The platform's call quota (daily, hourly) is spent: retrying before ``reset_after``
    seconds only burns goodwill, so the channel's circuit opens until then."""

    def __init__(self, message: str, reset_after: float) -> None:
        super().__init__(message)
        self.reset_after = reset_after


class VerificationFailed(ConnectorError):
    """An inbound delivery is not provably from the platform: it must not reach Kafka."""


class SignatureInvalid(VerificationFailed):
    """The signature is missing or does not match the body."""


class ReplayRejected(VerificationFailed):
    """Signed correctly, but its timestamp is outside the platform's window: a replay."""


class MalformedPayload(ConnectorError):
    """Verified, but not in the shape the platform documents."""


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
    def from_options(
        cls, options: Mapping[str, str], listings: Mapping[str, str] | None = None
    ) -> Self:
        """Build from the channel's connector options (base URL, credentials…) and its
        listings: stockcast SKU -> the platform's reference for it (connector-specific
        text, e.g. ``"<product_id>:<sku_id>"``). A SKU without a listing is not sold there.
        """
        ...

    @property
    def write_modes(self) -> frozenset[WriteMode]:
        """The modes this connector can write safely on its platform."""
        ...

    async def start(self) -> None: ...

    async def push_stock(self, update: StockUpdate, mode: WriteMode) -> PushResult:
        """Apply ``update`` in ``mode`` and say what the platform really applied."""
        ...

    async def read_stock(self, channel: str, skus: Sequence[str]) -> Mapping[str, int]:
        """What the platform shows now in ``channel`` for each listed SKU of ``skus``;
        drift repair compares it with what stockcast believes the channel shows."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """A webhook delivery exactly as received: verification runs over these raw bytes.

    ``headers`` keys are lower-case.
    """

    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    received_at_s: float = 0.0


@dataclass(frozen=True, slots=True)
class InboundResponse:
    """What the platform expects as an acknowledgement (status, body, content type)."""

    status: int
    body: bytes
    content_type: str = "application/json"


class OrderStatus(StrEnum):
    """Where an order stands, in stockcast's words; each platform's statuses map onto it."""

    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class PlatformOrderLine:
    """One line of a platform order; ``sku`` is stockcast's SKU (None when the platform's
    item is not one stockcast knows: no listing and no seller SKU)."""

    line_id: str
    sku: str | None
    quantity: int
    platform_sku: str


@dataclass(frozen=True, slots=True)
class PlatformOrder:
    """An order as the platform describes it now (hydrated)."""

    order_id: str
    status: OrderStatus
    platform_status: str
    buyer_id: str
    region: str | None
    lines: tuple[PlatformOrderLine, ...]
    updated_at_ms: int


@dataclass(frozen=True, slots=True)
class Notification:
    """One verified notification about one order.

    ``notification_id`` is the platform's delivery id (dedupe key). ``order`` is the full
    order when the platform sends it (Shopify); None when the notification is thin and the
    order must be fetched (``hydrate``). ``occurred_at_ms`` orders notifications of one
    order.
    """

    notification_id: str
    shop_id: str
    order_id: str
    occurred_at_ms: int
    order: PlatformOrder | None = None


@runtime_checkable
class InboundConnector(Protocol):
    """An inbound connector: turns a platform's webhook deliveries into orders.

    Contract: ``verify`` runs first, over the raw bytes, in constant time, and raises
    ``VerificationFailed`` for anything not provably from the platform or outside its
    timestamp window; ``decode`` raises ``MalformedPayload`` and returns only order
    notifications (others are acknowledged and dropped); ``hydrate`` fetches the order a
    thin notification names and raises ``ConnectorError`` subclasses only.
    """

    platform: ClassVar[str]

    @property
    def shop_id(self) -> str:
        """The shop this connector's channel is; notifications are routed by it."""
        ...

    def verify(self, request: InboundRequest, now_s: float) -> None: ...

    def decode(self, request: InboundRequest) -> list[Notification]: ...

    def acknowledge(self, accepted: bool) -> InboundResponse:
        """The answer the platform expects; a refusal makes it redeliver later."""
        ...

    async def hydrate(self, notification: Notification) -> PlatformOrder: ...
