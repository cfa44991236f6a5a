"""Reading and compare-and-swap writing of ``available`` counts over GraphQL.

Shopify sells on its own while stockcast writes, so a write is ``inventorySetQuantities``
of ``read + delta`` guarded by ``changeFromQuantity: read``: when buyers took units in
between, the platform answers ``CHANGE_FROM_QUANTITY_STALE`` and the write is recomputed
from a fresh read, with a fresh ``@idempotent`` key (a reused key with another payload is
refused).

Retries of one ``StockUpdate`` must apply once. The first send of an update pins the
``(changeFrom, target)`` pair it used (per ``idempotency_key``, in memory) and every retry
resends exactly that pair under exactly that key: if the earlier send landed and only its
answer was lost, Shopify replays the earlier result instead of applying it again. Should
the resend answer STALE anyway (the platform no longer remembers the key), a fresh read
equal to the pinned target is taken as the earlier send having landed. The pins live in
this process only: a retry after a restart re-reads, and drift repair settles the rest.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from connectors.base import PushResult, Rejected, StockUpdate, TransientError
from connectors.shopify import api
from connectors.shopify.client import AdminClient
from connectors.shopify.listings import Listing
from connectors.shopify.wire import (
    InvalidAnswer,
    SetAnswer,
    decode_levels,
    decode_set,
    encode_levels_query,
    encode_set,
    idempotency_key,
)

DEFAULT_CAS_ATTEMPTS: Final = 5
"""Sets per write; each STALE means buyers took units between the read and the set."""
PINS_KEPT: Final = 10_000
"""Updates whose pinned write is remembered; far more than are ever retried at once."""
REFERENCE_PREFIX: Final = "gid://stockcast/StockUpdate/"

_REREAD_CODES: Final = frozenset(
    {api.CHANGE_FROM_QUANTITY_STALE, api.IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED}
)
_RETRYABLE_CODES: Final = frozenset({api.IDEMPOTENCY_CONCURRENT_REQUEST})

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Pin:
    """The read a write was computed from and the count it sets."""

    change_from: int
    target: int


class AvailableCounts:
    """Reads and writes the ``available`` quantity of listed inventory items."""

    def __init__(self, client: AdminClient, *, cas_attempts: int = DEFAULT_CAS_ATTEMPTS) -> None:
        if cas_attempts < 1:
            raise ValueError(f"cas_attempts must be at least 1, got {cas_attempts}")
        self._client = client
        self._attempts = cas_attempts
        self._pins: OrderedDict[str, _Pin] = OrderedDict()

    async def read(self, listings: Iterable[Listing]) -> dict[Listing, int]:
        """Counts of ``listings``, one query per location and 250 items; items the shop does
        not know or does not stock at the location are left out."""
        by_location: dict[str, list[Listing]] = {}
        for listing in listings:
            by_location.setdefault(listing.location_id, []).append(listing)
        counts = {}
        for group in by_location.values():
            for start in range(0, len(group), api.MAX_INPUT_ITEMS):
                chunk = group[start : start + api.MAX_INPUT_ITEMS]
                levels = await self._levels(chunk)
                for listing in chunk:
                    count = levels.get(listing.item_gid)
                    if count is not None:
                        counts[listing] = count
        return counts

    async def compare_and_swap(self, update: StockUpdate, listing: Listing) -> PushResult:
        pin = self._pins.get(update.idempotency_key)
        is_retry = pin is not None
        if pin is None:
            current = await self._read_one(listing)
            pin = _Pin(current, max(0, current + update.delta))
        for attempt in range(self._attempts):
            if pin.target == pin.change_from:
                return PushResult(applied=0, displayed=pin.target)
            self._remember(update.idempotency_key, pin)
            answer = await self._set(update, listing, pin)
            codes = {error.code for error in answer.user_errors}
            if not codes:
                after = pin.target if answer.quantity_after is None else answer.quantity_after
                return PushResult(pin.target - pin.change_from, after)
            if codes - _REREAD_CODES:
                raise _user_error(update.sku, answer)
            current = await self._read_one(listing)
            if is_retry and attempt == 0 and current == pin.target:
                log.info("shopify write of %s pinned earlier had landed", update.sku)
                return PushResult(pin.target - pin.change_from, current)
            pin = _Pin(current, max(0, current + update.delta))
        raise TransientError(
            f"shopify count of {update.sku} kept changing over {self._attempts} tries"
        )

    async def _set(self, update: StockUpdate, listing: Listing, pin: _Pin) -> SetAnswer:
        body = encode_set(
            item_gid=listing.item_gid,
            location_gid=listing.location_gid,
            target=pin.target,
            change_from=pin.change_from,
            key=idempotency_key(
                update.idempotency_key, listing.item_gid, pin.change_from, pin.target
            ),
            reference=REFERENCE_PREFIX + quote(update.idempotency_key, safe=""),
        )
        data = await self._client.graphql(body)
        try:
            return decode_set(data)
        except InvalidAnswer as exc:
            raise TransientError(f"shopify answered an unreadable set: {exc}") from exc

    async def _read_one(self, listing: Listing) -> int:
        levels = await self._levels([listing])
        if listing.item_gid not in levels:
            raise Rejected(f"shopify knows no inventory item {listing.item_id}")
        count = levels[listing.item_gid]
        if count is None:
            raise Rejected(
                f"inventory item {listing.item_id} is not stocked at location {listing.location_id}"
            )
        return count

    async def _levels(self, listings: list[Listing]) -> Mapping[str, int | None]:
        body = encode_levels_query(
            [listing.item_gid for listing in listings], listings[0].location_gid
        )
        data = await self._client.graphql(body)
        try:
            return decode_levels(data)
        except InvalidAnswer as exc:
            raise TransientError(f"shopify answered unreadable levels: {exc}") from exc

    def _remember(self, key: str, pin: _Pin) -> None:
        self._pins[key] = pin
        self._pins.move_to_end(key)
        while len(self._pins) > PINS_KEPT:
            self._pins.popitem(last=False)


def _user_error(sku: str, answer: SetAnswer) -> Rejected | TransientError:
    detail = "; ".join(f"{error.code}: {error.message}" for error in answer.user_errors)
    codes = {error.code for error in answer.user_errors}
    if codes <= _RETRYABLE_CODES | _REREAD_CODES:
        return TransientError(f"shopify could not set {sku} yet: {detail}")
    return Rejected(f"shopify refused to set {sku}: {detail}")
