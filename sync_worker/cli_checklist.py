"""``stockcast checklist …``: the pre-live checklist out of the worker, the warehouse's
count back in.

Export asks the running worker for JSON and renders CSV here from the same rows, so
both formats hold the same values. Import checks the whole file before anything is
sent; the counts then go through the input topic like ``stockcast stock count``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import click
import orjson
from rich.console import Console
from rich.table import Table

from sync_worker import cli_worker
from sync_worker.cli_stock import _actor, _config, _settings
from sync_worker.cli_worker import call_worker, worker_option
from sync_worker.domain.checklist import InvalidCount, read_count, row_from_json, write_csv
from sync_worker.streaming.commands import send_events
from sync_worker.streaming.names import TopicNames


@click.group()
def checklist() -> None:
    """Pre-live checklist per SKU: export it, import a warehouse count."""


def _ask_worker(ctx: click.Context, config: Path | None, url: str | None, path: str) -> Any:
    base = cli_worker.worker_url(_settings(ctx, config), url)
    return call_worker("GET", f"{base}{path}")


def _session_path(session_id: str) -> str:
    return f"/sessions/{quote(session_id, safe='')}/checklist"


@checklist.command()
@click.option("--session", "session_id", default=None, help="The session whose lineup to list.")
@click.option("--sku", "skus", multiple=True, help="A SKU to list (repeat for more).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: standard output).",
)
@worker_option
@_config
@click.pass_context
def export(
    ctx: click.Context,
    session_id: str | None,
    skus: tuple[str, ...],
    output_format: str,
    output: Path | None,
    worker_url: str | None,
    config: Path | None,
) -> None:
    """Name and spec, on hand, in transit with ETA, returns pending, transferable,
    safety reserve, sellable, planned cap, margin and expected replenishment of each
    SKU of a session (--session) or of the SKUs named (--sku). ETAs are UTC in CSV,
    epoch milliseconds in JSON."""
    if (session_id is None) == (not skus):
        raise click.UsageError("name either --session or one or more --sku")
    path = (
        _session_path(session_id)
        if session_id is not None
        else f"/checklist?{urlencode({'skus': ','.join(skus)})}"
    )
    document = _ask_worker(ctx, config, worker_url, path)
    if output_format == "csv":
        text = write_csv(row_from_json(row) for row in document["rows"])
    else:
        text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8", newline="")
    click.echo(f"wrote the checklist of {len(document['rows'])} SKUs to {output}")


@checklist.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--session",
    "session_id",
    default=None,
    help="Refuse SKUs outside this session's lineup (asks the worker).",
)
@click.option("--dry-run", is_flag=True, help="Check the file and show the counts; send nothing.")
@worker_option
@_config
@click.pass_context
def import_count(
    ctx: click.Context,
    file: Path,
    session_id: str | None,
    dry_run: bool,
    worker_url: str | None,
    config: Path | None,
) -> None:
    """Apply a warehouse count from FILE: a CSV of sku,on_hand[,warehouse] (warehouse
    main when left out), or the exported checklist with on_hand filled in. Every bad
    row is listed and nothing is sent unless all rows are good; importing the same file
    again changes nothing."""
    known = None
    if session_id is not None:
        document = _ask_worker(ctx, config, worker_url, _session_path(session_id))
        known = {row["sku"] for row in document["rows"]}
    console = Console()
    try:
        counts = read_count(
            file.read_bytes(),
            actor=_actor(ctx),
            at_ms=int(time.time() * 1000),
            known_skus=known,
        )
    except InvalidCount as invalid:
        problems = Table(title=f"{file}: bad rows")
        for column in ("line", "sku", "problem"):
            problems.add_column(column)
        for problem in invalid.problems:
            line = "file" if problem.line is None else str(problem.line)
            problems.add_row(line, problem.sku, problem.reason)
        console.print(problems)
        raise click.ClickException(
            f"{len(invalid.problems)} problem(s) in {file}; nothing was sent"
        ) from None
    table = Table(title=f"{file}: counts")
    table.add_column("sku")
    table.add_column("warehouse")
    table.add_column("on hand", justify="right")
    table.add_column("event id")
    for count in counts:
        table.add_row(count.sku, count.warehouse, str(count.quantity), count.event_id)
    console.print(table)
    if dry_run:
        click.echo(f"dry run: {len(counts)} counts checked, nothing sent")
        return
    settings = _settings(ctx, config)
    topics = TopicNames.for_prefix(settings.kafka.topic_prefix)
    asyncio.run(send_events(settings.kafka, topics, counts))
    click.echo(f"sent {len(counts)} counts")
