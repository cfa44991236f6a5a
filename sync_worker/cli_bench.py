"""``stockcast bench``: stockcast and the baselines a user would pick instead, under the
same load generator and the same workloads."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console

from sync_worker.bench import catalog, report, workloads
from sync_worker.bench.runner import Options, run_bench
from sync_worker.bench.services import ServiceError

_T = TypeVar("_T")


def _names(known: Sequence[str]) -> click.types.FuncParamType:
    def parse(value: str | tuple[str, ...]) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        names = tuple(name.strip() for name in value.split(",") if name.strip())
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise click.BadParameter(f"choose from {', '.join(known)} (comma-separated)")
        return names

    return click.types.FuncParamType(parse)


async def _stoppable(bench: Coroutine[None, None, _T]) -> _T:
    """Run ``bench``; SIGTERM cancels it like Ctrl-C does, so every server it started is
    stopped and removed on the way out."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await bench
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _progress(line: str) -> None:
    click.echo(line, err=True)


@click.command()
@click.option("--quick", is_flag=True, help="Smaller workloads and sweeps (well under 3 minutes).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per "
              "system x workload, instead of the table.")  # fmt: skip
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("var/bench/latency.png"),
    show_default=True,
    help="Where to write the latency-vs-load PNG of the rate sweep.",
)
@click.option(
    "--systems",
    type=_names(tuple(catalog.SYSTEMS)),
    default=",".join(catalog.SYSTEMS),
    show_default=True,
    help="Systems to run, comma-separated.",
)
@click.option(
    "--workloads",
    "workload_names",
    type=_names(workloads.NAMES),
    default=",".join(workloads.NAMES),
    show_default=True,
    help="Workloads to run, comma-separated.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Workload seed.")
@click.option(
    "--seconds",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Time budget of each closed-loop run (default: 1.5 with --quick, else 20).",
)
@click.option(
    "--warm-up",
    "warm_up_s",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds of unmeasured load each system gets before its first run "
    "(default: 8 with --quick, else 30; 0: none).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=4),
    default=1,
    show_default=True,
    help="Worker processes of the stockcast system (they share its 4 partitions).",
)
def bench(
    quick: bool,
    as_json: bool,
    plot_path: Path,
    systems: tuple[str, ...],
    workload_names: tuple[str, ...],
    seed: int,
    seconds: float | None,
    warm_up_s: float | None,
    workers: int,
) -> None:
    """Measure decisions/s, latency and correctness of each system on each workload.

    PostgreSQL and Redis are installed from Debian packages when missing (as root) and
    started on loopback in temporary directories. Progress goes to stderr; the table
    (or, with --json, the JSON) to stdout. Exits 1 if any system oversold, accepted a
    duplicate, stranded a unit or let a re-sent order through.
    """
    options = Options.preset(quick=quick, seed=seed, seconds=seconds, warm_up_s=warm_up_s)
    began = time.perf_counter()
    try:
        built = catalog.systems(stockcast_workers=workers)
        bench_run = run_bench(systems, workload_names, options, _progress, built)
        results = asyncio.run(_stoppable(bench_run))
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    except asyncio.CancelledError:
        click.echo("stopped by SIGTERM", err=True)
        raise SystemExit(128 + signal.SIGTERM) from None
    took = time.perf_counter() - began
    if as_json:
        click.echo(json.dumps(report.rows(results), indent=2, ensure_ascii=False))
    else:
        scale = "quick" if quick else "full"
        title = f"stockcast bench ({scale}, seed {seed}, {took:.0f}s)"
        console = Console()
        if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
            console = Console(width=200)
        console.print(report.table(results, title))
    drawn = report.plot(results, plot_path)
    if drawn is not None:
        click.echo(f"latency plot: {drawn}", err=True)
    click.echo(f"bench took {took:.1f}s", err=True)
    broken = [f"{r.system}/{r.workload}" for r in results if not r.sound]
    if broken:
        click.echo(f"invariants broken: {', '.join(broken)}", err=True)
        raise SystemExit(1)


if __name__ == "__main__":
    bench()
