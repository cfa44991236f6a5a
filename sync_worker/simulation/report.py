"""One row per policy: the figures ``stockcast simulate`` compares, as a table or JSON."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich import box
from rich.table import Table

from sync_worker.simulation.engine import RunResult


def row(result: RunResult) -> dict[str, Any]:
    """The JSON object of one run; ``lost_pct`` and ``pushes_per_order`` rounded to 3 places."""
    return {
        "policy": result.policy.value,
        "oversold_units": result.oversold_units,
        "lost_sales": result.lost_sales,
        "lost_pct": round(result.lost_pct, 3),
        "stranded_units": result.stranded_units,
        "pushes_per_order": round(result.pushes_per_order, 3),
        "sales": result.sales,
        "units_sold": result.units_sold,
        "pushes": result.pushes,
        "buyers": result.buyers,
        "turned_away": result.turned_away,
        "lost_by_channel": result.lost_by_channel,
    }


def rows(results: Iterable[RunResult]) -> list[dict[str, Any]]:
    return [row(result) for result in results]


def table(results: Iterable[RunResult], title: str) -> Table:
    shown = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    shown.add_column("policy", no_wrap=True, min_width=13)
    for heading in ("oversold", "lost", "lost %", "stranded", "push/order", "sales", "pushes"):
        shown.add_column(heading, justify="right", no_wrap=True, min_width=len(heading))
    for result in results:
        shown.add_row(
            result.policy.value,
            str(result.oversold_units),
            str(result.lost_sales),
            f"{result.lost_pct:.1f}",
            str(result.stranded_units),
            f"{result.pushes_per_order:.2f}",
            str(result.sales),
            str(result.pushes),
        )
    return shown
