"""The worker daemon against the real broker: events in, table updated, events out."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from sync_worker.streaming.names import TopicNames
from tests.integration.support import (
    WorkerProcess,
    consume,
    consume_until,
    encoded,
    event,
    http_get,
    produce,
)

pytestmark = pytest.mark.integration


def sku_message(payload: dict[str, Any]) -> tuple[bytes, bytes]:
    return payload["sku"].encode(), encoded(payload)


async def test_orders_are_decided_table_kept_and_levels_emitted(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str, topics: TopicNames
) -> None:
    worker = worker_factory()
    worker.start()
    await produce(
        kafka_bootstrap,
        topics.sku_events,
        [
            sku_message(event("stock.counted", event_id="c1", sku="A", quantity=5)),
            sku_message(
                event("order_line.placed", event_id="p1", sku="A", order_id="o1", quantity=3)
            ),
            sku_message(
                event("order_line.placed", event_id="p1", sku="A", order_id="o1", quantity=3)
            ),
            sku_message(
                event("order_line.placed", event_id="p2", sku="A", order_id="o2", quantity=3)
            ),
            sku_message(
                event("order_line.placed", event_id="p3", sku="B", order_id="o3", quantity=1)
            ),
            sku_message(
                event(
                    "order_line.cancelled",
                    event_id="x1",
                    sku="A",
                    order_id="o1",
                    reason="buyer_cancelled",
                )
            ),
            sku_message(
                event("order_line.placed", event_id="p4", sku="A", order_id="o4", quantity=5)
            ),
        ],
    )

    decisions = await consume(kafka_bootstrap, topics.decisions, 5)
    by_event = {(d["event_id"], d["outcome"]): d for d in decisions}
    assert set(by_event) == {
        ("p1", "accepted"),
        ("p1", "duplicate"),
        ("p2", "rejected"),
        ("p3", "rejected"),
        ("p4", "accepted"),
    }
    assert by_event[("p2", "rejected")]["reason"] == "insufficient_stock"
    assert by_event[("p3", "rejected")]["reason"] == "unknown_sku"

    # A changed 4 times (counted, p1, x1, p4); one level per batch that changed it.
    levels = await consume_until(
        kafka_bootstrap, topics.stock_levels, lambda got: got[-1]["version"] == 4
    )
    last_a = levels[-1]
    assert (last_a["sku"], last_a["on_hand"], last_a["committed"], last_a["sellable"]) == (
        "A",
        5,
        5,
        0,
    )
    versions = [lvl["version"] for lvl in levels]
    assert versions == sorted(set(versions))

    status, body = http_get(f"{worker.url}/metrics")
    assert status == 200
    assert b'stockcast_order_lines_decided_total{outcome="accepted",reason=""} 2.0' in body
    assert b"stockcast_oversold_units_total 0.0" in body


async def test_bad_input_goes_to_dead_letters_and_processing_continues(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str, topics: TopicNames
) -> None:
    worker = worker_factory()
    worker.start()
    placed = {"event_id": "x", "sku": "A", "order_id": "bad"}
    await produce(
        kafka_bootstrap,
        topics.sku_events,
        [
            (b"A", b"{not json"),
            sku_message(event("order_line.placed", **placed, quantity=-2)),
            sku_message(event("order_line.placed", **placed, quantity=0)),
            sku_message(event("order_line.placed", **placed, quantity=10**9)),
            sku_message(
                {k: v for k, v in event("order_line.placed", **placed).items() if k != "buyer_id"}
                | {"quantity": 1}
            ),
            sku_message(event("order_line.placed", **placed, quantity=1, schema_version=2)),
            (b"A", encoded(event("stock.counted", event_id="c1", sku="B", quantity=1))),
            sku_message(event("stock.exploded", event_id="e1", sku="A")),
            # Good input after the bad: still decided.
            sku_message(event("stock.counted", event_id="c2", sku="A", quantity=3)),
            sku_message(event("order_line.placed", event_id="ok", sku="A", quantity=1)),
        ],
    )
    letters = await consume(kafka_bootstrap, topics.dead_letters, 8)
    assert sorted(letter["reason"] for letter in letters) == [
        "key_mismatch",
        "malformed_json",
        "schema_violation",
        "schema_violation",
        "schema_violation",
        "schema_violation",
        "unknown_type",
        "unsupported_schema_version",
    ]
    malformed = next(letter for letter in letters if letter["reason"] == "malformed_json")
    assert malformed["value"] == "{not json"
    assert malformed["source_topic"] == topics.sku_events
    (decision,) = await consume(kafka_bootstrap, topics.decisions, 1)
    assert (decision["event_id"], decision["outcome"]) == ("ok", "accepted")
    _, metrics = http_get(f"{worker.url}/metrics")
    assert b'stockcast_dead_letters_total{reason="schema_violation"} 4.0' in metrics


async def test_restart_recovers_the_table_from_its_changelog(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str, topics: TopicNames
) -> None:
    first = worker_factory()
    first.start()
    await produce(
        kafka_bootstrap,
        topics.sku_events,
        [
            sku_message(event("stock.counted", event_id="c1", sku="A", quantity=5)),
            sku_message(
                event("order_line.placed", event_id="p1", sku="A", order_id="o1", quantity=3)
            ),
        ],
    )
    await consume(kafka_bootstrap, topics.decisions, 1)
    first.stop()
    # Lose the local RocksDB entirely: only the Kafka changelog can bring the state back.
    shutil.rmtree(first.data_dir)

    second = worker_factory()
    second.start()
    await produce(
        kafka_bootstrap,
        topics.sku_events,
        [
            sku_message(
                event("order_line.placed", event_id="p1", sku="A", order_id="o1", quantity=3)
            ),
            sku_message(
                event("order_line.placed", event_id="p2", sku="A", order_id="o2", quantity=3)
            ),
            sku_message(
                event("order_line.placed", event_id="p3", sku="A", order_id="o3", quantity=2)
            ),
        ],
    )
    decisions = await consume(kafka_bootstrap, topics.decisions, 4)
    assert [(d["event_id"], d["outcome"], d["reason"]) for d in decisions] == [
        ("p1", "accepted", None),
        ("p1", "duplicate", None),
        ("p2", "rejected", "insufficient_stock"),
        ("p3", "accepted", None),
    ]


async def test_a_line_lives_its_whole_life_and_every_change_is_audited(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str, topics: TopicNames
) -> None:
    worker = worker_factory()
    worker.start()
    line = {"sku": "A", "order_id": "o1"}
    await produce(
        kafka_bootstrap,
        topics.sku_events,
        [
            sku_message(event("stock.counted", event_id="c1", sku="A", quantity=10)),
            sku_message(event("order_line.placed", event_id="p1", **line, quantity=2)),
            sku_message(event("order_line.paid", event_id="pay1", **line)),
            sku_message(event("order_line.shipped", event_id="s1", **line, quantity=2)),
            sku_message(event("order_line.return_received", event_id="r1", **line, quantity=1)),
            sku_message(
                event(
                    "order_line.return_inspected",
                    event_id="i1",
                    **line,
                    quantity=1,
                    result="damaged",
                )
            ),
            sku_message(
                event("order_line.placed", event_id="p2", sku="A", order_id="o2", quantity=50)
            ),
        ],
    )
    audit = await consume(kafka_bootstrap, topics.audit, 5)
    assert [record["event_type"] for record in audit] == [
        "stock.counted",
        "order_line.placed",
        "order_line.shipped",
        "order_line.return_received",
        "order_line.return_inspected",
    ]
    assert audit[2]["before"]["on_hand"] == 10
    assert audit[2]["after"]["on_hand"] == 8
    (cancellation,) = await consume(kafka_bootstrap, topics.cancellation_requests, 1)
    assert (cancellation["order_id"], cancellation["reason"]) == ("o2", "insufficient_stock")

    status, body = http_get(f"{worker.url}/skus/A")
    assert status == 200
    view = orjson.loads(body)
    assert (view["on_hand"], view["committed"], view["unavailable"], view["returns_pending"]) == (
        9,
        0,
        1,
        0,
    )
    assert view["sellable"] == 8
    assert http_get(f"{worker.url}/skus/never-counted")[0] == 404


async def test_a_multi_line_order_is_all_or_nothing_unless_its_channel_allows_partial(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str, topics: TopicNames
) -> None:
    # Appended to the [ledger] section of the worker's settings.
    worker_factory('partial_fulfilment_channels = ["partial-room"]\n').start()

    def line(order: str, line_id: str, sku: str, channel: str) -> tuple[bytes, bytes]:
        return sku_message(
            event(
                "order_line.placed",
                event_id=f"{order}-{line_id}",
                sku=sku,
                order_id=order,
                line_id=line_id,
                channel=channel,
                quantity=1,
                order_line_count=3,
            )
        )

    stock = [
        sku_message(event("stock.counted", event_id=f"c-{sku}", sku=sku, quantity=5))
        for sku in ("A", "B")
    ]
    await produce(
        kafka_bootstrap,
        topics.sku_events,
        [
            *stock,
            *(line("whole", n, sku, "room-1") for n, sku in (("1", "A"), ("2", "B"), ("3", "C"))),
            *(
                line("part", n, sku, "partial-room")
                for n, sku in (("1", "A"), ("2", "B"), ("3", "C"))
            ),
        ],
    )
    requests = await consume(kafka_bootstrap, topics.cancellation_requests, 4)
    assert sorted((r["order_id"], r["line_id"], r["reason"]) for r in requests) == [
        ("part", "3", "unknown_sku"),
        ("whole", "1", "order_incomplete"),
        ("whole", "2", "order_incomplete"),
        ("whole", "3", "unknown_sku"),
    ]
    # The whole order's lines gave their units back; the partial order keeps its two.
    # A and B change 4 times each: counted, two lines placed, the whole order's released.
    levels = await consume_until(
        kafka_bootstrap,
        topics.stock_levels,
        lambda got: {(lvl["sku"], lvl["version"]) for lvl in got} >= {("A", 4), ("B", 4)},
    )
    final = {lvl["sku"]: lvl for lvl in sorted(levels, key=lambda lvl: lvl["version"])}
    assert (final["A"]["committed"], final["B"]["committed"]) == (1, 1)
