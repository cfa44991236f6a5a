"""Runs every chosen system through every chosen workload and checks the invariants.

Closed-loop workloads are run once per client configuration the system sweeps, each on
fresh books; the best throughput is reported. Open-loop workloads (the burst, each rate
of the sweep) run at the configuration that was best in closed loop (the hot SKU for
the burst, the uniform spread for the sweep), since a client that takes only what is
queued adds no latency with more connections or a deeper pipeline. The rate sweep stops
at the first rate a system cannot keep up with.

The correctness figures of a result are the worst over all of its runs, so a
configuration that oversold cannot hide behind a faster one that did not.

Before its first measured run each system is warmed up: the same unmeasured closed-loop
load for every system (``Options.warm_up_s``), so that what is measured is a system
as it runs in production, long started: stockcast's broker is a JVM, which compiles
its request paths during its first tens of seconds of load and, on two cores, takes
that CPU from the worker and the load generator.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sync_worker.bench import catalog, workloads
from sync_worker.bench.cpu import CpuMeter
from sync_worker.bench.loadgen import Tally, closed_loop, open_loop
from sync_worker.bench.system import ClientConfig, System
from sync_worker.bench.workloads import RateSweep, Sizes, Workload

Progress = Callable[[str], None]
_KEEPING_UP = 0.9
"""An open-loop run at a fixed rate decides at least this share of the rate."""


@dataclass(frozen=True, slots=True)
class Options:
    sizes: Sizes
    seed: int = 7
    quick: bool = False
    seconds: float = 20.0
    """Time budget of one closed-loop run (its lines may run out first)."""
    max_lag_s: float = 3.0
    """Open loop: how late the oldest waiting line may get before the run is saturated."""
    warm_up_s: float = 0.0
    """Unmeasured load each system gets after it starts, before its first run."""

    @classmethod
    def preset(
        cls,
        *,
        quick: bool,
        seed: int,
        seconds: float | None = None,
        warm_up_s: float | None = None,
    ) -> Options:
        if quick:
            warm = 8.0 if warm_up_s is None else warm_up_s
            return cls(workloads.QUICK, seed, True, seconds or 1.5, 2.0, warm)
        warm = 30.0 if warm_up_s is None else warm_up_s
        return cls(workloads.FULL, seed, False, seconds or 20.0, 5.0, warm)


@dataclass(frozen=True, slots=True)
class Measured:
    """One run of one system, one workload, one client configuration."""

    config: ClientConfig
    decisions: int
    offered: int
    elapsed_s: float
    decisions_per_s: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    oversold_units: int
    duplicate_accepts: int
    duplicates_answered: int
    resent: int
    stranded_units: int
    phantom_units: int
    cpu_ms_per_1000: Mapping[str, float]
    saturated: bool = False
    rate: int | None = None
    """The offered rate (lines/s) of an open-loop run at a fixed rate."""
    push_p50_ms: float | None = None
    push_p99_ms: float | None = None
    push_p999_ms: float | None = None

    @property
    def complete(self) -> bool:
        return self.decisions == self.offered

    @property
    def missed_duplicates(self) -> int:
        """Re-sent order ids answered as if new (the dedupe let them through)."""
        return self.resent - self.duplicates_answered


@dataclass(frozen=True, slots=True)
class Result:
    """One row of the report: a system on a workload."""

    system: str
    workload: str
    description: str
    best: Measured
    runs: tuple[Measured, ...]
    """The configurations swept, or the rates of the rate sweep, in the order run."""
    open_loop: bool = False

    @property
    def oversold_units(self) -> int:
        return max(run.oversold_units for run in self.runs)

    @property
    def duplicate_accepts(self) -> int:
        return max(run.duplicate_accepts for run in self.runs)

    @property
    def stranded_units(self) -> int:
        return max(run.stranded_units for run in self.runs)

    @property
    def phantom_units(self) -> int:
        return max(run.phantom_units for run in self.runs)

    @property
    def missed_duplicates(self) -> int:
        return max(run.missed_duplicates for run in self.runs)

    @property
    def sound(self) -> bool:
        """No unit oversold, sold twice, stranded or invented; every re-send caught."""
        return not (
            self.oversold_units
            or self.duplicate_accepts
            or self.stranded_units
            or self.phantom_units
            or self.missed_duplicates
        )


async def run_bench(
    system_names: Sequence[str],
    workload_names: Sequence[str],
    options: Options,
    progress: Progress = lambda _: None,
    systems: Mapping[str, Callable[[], System]] = catalog.SYSTEMS,
) -> list[Result]:
    """Play each workload on each system; results in workload order, then system order.

    Each system runs alone: started, played through every workload and stopped before
    the next one starts, so nothing of one (an idle worker's read-backs, a broker, a
    database's background writer) runs while another is measured."""
    built: list[Workload | RateSweep] = []
    for workload_name in workload_names:
        progress(f"building {workload_name}")
        built.append(workloads.build(workload_name, options.sizes, options.seed))
    warming = workloads.warm_up(options.sizes, options.seed) if options.warm_up_s > 0 else None
    results: list[Result] = []
    # The lines never change: keep the collector from walking them during runs, so its
    # pauses in the load generator do not pass for a system's latency.
    gc.collect()
    gc.freeze()
    try:
        for name in system_names:
            progress(f"starting {name}")
            async with systems[name]() as system:
                if warming is not None:
                    await warm_up(system, warming, options, progress)
                for workload in built:
                    result = await play(system, workload, options, results, progress)
                    results.append(result)
                    progress(_summary(result))
    finally:
        gc.unfreeze()
    order = {name: index for index, name in enumerate(workload_names)}
    return sorted(results, key=lambda result: order[result.workload])


async def warm_up(system: System, workload: Workload, options: Options, progress: Progress) -> None:
    """``options.warm_up_s`` of closed-loop load at the system's busiest configuration,
    not measured."""
    config = _busiest(system, options.quick)
    async with system.prepare(workload.stock, config) as decider:
        stats = await closed_loop(decider, workload.lines, config, options.warm_up_s)
    progress(
        f"  {system.name} warmed up: {stats.tally.decisions:,} lines in {stats.elapsed_s:.1f}s"
    )


async def play(
    system: System,
    built: Workload | RateSweep,
    options: Options,
    earlier: Sequence[Result],
    progress: Progress,
) -> Result:
    """One system on one workload: its sweep, or its single open-loop run."""
    if isinstance(built, RateSweep):
        config = _open_config(system, workloads.SPREAD_UNIFORM, earlier, options.quick)
        return await sweep_rates(system, built, config, options, progress)
    if built.open_loop:
        config = _open_config(system, workloads.HOT_SKU, earlier, options.quick)
        run = await measure(system, built, config, options)
        return Result(system.name, built.name, built.description, run, (run,), open_loop=True)
    runs: list[Measured] = []
    for config in system.configs(options.quick):
        runs.append(await measure(system, built, config, options))
        progress(f"  {system.name} {built.name} {config.label}: {_figures(runs[-1])}")
    best = max(runs, key=lambda run: run.decisions_per_s)
    return Result(system.name, built.name, built.description, best, tuple(runs))


async def sweep_rates(
    system: System, sweep: RateSweep, config: ClientConfig, options: Options, progress: Progress
) -> Result:
    runs: list[Measured] = []
    for rate in sweep.rates:
        run = await measure(system, sweep.at(rate), config, options, rate=rate)
        runs.append(run)
        progress(f"  {system.name} {sweep.name} {rate}/s: {_figures(run)}")
        if run.saturated:
            break
    kept = [run for run in runs if not run.saturated] or runs[:1]
    best = max(kept, key=lambda run: run.decisions_per_s)
    rates = f"{sweep.rates[0]}..{sweep.rates[-1]}/s"
    description = f"open loop, {rates}, {sweep.seconds:g}s each, {sweep.skus:,} SKUs"
    return Result(system.name, sweep.name, description, best, tuple(runs), open_loop=True)


async def measure(
    system: System,
    workload: Workload,
    config: ClientConfig,
    options: Options,
    rate: int | None = None,
) -> Measured:
    """Fresh books, one run, then the books read back and checked against the answers."""
    async with system.prepare(workload.stock, config) as decider:
        meter = CpuMeter(system.cpu_roles())
        meter.start()
        if workload.open_loop:
            stats = await open_loop(
                decider, workload.lines, workload.send_at_s, config, options.max_lag_s
            )
        else:
            stats = await closed_loop(decider, workload.lines, config, options.seconds)
        cpu = meter.stop()
        left = await decider.units_left()
        push = decider.push_latencies()
    tally = stats.tally
    # At a fixed rate, falling well short of it is saturation even if the lag stayed short.
    short = rate is not None and stats.decisions_per_s < _KEEPING_UP * rate
    per_1000 = {role: 1e6 * seconds / max(1, tally.decisions) for role, seconds in cpu.items()}
    return Measured(
        config=config,
        decisions=tally.decisions,
        offered=stats.offered,
        elapsed_s=stats.elapsed_s,
        decisions_per_s=stats.decisions_per_s,
        p50_ms=tally.latency.percentile_ms(50),
        p99_ms=tally.latency.percentile_ms(99),
        p999_ms=tally.latency.percentile_ms(99.9),
        max_ms=tally.latency.max_ms(),
        oversold_units=oversold_units(workload.stock, tally),
        duplicate_accepts=tally.duplicate_accepts,
        duplicates_answered=tally.duplicates_answered,
        resent=tally.resent,
        stranded_units=stranded_units(workload.stock, tally, left),
        phantom_units=phantom_units(workload.stock, tally, left),
        cpu_ms_per_1000=per_1000,
        saturated=stats.saturated or short,
        rate=rate,
        push_p50_ms=push.percentile_ms(50) if push else None,
        push_p99_ms=push.percentile_ms(99) if push else None,
        push_p999_ms=push.percentile_ms(99.9) if push else None,
    )


def oversold_units(stock: Mapping[str, int], tally: Tally) -> int:
    """Units the answers accepted beyond what each SKU held."""
    return sum(max(0, units - stock.get(sku, 0)) for sku, units in tally.accepted_units.items())


def stranded_units(stock: Mapping[str, int], tally: Tally, left: Mapping[str, int]) -> int:
    """Units neither sold (accepted in an answer) nor left in the system's books."""
    return sum(
        max(0, units - tally.accepted_units[sku] - left.get(sku, 0)) for sku, units in stock.items()
    )


def phantom_units(stock: Mapping[str, int], tally: Tally, left: Mapping[str, int]) -> int:
    """Units sold and still left at once: the books forgot a sale the answers made."""
    return sum(
        max(0, tally.accepted_units[sku] + left.get(sku, 0) - units) for sku, units in stock.items()
    )


def _open_config(
    system: System, prefer: str, earlier: Sequence[Result], quick: bool
) -> ClientConfig:
    """The best closed-loop configuration on ``prefer``, else on any closed-loop workload,
    else the one with the most lines in flight."""
    closed = [r for r in earlier if r.system == system.name and not r.open_loop]
    for result in closed:
        if result.workload == prefer:
            return result.best.config
    if closed:
        return max(closed, key=lambda r: r.best.decisions_per_s).best.config
    return _busiest(system, quick)


def _busiest(system: System, quick: bool) -> ClientConfig:
    """The configuration with the most lines in flight."""
    return max(system.configs(quick), key=lambda c: (c.concurrency * c.batch, c.concurrency))


def _figures(run: Measured) -> str:
    state = " SATURATED" if run.saturated else ""
    return (
        f"{run.decisions_per_s:,.0f}/s p50 {run.p50_ms:.2f} p99 {run.p99_ms:.2f} ms "
        f"({run.decisions:,}/{run.offered:,} decided){state}"
    )


def _summary(result: Result) -> str:
    verdict = "ok" if result.sound else "INVARIANT BROKEN"
    return f"{result.system} {result.workload} [{result.best.config.label}]: " + (
        f"{_figures(result.best)} {verdict}"
    )
