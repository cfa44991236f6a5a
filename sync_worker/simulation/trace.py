"""The scenario file: stock, channels (delays, rate limits, buyers), bursts, pins.

A TOML file (format in ``docs/allocation.md``) loaded into frozen dataclasses. Every
problem in a file is found in one pass and reported together in one ``TraceError``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from sync_worker.domain.allocation import AllocationPolicy, ChannelRule, PolicyKind

DEFAULT_TRACE = "burst.toml"
_ALLOCATOR_DEFAULTS = AllocationPolicy()


class TraceError(ValueError):
    """A scenario file that cannot be played; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = tuple(problems)
        listed = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{listed}")


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


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    name: str
    hear_delay_ms: int
    """From a buyer's order on the platform to the ledger deciding it (and from a
    reduction landing to the ledger hearing its settlement)."""
    push_delay_ms: int
    """From a write being sent to the platform showing it."""
    pushes_per_s: float
    """At most this many writes a second to the channel, evenly spaced."""
    buyers: Buyers = Buyers()
    ratio: float | None = None
    plus: int = 0
    floor: int = 0
    ceiling: int | None = None

    @property
    def latency_ms(self) -> int:
        return self.hear_delay_ms + self.push_delay_ms


@dataclass(frozen=True, slots=True)
class Burst:
    """A "上链接" burst: the channel's buyer rate is ``multiplier`` times higher."""

    channel: str
    start_ms: int
    duration_ms: int
    multiplier: float


@dataclass(frozen=True, slots=True)
class Pin:
    """The host pins the product in the room: a ``ChannelPinned`` event."""

    channel: str
    at_ms: int
    duration_ms: int
    expected_units_per_s: int


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """``AllocationPolicy`` parameters shared by every policy kind in a run."""

    refresh_ms: int = _ALLOCATOR_DEFAULTS.refresh_ms
    lease_units: int = _ALLOCATOR_DEFAULTS.lease_units
    min_buffer: int = _ALLOCATOR_DEFAULTS.min_buffer
    cover: float = _ALLOCATOR_DEFAULTS.cover
    rate_half_life_ms: int = _ALLOCATOR_DEFAULTS.rate_half_life_ms
    dry_claw_ratio: float = _ALLOCATOR_DEFAULTS.dry_claw_ratio


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

    def channel(self, name: str) -> ChannelSpec:
        return next(spec for spec in self.channels if spec.name == name)

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
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise TraceError(source, [f"not valid TOML: {error}"]) from None
    reader = _Reader()
    scenario = reader.scenario(data, base_dir or Path.cwd())
    if reader.problems or scenario is None:
        raise TraceError(source, reader.problems)
    return scenario


_TOP = {"name", "sku", "stock", "duration_ms", "seed", "arrivals", "policy", "channels"}
_TOP |= {"bursts", "pins"}
_CHANNEL = {"name", "hear_delay_ms", "push_delay_ms", "pushes_per_s", "buyers"}
_CHANNEL |= {"ratio", "plus", "floor", "ceiling"}
_BUYERS = {"process", "rate_per_s", "quantity"}
_BURST = {"channel", "start_ms", "duration_ms", "multiplier"}
_PIN = {"channel", "at_ms", "duration_ms", "expected_units_per_s"}
_POLICY = set(PolicySettings.__dataclass_fields__)


class _Reader:
    """Reads one value at a time, noting every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def keys(self, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in sorted(set(table) - allowed):
            self.problem(f"{where}.{key}" if where else key, "unknown key")

    def value(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        kind: type | tuple[type, ...],
        default: Any = None,
        *,
        required: bool = False,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        name = f"{where}.{key}" if where else key
        if key not in table:
            if required:
                self.problem(name, "missing")
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML booleans are not numbers, and an integer is a fine float.
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        else:
            ok = isinstance(value, kinds) or (float in kinds and isinstance(value, int))
        if not ok:
            names = " or ".join(_type_name(k) for k in kinds)
            self.problem(name, f"must be {names}, not {value!r}")
            return default
        message = check(value) if check is not None else None
        if message is not None:
            self.problem(name, message)
            return default
        return float(value) if kinds == (float,) else value

    def tables(self, data: Mapping[str, Any], key: str) -> list[tuple[str, Mapping[str, Any]]]:
        entries = data.get(key, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            self.problem(key, f"must be an array of tables ([[{key}]])")
            return []
        return [(f"{key}[{index}]", entry) for index, entry in enumerate(entries)]

    def scenario(self, data: Mapping[str, Any], base_dir: Path) -> Scenario | None:
        self.keys(data, _TOP, "")
        name = self.value(data, "name", "", str, "trace")
        sku = self.value(data, "sku", "", str, "sku", check=_nonempty)
        stock = self.value(data, "stock", "", int, 0, required=True, check=_positive)
        seed = self.value(data, "seed", "", int, 0)
        arrivals = self.value(data, "arrivals", "", str, None, check=_nonempty)
        duration = self.value(
            data, "duration_ms", "", int, 0, required=arrivals is None, check=_positive
        )
        policy = self.policy(data.get("policy", {}))
        channels = [self.channel(entry, where) for where, entry in self.tables(data, "channels")]
        known = [c.name for c in channels if c is not None]
        if not channels:
            self.problem("channels", "at least one [[channels]] is needed")
        for duplicate in sorted({n for n in known if known.count(n) > 1}):
            self.problem("channels", f"{duplicate!r} is declared more than once")
        ratios = sum(c.ratio for c in channels if c is not None and c.ratio is not None)
        if ratios > 1.0 + 1e-9:
            self.problem("channels", f"the ratios add up to {ratios:g}, more than 1")
        bursts = [self.burst(entry, where, known) for where, entry in self.tables(data, "bursts")]
        pins = [self.pin(entry, where, known) for where, entry in self.tables(data, "pins")]
        arrivals_file = None
        if arrivals is not None:
            arrivals_file = base_dir / arrivals
            if bursts:
                self.problem("bursts", "bursts shape generated buyers; not allowed with arrivals")
            for channel in channels:
                if channel is not None and channel.buyers.process is not Process.NONE:
                    self.problem(
                        f"channels.{channel.name}.buyers",
                        "generated buyers are not allowed with a recorded arrivals file",
                    )
        if self.problems:
            return None
        return Scenario(
            name=name,
            sku=sku,
            stock=stock,
            duration_ms=duration,
            seed=seed,
            channels=tuple(c for c in channels if c is not None),
            bursts=tuple(b for b in bursts if b is not None),
            pins=tuple(p for p in pins if p is not None),
            policy=policy,
            arrivals_file=arrivals_file,
        )

    def policy(self, table: Any) -> PolicySettings:
        if not isinstance(table, dict):
            self.problem("policy", "must be a table ([policy])")
            return PolicySettings()
        self.keys(table, _POLICY, "policy")
        d = PolicySettings()
        return PolicySettings(
            refresh_ms=self.value(
                table, "refresh_ms", "policy", int, d.refresh_ms, check=_positive
            ),
            lease_units=self.value(
                table, "lease_units", "policy", int, d.lease_units, check=_positive
            ),
            min_buffer=self.value(
                table, "min_buffer", "policy", int, d.min_buffer, check=_not_negative
            ),
            cover=self.value(table, "cover", "policy", float, d.cover, check=_positive),
            rate_half_life_ms=self.value(
                table, "rate_half_life_ms", "policy", int, d.rate_half_life_ms, check=_positive
            ),
            dry_claw_ratio=self.value(
                table, "dry_claw_ratio", "policy", float, d.dry_claw_ratio, check=_positive
            ),
        )

    def channel(self, table: Mapping[str, Any], where: str) -> ChannelSpec | None:
        before = len(self.problems)
        self.keys(table, _CHANNEL, where)
        name = self.value(table, "name", where, str, "", required=True, check=_nonempty)
        hear = self.value(table, "hear_delay_ms", where, int, 0, required=True, check=_not_negative)
        push = self.value(table, "push_delay_ms", where, int, 0, required=True, check=_not_negative)
        pushes = self.value(
            table, "pushes_per_s", where, float, 0.0, required=True, check=_positive
        )
        ratio = self.value(table, "ratio", where, float, None, check=_fraction)
        plus = self.value(table, "plus", where, int, 0)
        floor = self.value(table, "floor", where, int, 0, check=_not_negative)
        ceiling = self.value(table, "ceiling", where, int, None, check=_not_negative)
        buyers = self.buyers(table.get("buyers", {}), f"{where}.buyers")
        if len(self.problems) > before:
            return None
        return ChannelSpec(name, hear, push, pushes, buyers, ratio, plus, floor, ceiling)

    def buyers(self, table: Any, where: str) -> Buyers:
        if not isinstance(table, dict):
            self.problem(where, "must be a table")
            return Buyers()
        self.keys(table, _BUYERS, where)
        choices = ", ".join(p.value for p in Process)
        process = self.value(
            table,
            "process",
            where,
            str,
            Process.NONE.value,
            check=lambda v: None if v in set(Process) else f"must be one of {choices}",
        )
        rate = self.value(table, "rate_per_s", where, float, 0.0, check=_not_negative)
        if process != Process.NONE and "rate_per_s" not in table:
            self.problem(f"{where}.rate_per_s", "missing")
        quantity = self.value(table, "quantity", where, (int, list), 1, check=_quantity)
        low, high = (quantity, quantity) if isinstance(quantity, int) else quantity
        return Buyers(Process(process), rate, low, high)

    def burst(self, table: Mapping[str, Any], where: str, known: list[str]) -> Burst | None:
        before = len(self.problems)
        self.keys(table, _BURST, where)
        channel = self.value(table, "channel", where, str, "", required=True, check=_in(known))
        start = self.value(table, "start_ms", where, int, 0, required=True, check=_not_negative)
        duration = self.value(table, "duration_ms", where, int, 0, required=True, check=_positive)
        multiplier = self.value(
            table, "multiplier", where, float, 1.0, required=True, check=_positive
        )
        if len(self.problems) > before:
            return None
        return Burst(channel, start, duration, multiplier)

    def pin(self, table: Mapping[str, Any], where: str, known: list[str]) -> Pin | None:
        before = len(self.problems)
        self.keys(table, _PIN, where)
        channel = self.value(table, "channel", where, str, "", required=True, check=_in(known))
        at = self.value(table, "at_ms", where, int, 0, required=True, check=_not_negative)
        duration = self.value(table, "duration_ms", where, int, 0, required=True, check=_positive)
        rate = self.value(
            table, "expected_units_per_s", where, int, 0, required=True, check=_positive
        )
        if len(self.problems) > before:
            return None
        return Pin(channel, at, duration, rate)


def _type_name(kind: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", list: "a list"}.get(
        kind, kind.__name__
    )


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else "must not be negative"


def _fraction(value: float) -> str | None:
    return None if 0 <= value <= 1 else "must be between 0 and 1"


def _nonempty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _quantity(value: int | list[Any]) -> str | None:
    if isinstance(value, int):
        return _positive(value)
    pair = len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if not pair or not 1 <= value[0] <= value[1]:
        return "must be a positive integer or [min, max] with 1 <= min <= max"
    return None


def _in(known: list[str]) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in known else f"{value!r} is not a declared channel"

    return check
