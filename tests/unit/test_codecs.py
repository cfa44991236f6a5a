"""The wire edge: published schemas, the dataclasses they describe, and the decoder."""

from __future__ import annotations

import dataclasses
import importlib.resources
from typing import TYPE_CHECKING, Any

import jsonschema
import orjson
import pytest

from sync_worker.domain.events import (
    SCHEMA_VERSION,
    OrderLineCancelled,
    OrderLineDecided,
    OrderLinePlaced,
    Outcome,
    RejectReason,
    StockCounted,
    StockLevelChanged,
    StockReceived,
)
from sync_worker.domain.ledger import LineRecord, LineStatus, SkuPosition, apply
from sync_worker.streaming import codecs
from sync_worker.streaming.dead_letters import DeadLetter

if TYPE_CHECKING:
    from tests.unit.conftest import EventFactory

SCHEMA_CLASSES: dict[str, type[Any]] = {
    "order_line.placed.v1": OrderLinePlaced,
    "order_line.cancelled.v1": OrderLineCancelled,
    "stock.counted.v1": StockCounted,
    "stock.received.v1": StockReceived,
    "order_line.decided.v1": OrderLineDecided,
    "stock.level_changed.v1": StockLevelChanged,
    "dead_letter.v1": DeadLetter,
}
INPUTS = (
    "order_line.placed.v1",
    "order_line.cancelled.v1",
    "stock.counted.v1",
    "stock.received.v1",
)


def published_schema_names() -> list[str]:
    files = importlib.resources.files("sync_worker.schemas").iterdir()
    return sorted(file.name.removesuffix(".json") for file in files if file.name.endswith(".json"))


@pytest.fixture
def decoder() -> codecs.SkuEventDecoder:
    return codecs.SkuEventDecoder()


def validate(schema_name: str, payload: bytes) -> None:
    jsonschema.Draft202012Validator(codecs.load_schema(schema_name)).validate(orjson.loads(payload))


# --- the published schemas ------------------------------------------------------------


def test_every_published_schema_has_its_dataclass() -> None:
    assert published_schema_names() == sorted(SCHEMA_CLASSES)


@pytest.mark.parametrize("name", sorted(SCHEMA_CLASSES))
def test_every_published_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    schema = codecs.load_schema(name)

    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/{name}.json")
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("name", sorted(SCHEMA_CLASSES))
def test_a_dataclass_has_exactly_the_schemas_properties(name: str) -> None:
    schema, cls = codecs.load_schema(name), SCHEMA_CLASSES[name]
    fields = {field.name: field for field in dataclasses.fields(cls)}

    assert set(fields) == set(schema["properties"])
    assert schema["properties"]["type"] == {"const": fields["type"].default}
    assert schema["properties"]["schema_version"] == {"const": SCHEMA_VERSION}
    assert fields["schema_version"].default == SCHEMA_VERSION
    assert name.startswith(f"{fields['type'].default}.v")


@pytest.mark.parametrize("name", INPUTS)
def test_an_input_schema_requires_exactly_the_fields_without_defaults(name: str) -> None:
    """The decoder builds the dataclass from what the schema let through: a field the
    dataclass needs but the schema does not require would crash the agent."""
    schema, cls = codecs.load_schema(name), SCHEMA_CLASSES[name]
    without_default = {
        field.name
        for field in dataclasses.fields(cls)
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    }

    assert set(schema["required"]) == without_default | {"type", "schema_version"}


@pytest.mark.parametrize("name", sorted(set(SCHEMA_CLASSES) - set(INPUTS)))
def test_an_output_schema_requires_every_field_the_encoder_writes(name: str) -> None:
    """Outputs are always encoded whole (orjson writes every field, defaults included), so
    their schemas may require more than the fields without defaults, e.g. a null reason."""
    schema, cls = codecs.load_schema(name), SCHEMA_CLASSES[name]
    without_default = {
        field.name
        for field in dataclasses.fields(cls)
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    }

    assert without_default | {"type", "schema_version"} <= set(schema["required"])
    assert set(schema["required"]) == {field.name for field in dataclasses.fields(cls)}


def test_the_decided_schema_knows_every_reason_and_every_outcome_the_ledger_emits() -> None:
    properties = codecs.load_schema("order_line.decided.v1")["properties"]

    assert set(properties["reason"]["enum"]) == {*RejectReason, None}
    # Outcome.CANCELLED exists in the enum but the ledger never decides a line with it.
    emitted = {Outcome.ACCEPTED, Outcome.REJECTED, Outcome.DUPLICATE}
    assert set(properties["outcome"]["enum"]) == emitted


def test_the_decoder_knows_one_class_per_input_type() -> None:
    known = dict(codecs.SKU_EVENT_TYPES)

    assert known == {name.removesuffix(".v1"): SCHEMA_CLASSES[name] for name in INPUTS}


# --- outputs validate against what we publish -----------------------------------------


def test_every_decision_and_level_the_ledger_emits_validates(events: EventFactory) -> None:
    position = SkuPosition("lipstick")
    outputs: list[tuple[str, bytes]] = []
    line = None
    script = [
        events.placed(quantity=1, line_id="l-0"),  # unknown SKU
        events.counted(5),
        events.placed(quantity=2),  # accepted
        events.placed(quantity=2),  # duplicate
        events.placed(quantity=9, line_id="l-2"),  # insufficient
        events.cancelled(line_id="l-3"),
        events.placed(quantity=1, line_id="l-3"),  # already cancelled
        events.cancelled(),  # releases l-1
        events.received(3),
    ]
    lines: dict[str, LineRecord] = {}
    for event in script:
        key = getattr(event, "line_key", None)
        line = lines.get(key) if key is not None else None
        step = apply(position, line, event)
        position = step.position
        if key is not None and step.line is not None:
            lines[key] = step.line
        if step.decision is not None:
            outputs.append(("order_line.decided.v1", codecs.encode(step.decision)))
        if step.level is not None:
            outputs.append(("stock.level_changed.v1", codecs.encode(step.level)))

    reasons = {orjson.loads(body)["reason"] for name, body in outputs if "decided" in name}
    assert reasons == {*RejectReason, None}
    for name, body in outputs:
        validate(name, body)


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


# --- decoding inputs ------------------------------------------------------------------


def input_events(events: EventFactory) -> list[Any]:
    return [
        events.placed(quantity=3),
        events.placed(quantity=1, region="CN-31"),
        events.cancelled(),
        events.counted(0),
        events.counted(120),
        events.received(7),
    ]


def test_every_input_type_round_trips(
    events: EventFactory, decoder: codecs.SkuEventDecoder
) -> None:
    for event in input_events(events):
        wire = codecs.encode(event)
        validate(f"{event.type}.v1", wire)

        assert decoder.decode(event.sku.encode(), wire) == event
        assert decoder.decode(None, wire) == event  # an unkeyed message is fine too


def test_a_placement_without_a_region_decodes_with_none(
    events: EventFactory, decoder: codecs.SkuEventDecoder
) -> None:
    payload = orjson.loads(codecs.encode(events.placed()))
    del payload["region"]

    event = decoder.decode(b"lipstick", orjson.dumps(payload))

    assert isinstance(event, OrderLinePlaced)
    assert event.region is None


def placed_payload(events: EventFactory, **changes: Any) -> bytes:
    payload = orjson.loads(codecs.encode(events.placed(quantity=2)))
    for name, value in changes.items():
        if value is dataclasses.MISSING:
            del payload[name]
        else:
            payload[name] = value
    return orjson.dumps(payload)


def test_bad_inputs_get_the_right_reason(
    events: EventFactory, decoder: codecs.SkuEventDecoder
) -> None:
    received = orjson.loads(codecs.encode(events.received(4)))
    counted = orjson.loads(codecs.encode(events.counted(4)))
    cases: list[tuple[str, bytes | None, bytes | None]] = [
        ("empty_value", b"lipstick", None),
        ("malformed_json", b"lipstick", b"{not json"),
        ("malformed_json", b"lipstick", b""),
        ("malformed_json", b"lipstick", b"\xff\xfe{}"),
        ("malformed_json", b"lipstick", b'[{"type": "stock.counted"}]'),
        ("malformed_json", b"lipstick", b'"stock.counted"'),
        ("unknown_type", b"lipstick", b"{}"),
        ("unknown_type", b"lipstick", b'{"type": "order_line.refunded"}'),
        ("unknown_type", b"lipstick", b'{"type": 5}'),
        ("unknown_type", b"lipstick", b'{"type": "stock.level_changed"}'),
        ("schema_violation", b"lipstick", placed_payload(events, quantity=0)),
        ("schema_violation", b"lipstick", placed_payload(events, quantity=-3)),
        ("schema_violation", b"lipstick", placed_payload(events, quantity=True)),
        ("schema_violation", b"lipstick", placed_payload(events, quantity="2")),
        ("schema_violation", b"lipstick", placed_payload(events, quantity=2.5)),
        ("schema_violation", b"lipstick", placed_payload(events, buyer_id=dataclasses.MISSING)),
        ("schema_violation", b"lipstick", placed_payload(events, coupon="FREE")),
        ("schema_violation", b"lipstick", placed_payload(events, schema_version=2)),
        ("schema_violation", b"lipstick", placed_payload(events, sku="")),
        ("schema_violation", b"lipstick", placed_payload(events, event_time_ms=-1)),
        ("schema_violation", b"lipstick", orjson.dumps({**received, "quantity": 0})),
        ("schema_violation", b"lipstick", orjson.dumps({**received, "quantity": -1})),
        ("schema_violation", b"lipstick", orjson.dumps({**counted, "quantity": -1})),
        ("key_mismatch", b"mascara", placed_payload(events)),
        ("key_mismatch", b"\xff", placed_payload(events)),
    ]

    for reason, key, value in cases:
        with pytest.raises(codecs.InvalidEvent) as caught:
            decoder.decode(key, value)
        assert caught.value.reason == reason, (key, value)
        assert str(caught.value).startswith(f"{reason}: ")
        assert caught.value.detail


def test_a_key_mismatch_names_both_the_key_and_the_sku(
    events: EventFactory, decoder: codecs.SkuEventDecoder
) -> None:
    with pytest.raises(codecs.InvalidEvent) as caught:
        decoder.decode(b"mascara", placed_payload(events))

    assert "mascara" in caught.value.detail
    assert "lipstick" in caught.value.detail


@pytest.mark.parametrize("field", ["quantity", "schema_version", "event_time_ms"])
def test_an_integral_float_never_reaches_the_domain(
    events: EventFactory, decoder: codecs.SkuEventDecoder, field: str
) -> None:
    """JSON Schema counts 2.0 as an integer; a float count would make every later push
    carry 10.0, which strict platform APIs (the simulator among them) refuse."""
    value = orjson.loads(placed_payload(events))[field]

    with pytest.raises(codecs.InvalidEvent) as caught:
        decoder.decode(b"lipstick", placed_payload(events, **{field: float(value)}))

    assert caught.value.reason == "schema_violation"


def test_a_float_count_is_refused_too(
    events: EventFactory, decoder: codecs.SkuEventDecoder
) -> None:
    counted = orjson.loads(codecs.encode(events.counted(10)))

    with pytest.raises(codecs.InvalidEvent) as caught:
        decoder.decode(b"lipstick", orjson.dumps({**counted, "quantity": 10.0}))

    assert caught.value.reason == "schema_violation"


# --- stored state ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "position",
    [
        SkuPosition("lipstick"),
        SkuPosition(
            "lipstick", on_hand=120, committed=17, safety_reserve=6, version=42, known=True
        ),
        SkuPosition("CASE/12 ☃", on_hand=0, committed=3, version=1, known=True),
    ],
)
def test_a_position_round_trips(position: SkuPosition) -> None:
    assert codecs.decode_position(codecs.encode(position)) == position


@pytest.mark.parametrize("status", list(LineStatus))
def test_a_line_record_round_trips(status: LineStatus) -> None:
    record = LineRecord(status, 4 if status is LineStatus.ACCEPTED else 0)

    decoded = codecs.decode_line(codecs.encode(record))

    assert decoded == record
    assert decoded.status is status


def test_a_stock_level_round_trips(events: EventFactory) -> None:
    step = apply(SkuPosition("lipstick", safety_reserve=2), None, events.received(9))
    assert step.level is not None

    assert codecs.decode_level(codecs.encode(step.level)) == step.level
