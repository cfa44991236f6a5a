"""``stockcast stock …``: look at a SKU and move its stock, as an operator.

Moves are sent as events through the input topic, so they are validated, audited
and applied by the ledger exactly like everything else. The environment reaches
this module only through the click context (``cli.py`` reads it).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from sync_worker import cli_worker
from sync_worker.cli_worker import call_worker, worker_option
from sync_worker.config import Settings, SettingsError, load_settings_file
from sync_worker.domain import events
from sync_worker.streaming.commands import read_audit, send_events
from sync_worker.streaming.names import TopicNames


def _environ(ctx: click.Context) -> Mapping[str, str]:
    environ: Mapping[str, str] = ctx.find_root().obj
    return environ


def _settings(ctx: click.Context, config: Path | None) -> Settings:
    try:
        return load_settings_file(config, _environ(ctx))
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


def _actor(ctx: click.Context) -> str:
    return f"cli:{_environ(ctx).get('USER', 'operator')}"


def _common(ctx: click.Context, sku: str, warehouse: str) -> dict[str, Any]:
    return {
        "event_id": f"cli-{uuid.uuid4()}",
        "sku": sku,
        "event_time_ms": int(time.time() * 1000),
        "actor": _actor(ctx),
        "warehouse": warehouse,
    }


def _send(ctx: click.Context, config: Path | None, *moves: events.SkuEvent) -> None:
    settings = _settings(ctx, config)
    topics = TopicNames.for_prefix(settings.kafka.topic_prefix)
    asyncio.run(send_events(settings.kafka, topics, moves))
    for move in moves:
        click.echo(f"sent {move.type} {move.event_id}")


_config = click.option(
    "--config",
    "-c",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Settings file (default: ./stockcast.toml if present).",
)
_warehouse = click.option("--warehouse", "-w", default="main", show_default=True)


@click.group()
def stock() -> None:
    """Look at a SKU's stock and move it (receive, count, adjust, transfer, reserve)."""


@stock.command()
@click.argument("sku")
@worker_option
@_config
@click.pass_context
def show(ctx: click.Context, sku: str, worker_url: str | None, config: Path | None) -> None:
    """Every quantity state of SKU: on hand, committed, reserve, unavailable, returns
    pending, incoming, sellable, transferable; per warehouse; incoming batches."""
    base = cli_worker.worker_url(_settings(ctx, config), worker_url)
    view = call_worker("GET", f"{base}/skus/{sku}")
    console = Console()
    totals = Table(title=f"{sku} (version {view['version']})")
    totals.add_column("quantity state")
    totals.add_column("units", justify="right")
    for name in (
        "on_hand",
        "committed",
        "safety_reserve",
        "unavailable",
        "returns_pending",
        "incoming",
        "sellable",
        "transferable",
    ):
        totals.add_row(name.replace("_", " "), str(view[name]))
    console.print(totals)
    warehouses = Table(title="per warehouse")
    for column in ("warehouse", "on hand", "unavailable", "returns pending"):
        warehouses.add_column(column)
    for name, level in view["warehouses"].items():
        warehouses.add_row(
            name, str(level["on_hand"]), str(level["unavailable"]), str(level["returns_pending"])
        )
    console.print(warehouses)
    for batch in view["incoming_batches"]:
        eta = datetime.fromtimestamp(batch["eta_ms"] / 1000).isoformat(timespec="minutes")
        console.print(
            f"incoming batch {batch['batch_id']}: {batch['quantity']} units to "
            f"{batch['warehouse']}, ETA {eta}"
        )
    reserve = view["reserve"]
    console.print(
        f"safety reserve: {reserve['units']} units or {reserve['percent']}% of on "
        "hand, whichever is larger"
    )


@stock.command()
@click.argument("sku")
@_config
@click.pass_context
def audit(ctx: click.Context, sku: str, config: Path | None) -> None:
    """SKU's audit trail: who changed what, why, before and after."""
    settings = _settings(ctx, config)
    topics = TopicNames.for_prefix(settings.kafka.topic_prefix)
    records = asyncio.run(read_audit(settings.kafka, topics, sku))
    table = Table(title=f"audit trail of {sku}")
    for column in ("time", "version", "event", "actor", "reason", "changes"):
        table.add_column(column)
    for record in records:
        before, after = record["before"], record["after"]
        changes = ", ".join(
            f"{name} {before[name]}→{after[name]}" for name in after if after[name] != before[name]
        )
        when = datetime.fromtimestamp(record["event_time_ms"] / 1000).isoformat(timespec="seconds")
        table.add_row(
            when,
            str(record["version"]),
            record["event_type"],
            record["actor"],
            record["reason"],
            changes,
        )
    Console().print(table)


@stock.command()
@click.argument("sku")
@click.argument("quantity", type=click.IntRange(min=1))
@click.option("--batch", "batch_id", default=None, help="The incoming batch this closes.")
@_warehouse
@_config
@click.pass_context
def receive(
    ctx: click.Context,
    sku: str,
    quantity: int,
    batch_id: str | None,
    warehouse: str,
    config: Path | None,
) -> None:
    """QUANTITY units of SKU arrived and are on hand now."""
    common = _common(ctx, sku, warehouse)
    _send(ctx, config, events.StockReceived(**common, quantity=quantity, batch_id=batch_id))


@stock.command()
@click.argument("sku")
@click.argument("quantity", type=click.IntRange(min=0))
@_warehouse
@_config
@click.pass_context
def count(ctx: click.Context, sku: str, quantity: int, warehouse: str, config: Path | None) -> None:
    """A physical count: SKU's on hand in the warehouse becomes exactly QUANTITY."""
    common = _common(ctx, sku, warehouse)
    _send(ctx, config, events.StockCounted(**common, quantity=quantity))


@stock.command()
@click.argument("sku")
@click.argument("delta", type=int)
@click.option("--reason", required=True, help="Reason code: found, lost, sample, correction…")
@_warehouse
@_config
@click.pass_context
def adjust(
    ctx: click.Context, sku: str, delta: int, reason: str, warehouse: str, config: Path | None
) -> None:
    """Correct SKU's on hand by DELTA units (negative to remove), with a reason."""
    common = _common(ctx, sku, warehouse)
    _send(ctx, config, events.StockAdjusted(**common, delta=delta, reason=reason))


@stock.command()
@click.argument("sku")
@click.argument("quantity", type=click.IntRange(min=1))
@click.option("--from", "source", required=True, help="Warehouse the units leave.")
@click.option("--to", "destination", required=True, help="Warehouse the units arrive in.")
@_config
@click.pass_context
def transfer(
    ctx: click.Context, sku: str, quantity: int, source: str, destination: str, config: Path | None
) -> None:
    """Move QUANTITY units of SKU from one warehouse to another (both halves, one id)."""
    transfer_id = f"transfer-{uuid.uuid4()}"
    out = events.StockTransferredOut(
        **_common(ctx, sku, source),
        quantity=quantity,
        transfer_id=transfer_id,
        destination=destination,
    )
    arrived = events.StockTransferredIn(
        **_common(ctx, sku, destination),
        quantity=quantity,
        transfer_id=transfer_id,
        source=source,
    )
    _send(ctx, config, out, arrived)


@stock.command()
@click.argument("sku")
@click.option("--units", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--percent", type=click.IntRange(0, 100), default=0, show_default=True)
@_config
@click.pass_context
def reserve(ctx: click.Context, sku: str, units: int, percent: int, config: Path | None) -> None:
    """Set SKU's safety reserve: UNITS, or PERCENT of on hand, whichever is larger."""
    common = _common(ctx, sku, "main")
    _send(ctx, config, events.SafetyReserveChanged(**common, units=units, percent=percent))


@stock.command()
@click.argument("sku")
@click.argument("quantity", type=click.IntRange(min=1))
@click.option("--eta", type=click.DateTime(), required=True, help="Expected arrival (local time).")
@click.option("--batch", "batch_id", required=True, help="Batch id; a receipt with it closes it.")
@_warehouse
@_config
@click.pass_context
def incoming(
    ctx: click.Context,
    sku: str,
    quantity: int,
    eta: datetime,
    batch_id: str,
    warehouse: str,
    config: Path | None,
) -> None:
    """Announce QUANTITY units of SKU in transit, arriving at ETA."""
    common = _common(ctx, sku, warehouse)
    _send(
        ctx,
        config,
        events.StockIncomingAnnounced(
            **common, quantity=quantity, batch_id=batch_id, eta_ms=int(eta.timestamp() * 1000)
        ),
    )
