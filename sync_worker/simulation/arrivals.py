"""The buyers of a scenario, as a concrete list every policy is played against.

Generated from the scenario's buyer processes and bursts with ``random.Random``
seeded per channel (adding a channel leaves the others' buyers unchanged), or read
from a recorded arrivals file: JSON lines ``{"time_ms": …, "channel": …,
"quantity": …}``, one per buyer.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sync_worker.simulation.trace import Burst, ChannelSpec, Process, Scenario, TraceError

MAX_LISTED_PROBLEMS = 20


@dataclass(frozen=True, slots=True, order=True)
class Arrival:
    """A buyer reaching ``channel`` at ``time_ms`` (from the start of the run) wanting
    ``quantity`` units."""

    time_ms: int
    channel: str
    quantity: int

    def as_json(self) -> str:
        return json.dumps(
            {"time_ms": self.time_ms, "channel": self.channel, "quantity": self.quantity}
        )


def buyers_of(scenario: Scenario, seed: int | None = None) -> tuple[Arrival, ...]:
    """The scenario's buyers in time order: read from its arrivals file, or generated
    with ``seed`` (the scenario's own seed when None)."""
    if scenario.arrivals_file is not None:
        return read_arrivals(scenario.arrivals_file, [c.name for c in scenario.channels])
    return generate(scenario, scenario.seed if seed is None else seed)


def generate(scenario: Scenario, seed: int) -> tuple[Arrival, ...]:
    """Every channel's buyers over ``duration_ms``; the same seed gives the same buyers."""
    found: list[tuple[int, int, Arrival]] = []
    for index, spec in enumerate(scenario.channels):
        rng = random.Random(f"{seed}/{spec.name}")
        bursts = [b for b in scenario.bursts if b.channel == spec.name]
        for time_ms in _times(spec, bursts, scenario.duration_ms, rng):
            low, high = spec.buyers.quantity_min, spec.buyers.quantity_max
            quantity = low if low == high else rng.randint(low, high)
            found.append((time_ms, index, Arrival(time_ms, spec.name, quantity)))
    found.sort(key=lambda entry: (entry[0], entry[1]))
    return tuple(arrival for _, _, arrival in found)


def _segments(
    spec: ChannelSpec, bursts: list[Burst], duration_ms: int
) -> Iterator[tuple[float, float, float]]:
    """``(start_ms, end_ms, buyers per ms)`` pieces of constant rate; overlapping
    bursts multiply."""
    edges = {0, duration_ms}
    for burst in bursts:
        edges |= {burst.start_ms, burst.start_ms + burst.duration_ms}
    points = sorted(edge for edge in edges if 0 <= edge <= duration_ms)
    for start, end in itertools.pairwise(points):
        rate = spec.buyers.rate_per_s / 1000
        for burst in bursts:
            if burst.start_ms <= start < burst.start_ms + burst.duration_ms:
                rate *= burst.multiplier
        yield float(start), float(end), rate


def _times(
    spec: ChannelSpec, bursts: list[Burst], duration_ms: int, rng: random.Random
) -> Iterator[int]:
    process = spec.buyers.process
    if process is Process.NONE:
        return
    owed = 0.5  # steady: the first buyer comes half a spacing in
    for start, end, rate in _segments(spec, bursts, duration_ms):
        if rate <= 0:
            continue
        now = start
        while True:
            # Poisson is memoryless: a new segment simply starts over.
            poisson = process is Process.POISSON
            gap = rng.expovariate(rate) if poisson else (1.0 - owed) / rate
            if now + gap >= end:
                owed += (end - now) * rate if process is Process.STEADY else 0.0
                break
            now += gap
            owed = 0.0
            yield math.floor(now)


# --- recorded arrivals ------------------------------------------------------------------


def write_arrivals(arrivals: Iterable[Arrival], out: IO[str]) -> None:
    for arrival in arrivals:
        out.write(arrival.as_json() + "\n")


def read_arrivals(path: Path, channels: list[str]) -> tuple[Arrival, ...]:
    """Read a JSON-lines arrivals file; every bad line is reported in one ``TraceError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TraceError(str(path), [f"cannot read the arrivals file: {error.strerror}"]) from None
    return parse_arrivals(text, channels, source=str(path))


def parse_arrivals(text: str, channels: list[str], *, source: str) -> tuple[Arrival, ...]:
    arrivals: list[Arrival] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        arrival = _arrival(line, channels, f"line {number}", problems)
        if arrival is not None:
            arrivals.append(arrival)
    if not problems and not arrivals:
        problems.append("no arrivals in the file")
    if problems:
        shown = problems[:MAX_LISTED_PROBLEMS]
        if len(problems) > len(shown):
            shown.append(f"... and {len(problems) - len(shown)} more")
        raise TraceError(source, shown)
    return tuple(sorted(arrivals, key=lambda a: a.time_ms))  # stable: file order on ties


def _arrival(line: str, channels: list[str], where: str, problems: list[str]) -> Arrival | None:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        problems.append(f"{where}: not JSON ({error.msg})")
        return None
    if not isinstance(value, dict):
        problems.append(f"{where}: must be a JSON object")
        return None
    time_ms: Any = value.get("time_ms")
    channel: Any = value.get("channel")
    quantity: Any = value.get("quantity")
    found = []
    if not isinstance(time_ms, int) or isinstance(time_ms, bool) or time_ms < 0:
        found.append(f"time_ms must be an integer >= 0, not {time_ms!r}")
    if not isinstance(channel, str) or channel not in channels:
        found.append(f"channel {channel!r} is not a declared channel")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        found.append(f"quantity must be an integer >= 1, not {quantity!r}")
    problems += [f"{where}: {problem}" for problem in found]
    if found:
        return None
    return Arrival(time_ms, channel, quantity)
