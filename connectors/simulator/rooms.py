"""The simulated platforms' live rooms: what each room shows buyers, with no I/O.

A real platform keeps its own stock counter per listing: it decrements it when a buyer
orders, refuses the buyer when the counter is short ("sold out"), gives units back on a
cancellation, and changes it when the merchant writes: by a delta (clamped at 0, once per
idempotency key), by compare-and-set, or outright. stockcast's job is to keep these
counters honest across rooms, so the simulator must behave the same way, including the
oversell when two rooms both show the last unit and the resurrected units when an
outright write races with sales.

A ``LiveRoom`` is shared by the HTTP server (pushes in) and the buyer generator (orders
out) on one event loop. No method awaits, so every check-and-change is atomic.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Final, TypedDict

IDEMPOTENCY_KEYS_KEPT: Final = 10_000
"""Adjustment keys a room remembers; a retry comes within seconds, not 10k writes later."""


OrderObserver = Callable[[str, str, int], None]
"""``observe(channel, sku, quantity)``: a buyer asked for units, served or refused; lets
a live run be recorded as a trace of arrivals (``stockcast demo --record-arrivals``)."""


@dataclass(frozen=True, slots=True)
class RoomCounters:
    """What happened in one room so far; a snapshot, not a live view."""

    orders_placed: int = 0
    orders_refused_sold_out: int = 0
    orders_cancelled: int = 0
    pushes_applied: int = 0
    pushes_stale: int = 0
    pushes_conflicted: int = 0
    adjustments_applied: int = 0
    adjustments_repeated: int = 0


class CasOutcome(StrEnum):
    """The answer to a compare-and-set write."""

    APPLIED = "applied"
    STALE = "stale"
    """Its version was already applied: a retry of a write that landed, so change nothing."""
    CONFLICT = "conflict"
    """The display no longer shows the expected count: re-read and try again."""


class SkuSnapshot(TypedDict):
    displayed: int
    version: int | None


class RoomSnapshot(TypedDict):
    channel: str
    platform: str
    skus: dict[str, SkuSnapshot]
    counters: dict[str, int]


@dataclass(slots=True)
class _Listing:
    displayed: int
    version: int | None = None  # None until the first push: any version then applies


class LiveRoom:
    """One live room on one platform, e.g. channel ``"tiktok-room-1"`` on ``"tiktok"``.

    A listing shows 0 until written, unless ``displayed`` says otherwise: stockcast grants
    each room its quota. Invariants: a displayed count is never negative; the applied
    version of a SKU only grows, so a stale push can never undo a newer one; one
    idempotency key (of the last ``IDEMPOTENCY_KEYS_KEPT``) changes a display at most once.
    """

    def __init__(
        self,
        channel: str,
        platform: str,
        displayed: Mapping[str, int] | None = None,
        *,
        observer: OrderObserver | None = None,
    ) -> None:
        self._channel = channel
        self._platform = platform
        self._observer = observer
        self._listings: dict[str, _Listing] = {}
        self._adjustments: OrderedDict[tuple[str, str], tuple[int, int]] = OrderedDict()
        for sku, quantity in (displayed or {}).items():
            _check_quantity(quantity, "displayed count")
            self._listings[sku] = _Listing(quantity)
        self._placed = 0
        self._refused = 0
        self._cancelled = 0
        self._applied = 0
        self._stale = 0
        self._conflicted = 0
        self._adjusted = 0
        self._repeated = 0

    @property
    def channel(self) -> str:
        return self._channel

    @property
    def platform(self) -> str:
        return self._platform

    @property
    def counters(self) -> RoomCounters:
        return RoomCounters(
            orders_placed=self._placed,
            orders_refused_sold_out=self._refused,
            orders_cancelled=self._cancelled,
            pushes_applied=self._applied,
            pushes_stale=self._stale,
            pushes_conflicted=self._conflicted,
            adjustments_applied=self._adjusted,
            adjustments_repeated=self._repeated,
        )

    def displayed(self, sku: str) -> int:
        """The count buyers see; a SKU the room never listed shows 0."""
        listing = self._listings.get(sku)
        return 0 if listing is None else listing.displayed

    def last_version(self, sku: str) -> int | None:
        """The version of the last applied push, or None if none was applied yet."""
        listing = self._listings.get(sku)
        return None if listing is None else listing.version

    def try_order(self, sku: str, quantity: int) -> bool:
        """A buyer asks for ``quantity`` units: take them off the display, or refuse.

        Returns False (sold out) when the display shows fewer units than asked; the
        display is then left unchanged, as a platform leaves it.
        """
        _check_positive(quantity)
        if self._observer is not None:
            self._observer(self._channel, sku, quantity)
        listing = self._listings.get(sku)
        if listing is None or listing.displayed < quantity:
            self._refused += 1
            return False
        listing.displayed -= quantity
        self._placed += 1
        return True

    def cancel_order(self, sku: str, quantity: int) -> None:
        """A buyer cancelled an earlier order: the platform puts the units back on display."""
        _check_positive(quantity)
        listing = self._listings.setdefault(sku, _Listing(0))
        listing.displayed += quantity
        self._cancelled += 1

    def apply_push(self, sku: str, quantity: int, version: int) -> bool:
        """Set the display from a stockcast push unless a newer push was already applied.

        Returns whether it applied; a push whose version is not greater than the last
        applied one is dropped and counted as stale.
        """
        _check_quantity(quantity, "pushed quantity")
        listing = self._listings.get(sku)
        if listing is None:
            self._listings[sku] = _Listing(quantity, version)
        elif listing.version is not None and version <= listing.version:
            self._stale += 1
            return False
        else:
            listing.displayed = quantity
            listing.version = version
        self._applied += 1
        return True

    def compare_and_set(self, sku: str, expected: int, quantity: int, version: int) -> CasOutcome:
        """Set the display to ``quantity`` only if it still shows ``expected``.

        The version is checked first, like ``apply_push``: a retry of a write that
        already landed must not meet a "changed" count and be applied a second time.
        """
        _check_quantity(quantity, "pushed quantity")
        listing = self._listings.setdefault(sku, _Listing(0))
        if listing.version is not None and version <= listing.version:
            self._stale += 1
            return CasOutcome.STALE
        if listing.displayed != expected:
            self._conflicted += 1
            return CasOutcome.CONFLICT
        listing.displayed = quantity
        listing.version = version
        self._applied += 1
        return CasOutcome.APPLIED

    def apply_delta(self, sku: str, delta: int, idempotency_key: str) -> tuple[int, int]:
        """Change the display by ``delta``, clamped at 0; returns (applied, displayed).

        ``applied`` differs from ``delta`` only when buyers took units meanwhile and the
        display hit 0. A key seen before changes nothing and gets its first answer again.
        """
        remembered = self._adjustments.get((sku, idempotency_key))
        if remembered is not None:
            self._repeated += 1
            return remembered
        listing = self._listings.setdefault(sku, _Listing(0))
        applied = max(delta, -listing.displayed)
        listing.displayed += applied
        answer = (applied, listing.displayed)
        self._adjustments[sku, idempotency_key] = answer
        if len(self._adjustments) > IDEMPOTENCY_KEYS_KEPT:
            self._adjustments.popitem(last=False)
        self._adjusted += 1
        return answer

    def snapshot(self) -> RoomSnapshot:
        """A JSON-ready copy of the room for ``GET /rooms`` and for tests."""
        return {
            "channel": self._channel,
            "platform": self._platform,
            "skus": {
                sku: {"displayed": listing.displayed, "version": listing.version}
                for sku, listing in sorted(self._listings.items())
            },
            "counters": asdict(self.counters),
        }


def _check_positive(quantity: int) -> None:
    if quantity <= 0:
        raise ValueError(f"order quantity must be positive, got {quantity}")


def _check_quantity(quantity: int, what: str) -> None:
    if quantity < 0:
        raise ValueError(f"{what} must not be negative, got {quantity}")
