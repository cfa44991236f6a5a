"""Recording a live run's buyers and replaying them: the recorder and its trace."""

from __future__ import annotations

import io
from pathlib import Path

from connectors.simulator.rooms import LiveRoom
from sync_worker.domain.allocation import PolicyKind
from sync_worker.simulation import engine
from sync_worker.simulation.arrivals import Arrival, buyers_of
from sync_worker.simulation.recording import ArrivalRecorder, replay_trace
from sync_worker.simulation.trace import load_trace


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_every_buyer_of_the_sku_is_recorded_served_or_refused() -> None:
    out, clock = io.StringIO(), FakeClock()
    recorder = ArrivalRecorder(out, "lipstick", clock)
    room = LiveRoom("douyin-room-1", "douyin", {"lipstick": 2}, observer=recorder)

    room.try_order("lipstick", 1)  # before the start: not recorded
    recorder.start()
    clock.now_s += 0.25
    assert room.try_order("lipstick", 1)
    clock.now_s += 0.5
    assert not room.try_order("lipstick", 2)  # refused, recorded all the same
    room.try_order("serum", 1)  # another SKU

    assert out.getvalue().splitlines() == [
        Arrival(250, "douyin-room-1", 1).as_json(),
        Arrival(750, "douyin-room-1", 2).as_json(),
    ]
    assert recorder.recorded == 2


def test_the_replay_trace_plays_the_recorded_buyers(tmp_path: Path) -> None:
    arrivals = tmp_path / "live.jsonl"
    arrivals.write_text(
        "\n".join(
            Arrival(t, channel, 1).as_json()
            for t, channel in [(0, 'room "a"'), (5, "room-b"), (9, 'room "a"')]
        )
    )
    trace = tmp_path / "live.toml"
    trace.write_text(replay_trace("live.jsonl", "lipstick", 2, ['room "a"', "room-b"], name="x"))

    scenario = load_trace(trace)
    buyers = buyers_of(scenario)
    result = engine.run(scenario, buyers, PolicyKind.ADAPTIVE)

    assert (scenario.sku, scenario.stock) == ("lipstick", 2)
    assert [channel.name for channel in scenario.channels] == ['room "a"', "room-b"]
    assert len(buyers) == result.buyers == 3
    assert result.oversold_units == 0
