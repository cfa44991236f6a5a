"""The simulated platforms' live rooms: what each room shows buyers, with no I/O.

A real platform keeps its own stock counter per listing: it decrements it when a buyer
orders, refuses the buyer when the counter is short ("sold out"), gives units back on a
cancellation, and overwrites it when the merchant pushes a new count. stockcast's job is
to keep these counters honest across rooms, so the simulator must behave the same way,
including the oversell that happens when two rooms both show the last unit.

A ``LiveRoom`` is shared by the HTTP server (pushes in) and the buyer generator (orders
out) on one event loop. No method awaits, so every check-and-change is atomic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TypedDict


@dataclass(frozen=True, slots=True)
class RoomCounters:
    """What happened in one room so far; a snapshot, not a live view."""

    orders_placed: int = 0
    orders_refused_sold_out: int = 0
    orders_cancelled: int = 0
    pushes_applied: int = 0
    pushes_stale: int = 0


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

    Invariants: a displayed count is never negative; the applied version of a SKU only
    grows, so a stale push can never undo a newer one.
    """

    def __init__(
        self, channel: str, platform: str, displayed: Mapping[str, int] | None = None
    ) -> None:
        self._channel = channel
        self._platform = platform
        self._listings: dict[str, _Listing] = {}
        for sku, quantity in (displayed or {}).items():
            _check_quantity(quantity, "displayed count")
            self._listings[sku] = _Listing(quantity)
        self._placed = 0
        self._refused = 0
        self._cancelled = 0
        self._applied = 0
        self._stale = 0

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
