"""Buyer generation is a pure function of the scenario and the seed; recorded arrivals
round-trip through JSON lines and bad lines are all reported."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from sync_worker.simulation.arrivals import (
    Arrival,
    buyers_of,
    generate,
    parse_arrivals,
    read_arrivals,
    write_arrivals,
)
from sync_worker.simulation.trace import (
    Burst,
    Buyers,
    ChannelSpec,
    Process,
    Scenario,
    TraceError,
    load_trace,
)


def scenario(
    *channels: ChannelSpec, bursts: tuple[Burst, ...] = (), duration_ms: int = 1000
) -> Scenario:
    return Scenario("t", "sku", 100, duration_ms, 7, channels, bursts=bursts)


def room(
    name: str, process: Process, rate: float, quantity: tuple[int, int] = (1, 1)
) -> ChannelSpec:
    return ChannelSpec(name, 0, 0, 10.0, Buyers(process, rate, *quantity))


def test_the_same_seed_gives_the_same_buyers() -> None:
    trace = load_trace()

    assert generate(trace, 11) == generate(trace, 11)
    assert generate(trace, 11) != generate(trace, 12)


def test_buyers_come_in_time_order() -> None:
    times = [arrival.time_ms for arrival in generate(load_trace(), 3)]

    assert times == sorted(times)


def test_the_scenarios_own_seed_is_the_default() -> None:
    trace = load_trace()

    assert buyers_of(trace) == generate(trace, trace.seed)
    assert buyers_of(trace, 99) == generate(trace, 99)


def test_a_channels_buyers_do_not_depend_on_the_other_channels() -> None:
    alone = scenario(room("a", Process.POISSON, 20))
    together = scenario(room("b", Process.POISSON, 50), room("a", Process.POISSON, 20))

    def of_a(trace: Scenario) -> list[Arrival]:
        return [arrival for arrival in generate(trace, 5) if arrival.channel == "a"]

    assert of_a(alone) == of_a(together)


def test_steady_buyers_are_evenly_spaced_starting_half_a_spacing_in() -> None:
    arrivals = generate(scenario(room("a", Process.STEADY, 4)), 0)

    assert [arrival.time_ms for arrival in arrivals] == [125, 375, 625, 875]


def test_a_burst_multiplies_the_rate_for_its_duration() -> None:
    burst = Burst("a", 500, 250, 10)
    arrivals = generate(scenario(room("a", Process.STEADY, 4), bursts=(burst,)), 0)

    inside = [a for a in arrivals if 500 <= a.time_ms < 750]
    assert len(inside) == 10
    assert len(arrivals) == 4 - 1 + 10  # a quarter of the second at 40/s instead of 4/s


def test_poisson_buyers_average_their_rate() -> None:
    arrivals = generate(scenario(room("a", Process.POISSON, 100), duration_ms=100_000), 1)

    assert 9_500 < len(arrivals) < 10_500


def test_quantities_stay_in_their_range() -> None:
    arrivals = generate(scenario(room("a", Process.POISSON, 100, (2, 4))), 1)

    assert {arrival.quantity for arrival in arrivals} == {2, 3, 4}


def test_a_channel_without_a_process_has_no_buyers() -> None:
    assert generate(scenario(room("a", Process.NONE, 0)), 1) == ()


def test_arrivals_round_trip_through_json_lines(tmp_path: Path) -> None:
    arrivals = generate(load_trace(), 7)
    out = io.StringIO()
    write_arrivals(arrivals, out)
    path = tmp_path / "a.jsonl"
    path.write_text(out.getvalue())

    assert read_arrivals(path, ["tiktok", "douyin", "shopify"]) == arrivals


def test_a_trace_naming_an_arrivals_file_replays_it(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    path.write_text(
        '{"time_ms": 20, "channel": "a", "quantity": 2}\n\n'
        '{"time_ms": 5, "channel": "a", "quantity": 1, "sku": "x"}\n'
    )
    trace = replace(scenario(room("a", Process.NONE, 0)), arrivals_file=path)

    assert buyers_of(trace) == (Arrival(5, "a", 1), Arrival(20, "a", 2))


def test_every_bad_line_is_reported() -> None:
    text = "\n".join(
        [
            "not json",
            "[1, 2]",
            '{"time_ms": -1, "channel": "a", "quantity": 1}',
            '{"time_ms": 1, "channel": "zz", "quantity": 0}',
            '{"time_ms": true, "channel": "a", "quantity": 1.5}',
            '{"time_ms": 1, "channel": "a", "quantity": 1}',
        ]
    )
    with pytest.raises(TraceError) as caught:
        parse_arrivals(text, ["a"], source="live.jsonl")

    assert caught.value.problems == (
        "line 1: not JSON (Expecting value)",
        "line 2: must be a JSON object",
        "line 3: time_ms must be an integer >= 0, not -1",
        "line 4: channel 'zz' is not a declared channel",
        "line 4: quantity must be an integer >= 1, not 0",
        "line 5: time_ms must be an integer >= 0, not True",
        "line 5: quantity must be an integer >= 1, not 1.5",
    )


def test_an_empty_arrivals_file_is_refused() -> None:
    with pytest.raises(TraceError, match="no arrivals"):
        parse_arrivals("\n", ["a"], source="empty.jsonl")


def test_a_missing_arrivals_file_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read the arrivals file"):
        read_arrivals(tmp_path / "missing.jsonl", ["a"])
