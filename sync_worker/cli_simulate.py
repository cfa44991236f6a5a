"""``stockcast simulate``: every allocation policy against the same seeded buyers."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from sync_worker.domain.allocation import PolicyKind
from sync_worker.simulation import engine, report
from sync_worker.simulation.arrivals import buyers_of, write_arrivals
from sync_worker.simulation.trace import TraceError, load_trace


@click.command()
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Scenario file (TOML, see docs/allocation.md). Default: the shipped burst trace.",
)
@click.option("--seed", type=int, default=None, help="Buyer seed (default: the trace's own).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per policy.")
@click.option(
    "--policy",
    "policies",
    type=click.Choice([kind.value for kind in PolicyKind]),
    multiple=True,
    help="Only this policy (repeatable). Default: every policy.",
)
@click.option(
    "--save-arrivals",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the buyers played as JSON lines (time_ms, channel, quantity).",
)
def simulate(
    trace_path: Path | None,
    seed: int | None,
    as_json: bool,
    policies: tuple[str, ...],
    save_arrivals: Path | None,
) -> None:
    """Play a scenario's buyers against every allocation policy and compare them.

    Deterministic: no broker, no clock. The real ledger and allocator decide; the
    platforms' counters, delays and push rate limits are simulated.
    """
    try:
        scenario = load_trace(trace_path)
        buyers = buyers_of(scenario, seed)
    except TraceError as error:
        raise click.ClickException(str(error)) from None
    if save_arrivals is not None:
        with save_arrivals.open("w", encoding="utf-8") as out:
            write_arrivals(buyers, out)
    kinds = [PolicyKind(name) for name in policies] or list(PolicyKind)
    results = [engine.run(scenario, buyers, kind) for kind in kinds]
    if as_json:
        click.echo(json.dumps(report.rows(results), indent=2, ensure_ascii=False))
        return
    played = scenario.seed if seed is None else seed
    title = f"{scenario.name}: {scenario.stock} units, {len(buyers)} buyers, seed {played}"
    Console().print(report.table(results, title))
