"""The buyer generator, run in virtual time against an in-memory ``publish``."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import math
import types
import typing
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

import sync_worker
from connectors.simulator.buyers import (
    Burst,
    BuyerStats,
    RoomSpec,
    Scenario,
    SkuSpec,
    build_rooms,
    initial_stock_messages,
    run_buyers,
)
from connectors.simulator.clock import VirtualClock
from connectors.simulator.rooms import LiveRoom
from sync_worker.domain.events import OrderLineCancelled, OrderLinePlaced, StockCounted

START_S = 1_700_000_000.0
SCHEMA_DIR = Path(sync_worker.__file__).parent / "schemas"
CONTRACT: dict[str, type[Any]] = {
    "order_line.placed": OrderLinePlaced,
    "order_line.cancelled": OrderLineCancelled,
    "stock.counted": StockCounted,
}


class Published:
    """An in-memory ``publish``: every (key, value) in order, decoded on demand."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes, bytes]] = []

    async def __call__(self, key: bytes, value: bytes) -> None:
        self.messages.append((key, value))

    def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(value) for _, value in self.messages]

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [event for event in self.events() if event["type"] == event_type]


Run = Callable[..., Awaitable[tuple[BuyerStats, Published, dict[str, LiveRoom], VirtualClock]]]


@pytest.fixture
def run() -> Run:
    async def run(
        scenario: Scenario, duration_s: float = 5.0
    ) -> tuple[BuyerStats, Published, dict[str, LiveRoom], VirtualClock]:
        rooms = build_rooms(scenario)
        published = Published()
        clock = VirtualClock(START_S)
        stats = await run_buyers(scenario, rooms, published, duration_s, clock)
        return stats, published, rooms, clock

    return run


def busy_scenario(**changes: Any) -> Scenario:
    """Plenty of stock and noise, so every kind of event shows up within seconds."""
    skus = (SkuSpec("lipstick", 3.0, 10_000), SkuSpec("serum", 1.0, 10_000))
    defaults: dict[str, Any] = {
        "skus": skus,
        "base_rate_per_s": 200.0,
        "burst": Burst("lipstick", start_s=2.0, duration_s=1.0, rate_multiplier=10.0),
        "cancel_probability": 0.1,
        "duplicate_probability": 0.1,
        "seed": 7,
    }
    return Scenario(**{**defaults, **changes})


# -- the published contract -----------------------------------------------------------


def check_contract(event: dict[str, Any]) -> None:
    """Hold an event to the canonical dataclass, and to its JSON Schema once published."""
    hints = _field_types(event["type"])
    # An input may leave out a field that has a default (order_line_count, warehouse, ...).
    assert _required(event["type"]) <= set(event) <= set(hints), (
        f"{event['type']}: keys differ from the contract"
    )
    for name, value in event.items():
        assert _conforms(value, hints[name]), f"{event['type']}.{name} = {value!r}"
    CONTRACT[event["type"]](**event)
    check_schema = _schema_check(event["type"], event["schema_version"])
    if check_schema is not None:
        check_schema(event)


@functools.cache
def _field_types(event_type: str) -> dict[str, object]:
    event_class = CONTRACT[event_type]
    hints = typing.get_type_hints(event_class)
    return {field.name: hints[field.name] for field in dataclasses.fields(event_class)}


@functools.cache
def _required(event_type: str) -> frozenset[str]:
    return frozenset(
        field.name
        for field in dataclasses.fields(CONTRACT[event_type])
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    ) | {"type", "schema_version"}


def _conforms(value: object, hint: object) -> bool:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arm) for arm in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(hint, type) and isinstance(value, hint)


@functools.cache
def _schema_check(event_type: str, version: int) -> Callable[[dict[str, Any]], None] | None:
    """A validator for the published schema, built once; None while it is not published."""
    schema_file = SCHEMA_DIR / f"{event_type}.v{version}.json"
    if not schema_file.exists():
        return None
    schema: dict[str, Any] = orjson.loads(schema_file.read_bytes())
    if importlib.util.find_spec("jsonschema") is not None:
        validators = importlib.import_module("jsonschema.validators")
        validator = validators.validator_for(schema)(schema)
        return validator.validate  # type: ignore[no-any-return]

    def check_field_list(event: dict[str, Any]) -> None:
        # Without jsonschema, still hold the event to the schema's field list.
        assert set(schema.get("required", [])) <= set(event)
        if schema.get("additionalProperties") is False:
            assert set(event) <= set(schema.get("properties", {}))

    return check_field_list


async def test_every_published_event_meets_the_contract(run: Run) -> None:
    _, published, _, _ = await run(busy_scenario())

    events = published.events()
    assert {event["type"] for event in events} == {"order_line.placed", "order_line.cancelled"}
    for (key, _), event in zip(published.messages, events, strict=True):
        check_contract(event)
        assert key == event["sku"].encode()


@pytest.mark.parametrize(
    "breach",
    [
        {"quantity": 0},
        {"region": 5},
        {"schema_version": 2},
        {"extra": 1},
        {"sku": None},
        {"order_line_count": 0},
    ],
)
def test_the_contract_check_catches_a_breach(breach: dict[str, Any]) -> None:
    event = {
        "type": "order_line.placed",
        "schema_version": 1,
        "event_id": "e1",
        "platform": "tiktok",
        "channel": "tiktok-room-1",
        "order_id": "o1",
        "line_id": "1",
        "sku": "lipstick",
        "quantity": 1,
        "buyer_id": "b1",
        "region": None,
        "event_time_ms": 1,
    }
    check_contract(event)

    with pytest.raises(Exception):  # noqa: B017, PT011 - an assertion or a schema error
        check_contract({**event, **breach})


def test_initial_stock_messages_count_every_sku_as_the_rooms_show_it() -> None:
    scenario = busy_scenario(run_id="run-42")

    messages = initial_stock_messages(scenario, event_time_ms=1_700_000_000_000)

    events = [orjson.loads(value) for _, value in messages]
    for event in events:
        check_contract(event)
    assert [key for key, _ in messages] == [b"lipstick", b"serum"]
    assert {event["sku"]: event["quantity"] for event in events} == scenario.initial_stock()
    assert {event["actor"] for event in events} == {"simulator"}
    assert len({event["event_id"] for event in events}) == len(events)
    assert all(event["event_id"].startswith("run-42-") for event in events)


# -- behaviour ------------------------------------------------------------------------


async def test_a_fixed_seed_replays_the_same_messages(run: Run) -> None:
    _, first, _, _ = await run(busy_scenario(seed=3))
    _, again, _, _ = await run(busy_scenario(seed=3))
    _, other, _, _ = await run(busy_scenario(seed=4))

    assert first.messages == again.messages
    assert first.messages != other.messages


async def test_a_duplicate_is_the_same_message_again_with_the_same_event_id(run: Run) -> None:
    stats, published, _, _ = await run(busy_scenario(duplicate_probability=0.3))

    copies = Counter(value for _, value in published.messages)
    assert stats.duplicates_sent > 0
    assert sum(count - 1 for count in copies.values()) == stats.duplicates_sent
    assert max(copies.values()) == 2
    ids = Counter(event["event_id"] for event in published.events())
    assert sum(count - 1 for count in ids.values()) == stats.duplicates_sent


async def test_without_duplicates_every_event_id_and_order_line_is_unique(run: Run) -> None:
    _, published, _, _ = await run(busy_scenario(duplicate_probability=0.0))

    events = published.events()
    assert len({event["event_id"] for event in events}) == len(events)
    placed = published.of_type("order_line.placed")
    assert len({(e["platform"], e["order_id"], e["line_id"]) for e in placed}) == len(placed)


async def test_a_cancellation_names_an_earlier_line_and_each_line_at_most_once(run: Run) -> None:
    stats, published, _, _ = await run(busy_scenario(cancel_probability=0.3))

    placed_so_far: dict[tuple[str, str, str], dict[str, Any]] = {}
    cancelled_lines: dict[str, tuple[str, str, str]] = {}  # by event_id: redelivery is one
    for event in published.events():
        line = (event["platform"], event["order_id"], event["line_id"])
        if event["type"] == "order_line.placed":
            placed_so_far[line] = event
            continue
        original = placed_so_far[line]  # a KeyError here: cancelled before it was placed
        assert (event["channel"], event["sku"]) == (original["channel"], original["sku"])
        assert event["reason"] == "buyer_cancelled"
        cancelled_lines[event["event_id"]] = line
    assert len(cancelled_lines) == stats.cancellations > 0
    assert len(set(cancelled_lines.values())) == len(cancelled_lines)


async def test_stats_match_what_was_published(run: Run) -> None:
    stats, published, rooms, _ = await run(busy_scenario())

    placed = {e["event_id"]: e for e in published.of_type("order_line.placed")}
    cancelled = {e["event_id"]: e for e in published.of_type("order_line.cancelled")}
    assert stats.placed_lines == len(placed)
    assert stats.units == sum(event["quantity"] for event in placed.values())
    assert stats.cancellations == len(cancelled)
    assert stats.events_published == len(published.messages)
    assert stats.placed_lines == sum(room.counters.orders_placed for room in rooms.values())


async def test_a_sold_out_room_refuses_buyers_and_nothing_is_published_for_them(
    run: Run,
) -> None:
    scenario = busy_scenario(skus=(SkuSpec("lipstick", 1.0, 5),), cancel_probability=0.0)

    stats, _, rooms, _ = await run(scenario)

    assert stats.refused_sold_out > 0
    assert stats.refused_sold_out == sum(
        room.counters.orders_refused_sold_out for room in rooms.values()
    )
    # Every room started at 5 and sold at most that: the oversell stockcast must catch.
    for room in rooms.values():
        assert room.displayed("lipstick") == 0
    assert stats.units == 5 * len(rooms)


async def test_each_room_display_is_initial_stock_minus_sold_plus_cancelled(run: Run) -> None:
    scenario = busy_scenario(
        skus=(SkuSpec("lipstick", 1.0, 40), SkuSpec("serum", 1.0, 60)), cancel_probability=0.3
    )

    _, published, rooms, _ = await run(scenario)

    net: Counter[tuple[str, str]] = Counter()
    placed = {e["event_id"]: e for e in published.of_type("order_line.placed")}
    quantities = {(e["platform"], e["order_id"]): e["quantity"] for e in placed.values()}
    for event in placed.values():
        net[event["channel"], event["sku"]] -= event["quantity"]
    for event in {e["event_id"]: e for e in published.of_type("order_line.cancelled")}.values():
        net[event["channel"], event["sku"]] += quantities[event["platform"], event["order_id"]]
    for channel, room in rooms.items():
        for sku, initial in scenario.initial_stock().items():
            assert room.displayed(sku) == initial + net[channel, sku]


async def test_the_burst_multiplies_the_rate_and_goes_to_the_pinned_sku(run: Run) -> None:
    scenario = busy_scenario(
        base_rate_per_s=100.0,
        burst=Burst("serum", start_s=2.0, duration_s=1.0, rate_multiplier=20.0),
        cancel_probability=0.0,
        duplicate_probability=0.0,
    )

    _, published, _, _ = await run(scenario, duration_s=5.0)

    def elapsed(event: dict[str, Any]) -> float:
        return float(event["event_time_ms"]) / 1000 - START_S

    placed = published.of_type("order_line.placed")
    during = [e for e in placed if 2.0 <= elapsed(e) < 3.0]
    outside = [e for e in placed if not 2.0 <= elapsed(e) < 3.0]
    assert len(during) > 10 * len(outside) / 4  # per second: ~2000 against ~100
    serum_share = sum(e["sku"] == "serum" for e in during) / len(during)
    assert serum_share > 0.9  # 19 in 20 burst orders are the pinned SKU, plus its usual share


async def test_orders_are_timed_within_the_run_in_publish_order(run: Run) -> None:
    _, published, _, _ = await run(busy_scenario(), duration_s=3.0)

    times = [event["event_time_ms"] for event in published.events()]
    assert times == sorted(times)
    assert times[0] >= START_S * 1000
    assert times[-1] <= (START_S + 3.0) * 1000


async def test_it_sleeps_once_per_tick_not_once_per_order(run: Run) -> None:
    scenario = busy_scenario(
        base_rate_per_s=3_000.0, burst=None, tick_s=0.05, duplicate_probability=0.0
    )

    stats, _, _, clock = await run(scenario, duration_s=2.0)

    assert stats.placed_lines > 5_000
    assert clock.sleep_calls <= math.ceil(2.0 / 0.05) + 1


async def test_a_zero_duration_publishes_nothing(run: Run) -> None:
    stats, published, _, _ = await run(busy_scenario(), duration_s=0.0)

    assert published.messages == []
    assert stats == BuyerStats(0, 0, 0, 0, 0, 0)


async def test_a_failing_publish_ends_the_run() -> None:
    scenario = busy_scenario()

    async def broken(key: bytes, value: bytes) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError, match="broker down"):
        await run_buyers(scenario, build_rooms(scenario), broken, 1.0, VirtualClock())


async def test_every_scenario_room_needs_a_live_room() -> None:
    scenario = busy_scenario()
    rooms: Mapping[str, LiveRoom] = {"tiktok-room-1": LiveRoom("tiktok-room-1", "tiktok")}

    with pytest.raises(ValueError, match="douyin-room-1"):
        await run_buyers(scenario, rooms, Published(), 1.0, VirtualClock())


def test_the_default_scenario_has_three_platforms_one_room_each() -> None:
    scenario = Scenario()

    assert {room.platform for room in scenario.rooms} == {"tiktok", "douyin", "shopify"}
    assert len(scenario.rooms) == 3
    assert scenario.burst is not None
    assert scenario.rate_at(scenario.burst.start_s) >= 1_000


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"rooms": ()}, "at least one room"),
        ({"rooms": (RoomSpec("a", "tiktok"), RoomSpec("a", "douyin"))}, "duplicate channel"),
        ({"skus": ()}, "at least one SKU"),
        ({"run_id": ""}, "must not be empty"),
        ({"burst": Burst("nope", 0.0, 1.0, 2.0)}, "not among"),
        ({"burst": Burst("lipstick", 0.0, 1.0, 0.5)}, "rate_multiplier"),
        ({"cancel_probability": 1.5}, "cancel_probability"),
        ({"quantity_weights": ((0, 1.0),)}, "positive"),
        ({"tick_s": 0.0}, "tick_s"),
    ],
)
def test_an_invalid_scenario_fails_at_construction(changes: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        busy_scenario(**changes)
