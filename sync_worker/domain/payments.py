"""The payment clock: accepted order lines left unpaid go back to the pool when their
platform's payment window lapses.

Pure: it is told what was decided and what time it is, and answers with the
``order_line.cancelled`` events (reason ``unpaid_timeout``) to send. It reads only the
ledger's decisions, never payments: a line paid in time still fires at its deadline,
and the ledger ignores that cancellation (the payment beat the clock, docs/ledger.md).
That costs one event per paid line of a timed platform; learning of payments would
mean reading every SKU event, and nothing cheaper tells the clock a line was paid.

A line's deadline is its placement's event time plus the platform's window, not the
time stockcast heard of it: the platform's own window runs from the order, and a
decision read again after a restart gets the very same deadline, so a backlog or a
restart never holds units longer than the platform would.

Fired lines may fire again (after a restart, or a decision delivered twice): the event
is identical, its id derived from the line alone, and the ledger answers it as a no-op.
What must never happen is a line that never fires, hence ``safe_offsets``.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sync_worker.domain.events import OrderLineCancelled, OrderLineDecided, Outcome
from sync_worker.domain.ledger import UNPAID_TIMEOUT

_Offset = tuple[int, int]
"""(partition, offset) of a decision in its topic."""


def unpaid_event_id(line_key: str) -> str:
    """The same line always gets the same id, so a re-fired release is a duplicate."""
    return f"{UNPAID_TIMEOUT}:{hashlib.sha256(line_key.encode()).hexdigest()}"


@dataclass(frozen=True, slots=True)
class _Held:
    decision: OrderLineDecided
    deadline_ms: int


class PaymentClock:
    """Holds the accepted lines of platforms with a payment window until it lapses.

    ``windows_ms`` maps a platform (as order events name it) to its window; lines of
    other platforms are never held. Memory grows with the lines read within the longest
    window, not with history: a line is dropped once it fires.
    """

    def __init__(self, windows_ms: Mapping[str, int]) -> None:
        self._windows_ms = dict(windows_ms)
        self._held: dict[_Offset, _Held] = {}
        self._held_line: dict[str, _Offset] = {}
        self._deadlines: list[tuple[int, int, int]] = []
        """Min-heap of (deadline, partition, offset); entries of fired lines are skipped."""
        self._unfired: dict[int, list[int]] = {}
        """Per partition, a min-heap of held offsets; fired ones are skipped lazily."""
        self._read_to: dict[int, int] = {}
        """Per partition, the offset after the highest one read."""

    def __len__(self) -> int:
        """Lines held now."""
        return len(self._held)

    def accept(self, decision: OrderLineDecided, partition: int, offset: int) -> None:
        """Reads one decision at ``(partition, offset)``. Every decision read must be
        given, held or not, so that ``safe_offsets`` can move past it. Only an accepted
        placement holds units: a duplicate's first acceptance was read already."""
        self._read(partition, offset)
        window_ms = self._windows_ms.get(decision.platform)
        if decision.outcome is not Outcome.ACCEPTED or window_ms is None:
            return
        if decision.line_key in self._held_line:
            return  # the same acceptance delivered twice: the first copy is held
        deadline_ms = decision.event_time_ms + window_ms
        self._held[partition, offset] = _Held(decision, deadline_ms)
        self._held_line[decision.line_key] = (partition, offset)
        heapq.heappush(self._deadlines, (deadline_ms, partition, offset))
        heapq.heappush(self._unfired.setdefault(partition, []), offset)

    def skip(self, partition: int, offset: int) -> None:
        """Reads a record that holds no line (e.g. one that could not be decoded)."""
        self._read(partition, offset)

    def next_deadline_ms(self) -> int | None:
        """When the earliest held line lapses; None when none is held."""
        while self._deadlines and self._deadlines[0][1:] not in self._held:
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

    def due(self, now_ms: int) -> list[OrderLineCancelled]:
        """Releases every held line whose deadline is at or before ``now_ms``, earliest
        first. They count as fired from here on: send them before committing."""
        released = []
        while self._deadlines and self._deadlines[0][0] <= now_ms:
            _, partition, offset = heapq.heappop(self._deadlines)
            held = self._held.pop((partition, offset), None)
            if held is None:
                continue  # fired already, or its partition was forgotten
            del self._held_line[held.decision.line_key]
            released.append(_release(held))
        return released

    def safe_offsets(self) -> dict[int, int]:
        """Per partition read, the offset a consumer may commit: the lowest one still
        held, or past everything read. Reading again from there finds every line not
        fired yet (and perhaps some that fired, which is harmless)."""
        safe = {}
        for partition, read_to in self._read_to.items():
            unfired = self._unfired.get(partition, [])
            while unfired and (partition, unfired[0]) not in self._held:
                heapq.heappop(unfired)
            safe[partition] = unfired[0] if unfired else read_to
        return safe

    def forget(self, partitions: Iterable[int]) -> None:
        """Drops everything read from ``partitions`` (their consumer lost them): whoever
        reads them next starts from the committed safe offset and holds them again."""
        for partition in partitions:
            for offset in self._unfired.pop(partition, []):
                held = self._held.pop((partition, offset), None)
                if held is not None:
                    del self._held_line[held.decision.line_key]
            self._read_to.pop(partition, None)

    def _read(self, partition: int, offset: int) -> None:
        self._read_to[partition] = max(self._read_to.get(partition, 0), offset + 1)


def _release(held: _Held) -> OrderLineCancelled:
    decision = held.decision
    return OrderLineCancelled(
        event_id=unpaid_event_id(decision.line_key),
        sku=decision.sku,
        event_time_ms=held.deadline_ms,
        platform=decision.platform,
        channel=decision.channel,
        order_id=decision.order_id,
        line_id=decision.line_id,
        reason=UNPAID_TIMEOUT,
    )
