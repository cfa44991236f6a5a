"""The ``stockcast`` bench system end to end: the load generator's lines through the
real broker into a worker subprocess, its decisions read back, its pushes received by
the bench's room. Tiny workloads, every line decided; no timing is asserted.

The system runs on the test broker here (``StockcastSystem(bootstrap)``); ``stockcast
bench`` starts a broker of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from sync_worker.bench import workloads
from sync_worker.bench.runner import Options, Result, play
from sync_worker.bench.stockcast_system import StockcastSystem
from sync_worker.bench.system import ClientConfig
from sync_worker.bench.workloads import Workload
from tests.bench_support import TINY, assert_sound

# Budgets so large that every closed-loop run drains its lines.
OPTIONS = Options(TINY, seed=11, quick=True, seconds=600.0, max_lag_s=600.0)
SWEPT = (ClientConfig(4, 8),)


@pytest.fixture
async def system(kafka_bootstrap: str) -> AsyncIterator[StockcastSystem]:
    started = StockcastSystem(kafka_bootstrap)
    started.configs = lambda quick: SWEPT  # type: ignore[method-assign]
    async with started:
        yield started


def assert_complete_and_sound(result: Result) -> None:
    for run in result.runs:
        label = f"{result.workload} {run.config.label}"
        assert run.complete, label
        assert run.decisions_per_s > 0, label
    assert_sound(result)


async def test_the_full_path_decides_every_line_soundly_and_times_the_pushes(
    system: StockcastSystem,
) -> None:
    for name in (workloads.HOT_SKU, workloads.SPREAD_ZIPF):
        workload = workloads.build(name, TINY, OPTIONS.seed)
        assert isinstance(workload, Workload)

        result = await play(system, workload, OPTIONS, [], lambda _: None)

        assert_complete_and_sound(result)
        best = result.best
        assert best.resent > 0  # the redelivered events were sent, and caught
        assert best.push_p50_ms is not None, name
        assert best.push_p50_ms > 0, name
        assert set(best.cpu_ms_per_1000) == {"client", "worker"}  # the broker is not ours


async def test_stopping_leaves_no_worker_and_no_directory(kafka_bootstrap: str) -> None:
    system = StockcastSystem(kafka_bootstrap)
    async with system:
        (pid,) = system.cpu_roles()["worker"]
        worker = psutil.Process(pid)
        directory = Path(worker.cwd())
        assert_there(directory)

    assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE
    assert_gone(directory)


def assert_there(directory: Path) -> None:
    assert (directory / "stockcast.toml").is_file()


def assert_gone(directory: Path) -> None:
    assert not directory.exists()


async def test_two_workers_share_the_partitions_and_decide_every_line_soundly(
    kafka_bootstrap: str,
) -> None:
    system = StockcastSystem(kafka_bootstrap, workers=2)
    system.configs = lambda quick: SWEPT  # type: ignore[method-assign]
    async with system:
        assert len(set(system.cpu_roles()["worker"])) == 2
        workload = workloads.build(workloads.SPREAD_UNIFORM, TINY, OPTIONS.seed)
        assert isinstance(workload, Workload)

        result = await play(system, workload, OPTIONS, [], lambda _: None)

    assert_complete_and_sound(result)


def test_more_workers_than_partitions_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot share"):
        StockcastSystem("127.0.0.1:1", partitions=4, workers=5)
