"""A live session's rules on a SKU, each at its boundary, through ``decide()``: regions,
the session cap, the buyer's limit, in that order, then the stock. Buyer holdings are
threaded the way the ledger agent threads them: loaded by ``buyer_slot`` before the
step, stored from ``step.buyer`` after it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from sync_worker.domain import sessions
from sync_worker.domain.decide import Decided
from sync_worker.domain.events import (
    CancellationRequested,
    OrderLinePlaced,
    Outcome,
    RejectReason,
)
from sync_worker.domain.ledger import UNPAID_TIMEOUT, buyer_slot
from sync_worker.domain.records import BuyerRecord
from sync_worker.domain.sessions import SkuSession
from sync_worker.streaming.state import record_key
from tests.unit.conftest import Books

if TYPE_CHECKING:
    from tests.unit.conftest import EventFactory

ROOM = "tiktok-room-1"
OTHER_ROOM = "douyin-room-1"
SHOP = "shopify-store"
"""A channel outside the session: its orders obey no session rule."""
PLATFORM = {ROOM: "tiktok", "tiktok-room-2": "tiktok", OTHER_ROOM: "douyin", SHOP: "shopify"}


@pytest.fixture
def books(events: EventFactory) -> Books:
    """100 units received, no session yet."""
    books = Books()
    books.feed(events.received(100))
    return books


class Orders:
    """Placements with a fresh line each, in the session's room unless told otherwise."""

    def __init__(self, events: EventFactory) -> None:
        self.events = events
        self.lines = 0

    def __call__(
        self,
        quantity: int = 1,
        *,
        channel: str = ROOM,
        buyer_id: str = "buyer-1",
        region: str | None = None,
        platform: str | None = None,
    ) -> OrderLinePlaced:
        self.lines += 1
        return self.events.placed(
            quantity=quantity,
            line_id=f"l-{self.lines}",
            channel=channel,
            platform=platform or PLATFORM[channel],
            buyer_id=buyer_id,
            region=region,
        )


@pytest.fixture
def order(events: EventFactory) -> Orders:
    return Orders(events)


def outcome(decided: Decided) -> tuple[Outcome, RejectReason | None]:
    decision = decided.step.decision
    assert decision is not None
    return decision.outcome, decision.reason


ACCEPTED = (Outcome.ACCEPTED, None)


def full_width(text: str) -> str:
    """ASCII in its full-width forms, as a CJK keyboard may type it: NFKC maps it back."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def rejected(reason: RejectReason) -> tuple[Outcome, RejectReason]:
    return Outcome.REJECTED, reason


# --- the session cap --------------------------------------------------------------------


def test_orders_that_fill_the_cap_exactly_are_accepted(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(cap=5))

    assert outcome(books.feed(order(3))) == ACCEPTED
    assert outcome(books.feed(order(2))) == ACCEPTED
    assert books.session().sold == 5
    assert books.position.committed == 5


def test_one_unit_over_the_cap_is_rejected_and_nothing_is_committed(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(cap=5))
    books.feed(order(4))

    over = books.feed(order(2))

    assert outcome(over) == rejected(RejectReason.SESSION_CAP_REACHED)
    assert (books.session().sold, books.position.committed) == (4, 4)
    assert over.step.level is None  # no stock moved
    assert outcome(books.feed(order(1))) == ACCEPTED  # the cap counts units, not lines


def test_the_cap_counts_every_room_of_the_session_together(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(cap=3, channels=(ROOM, OTHER_ROOM)))
    books.feed(order(2, channel=ROOM))
    books.feed(order(1, channel=OTHER_ROOM))

    assert outcome(books.feed(order(1, channel=ROOM))) == rejected(RejectReason.SESSION_CAP_REACHED)
    assert outcome(books.feed(order(1, channel=OTHER_ROOM))) == rejected(
        RejectReason.SESSION_CAP_REACHED
    )


def test_a_cap_of_zero_refuses_the_first_unit(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(cap=0))

    assert outcome(books.feed(order(1))) == rejected(RejectReason.SESSION_CAP_REACHED)


def test_a_session_without_a_cap_sells_until_the_stock_runs_out(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened())

    assert outcome(books.feed(order(100))) == ACCEPTED
    assert outcome(books.feed(order(1))) == rejected(RejectReason.INSUFFICIENT_STOCK)
    assert books.session().sold == 100


def test_each_session_has_its_own_cap(books: Books, events: EventFactory, order: Orders) -> None:
    books.feed(events.session_opened(session_id="s-1", cap=1, channels=(ROOM,)))
    books.feed(events.session_opened(session_id="s-2", cap=2, channels=(OTHER_ROOM,)))

    assert outcome(books.feed(order(1, channel=ROOM))) == ACCEPTED
    assert outcome(books.feed(order(2, channel=OTHER_ROOM))) == ACCEPTED
    assert (books.session("s-1").sold, books.session("s-2").sold) == (1, 2)


# --- the buyer's limit ------------------------------------------------------------------


def test_a_buyer_may_buy_exactly_the_limit_and_not_one_unit_more(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(buyer_limit=2))

    assert outcome(books.feed(order(1))) == ACCEPTED
    assert outcome(books.feed(order(1))) == ACCEPTED
    assert books.holding("buyer-1") == 2

    assert outcome(books.feed(order(1))) == rejected(RejectReason.BUYER_LIMIT_REACHED)
    assert books.holding("buyer-1") == 2
    assert books.position.committed == 2


def test_one_order_above_the_limit_is_refused_whole(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(buyer_limit=2))

    assert outcome(books.feed(order(3))) == rejected(RejectReason.BUYER_LIMIT_REACHED)
    assert books.holding("buyer-1") == 0
    assert outcome(books.feed(order(2))) == ACCEPTED


def test_another_buyer_has_a_limit_of_their_own(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(buyer_limit=1))
    books.feed(order(1, buyer_id="ann"))

    assert outcome(books.feed(order(1, buyer_id="bob"))) == ACCEPTED


@pytest.mark.parametrize(
    ("first", "again"),
    [
        pytest.param("Ann@Example.com", "ann@example.com", id="case"),
        pytest.param("  buyer-7\t", "buyer-7", id="whitespace"),
        pytest.param("ann+live@example.com", "ann@example.com", id="email-tag"),
        pytest.param("ANN+Promo@Example.COM", "ann+other@example.com", id="tag-and-case"),
        pytest.param(full_width("buyer-7"), "buyer-7", id="full-width"),
        pytest.param("STRASSE", "straße", id="casefold"),
    ],
)
def test_one_buyer_however_the_platform_spells_them_shares_one_limit(
    books: Books, events: EventFactory, order: Orders, first: str, again: str
) -> None:
    books.feed(events.session_opened(buyer_limit=1))
    assert outcome(books.feed(order(1, buyer_id=first))) == ACCEPTED

    assert outcome(books.feed(order(1, buyer_id=again))) == rejected(
        RejectReason.BUYER_LIMIT_REACHED
    )


def test_a_plus_sign_outside_an_email_address_is_part_of_the_id(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(buyer_limit=1))
    books.feed(order(1, buyer_id="ann+1"))

    assert outcome(books.feed(order(1, buyer_id="ann"))) == ACCEPTED


def test_the_same_id_on_different_platforms_is_two_buyers(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(buyer_limit=1, channels=(ROOM, OTHER_ROOM)))
    books.feed(order(1, channel=ROOM, buyer_id="ann@example.com"))

    assert outcome(books.feed(order(1, channel=OTHER_ROOM, buyer_id="ann@example.com"))) == ACCEPTED
    assert books.holding("ann@example.com", platform="tiktok") == 1
    assert books.holding("ann@example.com", platform="douyin") == 1


def test_one_buyer_shares_the_limit_across_the_sessions_rooms_on_one_platform(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(buyer_limit=1, channels=(ROOM, "tiktok-room-2")))
    books.feed(order(1, channel=ROOM))

    assert outcome(books.feed(order(1, channel="tiktok-room-2"))) == rejected(
        RejectReason.BUYER_LIMIT_REACHED
    )


def test_buyer_identities_are_scoped_by_platform_and_never_collide() -> None:
    assert sessions.buyer_identity("tiktok", "Ann+x@A.com") == "6:tiktok:ann@a.com"
    assert sessions.buyer_identity("a:b", "c") != sessions.buyer_identity("a", "b:c")


def test_a_redelivered_placement_does_not_count_twice_against_the_buyer(
    books: Books, events: EventFactory
) -> None:
    books.feed(events.session_opened(buyer_limit=2))
    placement = events.placed(quantity=1)
    books.feed(placement)

    again = books.feed(events.placed(quantity=1))  # the same line, a new delivery

    assert outcome(again) == (Outcome.DUPLICATE, None)
    assert again.step.buyer is None
    assert books.holding("buyer-1") == 1


# --- regions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allow", "deny", "region", "expected"),
    [
        pytest.param((), ("CN-65",), "CN-65", rejected(RejectReason.REGION_BLOCKED), id="denied"),
        pytest.param(
            (), ("cn-65",), " Cn-65 ", rejected(RejectReason.REGION_BLOCKED), id="deny-nc"
        ),
        pytest.param((), ("CN-65",), "CN-44", ACCEPTED, id="not-denied"),
        pytest.param((), ("CN-65",), None, ACCEPTED, id="deny-only-no-region"),
        pytest.param(("CN-44",), (), "CN-31", rejected(RejectReason.REGION_BLOCKED), id="unlisted"),
        pytest.param(("CN-44",), (), None, rejected(RejectReason.REGION_UNKNOWN), id="unknown"),
        pytest.param(("CN-44",), (), "", rejected(RejectReason.REGION_UNKNOWN), id="empty"),
        pytest.param(("CN-44",), (), "  ", rejected(RejectReason.REGION_UNKNOWN), id="blank"),
        pytest.param(("CN-44",), (), "CN-44", ACCEPTED, id="allowed"),
        pytest.param(("cn-44",), (), full_width("cn-44"), ACCEPTED, id="allowed-full-width"),
        pytest.param(
            ("CN-44",), ("CN-44",), "CN-44", rejected(RejectReason.REGION_BLOCKED), id="deny-wins"
        ),
    ],
)
def test_regions(
    books: Books,
    events: EventFactory,
    order: Orders,
    allow: tuple[str, ...],
    deny: tuple[str, ...],
    region: str | None,
    expected: tuple[Outcome, RejectReason | None],
) -> None:
    books.feed(events.session_opened(regions_allow=allow, regions_deny=deny))

    decided = books.feed(order(1, region=region))

    assert outcome(decided) == expected
    assert books.session().sold == (1 if expected == ACCEPTED else 0)


def test_region_lists_are_kept_normalised() -> None:
    assert sessions.normalise_region(f" {full_width('cn')}-gd ") == "CN-GD"


# --- which rule speaks first ------------------------------------------------------------


def test_a_region_refusal_comes_before_the_cap(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(cap=0, regions_deny=("CN-65",)))

    assert outcome(books.feed(order(1, region="CN-65"))) == rejected(RejectReason.REGION_BLOCKED)


def test_the_cap_comes_before_the_buyers_limit(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(cap=1, buyer_limit=1))

    assert outcome(books.feed(order(2))) == rejected(RejectReason.SESSION_CAP_REACHED)


def test_the_buyers_limit_comes_before_the_stock(events: EventFactory, order: Orders) -> None:
    books = Books()
    books.feed(events.received(1))
    books.feed(events.session_opened(buyer_limit=1))

    assert outcome(books.feed(order(2))) == rejected(RejectReason.BUYER_LIMIT_REACHED)


def test_the_stock_still_decides_within_the_rules(events: EventFactory, order: Orders) -> None:
    books = Books()
    books.feed(events.received(2))
    books.feed(events.session_opened(cap=10, buyer_limit=5))

    assert outcome(books.feed(order(3))) == rejected(RejectReason.INSUFFICIENT_STOCK)
    assert (books.session().sold, books.holding("buyer-1")) == (0, 0)


# --- each rejection names its reason, and so does the cancellation request ---------------


@pytest.mark.parametrize(
    ("reason", "quantity", "region"),
    [
        (RejectReason.REGION_BLOCKED, 1, "CN-65"),
        (RejectReason.REGION_UNKNOWN, 1, None),
        (RejectReason.SESSION_CAP_REACHED, 4, "CN-44"),
        (RejectReason.BUYER_LIMIT_REACHED, 3, "CN-44"),
    ],
)
def test_a_refused_line_is_answered_with_its_reason_and_cancelled_on_its_platform(
    books: Books,
    events: EventFactory,
    reason: RejectReason,
    quantity: int,
    region: str | None,
) -> None:
    books.feed(
        events.session_opened(
            cap=3, buyer_limit=2, regions_allow=("CN-44", "CN-65"), regions_deny=("CN-65",)
        )
    )
    placement = events.placed(quantity=quantity, region=region, order_id="o-9", line_id="l-9")

    decided = books.feed(placement)

    decision = decided.step.decision
    assert decision is not None
    assert (decision.outcome, decision.reason) == (Outcome.REJECTED, reason)
    assert (decision.order_id, decision.line_id, decision.quantity) == (
        "o-9",
        "l-9",
        placement.quantity,
    )
    assert decided.step.cancellation == CancellationRequested(
        event_id=placement.event_id,
        sku="lipstick",
        event_time_ms=placement.event_time_ms,
        platform="tiktok",
        channel=ROOM,
        order_id="o-9",
        line_id="l-9",
        reason=reason,
    )
    assert decided.step.level is None
    assert decided.step.buyer is None
    assert books.line(placement).reason is reason
    # a redelivery is answered the same way, as a duplicate of a rejection
    again = books.feed(events.placed(quantity=placement.quantity, order_id="o-9", line_id="l-9"))
    assert again.step.decision is not None
    assert (again.step.decision.original_outcome, again.step.decision.reason) == (
        Outcome.REJECTED,
        reason,
    )


# --- lines outside the session ----------------------------------------------------------


def test_a_line_outside_the_sessions_rooms_obeys_no_session_rule(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(cap=0, buyer_limit=1, regions_allow=("CN-44",)))

    placement = order(3, channel=SHOP, region="US-CA")
    decided = books.feed(placement)

    assert outcome(decided) == ACCEPTED
    assert books.session().sold == 0
    assert decided.step.buyer is None
    assert (books.line(placement).session_id, books.line(placement).buyer) == (None, None)


def test_a_session_without_a_buyer_limit_keeps_no_holdings(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(cap=10))
    placement = order(2)

    decided = books.feed(placement)

    assert buyer_slot(books.position, None, placement) is None
    assert decided.step.buyer is None
    assert books.line(placement).session_id == "s-1"
    assert books.line(placement).buyer is None
    assert books.buyers == {}


def test_the_buyer_slot_names_the_session_and_the_normalised_buyer(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(buyer_limit=2))
    placement = order(1, buyer_id=" Ann+Live@X.com")
    books.feed(placement)
    cancellation = events.cancelled(line_id=placement.line_id)

    expected = ("s-1", sessions.buyer_identity("tiktok", "ann@x.com"))
    assert buyer_slot(books.position, None, placement) == expected
    assert buyer_slot(books.position, books.records[record_key(cancellation)], cancellation) == (
        expected
    )
    assert buyer_slot(books.position, None, order(1, channel=SHOP)) is None
    assert buyer_slot(books.position, None, events.paid(line_id=placement.line_id)) is None


# --- giving units back ------------------------------------------------------------------


@pytest.mark.parametrize("release", ["cancelled", "refunded"])
def test_a_released_line_gives_its_units_back_to_the_cap_and_the_buyer(
    books: Books, events: EventFactory, order: Orders, release: str
) -> None:
    books.feed(events.session_opened(cap=2, buyer_limit=2))
    placement = order(2)
    books.feed(placement)
    assert outcome(books.feed(order(1, buyer_id="other"))) == rejected(
        RejectReason.SESSION_CAP_REACHED
    )

    gone = events.cancelled if release == "cancelled" else events.refunded
    released = books.feed(gone(line_id=placement.line_id))

    assert released.step.buyer == BuyerRecord(units=0, seq=books.seq, previous=2)
    assert (books.session().sold, books.holding("buyer-1"), books.position.committed) == (0, 0, 0)
    assert outcome(books.feed(order(2))) == ACCEPTED


def test_a_second_cancellation_gives_nothing_back_again(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(buyer_limit=3))
    first, second = order(1), order(2)
    books.feed(first)
    books.feed(second)
    books.feed(events.cancelled(line_id=first.line_id))

    again = books.feed(events.cancelled(line_id=first.line_id))

    assert again.step.buyer is None
    assert (books.session().sold, books.holding("buyer-1")) == (2, 2)


def test_a_shipped_line_keeps_counting_against_cap_and_buyer(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(cap=3, buyer_limit=3))
    placement = order(3)
    books.feed(placement)
    books.feed(events.shipped(quantity=1, line_id=placement.line_id))

    books.feed(events.cancelled(line_id=placement.line_id))  # the rest, 2 units, go back

    assert (books.session().sold, books.holding("buyer-1")) == (1, 1)
    books.feed(events.shipped(quantity=1, line_id="l-x"))  # unrelated: nothing changes here
    assert outcome(books.feed(order(2))) == ACCEPTED
    assert outcome(books.feed(order(1))) == rejected(RejectReason.SESSION_CAP_REACHED)


def test_a_refund_after_shipping_gives_nothing_back(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(cap=2, buyer_limit=2))
    placement = order(2)
    books.feed(placement)
    books.feed(events.shipped(quantity=2, line_id=placement.line_id))

    refunded = books.feed(events.refunded(line_id=placement.line_id))

    assert refunded.step.buyer is None
    assert (books.session().sold, books.holding("buyer-1")) == (2, 2)


# --- unpaid timeouts --------------------------------------------------------------------


def test_an_unpaid_timeout_releases_an_unpaid_line(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(cap=2, buyer_limit=2))
    placement = order(2)
    books.feed(placement)

    timed_out = books.feed(events.cancelled(line_id=placement.line_id, reason=UNPAID_TIMEOUT))

    assert timed_out.step.audit is not None
    assert timed_out.step.audit.reason == UNPAID_TIMEOUT
    assert (books.session().sold, books.holding("buyer-1"), books.position.committed) == (0, 0, 0)


def test_an_unpaid_timeout_leaves_a_paid_line_alone(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(cap=2, buyer_limit=2))
    placement = order(2)
    books.feed(placement)
    books.feed(events.paid(line_id=placement.line_id))
    before = books.position

    timed_out = books.feed(events.cancelled(line_id=placement.line_id, reason=UNPAID_TIMEOUT))

    assert (timed_out.step.level, timed_out.step.buyer) == (None, None)
    assert books.position.committed == before.committed == 2
    assert (books.session().sold, books.holding("buyer-1")) == (2, 2)
    assert books.line(placement).paid
    # the buyer cancelling it is another matter
    books.feed(events.cancelled(line_id=placement.line_id))
    assert (books.session().sold, books.holding("buyer-1")) == (0, 0)


def test_a_payment_heard_before_the_placement_also_beats_the_clock(
    books: Books, events: EventFactory
) -> None:
    books.feed(events.session_opened(buyer_limit=2))
    books.feed(events.paid())
    books.feed(events.placed(quantity=2))

    books.feed(events.cancelled(reason=UNPAID_TIMEOUT))

    assert (books.session().sold, books.holding("buyer-1")) == (2, 2)


# --- opening and closing ----------------------------------------------------------------


def test_a_closed_session_stops_its_rules(
    books: Books, events: EventFactory, order: Orders
) -> None:
    books.feed(events.session_opened(cap=1, buyer_limit=1, regions_allow=("CN-44",)))
    placement = order(1, region="CN-44")
    books.feed(placement)

    books.feed(events.session_closed())

    assert books.position.sessions == ()
    after = order(5, region="US-CA")
    assert buyer_slot(books.position, None, after) is None
    assert outcome(books.feed(after)) == ACCEPTED
    assert books.line(after).session_id is None
    # a line of the closed session is still released like any other
    books.feed(events.cancelled(line_id=placement.line_id))
    assert books.position.committed == 5


def test_an_order_before_the_session_opens_counts_against_nothing(
    books: Books, events: EventFactory, order: Orders
) -> None:
    early = order(2)
    books.feed(early)
    books.feed(events.session_opened(cap=2, buyer_limit=2))

    books.feed(events.cancelled(line_id=early.line_id))

    assert books.session().sold == 0
    assert outcome(books.feed(order(2))) == ACCEPTED


def test_the_session_starts_from_the_stock_it_finds_or_its_cap(
    books: Books, events: EventFactory
) -> None:
    books.feed(events.session_opened(session_id="s-1", cap=30, channels=(ROOM,)))
    books.feed(events.session_opened(session_id="s-2", cap=500, channels=(OTHER_ROOM,)))

    assert (books.session("s-1").baseline, books.session("s-2").baseline) == (30, 100)
    assert books.session("s-1").remaining(100) == 30


def test_opening_a_session_again_does_not_reset_what_it_sold(
    books: Books, events: EventFactory, order: Orders
) -> None:
    opening = events.session_opened(cap=3, regions_deny=(" cn-65",))
    books.feed(opening)
    books.feed(order(2))

    books.feed(opening)  # redelivered
    books.feed(events.session_opened(cap=3))  # another message, same session

    assert len(books.position.sessions) == 1
    assert books.session().sold == 2
    assert books.session().regions_deny == ("CN-65",)


def test_closing_a_session_nobody_opened_changes_nothing(
    books: Books, events: EventFactory
) -> None:
    before = books.position

    books.feed(events.session_closed(session_id="s-404"))

    assert books.position.sessions == before.sessions == ()
    assert books.position.version == before.version


def test_a_flash_sale_carves_its_cap_evenly_the_first_rooms_taking_the_remainder() -> None:
    session = SkuSession("s-1", ("a", "b", "c"), "traffic", cap=10, isolate=True)

    assert sessions.carve(session) == (("a", 4), ("b", 3), ("c", 3))
    assert sessions.carve(SkuSession("s-1", ("a", "b"), "traffic", cap=10)) == ()
    assert sessions.carve(SkuSession("s-1", ("a",), "traffic", isolate=True)) == ()
