"""Bench workloads small enough for a test: every workload built in milliseconds, played
through a real system in seconds. Shared by the unit and the integration tests."""

from __future__ import annotations

from sync_worker.bench.runner import Result
from sync_worker.bench.workloads import Sizes

TINY = Sizes(
    hot_lines=300,
    spread_lines=400,
    spread_skus=20,
    burst_attempts=200,
    burst_seconds=0.2,
    burst_stock=30,
    background_per_s=100.0,
    background_skus=3,
    background_margin_s=0.1,
    sweep_rates=(100, 400),
    sweep_seconds=0.2,
    duplicate_share=0.05,
    warm_up_lines=200,
)


def assert_sound(result: Result) -> None:
    """Every run kept the invariants: no unit oversold, sold twice, stranded or invented,
    and every re-sent order id answered ``duplicate``."""
    for run in result.runs:
        label = f"{result.system} {result.workload} {run.config.label}"
        assert run.oversold_units == 0, label
        assert run.duplicate_accepts == 0, label
        assert run.stranded_units == 0, label
        assert run.phantom_units == 0, label
        assert run.duplicates_answered == run.resent, f"{label}: a re-sent id got through"
