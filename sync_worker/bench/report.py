"""The bench's results as a terminal table, as JSON (one object per system x workload)
and as a latency-vs-offered-load plot from the open-loop rate sweep."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from sync_worker.bench.runner import Measured, Result
from sync_worker.bench.workloads import RATE_SWEEP

REQUIRED_KEYS = (
    "system",
    "workload",
    "decisions_per_s",
    "p50_ms",
    "p99_ms",
    "p999_ms",
    "oversold_units",
    "duplicate_accepts",
    "stranded_units",
)
"""Keys every JSON object has (a test pins them; others may be added)."""


def row(result: Result) -> dict[str, Any]:
    """One system on one workload. Throughput and latency are the best run's; the
    correctness counts are the worst over all runs; ``runs`` holds every run."""
    best = result.best
    return {
        "system": result.system,
        "workload": result.workload,
        "description": result.description,
        **_figures(best),
        "oversold_units": result.oversold_units,
        "duplicate_accepts": result.duplicate_accepts,
        "stranded_units": result.stranded_units,
        "phantom_units": result.phantom_units,
        "missed_duplicates": result.missed_duplicates,
        "duplicates_answered": best.duplicates_answered,
        "resent": best.resent,
        "runs": [_figures(run) for run in result.runs],
    }


def rows(results: Iterable[Result]) -> list[dict[str, Any]]:
    return [row(result) for result in results]


def _figures(run: Measured) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "config": {"concurrency": run.config.concurrency, "batch": run.config.batch},
        "decisions_per_s": round(run.decisions_per_s, 1),
        "p50_ms": round(run.p50_ms, 3),
        "p99_ms": round(run.p99_ms, 3),
        "p999_ms": round(run.p999_ms, 3),
        "max_ms": round(run.max_ms, 3),
        "decisions": run.decisions,
        "offered": run.offered,
        "complete": run.complete,
        "saturated": run.saturated,
        "elapsed_s": round(run.elapsed_s, 3),
        "cpu_ms_per_1000": {role: round(ms, 1) for role, ms in run.cpu_ms_per_1000.items()},
    }
    if run.rate is not None:
        figures["rate"] = run.rate
    if run.push_p50_ms is not None:
        figures["push_p50_ms"] = round(run.push_p50_ms, 3)
        figures["push_p99_ms"] = round(run.push_p99_ms or 0.0, 3)
        figures["push_p999_ms"] = round(run.push_p999_ms or 0.0, 3)
    return figures


def table(results: Sequence[Result], title: str) -> Table:
    shown = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    shown.add_column("workload", no_wrap=True)
    shown.add_column("system", no_wrap=True)
    shown.add_column("best", no_wrap=True)
    headings = ("decided/s", "p50 ms", "p99 ms", "p99.9 ms", "oversold", "dup acc", "stranded")
    for heading in headings:
        shown.add_column(heading, justify="right", no_wrap=True)
    shown.add_column("dups caught", justify="right", no_wrap=True)
    shown.add_column("cpu ms/1k", no_wrap=True)
    shown.add_column("note")
    previous = None
    for result in results:
        best = result.best
        shown.add_row(
            result.workload if result.workload != previous else "",
            result.system,
            best.config.label,
            f"{best.decisions_per_s:,.0f}",
            f"{best.p50_ms:.2f}",
            f"{best.p99_ms:.2f}",
            f"{best.p999_ms:.2f}",
            _count(result.oversold_units),
            _count(result.duplicate_accepts),
            _count(result.stranded_units),
            f"{best.duplicates_answered}/{best.resent}",
            " ".join(f"{role} {ms:.0f}" for role, ms in best.cpu_ms_per_1000.items()),
            _note(result),
        )
        previous = result.workload
    return shown


def _count(value: int) -> str:
    return "0" if value == 0 else f"[bold red]{value}[/]"


def _note(result: Result) -> str:
    best = result.best
    notes = []
    if result.workload == RATE_SWEEP and best.rate is not None:
        notes.append(f"at {best.rate}/s")
        saturated = [run.rate for run in result.runs if run.saturated]
        if saturated:
            notes.append(f"saturated at {saturated[0]}/s")
    elif best.saturated:
        notes.append("saturated")
    if not best.complete and not best.saturated:
        notes.append(f"{best.decisions:,} of {best.offered:,} lines in time")
    if best.push_p99_ms is not None:
        notes.append(f"push p99 {best.push_p99_ms:.1f} ms")
    if not result.sound:
        notes.append("[bold red]INVARIANT BROKEN[/]")
    return ", ".join(notes)


def plot(results: Iterable[Result], path: Path) -> Path | None:
    """p99 (solid) and p50 (dashed) order -> decision latency against the offered rate,
    a line per system; a saturated rate is marked with a cross. None without a sweep."""
    swept = [result for result in results if result.workload == RATE_SWEEP]
    if not swept:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, 5))
    for result in swept:
        runs = [run for run in result.runs if run.rate is not None]
        rates = [run.rate or 0 for run in runs]
        (line,) = axes.plot(rates, [run.p99_ms for run in runs], marker="o", label=result.system)
        color = line.get_color()
        axes.plot(rates, [run.p50_ms for run in runs], linestyle="--", color=color, alpha=0.6)
        for run in runs:
            if run.saturated:
                axes.plot([run.rate or 0], [run.p99_ms], marker="x", markersize=12, color=color)
    axes.set_xscale("log")
    axes.set_yscale("log")
    offered = sorted({run.rate for result in swept for run in result.runs if run.rate})
    axes.set_xticks(offered, [f"{rate:,}" for rate in offered])
    axes.minorticks_off()
    axes.set_xlabel("offered load (order lines/s, open loop)")
    axes.set_ylabel("order -> decision latency (ms)")
    axes.set_title("Latency vs load: p99 solid, p50 dashed, x = saturated")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
    return path
