"""All-or-nothing multi-line orders: ``on_decision(tally, decision) -> Settled``.

An order's lines are different SKUs, decided on different partitions. Their answers
are gathered per order (the runtime re-keys decisions by order); as soon as one
line is rejected, every accepted line of that order is released, and a line
accepted after that is released at once. So the buyer gets all of the order or
none of it. Channels may opt out (partial fulfilment).

Deterministic and idempotent: a repeated answer changes nothing, and released
lines carry event ids derived from the order, so the ledger never releases a line
twice. After a crash, an answer at or below the tally's ``seq`` was taken in
already: its releases are issued again (they may not have left before the crash).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

from sync_worker.domain.events import (
    CancellationRequested,
    OrderLineCancelled,
    OrderLineDecided,
    Outcome,
    RejectReason,
    line_identity,
    line_key,
)

ORDER_INCOMPLETE = "order_incomplete"


@dataclass(frozen=True, slots=True)
class OrderPolicy:
    """Orders are all-or-nothing unless their channel is listed as partial."""

    partial_channels: frozenset[str] = frozenset()

    def all_or_nothing(self, channel: str) -> bool:
        return channel not in self.partial_channels


@dataclass(frozen=True, slots=True)
class AcceptedLine:
    sku: str
    line_id: str


@dataclass(frozen=True, slots=True)
class OrderTally:
    """What is known of one order so far."""

    line_count: int
    decided: tuple[str, ...] = ()
    """Line ids answered so far, sorted."""
    accepted: tuple[AcceptedLine, ...] = ()
    released: tuple[AcceptedLine, ...] = ()
    failed: bool = False
    seq: int = -1

    @property
    def complete(self) -> bool:
        return len(self.decided) >= self.line_count


@dataclass(frozen=True, slots=True)
class Settled:
    """The new tally (None: nothing to keep) and the lines to release: a cancellation
    for the ledger and a cancellation request for the platform."""

    tally: OrderTally | None
    releases: tuple[OrderLineCancelled, ...] = ()
    requests: tuple[CancellationRequested, ...] = ()


ALL_OR_NOTHING = OrderPolicy()


def order_key(platform: str, order_id: str) -> str:
    return f"{len(platform)}:{platform}{order_id}"


def on_decision(
    seq: int,
    tally: OrderTally | None,
    decision: OrderLineDecided,
    policy: OrderPolicy = ALL_OR_NOTHING,
) -> Settled:
    """Take the answer at ``seq`` (its position in the re-keyed stream) into its tally."""
    if decision.order_line_count <= 1 or not policy.all_or_nothing(decision.channel):
        return Settled(tally)  # nothing to wait for
    if tally is not None and seq <= tally.seq:
        return _settled(tally, decision, tally.released)  # replayed: release again
    current = tally or OrderTally(line_count=decision.order_line_count)
    if decision.outcome is Outcome.DUPLICATE or decision.line_id in current.decided:
        return Settled(tally)
    decided = tuple(sorted((*current.decided, decision.line_id)))
    line = AcceptedLine(decision.sku, decision.line_id)
    if decision.outcome is Outcome.ACCEPTED and not current.failed:
        releasing: tuple[AcceptedLine, ...] = ()
        current = replace(current, decided=decided, accepted=(*current.accepted, line))
    elif decision.outcome is Outcome.ACCEPTED:  # the order failed already
        releasing = (line,)
    else:  # rejected: the whole order fails, release what was taken
        releasing = current.accepted
    if releasing or decision.outcome is not Outcome.ACCEPTED:
        current = replace(
            current,
            decided=decided,
            accepted=(),
            released=(*current.released, *releasing),
            failed=True,
        )
    current = replace(current, seq=seq)
    # A fulfilled order is forgotten; a failed one is kept, so that a replay after a
    # crash can issue its releases again even when its earlier answers are committed.
    forget = current.complete and not current.failed
    return _settled(None if forget else current, decision, releasing)


def _settled(
    kept: OrderTally | None, decision: OrderLineDecided, releasing: tuple[AcceptedLine, ...]
) -> Settled:
    return Settled(
        kept,
        tuple(_release(decision, line) for line in releasing),
        tuple(_request(decision, line) for line in releasing),
    )


def _release_id(decision: OrderLineDecided, line: AcceptedLine) -> str:
    """Deterministic (a replay releases the same event) and short whatever the ids."""
    identity = line_key(decision.platform, decision.order_id, line.line_id).encode()
    return f"{ORDER_INCOMPLETE}:{hashlib.sha256(identity).hexdigest()}"


def _about(decision: OrderLineDecided, line: AcceptedLine) -> dict[str, Any]:
    """The identity of a released line: the order's, with that line's SKU and id."""
    return {
        **line_identity(decision),
        "event_id": _release_id(decision, line),
        "sku": line.sku,
        "line_id": line.line_id,
    }


def _release(decision: OrderLineDecided, line: AcceptedLine) -> OrderLineCancelled:
    return OrderLineCancelled(**_about(decision, line), reason=ORDER_INCOMPLETE)


def _request(decision: OrderLineDecided, line: AcceptedLine) -> CancellationRequested:
    return CancellationRequested(**_about(decision, line), reason=RejectReason.ORDER_INCOMPLETE)
