"""Scenario files: the shipped one loads, and every kind of bad file is refused with
every problem listed at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync_worker.domain.allocation import PolicyKind
from sync_worker.simulation.trace import (
    Process,
    TraceError,
    load_trace,
    parse_trace,
)

MINIMAL = """
stock = 10
duration_ms = 1000

[[channels]]
name = "room"
hear_delay_ms = 5
push_delay_ms = 7
pushes_per_s = 10
"""


def problems_of(text: str) -> tuple[str, ...]:
    with pytest.raises(TraceError) as caught:
        parse_trace(text, source="t.toml")
    return caught.value.problems


def test_the_shipped_trace_loads() -> None:
    scenario = load_trace()

    assert scenario.stock == 1000
    assert {channel.name for channel in scenario.channels} == {"tiktok", "douyin", "shopify"}
    assert scenario.bursts[0].multiplier == 100
    assert scenario.pins[0].channel == scenario.bursts[0].channel
    assert scenario.pins[0].at_ms == scenario.bursts[0].start_ms - 1000


def test_a_minimal_trace_takes_the_defaults() -> None:
    scenario = parse_trace(MINIMAL)

    assert scenario.stock == 10
    assert scenario.sku == "sku"
    assert scenario.seed == 0
    assert scenario.bursts == ()
    assert scenario.pins == ()
    assert scenario.channels[0].buyers.process is Process.NONE
    assert scenario.arrivals_file is None


def test_the_allocation_policy_takes_each_channels_latency_and_the_trace_parameters() -> None:
    text = MINIMAL + "\nratio = 0.5\nceiling = 4\n[policy]\ncover = 5\nmin_buffer = 3\n"
    scenario = parse_trace(text)

    policy = scenario.allocation_policy(PolicyKind.SESSION_AWARE)

    assert policy.kind is PolicyKind.SESSION_AWARE
    assert policy.cover == 5.0
    assert policy.min_buffer == 3
    rule = policy.rule("room")
    assert (rule.latency_ms, rule.ratio, rule.ceiling) == (12, 0.5, 4)


def test_buyers_take_a_fixed_quantity_or_a_range() -> None:
    text = MINIMAL + 'buyers = { process = "steady", rate_per_s = 2, quantity = [1, 3] }\n'

    buyers = parse_trace(text).channels[0].buyers

    assert (buyers.process, buyers.rate_per_s, buyers.quantity_min, buyers.quantity_max) == (
        Process.STEADY,
        2.0,
        1,
        3,
    )


def test_invalid_toml_is_refused() -> None:
    assert "not valid TOML" in problems_of("stock = = 3")[0]


def test_every_problem_is_listed_at_once() -> None:
    text = """
stock = -1
speed = 3
[[channels]]
name = "a"
hear_delay_ms = "fast"
pushes_per_s = 0
buyers = { process = "bursty", rate_per_s = -1, quantity = [3, 1] }
[[channels]]
name = "a"
hear_delay_ms = 1
push_delay_ms = 1
pushes_per_s = 1
ratio = 1.5
[[bursts]]
channel = "nowhere"
start_ms = 0
duration_ms = 0
multiplier = 2
[[pins]]
channel = "a"
at_ms = 0
[policy]
cover = 0
tempo = 1
"""
    problems = problems_of(text)

    expected = [
        "speed: unknown key",
        "stock: must be greater than 0",
        "duration_ms: missing",
        "policy.tempo: unknown key",
        "policy.cover: must be greater than 0",
        "channels[0].hear_delay_ms: must be an integer, not 'fast'",
        "channels[0].push_delay_ms: missing",
        "channels[0].pushes_per_s: must be greater than 0",
        "channels[0].buyers.process: must be one of 'poisson', 'steady' or 'none'",
        "channels[0].buyers.rate_per_s: must be at least 0",
        "channels[0].buyers.quantity: must be a positive integer or [min, max]",
        "channels[1].ratio: must be at most 1",
        "bursts[0].duration_ms: must be greater than 0",
        "pins[0].duration_ms: missing",
        "pins[0].expected_units_per_s: missing",
    ]
    for start in expected:
        assert any(problem.startswith(start) for problem in problems), (start, problems)
    # The burst's channel is checked once the channels themselves are valid, so the
    # invalid channel "a" does not make the pin's "a" look undeclared.
    assert len(problems) == len(expected)


def test_channel_names_must_be_unique_and_ratios_fit() -> None:
    channel = '[[channels]]\nname = "{}"\nhear_delay_ms = 1\npush_delay_ms = 1\npushes_per_s = 1\n'
    text = "stock = 1\nduration_ms = 1\n" + channel.format("a") + "ratio = 0.7\n"
    text += channel.format("a") + "ratio = 0.6\n"

    problems = problems_of(text)

    assert "channels: 'a' is declared more than once" in problems
    assert "channels: the ratios add up to 1.3, more than 1" in problems


def test_bursts_and_pins_must_name_declared_channels() -> None:
    text = MINIMAL.replace("stock = 10", "stock = 0")
    text += '[[bursts]]\nchannel = "nowhere"\nstart_ms = 0\nduration_ms = 1\nmultiplier = 2\n'
    text += '[[pins]]\nchannel = "room"\nat_ms = 0\nduration_ms = 1\nexpected_units_per_s = 1\n'
    text += '[[pins]]\nchannel = "hall"\nat_ms = 0\nduration_ms = 1\nexpected_units_per_s = 1\n'

    assert problems_of(text) == (
        "stock: must be greater than 0",
        "bursts[0].channel: 'nowhere' is not a declared channel",
        "pins[1].channel: 'hall' is not a declared channel",
    )


def test_buyers_need_a_rate_and_a_positive_quantity() -> None:
    text = MINIMAL + 'buyers = { process = "poisson", quantity = 0, speed = 1 }\n'

    assert problems_of(text) == (
        "channels[0].buyers.rate_per_s: missing",
        "channels[0].buyers.quantity[0]: must be greater than 0",
        "channels[0].buyers.quantity[1]: must be greater than 0",
        "channels[0].buyers.speed: unknown key",
    )


def test_a_trace_needs_a_channel() -> None:
    assert problems_of("stock = 1\nduration_ms = 1\n") == (
        "channels: at least one [[channels]] is needed",
    )


def test_booleans_and_strings_are_not_numbers() -> None:
    text = MINIMAL.replace("10", "true", 1).replace("pushes_per_s = 10", 'pushes_per_s = "10"')
    text += "ratio = false\n[policy]\ncover = true\n"

    assert sorted(problems_of(text)) == [
        "channels[0].pushes_per_s: must be a number, not '10'",
        "channels[0].ratio: must be a number, not False",
        "policy.cover: must be a number, not True",
        "stock: must be an integer, not True",
    ]


def test_recorded_arrivals_exclude_generated_buyers_and_bursts(tmp_path: Path) -> None:
    text = 'arrivals = "live.jsonl"\nstock = 5\n' + MINIMAL.split("\n", 3)[3]
    text += 'buyers = { process = "poisson", rate_per_s = 1 }\n'
    text += '[[bursts]]\nchannel = "room"\nstart_ms = 0\nduration_ms = 1\nmultiplier = 2\n'

    problems = problems_of(text)

    assert "bursts: bursts shape generated buyers; not allowed with arrivals" in problems
    assert any(p.startswith("channels[0].buyers: generated buyers") for p in problems)


def test_a_recorded_arrivals_trace_needs_no_duration(tmp_path: Path) -> None:
    path = tmp_path / "replay.toml"
    path.write_text('arrivals = "live.jsonl"\n' + MINIMAL.replace("duration_ms = 1000", ""))

    scenario = load_trace(path)

    assert scenario.arrivals_file == tmp_path / "live.jsonl"


def test_a_missing_file_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read the file"):
        load_trace(tmp_path / "nope.toml")


def test_the_error_message_lists_the_source_and_each_problem() -> None:
    with pytest.raises(TraceError) as caught:
        parse_trace("stock = 0\n", source="bad.toml")

    message = str(caught.value)
    assert message.startswith("bad.toml: 3 problem(s):")
    assert "\n  - stock: must be greater than 0" in message
