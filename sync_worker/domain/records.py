"""What the ledger remembers per order line and per stock movement, so that a
redelivered or out-of-order event is answered deterministically and never applied twice."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sync_worker.domain.events import Outcome, RejectReason


class LineStatus(StrEnum):
    """Where an order line is in its life. Events move it forward only; an event whose
    step the line has already passed changes nothing."""

    PENDING = "pending"
    """Seen only through events that may precede the placement (paid, shipment parts)."""
    ACCEPTED = "accepted"
    PAID = "paid"
    SHIPPED = "shipped"
    RETURN_PENDING = "return_pending"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


HOLDS_STOCK = frozenset({LineStatus.ACCEPTED, LineStatus.PAID})
"""Statuses in which the line's units are part of ``committed``."""

SHIPPED_OR_LATER = frozenset({LineStatus.SHIPPED, LineStatus.RETURN_PENDING, LineStatus.RETURNED})


@dataclass(frozen=True, slots=True)
class LineRecord:
    """One order line. ``quantity`` is what it holds of ``committed`` while it holds stock;
    ``placed`` is the answer given to its placement (None until the placement arrives)."""

    status: LineStatus
    quantity: int = 0
    placed: Outcome | None = None
    reason: RejectReason | None = None
    paid: bool = False
    shipments: tuple[str, ...] = ()
    """Event ids of the shipments applied (a line may ship in parts)."""
    shipped: int = 0
    """Units shipped while the line was ``PENDING`` (its placement not seen yet): the late
    placement commits only the rest. 0 once the placement arrived."""
    session_id: str | None = None
    """The live session whose cap or buyer limit this line counts against."""
    buyer: str | None = None
    """The normalised buyer, when the session limits what one buyer may buy."""
    seq: int = -1
    previous: LineRecord | None = None
    """The record before the event at ``seq`` (one level only): lets a replay after a
    crash recompute that event exactly (see ``domain.replay``)."""


@dataclass(frozen=True, slots=True)
class MovementRecord:
    """A stock movement already applied: its presence makes a redelivery a no-op."""

    seq: int = -1


@dataclass(frozen=True, slots=True)
class BuyerRecord:
    """What one buyer holds of a SKU in one session (accepted, not cancelled). Shared by
    the buyer's lines, so it carries its own replay stamp like a line record."""

    units: int = 0
    seq: int = -1
    previous: int = 0
    """``units`` before the event at ``seq``."""


Record = LineRecord | MovementRecord
