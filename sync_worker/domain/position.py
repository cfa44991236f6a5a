"""One SKU's stock in the quantity states users know from Shopify and ERPs.

Per warehouse: on hand, of which unavailable (damaged, quality hold), returns pending
inspection, and incoming batches. Per SKU: committed (accepted, not yet shipped) and
the safety reserve. Derived: ``sellable = on hand - committed - reserve - unavailable``,
never negative.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import ceil

from sync_worker.domain.allocation import Allocation
from sync_worker.domain.sessions import SkuSession, with_hold


@dataclass(frozen=True, slots=True)
class IncomingBatch:
    batch_id: str
    warehouse: str
    quantity: int
    eta_ms: int


@dataclass(frozen=True, slots=True)
class WarehouseStock:
    on_hand: int = 0
    unavailable: int = 0
    returns_pending: int = 0


@dataclass(frozen=True, slots=True)
class SafetyReserve:
    """Units kept back from sale: ``units``, or ``percent`` of on hand, whichever is larger."""

    units: int = 0
    percent: int = 0

    def of(self, on_hand: int) -> int:
        return max(self.units, ceil(max(0, on_hand) * self.percent / 100))


@dataclass(frozen=True, slots=True)
class SkuPosition:
    """The SKU's books. ``known`` turns true with its first stock event: orders for a SKU
        nobody has counted are rejected rather than sold against zero. ``seq`` is the input
        sequence number of the last event applied (see ``domain.replay``). The allocation
    lives here so that the replay guard covers it like every other quantity."""

    sku: str
    warehouses: tuple[tuple[str, WarehouseStock], ...] = ()
    committed: int = 0
    reserve: SafetyReserve = SafetyReserve()
    incoming: tuple[IncomingBatch, ...] = ()
    version: int = 0
    known: bool = False
    seq: int = -1
    allocation: Allocation = Allocation()
    """How sellable is split into channel quotas (``domain.allocation``)."""
    sessions: tuple[SkuSession, ...] = ()
    """Live sessions selling the SKU now, with their rules (``domain.sessions``)."""

    def session_for(self, channel: str) -> SkuSession | None:
        """The session selling the SKU in ``channel``, if any (a room is in at most one)."""
        for session in self.sessions:
            if channel in session.channels:
                return session
        return None

    def session(self, session_id: str) -> SkuSession | None:
        for session in self.sessions:
            if session.session_id == session_id:
                return session
        return None

    def with_session(self, session: SkuSession) -> SkuPosition:
        return replace(self, sessions=with_hold(self.sessions, session))

    # Every quantity is derived from the warehouses on each read (nothing is cached in the
    # position: its fields are its stored form). The reads below each walk the warehouses
    # once; ``quantities()`` walks them once for all.

    @property
    def on_hand(self) -> int:
        return sum(stock.on_hand for _, stock in self.warehouses)

    @property
    def unavailable(self) -> int:
        return sum(stock.unavailable for _, stock in self.warehouses)

    @property
    def returns_pending(self) -> int:
        return sum(stock.returns_pending for _, stock in self.warehouses)

    @property
    def incoming_units(self) -> int:
        return sum(batch.quantity for batch in self.incoming)

    @property
    def safety_reserve(self) -> int:
        return self.reserve.of(self.on_hand)

    @property
    def sellable(self) -> int:
        return max(0, self._committable() - self.committed)

    @property
    def transferable(self) -> int:
        """Units that could leave for another warehouse or channel without breaking a
        commitment or the reserve: the sellable units."""
        return self.sellable

    @property
    def oversold(self) -> int:
        """Units committed beyond what can be sold; the ledger never accepts into this."""
        return max(0, self.committed - self._committable())

    def _committable(self) -> int:
        """What commitments may take: on hand less the reserve and the unavailable units."""
        on_hand = unavailable = 0
        for _, stock in self.warehouses:
            on_hand += stock.on_hand
            unavailable += stock.unavailable
        return on_hand - self.reserve.of(on_hand) - unavailable

    def warehouse(self, name: str) -> WarehouseStock:
        for warehouse, stock in self.warehouses:
            if warehouse == name:
                return stock
        return WarehouseStock()

    def with_warehouse(self, name: str, stock: WarehouseStock) -> SkuPosition:
        others = tuple((w, s) for w, s in self.warehouses if w != name)
        return replace(self, warehouses=tuple(sorted((*others, (name, stock)))))

    def quantities(self) -> dict[str, int]:
        """Every quantity state by name, as shown to people and in audit records."""
        on_hand = unavailable = returns_pending = 0
        for _, stock in self.warehouses:
            on_hand += stock.on_hand
            unavailable += stock.unavailable
            returns_pending += stock.returns_pending
        reserve = self.reserve.of(on_hand)
        sellable = max(0, on_hand - self.committed - reserve - unavailable)
        return {
            "on_hand": on_hand,
            "committed": self.committed,
            "safety_reserve": reserve,
            "unavailable": unavailable,
            "returns_pending": returns_pending,
            "incoming": self.incoming_units,
            "sellable": sellable,
            "transferable": sellable,
        }
