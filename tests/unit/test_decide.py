"""The ledger and the allocation in one step: which events move quotas, and only once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sync_worker.domain.allocation import AllocationPolicy, ChannelRule, PolicyKind
from sync_worker.domain.decide import Decided, Policies, decide
from sync_worker.domain.events import SkuEvent
from sync_worker.domain.position import SkuPosition
from sync_worker.domain.records import Record
from sync_worker.streaming.state import record_key

if TYPE_CHECKING:
    from tests.unit.conftest import EventFactory

ROOM = "tiktok-room-1"
POLICIES = Policies(
    allocation=AllocationPolicy(
        kind=PolicyKind.SHARED_POOL, channels=(ChannelRule(ROOM),), lease_units=4
    )
)


class Books:
    """A SKU's stored state, fed one event at a time like the ledger agent does."""

    def __init__(self) -> None:
        self.position = SkuPosition("lipstick")
        self.records: dict[bytes, Record] = {}
        self.seq = 0

    def feed(self, event: SkuEvent, *, seq: int | None = None) -> Decided:
        if seq is None:
            self.seq += 1
            seq = self.seq
        key = record_key(event)
        decided = decide(seq, self.position, self.records.get(key), event, POLICIES)
        self.position = decided.step.position
        if decided.step.record is not None:
            self.records[key] = decided.step.record
        return decided

    def quota(self) -> int:
        channel = self.position.allocation.channel(ROOM)
        return 0 if channel is None else channel.quota


def deltas(decided: Decided) -> list[int]:
    return [change.delta for change in decided.quota_changes]


def test_the_first_stock_grants_the_channel_its_lease(events: EventFactory) -> None:
    books = Books()

    decided = books.feed(events.received(100))

    assert deltas(decided) == [4]
    (change,) = decided.quota_changes
    assert (change.sku, change.channel, change.quota, change.version) == ("lipstick", ROOM, 4, 1)
    assert change.cause_event_id == decided.step.audit.event_id  # type: ignore[union-attr]


def test_an_accepted_sale_takes_units_off_the_channel_a_duplicate_does_not(
    events: EventFactory,
) -> None:
    books = Books()
    books.feed(events.received(100))

    books.feed(events.placed(quantity=1))
    assert books.quota() == 3
    decided = books.feed(events.placed(quantity=1))  # the same line again

    assert books.quota() == 3
    assert decided.quota_changes == ()


def test_a_rejected_sale_moves_no_quota(events: EventFactory) -> None:
    books = Books()
    books.feed(events.received(3))

    decided = books.feed(events.placed(quantity=9))

    assert decided.step.decision is not None
    assert decided.step.decision.outcome == "rejected"
    assert decided.quota_changes == ()
    assert books.quota() == 3


def test_a_cancellation_gives_the_units_back_to_the_channel(events: EventFactory) -> None:
    books = Books()
    books.feed(events.received(100))
    books.feed(events.placed(quantity=3))  # 4 - 3 = 1: topped up to the lease again
    before = books.quota()

    books.feed(events.cancelled())

    assert books.quota() == before + 3


def test_a_redelivered_event_moves_nothing_again(events: EventFactory) -> None:
    books = Books()
    books.feed(events.received(100))
    placed = events.placed(quantity=1)
    books.feed(placed)
    version = books.position.allocation.version

    again = books.feed(placed, seq=books.seq)  # read again after a crash

    assert again.replayed
    assert again.quota_changes == ()
    assert books.position.allocation.version == version


def test_an_allocation_event_applies_once_per_event_id(events: EventFactory) -> None:
    books = Books()
    books.feed(events.received(100))
    pin = events.isolated(50)

    first = books.feed(pin)
    second = books.feed(pin)  # a new delivery of the same event id

    assert deltas(first) == [46]
    assert second.quota_changes == ()
    assert books.quota() == 50


def test_a_settlement_frees_the_units_the_platform_really_gave_back(
    events: EventFactory,
) -> None:
    books = Books()
    books.feed(events.received(100))
    books.feed(events.isolated(50))
    ended = books.feed(events.isolation_ended())
    (reclaim,) = ended.quota_changes
    assert (reclaim.delta, reclaim.quota) == (-46, 4)  # back to the policy's lease

    decided = books.feed(events.settled(version=reclaim.version, requested=46, applied=43))

    channel = books.position.allocation.channel(ROOM)
    assert channel is not None
    assert (channel.out, channel.reclaiming) == (7, 0)
    assert decided.quota_changes == ()  # 3 of them were sold meanwhile, we will hear of it
