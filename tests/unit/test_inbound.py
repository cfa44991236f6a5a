"""From a platform order to the ledger's events, and the stored notification record."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from connectors.base import Notification, OrderStatus, PlatformOrder, PlatformOrderLine
from sync_worker.domain import ledger
from sync_worker.domain.events import (
    MAX_QUANTITY,
    OrderLineCancelled,
    OrderLinePaid,
    OrderLinePlaced,
    OrderLineRefunded,
    Outcome,
    SkuEvent,
)
from sync_worker.domain.position import SkuPosition
from sync_worker.domain.records import Record
from sync_worker.inbound import (
    InvalidNotification,
    decode_notification,
    encode_notification,
    order_events,
)
from sync_worker.streaming.codecs import SkuEventDecoder, encode

if TYPE_CHECKING:
    from tests.unit.conftest import MakePosition

UPDATED_MS = 1_700_000_000_000


def line(
    line_id: str = "l-1", sku: str | None = "lipstick", quantity: int = 1
) -> PlatformOrderLine:
    return PlatformOrderLine(
        line_id=line_id, sku=sku, quantity=quantity, platform_sku=f"p-{line_id}"
    )


def order(
    status: OrderStatus = OrderStatus.AWAITING_PAYMENT,
    lines: Iterable[PlatformOrderLine] = (line(),),
    **changes: Any,
) -> PlatformOrder:
    base = PlatformOrder(
        order_id="o-1",
        status=status,
        platform_status="RAW",
        buyer_id="buyer-1",
        region="CN-31",
        lines=tuple(lines),
        updated_at_ms=UPDATED_MS,
    )
    return dataclasses.replace(base, **changes)


def test_an_unpaid_order_places_each_known_line() -> None:
    two = order(lines=[line("l-1", "lipstick", 2), line("l-2", None), line("l-3", "mascara", 1)])

    result = order_events("tiktok", "room-1", two)

    assert result.events == [
        OrderLinePlaced(
            event_id="6:tiktok3:o-13:l-1:placed",
            sku="lipstick",
            event_time_ms=UPDATED_MS,
            platform="tiktok",
            channel="room-1",
            order_id="o-1",
            line_id="l-1",
            quantity=2,
            buyer_id="buyer-1",
            region="CN-31",
            order_line_count=2,
        ),
        OrderLinePlaced(
            event_id="6:tiktok3:o-13:l-3:placed",
            sku="mascara",
            event_time_ms=UPDATED_MS,
            platform="tiktok",
            channel="room-1",
            order_id="o-1",
            line_id="l-3",
            quantity=1,
            buyer_id="buyer-1",
            region="CN-31",
            order_line_count=2,
        ),
    ]
    assert result.unknown_lines == [line("l-2", None)]
    assert result.rejected == []


def test_a_paid_order_is_placed_then_paid() -> None:
    events = order_events("tiktok", "room-1", order(OrderStatus.PAID)).events

    assert [type(event) for event in events] == [OrderLinePlaced, OrderLinePaid]
    paid = events[1]
    assert paid.event_id == "6:tiktok3:o-13:l-1:paid"
    assert (paid.sku, paid.line_id, paid.event_time_ms) == ("lipstick", "l-1", UPDATED_MS)


@pytest.mark.parametrize(
    ("status", "kind", "reason"),
    [
        (OrderStatus.CANCELLED, OrderLineCancelled, "platform_cancelled"),
        (OrderStatus.REFUNDED, OrderLineRefunded, "platform_refunded"),
    ],
)
def test_a_cancelled_or_refunded_order_is_not_placed_first(
    status: OrderStatus, kind: type[SkuEvent], reason: str
) -> None:
    """Placing it first could commit units (or be refused for lack of them) only to
    release them again; the ledger handles a cancel of a line it never saw placed."""
    (event,) = order_events("tiktok", "room-1", order(status)).events

    assert isinstance(event, OrderLineCancelled | OrderLineRefunded)
    assert type(event) is kind
    assert event.event_id == f"6:tiktok3:o-13:l-1:{kind.__name__[9:].lower()}"
    assert (event.sku, event.line_id, event.event_time_ms) == ("lipstick", "l-1", UPDATED_MS)
    assert event.reason == reason


def test_a_guest_order_without_a_buyer_is_bought_by_the_order_itself() -> None:
    guest = replace(order(OrderStatus.PAID), buyer_id="")

    placed = order_events("shopify", "room-1", guest).events[0]

    assert isinstance(placed, OrderLinePlaced)
    assert placed.buyer_id == "order:o-1"


def test_a_redelivered_order_yields_identical_events() -> None:
    paid = order(OrderStatus.PAID, lines=[line("l-1"), line("l-2", "mascara")])

    assert order_events("douyin", "room-2", paid) == order_events("douyin", "room-2", paid)


def test_ids_containing_the_separator_do_not_collide() -> None:
    first = order_events("tiktok", "room-1", order(order_id="a:b", lines=[line("c")]))
    second = order_events("tiktok", "room-1", order(order_id="a", lines=[line("b:c")]))

    assert first.events[0].event_id != second.events[0].event_id


def test_long_ids_give_short_deterministic_event_ids() -> None:
    long = order(OrderStatus.PAID, order_id="o" * 200, lines=[line("l" * 200)])

    events = order_events("shopify", "shop-1", long).events

    assert all(len(event.event_id) <= 200 for event in events)
    assert events[0].event_id.endswith(":placed")
    assert events[1].event_id.endswith(":paid")
    assert events[0].event_id[:-7] == events[1].event_id[:-5]
    assert events == order_events("shopify", "shop-1", long).events


def test_events_at_the_limits_pass_the_published_schemas() -> None:
    limit = order(
        OrderStatus.PAID,
        order_id="o" * 200,
        buyer_id="b" * 200,
        region="r" * 64,
        lines=[line("l" * 200, "s" * 200, MAX_QUANTITY)],
    )
    decoder = SkuEventDecoder()

    for event in order_events("p" * 200, "c" * 200, limit).events:
        assert decoder.decode(event.sku.encode(), encode(event)) == event


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (line("l-1", quantity=0), "quantity_out_of_range"),
        (line("l-1", quantity=MAX_QUANTITY + 1), "quantity_out_of_range"),
        (line("l" * 201), "line_id_length"),
        (line(""), "line_id_length"),
        (line("l-1", sku="s" * 201), "sku_length"),
        (line("l-1", sku=""), "sku_length"),
        (line("l-0"), "duplicate_line_id"),
    ],
)
def test_a_line_beyond_the_limits_is_rejected_not_raised(
    bad: PlatformOrderLine, reason: str
) -> None:
    result = order_events("tiktok", "room-1", order(lines=[line("l-0"), bad]))

    [placed] = result.events
    assert [(rejected.line, rejected.reason) for rejected in result.rejected] == [(bad, reason)]
    assert isinstance(placed, OrderLinePlaced)
    assert placed.line_id == "l-0"
    # The rejected line still counts: the order must not look complete without it.
    assert placed.order_line_count == 2


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"buyer_id": "b" * 201}, "buyer_id_length"),
        ({"order_id": "o" * 201}, "order_id_length"),
        ({"region": "r" * 65}, "region_length"),
        ({"updated_at_ms": -1}, "negative_event_time"),
        ({"lines": [line(f"l-{i}") for i in range(1001)]}, "too_many_lines"),
    ],
)
def test_an_order_beyond_the_limits_rejects_every_line(
    changes: dict[str, Any], reason: str
) -> None:
    bad = order(**{"lines": [line("l-1"), line("l-2", "mascara")], **changes})

    result = order_events("tiktok", "room-1", bad)

    assert result.events == []
    assert {rejected.reason for rejected in result.rejected} == {reason}
    assert len(result.rejected) == len(bad.lines)


@pytest.mark.parametrize(("platform", "channel"), [("", "room-1"), ("tiktok", "c" * 201)])
def test_a_bad_platform_or_channel_rejects_every_line(platform: str, channel: str) -> None:
    result = order_events(platform, channel, order())

    assert result.events == []
    assert len(result.rejected) == 1


# --- what the ledger makes of them --------------------------------------------------------


class Books:
    """One SKU's position and line record, fed events the way the worker applies them."""

    def __init__(self, position: SkuPosition) -> None:
        self.position = position
        self.record: Record | None = None
        self.outcomes: list[Outcome] = []

    def apply(self, events: Iterable[SkuEvent]) -> None:
        for event in events:
            step = ledger.apply(self.position, self.record, event)
            self.position, self.record = step.position, step.record
            if step.decision is not None:
                self.outcomes.append(step.decision.outcome)


def test_the_ledger_takes_a_redelivered_order_once(stocked: MakePosition) -> None:
    books = Books(stocked(10))

    books.apply(order_events("tiktok", "room-1", order(lines=[line(quantity=3)])).events)
    paid = order_events("tiktok", "room-1", order(OrderStatus.PAID, lines=[line(quantity=3)]))
    books.apply(paid.events)
    books.apply(paid.events)

    assert books.position.committed == 3
    assert books.outcomes == [Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.DUPLICATE]


def test_a_redelivered_cancellation_is_harmless(stocked: MakePosition) -> None:
    books = Books(stocked(10))
    cancelled = order_events("tiktok", "room-1", order(OrderStatus.CANCELLED, lines=[line()]))

    books.apply(order_events("tiktok", "room-1", order(lines=[line()])).events)
    books.apply(cancelled.events)
    after_first = books.position
    books.apply(cancelled.events)

    assert after_first.committed == 0
    assert books.position == after_first


def test_an_order_first_seen_cancelled_holds_nothing(stocked: MakePosition) -> None:
    books = Books(stocked(10))

    books.apply(order_events("tiktok", "room-1", order(OrderStatus.REFUNDED)).events)

    assert books.position.committed == 0
    assert books.position.sellable == 10


# --- the stored notification --------------------------------------------------------------


@pytest.mark.parametrize(
    "carried",
    [None, order(OrderStatus.PAID, lines=[line(), line("l-2", None)], region=None)],
)
def test_a_notification_survives_its_record(carried: PlatformOrder | None) -> None:
    notification = Notification("n-1", "shop-1", "o-1", UPDATED_MS, carried)

    record = encode_notification("room-1", "shopify", notification)

    assert decode_notification(record) == ("room-1", "shopify", notification)


def good_record() -> dict[str, Any]:
    carried = order(OrderStatus.PAID)
    notification = Notification("n-1", "shop-1", "o-1", UPDATED_MS, carried)
    decoded: dict[str, Any] = orjson.loads(encode_notification("room-1", "shopify", notification))
    return decoded


def broken(change: Any) -> bytes:
    record = good_record()
    change(record)
    return orjson.dumps(record)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "must be an object"),
        (broken(lambda r: r.pop("shop_id")), "lacks shop_id"),
        (broken(lambda r: r.update(extra=1)), "unexpected extra"),
        (broken(lambda r: r.update(format=2)), "unsupported notification format"),
        (broken(lambda r: r.update(format=True)), "unsupported notification format"),
        (broken(lambda r: r.update(channel=7)), "channel must be a string"),
        (broken(lambda r: r.update(occurred_at_ms="1")), "occurred_at_ms must be an integer"),
        (broken(lambda r: r.update(occurred_at_ms=False)), "occurred_at_ms must be an integer"),
        (broken(lambda r: r.update(order=[])), "order must be an object"),
        (broken(lambda r: r["order"].update(status="shipped")), "unknown order status"),
        (broken(lambda r: r["order"].update(lines={})), "lines must be a list"),
        (broken(lambda r: r["order"].update(region=3)), "region must be a string"),
        (broken(lambda r: r["order"]["lines"][0].pop("quantity")), "lacks quantity"),
        (broken(lambda r: r["order"]["lines"][0].update(quantity=1.5)), "must be an integer"),
    ],
)
def test_a_malformed_record_is_refused_with_a_reason(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidNotification, match=message) as refused:
        decode_notification(raw)

    assert isinstance(refused.value, ValueError)
