"""The wire edge: published schemas, the dataclasses they come from, the decoder, and every
output the worker writes."""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_worker.domain import events as domain_events
from sync_worker.domain import orders
from sync_worker.domain.allocation import AllocationPolicy, ChannelRule
from sync_worker.domain.decide import Decided, Policies, decide
from sync_worker.domain.events import (
    ALLOCATION_EVENTS,
    MAX_QUANTITY,
    MAX_STOCK,
    ORDER_LINE_EVENTS,
    SCHEMA_VERSION,
    SESSION_EVENTS,
    STOCK_EVENTS,
    AlertLevel,
    InspectionResult,
    OrderLineDecided,
    OrderLineReturnInspected,
    Outcome,
    RejectReason,
    SkuEvent,
    type_name,
)
from sync_worker.domain.ledger import apply, buyer_slot
from sync_worker.domain.position import SkuPosition
from sync_worker.domain.records import BuyerRecord, Record
from sync_worker.streaming import codecs, schemas, state
from sync_worker.streaming.dead_letters import DeadLetter

if TYPE_CHECKING:
    from tests.unit.conftest import EventFactory

INPUT_TYPES = [
    type_name(cls)
    for cls in (*ORDER_LINE_EVENTS, *STOCK_EVENTS, *ALLOCATION_EVENTS, *SESSION_EVENTS)
]
OUTPUT_CLASSES = {schemas.schema_name(cls): cls for cls in schemas.OUTPUTS}
INPUT_CLASSES = {schemas.schema_name(cls): cls for cls in schemas.INPUTS}
ALL_CLASSES = {**INPUT_CLASSES, **OUTPUT_CLASSES}


@pytest.fixture(scope="module")
def decoder() -> codecs.SkuEventDecoder:
    """Immutable once built; shared so the schemas compile once per module."""
    return codecs.SkuEventDecoder()


def validate(schema_name: str, payload: bytes) -> None:
    jsonschema.Draft202012Validator(codecs.load_schema(schema_name)).validate(orjson.loads(payload))


def defaults_of(cls: type[Any]) -> set[str]:
    return {
        field.name
        for field in dataclasses.fields(cls)
        if field.default is not dataclasses.MISSING
        or field.default_factory is not dataclasses.MISSING
    }


# --- the published schemas ------------------------------------------------------------


def test_there_are_twenty_five_input_types_and_seven_outputs() -> None:
    assert len(INPUT_TYPES) == len(set(INPUT_TYPES)) == 25
    assert set(codecs.SKU_EVENT_TYPES) == set(INPUT_TYPES)
    assert sorted(OUTPUT_CLASSES) == [
        "alert.raised.v1",
        "dead_letter.v1",
        "order_line.cancellation_requested.v1",
        "order_line.decided.v1",
        "stock.audit.v1",
        "stock.level_changed.v1",
        "stock.quota_changed.v1",
    ]


def test_the_committed_schema_files_are_exactly_what_the_dataclasses_generate() -> None:
    """Run ``python -m sync_worker.streaming.schemas`` after changing an event."""
    committed = {path.name: path.read_bytes() for path in schemas.SCHEMA_DIR.glob("*.json")}

    assert committed == schemas.generate()
    assert len(committed) == len(ALL_CLASSES) == 32


@pytest.mark.parametrize("name", sorted(ALL_CLASSES))
def test_every_published_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    schema = codecs.load_schema(name)

    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"{schemas.BASE_URI}{name}.json"
    assert schema["title"] == name
    assert schema["description"]
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("name", sorted(ALL_CLASSES))
def test_a_dataclass_has_exactly_the_schemas_properties(name: str) -> None:
    schema, cls = codecs.load_schema(name), ALL_CLASSES[name]
    fields = {field.name: field for field in dataclasses.fields(cls)}

    assert list(schema["properties"]) == list(fields)
    assert schema["properties"]["type"]["const"] == fields["type"].default
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    assert name == f"{fields['type'].default}.v{SCHEMA_VERSION}"


@pytest.mark.parametrize("name", sorted(INPUT_CLASSES))
def test_an_input_schema_requires_exactly_the_fields_without_defaults(name: str) -> None:
    """The decoder builds the dataclass from what the schema let through: a field the
    dataclass needs but the schema does not require would crash the agent."""
    schema, cls = codecs.load_schema(name), INPUT_CLASSES[name]
    every = {field.name for field in dataclasses.fields(cls)}

    assert set(schema["required"]) == (every - defaults_of(cls)) | {"type", "schema_version"}


@pytest.mark.parametrize("name", sorted(OUTPUT_CLASSES))
def test_an_output_schema_requires_every_field(name: str) -> None:
    """Outputs are always encoded whole (orjson writes every field, defaults included)."""
    schema, cls = codecs.load_schema(name), OUTPUT_CLASSES[name]

    assert schema["required"] == [field.name for field in dataclasses.fields(cls)]


def test_the_decided_schema_knows_every_reason_and_every_outcome() -> None:
    properties = codecs.load_schema("order_line.decided.v1")["properties"]

    assert properties["reason"]["enum"] == [*RejectReason, None]
    assert properties["outcome"]["enum"] == list(Outcome)
    assert properties["original_outcome"]["enum"] == [*Outcome, None]


def test_quantities_are_bounded_in_the_schemas() -> None:
    placed = codecs.load_schema("order_line.placed.v1")["properties"]["quantity"]
    received = codecs.load_schema("stock.received.v1")["properties"]["quantity"]
    adjusted = codecs.load_schema("stock.adjusted.v1")["properties"]["delta"]

    assert (placed["minimum"], placed["maximum"]) == (1, MAX_QUANTITY)
    assert (received["minimum"], received["maximum"]) == (1, MAX_STOCK)
    assert (adjusted["minimum"], adjusted["maximum"]) == (-MAX_STOCK, MAX_STOCK)


# --- decoding inputs --------------------------------------------------------------------


@pytest.mark.parametrize("event_type", INPUT_TYPES)
def test_every_input_type_round_trips(
    events: EventFactory, decoder: codecs.SkuEventDecoder, event_type: str
) -> None:
    (event,) = [event for event in events.every_input_type() if event.type == event_type]
    wire = codecs.encode(event)
    validate(f"{event_type}.v1", wire)

    assert decoder.decode(event.sku.encode(), wire) == event
    assert decoder.decode(None, wire) == event  # an unkeyed message is fine too


def test_an_enum_field_comes_back_as_the_enum(
    events: EventFactory, decoder: codecs.SkuEventDecoder
) -> None:
    event = events.return_inspected(result=InspectionResult.DAMAGED)

    decoded = decoder.decode(b"lipstick", codecs.encode(event))

    assert isinstance(decoded, OrderLineReturnInspected)
    assert decoded.result is InspectionResult.DAMAGED


@pytest.mark.parametrize("event_type", INPUT_TYPES)
def test_an_input_may_leave_out_every_field_that_has_a_default(
    events: EventFactory, decoder: codecs.SkuEventDecoder, event_type: str
) -> None:
    (event,) = [event for event in events.every_input_type() if event.type == event_type]
    cls = type(event)
    payload = orjson.loads(codecs.encode(event))
    for name in defaults_of(cls) - {"type", "schema_version"}:
        del payload[name]

    decoded = decoder.decode(event.sku.encode(), orjson.dumps(payload))

    assert decoded == cls(**{name: getattr(event, name) for name in payload})


def placed_payload(events: EventFactory, **changes: Any) -> bytes:
    return changed(events.placed(quantity=2), **changes)


def changed(event: SkuEvent, **changes: Any) -> bytes:
    payload = orjson.loads(codecs.encode(event))
    for name, value in changes.items():
        if value is dataclasses.MISSING:
            del payload[name]
        else:
            payload[name] = value
    return orjson.dumps(payload)


def bad_inputs(events: EventFactory) -> Iterator[tuple[str, bytes | None, bytes | None]]:
    yield "empty_value", b"lipstick", None
    for value in (b"{not json", b"", b"\xff\xfe{}", b'[{"type": "stock.counted"}]', b'"x"'):
        yield "malformed_json", b"lipstick", value
    yield "malformed_json", b"lipstick", b'{"sku": "\\ud800"}'  # a lone surrogate
    for value in (
        b"{}",
        b'{"type": "order_line.exploded"}',
        b'{"type": 5}',
        b'{"type": "stock.level_changed"}',
        b'{"type": "order_line.decided"}',
        b'{"type": "dead_letter"}',
    ):
        yield "unknown_type", b"lipstick", value
    for quantity in (0, -3, MAX_QUANTITY + 1, True, "2", 2.5, None):
        yield "schema_violation", b"lipstick", placed_payload(events, quantity=quantity)
    yield "schema_violation", b"lipstick", placed_payload(events, buyer_id=dataclasses.MISSING)
    yield (
        "schema_violation",
        b"lipstick",
        placed_payload(events, schema_version=dataclasses.MISSING),
    )
    yield "schema_violation", b"lipstick", placed_payload(events, coupon="FREE")
    yield "schema_violation", b"lipstick", placed_payload(events, schema_version=0)
    yield "schema_violation", b"lipstick", placed_payload(events, schema_version="2")
    yield "schema_violation", b"lipstick", placed_payload(events, sku="")
    yield "schema_violation", b"lipstick", placed_payload(events, sku="x" * 201)
    yield "schema_violation", b"lipstick", placed_payload(events, event_time_ms=-1)
    yield "schema_violation", b"lipstick", placed_payload(events, order_line_count=0)
    yield "schema_violation", b"lipstick", changed(events.received(4), quantity=0)
    yield "schema_violation", b"lipstick", changed(events.received(4), quantity=MAX_STOCK + 1)
    yield "schema_violation", b"lipstick", changed(events.counted(4), quantity=-1)
    yield "schema_violation", b"lipstick", changed(events.counted(4), quantity=10.0)
    yield "schema_violation", b"lipstick", changed(events.adjusted(-1), delta=-MAX_STOCK - 1)
    yield "schema_violation", b"lipstick", changed(events.adjusted(-1), reason=dataclasses.MISSING)
    yield "schema_violation", b"lipstick", changed(events.shipped(), warehouse="")
    yield "schema_violation", b"lipstick", changed(events.safety_reserve_changed(), percent=101)
    yield "schema_violation", b"lipstick", changed(events.return_inspected(), result="lost")
    for event in events.every_input_type():
        yield "unsupported_schema_version", b"lipstick", changed(event, schema_version=2)
    yield "unsupported_schema_version", b"lipstick", placed_payload(events, schema_version=7)
    yield "key_mismatch", b"mascara", placed_payload(events)
    yield "key_mismatch", b"\xff", placed_payload(events)
    yield "key_mismatch", b"", changed(events.counted(1))


def test_bad_inputs_get_the_right_reason(
    events: EventFactory, decoder: codecs.SkuEventDecoder
) -> None:
    for reason, key, value in bad_inputs(events):
        with pytest.raises(codecs.InvalidEvent) as caught:
            decoder.decode(key, value)
        assert caught.value.reason == reason, (key, value)
        assert str(caught.value).startswith(f"{reason}: ")
        assert caught.value.detail


def test_a_newer_schema_version_is_named_in_the_detail(
    events: EventFactory, decoder: codecs.SkuEventDecoder
) -> None:
    with pytest.raises(codecs.InvalidEvent) as caught:
        decoder.decode(b"lipstick", placed_payload(events, schema_version=2, coupon="FREE"))

    assert caught.value.reason == "unsupported_schema_version"
    assert "order_line.placed v2" in caught.value.detail


def test_a_key_mismatch_names_both_the_key_and_the_sku(
    events: EventFactory, decoder: codecs.SkuEventDecoder
) -> None:
    with pytest.raises(codecs.InvalidEvent) as caught:
        decoder.decode(b"mascara", placed_payload(events))

    assert "mascara" in caught.value.detail
    assert "lipstick" in caught.value.detail


@pytest.mark.parametrize("event_type", INPUT_TYPES)
def test_an_integral_float_never_reaches_the_domain(
    events: EventFactory, decoder: codecs.SkuEventDecoder, event_type: str
) -> None:
    """JSON Schema counts 2.0 as an integer; a float count would make every later push
    carry 10.0, which strict platform APIs (the simulator among them) refuse."""
    (event,) = [event for event in events.every_input_type() if event.type == event_type]

    with pytest.raises(codecs.InvalidEvent) as caught:
        decoder.decode(b"lipstick", changed(event, event_time_ms=float(event.event_time_ms)))

    assert caught.value.reason == "schema_violation"


# --- a generated round trip over the whole input contract -------------------------------


def value_strategy(hint: Any, metadata: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return st.sampled_from(typing.get_args(hint))
    if origin is tuple:  # tuple[X, ...]: an array, constrained by its items
        item = value_strategy(typing.get_args(hint)[0], metadata.get("items", {}))
        size = metadata.get("minItems", 0)
        return st.lists(item, min_size=size, max_size=size + 3).map(tuple)
    if origin is not None:  # X | None
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return st.none() | value_strategy(inner, metadata)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(hint)
    if hint is bool:
        return st.booleans()
    if hint is int:
        return st.integers(metadata.get("minimum", -(2**53)), metadata.get("maximum", 2**53))
    alphabet = st.characters(codec="utf-8")
    return st.text(alphabet, min_size=metadata.get("minLength", 0), max_size=8)


@st.composite
def input_events(draw: st.DrawFn) -> SkuEvent:
    cls = draw(st.sampled_from(schemas.INPUTS))
    hints = typing.get_type_hints(cls)
    values = {
        field.name: draw(value_strategy(hints[field.name], field.metadata))
        for field in dataclasses.fields(cls)
    }
    event: SkuEvent = cls(**values)
    return event


@settings(max_examples=300, deadline=None)
@given(event=input_events())
def test_any_event_the_schemas_allow_round_trips(
    decoder: codecs.SkuEventDecoder, event: SkuEvent
) -> None:
    wire = codecs.encode(event)
    validate(schemas.schema_name(type(event)), wire)

    assert decoder.decode(event.sku.encode(), wire) == event


# --- every output validates against what we publish -------------------------------------


def outputs_of(decided: Decided) -> Iterator[tuple[str, bytes]]:
    step = decided.step
    outputs = (step.decision, step.level, step.audit, step.cancellation)
    for value in (*outputs, *decided.quota_changes, *decided.alerts):
        if value is not None:
            yield schemas.schema_name(type(value)), codecs.encode(value)


def a_busy_session(events: EventFactory) -> list[SkuEvent]:
    """Every kind of answer, change and rejection the ledger gives."""
    return [
        events.placed(quantity=1, line_id="l-0"),  # unknown SKU
        events.counted(5),
        events.placed(quantity=2),  # accepted
        events.placed(quantity=2),  # duplicate
        events.placed(quantity=9, line_id="l-2"),  # insufficient
        events.cancelled(line_id="l-3"),
        events.placed(quantity=1, line_id="l-3"),  # already cancelled
        events.paid(),
        events.shipped(quantity=2, warehouse="main"),
        events.return_received(quantity=1),
        events.return_inspected(quantity=1, result=InspectionResult.DAMAGED),
        events.placed(quantity=1, line_id="l-4"),
        events.refunded(line_id="l-4"),
        events.shipped(quantity=6, line_id="l-5"),  # ahead of its placement: on hand < 0
        *a_session_with_every_rule(events),
        *events.every_input_type()[7:],
    ]


def a_session_with_every_rule(events: EventFactory) -> list[SkuEvent]:
    """Every rejection a live session's rules give, and its three alerts at once."""
    return [
        events.received(20),
        events.session_opened(
            cap=3, buyer_limit=2, regions_allow=("CN-44",), regions_deny=("CN-65",)
        ),
        events.placed(quantity=1, line_id="l-6", region="CN-65"),  # region blocked
        events.placed(quantity=1, line_id="l-7"),  # region unknown
        events.placed(quantity=2, line_id="l-8", region="CN-44"),  # accepted: the buyer's limit
        events.placed(quantity=1, line_id="l-9", region="CN-44"),  # buyer limit reached
        events.placed(quantity=2, line_id="l-10", region="CN-44", buyer_id="b-2"),  # over cap
        events.placed(quantity=1, line_id="l-11", region="CN-44", buyer_id="b-2"),  # sold out
        events.session_closed(),
    ]


def test_every_output_of_a_busy_session_validates(events: EventFactory) -> None:
    position = SkuPosition("lipstick")
    records: dict[bytes, Record] = {}
    buyers: dict[tuple[str, str], BuyerRecord] = {}
    written: list[tuple[str, bytes]] = []
    policies = Policies(allocation=AllocationPolicy(channels=(ChannelRule("tiktok-room-1"),)))
    for seq, event in enumerate(a_busy_session(events)):
        key = state.record_key(event)
        slot = buyer_slot(position, records.get(key), event)  # as the ledger agent does
        buyer = buyers.get(slot) if slot is not None else None
        decided = decide(seq, position, records.get(key), event, policies, buyer)
        position = decided.step.position
        if decided.step.record is not None:
            records[key] = decided.step.record
        if slot is not None and decided.step.buyer is not None:
            buyers[slot] = decided.step.buyer
        written += outputs_of(decided)

    for name, body in written:
        validate(name, body)
    answers = [orjson.loads(body) for name, body in written if name == "order_line.decided.v1"]
    assert {answer["reason"] for answer in answers} == {*RejectReason, None} - {
        RejectReason.ORDER_INCOMPLETE  # given by the order aggregation, below
    }
    assert {answer["outcome"] for answer in answers} == set(Outcome)
    assert {name for name, _ in written} == set(OUTPUT_CLASSES) - {"dead_letter.v1"}
    levels = [orjson.loads(body) for name, body in written if name == "stock.level_changed.v1"]
    assert min(level["on_hand"] for level in levels) < 0  # published as it is
    alerts = [orjson.loads(body) for name, body in written if name == "alert.raised.v1"]
    assert [alert["level"] for alert in alerts if alert["session_id"] == "s-1"] == list(AlertLevel)


def test_the_order_aggregations_releases_and_requests_validate_and_decode(
    decoder: codecs.SkuEventDecoder,
) -> None:
    def answer(line_id: str, outcome: Outcome) -> OrderLineDecided:
        return OrderLineDecided(
            event_id=f"e-{line_id}",
            sku=f"sku-{line_id}",
            event_time_ms=1,
            platform="tiktok",
            channel="room-1",
            order_id="o-1",
            line_id=line_id,
            quantity=1,
            outcome=outcome,
            reason=RejectReason.INSUFFICIENT_STOCK if outcome is Outcome.REJECTED else None,
            position_version=1,
            order_line_count=2,
        )

    first = orders.on_decision(0, None, answer("1", Outcome.ACCEPTED))
    settled = orders.on_decision(1, first.tally, answer("2", Outcome.REJECTED))

    (release,), (request,) = settled.releases, settled.requests
    assert decoder.decode(b"sku-1", codecs.encode(release)) == release
    validate("order_line.cancellation_requested.v1", codecs.encode(request))
    assert request.reason is RejectReason.ORDER_INCOMPLETE


@pytest.mark.parametrize(("key", "value"), [(b"lipstick", b'{"a": 1}'), (None, b"\xff\xfe")])
def test_a_dead_letter_validates(key: bytes | None, value: bytes) -> None:
    letter = DeadLetter.of(
        topic="stockcast.sku-events.v1",
        partition=3,
        offset=42,
        key=key,
        value=value,
        reason="malformed_json",
        detail="unexpected character",
    )

    validate("dead_letter.v1", codecs.encode(letter))
    assert letter.key == (None if key is None else "lipstick")


def test_a_dead_letter_keeps_a_missing_value_as_text() -> None:
    letter = DeadLetter.of(
        topic="t", partition=0, offset=0, key=None, value=None, reason="empty_value", detail="-"
    )

    validate("dead_letter.v1", codecs.encode(letter))
    assert letter.value == ""


def test_the_audit_record_of_a_long_channel_name_validates(events: EventFactory) -> None:
    counted = apply(SkuPosition("lipstick"), None, events.counted(5))
    placement = events.placed(platform="p" * 200, channel="c" * 200)  # the longest allowed

    step = apply(counted.position, None, placement)

    assert step.audit is not None
    validate("stock.audit.v1", codecs.encode(step.audit))


def test_the_release_of_an_order_with_long_ids_passes_the_decoder(
    decoder: codecs.SkuEventDecoder,
) -> None:
    def answer(line_id: str, outcome: Outcome) -> OrderLineDecided:
        return OrderLineDecided(
            event_id="e",
            sku="lipstick",
            event_time_ms=1,
            platform="shopify",
            channel="room-1",
            order_id="o" * 120,
            line_id=line_id,
            quantity=1,
            outcome=outcome,
            reason=RejectReason.INSUFFICIENT_STOCK if outcome is Outcome.REJECTED else None,
            position_version=1,
            order_line_count=2,
        )

    first = orders.on_decision(0, None, answer("a" * 60, Outcome.ACCEPTED))
    (release,) = orders.on_decision(1, first.tally, answer("b", Outcome.REJECTED)).releases

    assert decoder.decode(b"lipstick", codecs.encode(release)) == release


# --- our own outputs read back ----------------------------------------------------------


def test_a_decision_round_trips(events: EventFactory) -> None:
    counted = apply(SkuPosition("lipstick"), None, events.counted(1))
    accepted = apply(counted.position, None, events.placed(quantity=1))
    rejected = apply(accepted.position, None, events.placed(quantity=1, line_id="l-2"))
    duplicate = apply(accepted.position, accepted.record, events.placed(quantity=1))

    for step in (accepted, rejected, duplicate):
        assert step.decision is not None
        assert codecs.decode_decision(codecs.encode(step.decision)) == step.decision


def test_a_quota_change_round_trips(events: EventFactory) -> None:
    policies = Policies(allocation=AllocationPolicy(channels=(ChannelRule("tiktok-room-1"),)))
    decided = decide(0, SkuPosition("lipstick"), None, events.received(9), policies)
    (change,) = decided.quota_changes

    assert codecs.decode_quota(codecs.encode(change)) == change
    assert decided.step.level is not None
    assert codecs.decode_quota(codecs.encode(decided.step.level)) is None  # same topic


def test_the_domain_events_module_lists_every_input_class_once() -> None:
    assert set(schemas.INPUTS) == (
        set(domain_events.ORDER_LINE_EVENTS)
        | set(domain_events.STOCK_EVENTS)
        | set(domain_events.ALLOCATION_EVENTS)
        | set(domain_events.SESSION_EVENTS)
    )
