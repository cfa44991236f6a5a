"""The scenario file: stock, channels (delays, rate limits, buyers), bursts, pins.

A TOML file (format in ``docs/allocation.md``) validated by pydantic into frozen
dataclasses. The annotations on the dataclasses are the file's rules: pydantic checks
them when it reads a file, not when code builds a scenario itself. Every problem in a
file is reported together in one ``TraceError``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictFloat,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    with_config,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from sync_worker.domain.allocation import AllocationPolicy, ChannelRule, PolicyKind

DEFAULT_TRACE = "burst.toml"
_ALLOCATOR_DEFAULTS = AllocationPolicy()


class TraceError(ValueError):
    """A scenario file that cannot be played; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = tuple(problems)
        listed = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{listed}")


def _not_blank(text: str) -> str:
    if not text.strip():
        raise PydanticCustomError("blank", "must not be empty")
    return text


# Strict: a TOML boolean is not a number, nor a float an integer (an integer is a fine float).
_Positive = Annotated[StrictInt, Field(gt=0)]
_NotNegative = Annotated[StrictInt, Field(ge=0)]
_PositiveFloat = Annotated[StrictFloat, Field(gt=0)]
_Name = Annotated[str, AfterValidator(_not_blank)]
_TABLE = ConfigDict(extra="forbid")


class Process(StrEnum):
    POISSON = "poisson"
    """Buyers arrive at random, ``rate_per_s`` on average."""
    STEADY = "steady"
    """Buyers arrive evenly spaced, ``rate_per_s`` of them a second."""
    NONE = "none"
    """No buyers of its own (only replayed arrivals, or none at all)."""


@dataclass(frozen=True, slots=True)
class Buyers:
    process: Process = Process.NONE
    rate_per_s: float = 0.0
    quantity_min: int = 1
    quantity_max: int = 1


def _as_range(quantity: object) -> object:
    """``quantity = Q`` is short for ``[Q, Q]``."""
    return [quantity, quantity] if type(quantity) is int else quantity


def _in_order(quantity: tuple[int, int]) -> tuple[int, int]:
    if quantity[0] > quantity[1]:
        raise PydanticCustomError(
            "quantity", "must be a positive integer or [min, max] with 1 <= min <= max"
        )
    return quantity


class _BuyersTable(BaseModel):
    """``buyers = { process, rate_per_s, quantity }`` as written in the file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    process: Process = Process.NONE
    rate_per_s: Annotated[StrictFloat, Field(ge=0)] | None = Field(None, validate_default=True)
    quantity: Annotated[
        tuple[_Positive, _Positive], BeforeValidator(_as_range), AfterValidator(_in_order)
    ] = (1, 1)

    @field_validator("rate_per_s")
    @classmethod
    def _needed_for_buyers(cls, rate: float | None, info: ValidationInfo) -> float | None:
        if rate is None and info.data.get("process", Process.NONE) is not Process.NONE:
            raise PydanticCustomError("missing", "Field required")
        return rate


def _buyers(table: Any) -> Buyers:
    buyers = _BuyersTable.model_validate(table)
    return Buyers(buyers.process, buyers.rate_per_s or 0.0, *buyers.quantity)


@with_config(_TABLE)
@dataclass(frozen=True, slots=True)
class ChannelSpec:
    name: _Name
    hear_delay_ms: _NotNegative
    """From a buyer's order on the platform to the ledger deciding it (and from a
    reduction landing to the ledger hearing its settlement)."""
    push_delay_ms: _NotNegative
    """From a write being sent to the platform showing it."""
    pushes_per_s: _PositiveFloat
    """At most this many writes a second to the channel, evenly spaced."""
    buyers: Annotated[Buyers, PlainValidator(_buyers)] = Buyers()
    ratio: Annotated[StrictFloat, Field(ge=0, le=1)] | None = None
    plus: StrictInt = 0
    floor: _NotNegative = 0
    ceiling: _NotNegative | None = None

    @property
    def latency_ms(self) -> int:
        return self.hear_delay_ms + self.push_delay_ms


@with_config(_TABLE)
@dataclass(frozen=True, slots=True)
class Burst:
    """A "上链接" burst: the channel's buyer rate is ``multiplier`` times higher."""

    channel: str
    start_ms: _NotNegative
    duration_ms: _Positive
    multiplier: _PositiveFloat


@with_config(_TABLE)
@dataclass(frozen=True, slots=True)
class Pin:
    """The host pins the product in the room: a ``ChannelPinned`` event."""

    channel: str
    at_ms: _NotNegative
    duration_ms: _Positive
    expected_units_per_s: _Positive


@with_config(_TABLE)
@dataclass(frozen=True, slots=True)
class PolicySettings:
    """``AllocationPolicy`` parameters shared by every policy kind in a run."""

    refresh_ms: _Positive = _ALLOCATOR_DEFAULTS.refresh_ms
    lease_units: _Positive = _ALLOCATOR_DEFAULTS.lease_units
    min_buffer: _NotNegative = _ALLOCATOR_DEFAULTS.min_buffer
    cover: _PositiveFloat = _ALLOCATOR_DEFAULTS.cover
    rate_half_life_ms: _Positive = _ALLOCATOR_DEFAULTS.rate_half_life_ms
    dry_claw_ratio: _PositiveFloat = _ALLOCATOR_DEFAULTS.dry_claw_ratio


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    sku: str
    stock: int
    duration_ms: int
    seed: int
    channels: tuple[ChannelSpec, ...]
    bursts: tuple[Burst, ...] = ()
    pins: tuple[Pin, ...] = ()
    policy: PolicySettings = PolicySettings()
    arrivals_file: Path | None = None
    """Replay these recorded buyers instead of generating them."""

    def allocation_policy(self, kind: PolicyKind) -> AllocationPolicy:
        """The allocator's configuration for ``kind``; each channel's latency is its
        hear delay plus its push delay."""
        rules = tuple(
            ChannelRule(
                spec.name,
                ratio=spec.ratio,
                plus=spec.plus,
                floor=spec.floor,
                ceiling=spec.ceiling,
                latency_ms=spec.latency_ms,
            )
            for spec in self.channels
        )
        settings = self.policy
        return AllocationPolicy(
            kind=kind,
            channels=rules,
            refresh_ms=settings.refresh_ms,
            lease_units=settings.lease_units,
            min_buffer=settings.min_buffer,
            cover=settings.cover,
            rate_half_life_ms=settings.rate_half_life_ms,
            dry_claw_ratio=settings.dry_claw_ratio,
        )


_Where = tuple[int | str, ...]


def _refuse(problems: list[tuple[_Where, str]]) -> None:
    """Raise every problem found across fields at once, each at its place in the file."""
    if problems:
        raise ValidationError.from_exception_data(
            "trace",
            [
                InitErrorDetails(type=PydanticCustomError("trace", message), loc=where, input=None)
                for where, message in problems
            ],
        )


class _TraceFile(BaseModel):
    """The file as written. Fields are validated in this order, so each cross-field
    check sees the fields above it (those that are valid)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "trace"
    sku: _Name = "sku"
    stock: _Positive
    seed: StrictInt = 0
    arrivals: _Name | None = None
    """A recorded arrivals file, relative to the trace file."""
    duration_ms: _Positive | None = Field(None, validate_default=True)
    policy: PolicySettings = PolicySettings()
    channels: tuple[ChannelSpec, ...] = Field((), validate_default=True)
    """At least one (pydantic's ``min_length`` would also fire when every channel is bad)."""
    bursts: tuple[Burst, ...] = ()
    pins: tuple[Pin, ...] = ()

    @field_validator("duration_ms")
    @classmethod
    def _needed_without_arrivals(cls, duration: int | None, info: ValidationInfo) -> int | None:
        if duration is None and info.data.get("arrivals") is None:
            raise PydanticCustomError("missing", "Field required")
        return duration

    @field_validator("channels")
    @classmethod
    def _channels_fit_together(
        cls, channels: tuple[ChannelSpec, ...], info: ValidationInfo
    ) -> tuple[ChannelSpec, ...]:
        if not channels:
            raise PydanticCustomError("too_short", "at least one [[channels]] is needed")
        names = [channel.name for channel in channels]
        problems: list[tuple[_Where, str]] = [
            ((), f"{name!r} is declared more than once")
            for name in sorted({name for name in names if names.count(name) > 1})
        ]
        ratios = sum(channel.ratio or 0.0 for channel in channels)
        if ratios > 1.0 + 1e-9:
            problems.append(((), f"the ratios add up to {ratios:g}, more than 1"))
        if info.data.get("arrivals") is not None:
            problems += [
                (
                    (index, "buyers"),
                    "generated buyers are not allowed with a recorded arrivals file",
                )
                for index, channel in enumerate(channels)
                if channel.buyers.process is not Process.NONE
            ]
        _refuse(problems)
        return channels

    @field_validator("bursts", "pins")
    @classmethod
    def _on_declared_channels(
        cls, events: tuple[Burst | Pin, ...], info: ValidationInfo
    ) -> tuple[Burst | Pin, ...]:
        problems: list[tuple[_Where, str]] = []
        if info.field_name == "bursts" and events and info.data.get("arrivals") is not None:
            problems.append(((), "bursts shape generated buyers; not allowed with arrivals"))
        if "channels" in info.data:  # else their own problems are reported first
            declared = {channel.name for channel in info.data["channels"]}
            problems += [
                ((index, "channel"), f"{event.channel!r} is not a declared channel")
                for index, event in enumerate(events)
                if event.channel not in declared
            ]
        _refuse(problems)
        return events

    def scenario(self, base_dir: Path) -> Scenario:
        return Scenario(
            name=self.name,
            sku=self.sku,
            stock=self.stock,
            duration_ms=self.duration_ms or 0,
            seed=self.seed,
            channels=self.channels,
            bursts=self.bursts,
            pins=self.pins,
            policy=self.policy,
            arrivals_file=None if self.arrivals is None else base_dir / self.arrivals,
        )


# --- loading ----------------------------------------------------------------------------


def default_trace_text() -> str:
    """The scenario shipped with the package (``traces/burst.toml``)."""
    trace = resources.files("sync_worker.simulation") / "traces" / DEFAULT_TRACE
    return trace.read_text(encoding="utf-8")


def load_trace(path: Path | None = None) -> Scenario:
    """Load and validate a scenario file; None loads the default one."""
    if path is None:
        return parse_trace(default_trace_text(), source=f"<default {DEFAULT_TRACE}>")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TraceError(str(path), [f"cannot read the file: {error.strerror}"]) from None
    return parse_trace(text, source=str(path), base_dir=path.parent)


def parse_trace(text: str, *, source: str = "<trace>", base_dir: Path | None = None) -> Scenario:
    """Validate a scenario's TOML text; a relative ``arrivals`` path is taken from
    ``base_dir`` (the trace file's directory)."""
    try:
        trace = _TraceFile.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as error:
        raise TraceError(source, [f"not valid TOML: {error}"]) from None
    except ValidationError as error:
        raise TraceError(source, [_describe(detail) for detail in error.errors()]) from None
    return trace.scenario(base_dir or Path.cwd())


_MESSAGES = {
    "missing": "missing",
    "extra_forbidden": "unknown key",
    "unexpected_keyword_argument": "unknown key",
    "int_type": "must be an integer, not {input!r}",
    "float_type": "must be a number, not {input!r}",
    "string_type": "must be a string, not {input!r}",
    "greater_than": "must be greater than {gt:g}",
    "greater_than_equal": "must be at least {ge:g}",
    "less_than_equal": "must be at most {le:g}",
    "enum": "must be one of {expected}",
    "model_type": "must be a table",
    "dataclass_type": "must be a table",
    "tuple_type": "must be an array",
}
"""pydantic's messages in the file's words, by error type (pydantic's own otherwise)."""


def _describe(detail: ErrorDetails) -> str:
    """``channels[0].buyers.quantity: <message>``."""
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in detail["loc"])
    template = _MESSAGES.get(detail["type"])
    context = detail.get("ctx", {})
    message = (
        detail["msg"] if template is None else template.format(input=detail["input"], **context)
    )
    return f"{where.lstrip('.') or 'trace'}: {message}"
