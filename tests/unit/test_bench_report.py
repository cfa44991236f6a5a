"""The runner's invariant checks and the report: JSON shape, table, plot. The systems
here run in process (the ``floor`` and a plain in-memory one), so no server is needed."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from sync_worker.bench import report, runner, workloads
from sync_worker.bench.floor import FloorBooks
from sync_worker.bench.loadgen import Tally
from sync_worker.bench.runner import Options, Result, run_bench
from sync_worker.bench.system import ClientConfig, Decider, System
from sync_worker.bench.workloads import OrderLine
from sync_worker.cli_bench import bench
from sync_worker.domain.events import Outcome
from tests.bench_support import TINY
from tests.unit.test_bench_loadgen import MemoryBooks

OPTIONS = Options(TINY, seed=3, quick=True, seconds=60.0, max_lag_s=30.0)


class MemorySystem(System):
    """A system that is a plain object: what plugging a new system in takes."""

    name = "memory"

    def configs(self, quick: bool) -> Sequence[ClientConfig]:
        return (ClientConfig(1, 1), ClientConfig(4, 8))

    @asynccontextmanager
    async def prepare(
        self, stock: Mapping[str, int], config: ClientConfig
    ) -> AsyncIterator[Decider]:
        yield MemoryBooks(stock)


class OversellingBooks(MemoryBooks):
    """Accepts everything: sells what it does not have."""

    def _decide(self, line: OrderLine) -> Outcome:
        self.left[line.sku] = self.left.get(line.sku, 0) - line.qty
        return Outcome.ACCEPTED


class OversellingSystem(MemorySystem):
    name = "overseller"

    @asynccontextmanager
    async def prepare(
        self, stock: Mapping[str, int], config: ClientConfig
    ) -> AsyncIterator[Decider]:
        yield OversellingBooks(stock)


async def results_of(*names: str) -> list[Result]:
    systems = {"memory": MemorySystem, "overseller": OversellingSystem}
    return await run_bench(names, workloads.NAMES, OPTIONS, systems=systems)


async def test_a_new_system_runs_every_workload_through_the_same_framework() -> None:
    results = await results_of("memory")

    assert [r.workload for r in results] == list(workloads.NAMES)
    hot = results[0]
    assert [run.config for run in hot.runs] == [ClientConfig(1, 1), ClientConfig(4, 8)]
    assert hot.best == max(hot.runs, key=lambda run: run.decisions_per_s)
    assert all(result.sound for result in results)
    assert all(run.complete for result in results for run in result.runs if not run.saturated)
    assert hot.best.resent > 0
    assert hot.best.duplicates_answered == hot.best.resent
    sweep = results[-1]
    assert [run.rate for run in sweep.runs] == list(TINY.sweep_rates)[: len(sweep.runs)]


async def test_each_system_runs_alone_and_results_come_in_workload_order() -> None:
    log: list[str] = []

    def logging(name: str) -> type[System]:
        class Logged(MemorySystem):
            async def start(self) -> None:
                log.append(f"start {name}")

            async def stop(self) -> None:
                log.append(f"stop {name}")

            @asynccontextmanager
            async def prepare(
                self, stock: Mapping[str, int], config: ClientConfig
            ) -> AsyncIterator[Decider]:
                log.append(name)
                yield MemoryBooks(stock)

        Logged.name = name
        return Logged

    systems = {"a": logging("a"), "b": logging("b")}
    results = await run_bench(["a", "b"], workloads.NAMES, OPTIONS, systems=systems)

    assert log[0] == "start a"
    assert log[-1] == "stop b"
    assert log.index("stop a") < log.index("start b")
    assert set(log[1 : log.index("stop a")]) == {"a"}
    expected = [(w, s) for w in workloads.NAMES for s in ("a", "b")]
    assert [(r.workload, r.system) for r in results] == expected


async def test_each_system_is_warmed_up_unmeasured_before_its_first_run() -> None:
    prepared: list[tuple[str, frozenset[str], ClientConfig]] = []

    class Recorded(MemorySystem):
        @asynccontextmanager
        async def prepare(
            self, stock: Mapping[str, int], config: ClientConfig
        ) -> AsyncIterator[Decider]:
            books = MemoryBooks(stock)
            yield books
            prepared.append((self.name, frozenset(stock), config))

    class Other(Recorded):
        name = "other"

    progress: list[str] = []
    warming = replace(OPTIONS, warm_up_s=30.0)
    names = [workloads.HOT_SKU, workloads.SPREAD_UNIFORM]
    systems = {"memory": Recorded, "other": Other}
    results = await run_bench(["memory", "other"], names, warming, progress.append, systems)

    warm = frozenset(workloads.warm_up(TINY, OPTIONS.seed).stock)
    first: dict[str, frozenset[str]] = {}
    for name, skus, _ in prepared:
        first.setdefault(name, skus)
    assert first == {"memory": warm, "other": warm}
    # Once per system, at the configuration with the most lines in flight.
    warmed = [(name, config) for name, skus, config in prepared if skus == warm]
    assert warmed == [("memory", ClientConfig(4, 8)), ("other", ClientConfig(4, 8))]
    # Measured: every run but the warm-ups.
    assert len(prepared) - len(warmed) == sum(len(result.runs) for result in results)
    assert [r.workload for r in results] == [w for w in names for _ in systems]
    # The warm-up's lines all decided (its time budget is long enough here).
    assert sum("warmed up: 200 lines" in line for line in progress) == 2


async def test_without_a_warm_up_the_first_run_is_the_first_load() -> None:
    prepared: list[frozenset[str]] = []

    class Recorded(MemorySystem):
        @asynccontextmanager
        async def prepare(
            self, stock: Mapping[str, int], config: ClientConfig
        ) -> AsyncIterator[Decider]:
            prepared.append(frozenset(stock))
            yield MemoryBooks(stock)

    await run_bench(["memory"], [workloads.HOT_SKU], OPTIONS, systems={"memory": Recorded})

    assert prepared == [frozenset({workloads.HOT_SKU})] * 2


async def test_the_open_loop_workloads_run_at_the_best_closed_loop_configuration() -> None:
    results = {r.workload: r for r in await results_of("memory")}

    hot_best = results[workloads.HOT_SKU].best.config
    uniform_best = results[workloads.SPREAD_UNIFORM].best.config
    assert results[workloads.BURST].best.config == hot_best
    assert {run.config for run in results[workloads.RATE_SWEEP].runs} == {uniform_best}


async def test_a_system_that_oversells_is_caught_and_marked_broken() -> None:
    results = await results_of("overseller")
    hot = results[0]

    assert hot.oversold_units > 0
    assert hot.duplicate_accepts > 0  # it accepted the re-sent ids too
    assert hot.missed_duplicates > 0
    assert not hot.sound
    shown = render(report.table(results, "t"))
    assert "INVARIANT BROKEN" in shown


async def test_the_floor_decides_with_the_stockcast_domain_and_keeps_every_invariant() -> None:
    from sync_worker.bench.floor import FloorSystem

    results = await run_bench(["floor"], workloads.NAMES, OPTIONS, systems={"floor": FloorSystem})

    assert all(result.sound for result in results), [report.row(r) for r in results]
    hot = results[0]
    assert hot.best.complete
    assert hot.best.duplicates_answered == hot.best.resent > 0


async def test_floor_books_answer_like_the_ledger() -> None:
    books = FloorBooks({"a": 3})
    line = OrderLine("o1", "a", 2)

    first = await books.decide([line, OrderLine("o2", "a", 2), line], 1.0)

    assert list(first) == [Outcome.ACCEPTED, Outcome.REJECTED, Outcome.DUPLICATE]
    assert await books.units_left() == {"a": 1}
    unknown = await books.decide([OrderLine("o3", "nobody-counted-me", 1)], 1.0)
    assert list(unknown) == [Outcome.REJECTED]


def test_oversold_stranded_and_phantom_units_compare_answers_with_the_books() -> None:
    tally = Tally(accepted_units=Counter({"a": 7, "b": 2, "ghost": 1}))
    stock = {"a": 5, "b": 4, "c": 3}

    assert runner.oversold_units(stock, tally) == 2 + 1  # a beyond its 5, ghost beyond 0
    # b: 4 held, 2 sold, 1 left -> 1 unit went nowhere; c: 3 held, 0 sold, 3 left.
    assert runner.stranded_units(stock, tally, {"a": 0, "b": 1, "c": 3}) == 1
    # c: 3 held, none sold, 5 left -> 2 units invented by the books.
    assert runner.phantom_units(stock, tally, {"a": 0, "b": 2, "c": 5}) == 2 + 2


async def test_every_json_row_has_the_required_keys_and_serialises() -> None:
    rows = report.rows(await results_of("memory"))

    text = json.dumps(rows)
    for row in json.loads(text):
        assert set(report.REQUIRED_KEYS) <= set(row)
        assert isinstance(row["system"], str)
        assert isinstance(row["workload"], str)
        for key in ("decisions_per_s", "p50_ms", "p99_ms", "p999_ms"):
            assert isinstance(row[key], float | int)
        for key in ("oversold_units", "duplicate_accepts", "stranded_units"):
            assert row[key] == 0
        assert row["config"].keys() == {"concurrency", "batch"}
        assert "client" in row["cpu_ms_per_1000"]
        assert row["runs"], "the sweep is kept"
    assert rows[0]["workload"] == workloads.HOT_SKU


async def test_the_table_names_every_system_and_workload() -> None:
    results = await results_of("memory")

    shown = render(report.table(results, "bench"))

    for name in (*workloads.NAMES, "memory", "c=4 b=8"):
        assert name in shown


async def test_the_plot_draws_the_rate_sweep_as_a_png(tmp_path: Path) -> None:
    results = await results_of("memory")

    drawn = report.plot(results, tmp_path / "out" / "latency.png")

    assert drawn == tmp_path / "out" / "latency.png"
    assert drawn.read_bytes().startswith(b"\x89PNG")
    without_sweep = [r for r in results if r.workload != workloads.RATE_SWEEP]
    assert report.plot(without_sweep, tmp_path / "none.png") is None


def test_the_command_prints_json_rows_and_writes_the_plot(tmp_path: Path) -> None:
    plot = tmp_path / "latency.png"
    args = ["--quick", "--systems", "floor", "--workloads", "hot-sku", "--json"]
    args += ["--seconds", "0.2", "--warm-up", "0.1", "--plot", str(plot)]

    outcome = CliRunner().invoke(bench, args)

    assert outcome.exit_code == 0, outcome.output
    assert "floor warmed up:" in outcome.stderr
    (row,) = json.loads(outcome.stdout)
    assert (row["system"], row["workload"]) == ("floor", "hot-sku")
    assert row["oversold_units"] == 0
    assert not plot.exists()  # no rate sweep was run


def test_the_command_refuses_an_unknown_system() -> None:
    outcome = CliRunner().invoke(bench, ["--systems", "floor,mysql"])

    assert outcome.exit_code == 2
    assert "floor, postgres, redis" in outcome.output


def render(table: object) -> str:
    console = Console(record=True, width=250)
    console.print(table)
    return console.export_text()


def test_the_command_refuses_more_stockcast_workers_than_partitions() -> None:
    outcome = CliRunner().invoke(bench, ["--systems", "stockcast", "--workers", "5"])

    assert outcome.exit_code == 2
    assert "--workers" in outcome.output
