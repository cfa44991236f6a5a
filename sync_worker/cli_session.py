"""``stockcast session …``: run a live session from the terminal, through the worker's API.

The plan (schedule, rooms, lineup) is a TOML or JSON file; every other command names
the session. Each command is audited with the operator's name (``--actor``, default
``cli:$USER``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from sync_worker.cli_stock import _config, _settings
from sync_worker.cli_worker import call_worker, worker_option, worker_url


def _actor_default(ctx: click.Context) -> str:
    environ: Mapping[str, str] = ctx.find_root().obj or {}
    return f"cli:{environ.get('USER', 'operator')}"


_actor = click.option("--actor", default=None, help="Who does it, for the audit log.")


def _post(
    ctx: click.Context,
    config: Path | None,
    url: str | None,
    path: str,
    body: dict[str, Any],
    actor: str | None,
) -> Any:
    base = worker_url_for(ctx, config, url)
    return call_worker("POST", f"{base}{path}", {**body, "actor": actor or _actor_default(ctx)})


@click.group()
def session() -> None:
    """Plan and run a live session: create, start, pin, moves, end, show."""


@session.command()
@click.argument("plan", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@worker_option
@_actor
@_config
@click.pass_context
def create(
    ctx: click.Context, plan: Path, worker_url: str | None, actor: str | None, config: Path | None
) -> None:
    """Create a session from PLAN (.toml or .json): session_id, title, starts_at,
    ends_at, channels and [[lineup]] items (sku, tier, cap, buyer_limit, regions...).
    Times carry their UTC offset (2025-06-15T20:00:00+08:00): the worker refuses a local
    time rather than guess its zone."""
    raw = plan.read_bytes()
    try:
        body = tomllib.loads(raw.decode()) if plan.suffix == ".toml" else orjson.loads(raw)
    except (tomllib.TOMLDecodeError, orjson.JSONDecodeError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{plan}: {error}") from None
    if not isinstance(body, dict):
        raise click.ClickException(f"{plan}: a plan is a table (JSON object) of fields")
    _print(_post(ctx, config, worker_url, "/sessions", body, actor))


def _simple(action: str, help_text: str) -> None:
    @session.command(name=action, help=help_text)
    @click.argument("session_id")
    @worker_option
    @_actor
    @_config
    @click.pass_context
    def command(
        ctx: click.Context,
        session_id: str,
        worker_url: str | None,
        actor: str | None,
        config: Path | None,
    ) -> None:
        _print(_post(ctx, config, worker_url, f"/sessions/{session_id}/{action}", {}, actor))


_simple("start", "Start selling the lineup in the session's rooms, with its rules.")
_simple("end", "End the session: rules lapse, isolated units return to the pool.")
_simple("unpin", "Take the pinned product off the pin.")


@session.command()
@click.argument("session_id")
@click.argument("sku")
@click.option("--minutes", type=float, default=10.0, show_default=True, help="Pin duration.")
@click.option("--rate", type=int, default=50, show_default=True, help="Expected units per second.")
@worker_option
@_actor
@_config
@click.pass_context
def pin(
    ctx: click.Context,
    session_id: str,
    sku: str,
    minutes: float,
    rate: int,
    worker_url: str | None,
    actor: str | None,
    config: Path | None,
) -> None:
    """Pin SKU in every room of the session ("上链接"): quotas sized for the burst."""
    body = {"sku": sku, "duration_s": max(1, round(minutes * 60)), "expected_units_per_s": rate}
    _print(_post(ctx, config, worker_url, f"/sessions/{session_id}/pin", body, actor))


@session.command()
@click.argument("session_id")
@click.argument("action", type=click.Choice(["restock", "transfer", "delist", "relist", "skip"]))
@click.argument("sku")
@click.option("--quantity", "-q", type=int, help="restock / transfer: units.")
@click.option("--eta-min", type=float, help="restock / transfer: arrives in this many minutes.")
@click.option("--batch", "batch_id", help="restock: the announced batch these units close.")
@click.option("--warehouse", "-w", default="main", show_default=True)
@click.option("--from-warehouse", help="transfer: the warehouse the units leave.")
@click.option("--from-room", "from_channel", help="transfer: the room giving quota.")
@click.option("--to-room", "to_channel", help="transfer: the room receiving it.")
@click.option("--room", "channels", multiple=True, help="delist / relist: only these rooms.")
@click.option("--reason", default="operator", show_default=True)
@worker_option
@_actor
@_config
@click.pass_context
def move(
    ctx: click.Context,
    /,
    session_id: str,
    action: str,
    sku: str,
    eta_min: float | None,
    worker_url: str | None,
    actor: str | None,
    config: Path | None,
    **details: Any,
) -> None:
    """A mid-stream move, audited: restock, transfer (from a warehouse with an ETA, or
    quota between rooms), delist, relist, skip."""
    body = {key: value for key, value in details.items() if value not in (None, ())}
    if eta_min is not None:
        body["eta"] = (datetime.now(UTC) + timedelta(minutes=eta_min)).isoformat()
    body |= {"action": action, "sku": sku}
    _print(_post(ctx, config, worker_url, f"/sessions/{session_id}/moves", body, actor))


@session.command()
@click.argument("session_id", required=False)
@worker_option
@_config
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@click.pass_context
def show(
    ctx: click.Context,
    session_id: str | None,
    worker_url: str | None,
    config: Path | None,
    as_json: bool,
) -> None:
    """The session's board (stock left, sold, alerts, room quotas); without SESSION_ID,
    every session."""
    base = worker_url_for(ctx, config, worker_url)
    answer = call_worker("GET", f"{base}/sessions" + (f"/{session_id}" if session_id else ""))
    if as_json:
        click.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
    elif session_id is None:
        table = Table("session", "title", "state", "starts", "rooms", "pinned")
        for row in answer:
            rooms = ", ".join(row["channels"])
            table.add_row(
                row["session_id"],
                row["title"],
                row["state"],
                row["starts_at"],
                rooms,
                row["pinned"] or "",
            )
        Console().print(table)
    else:
        _print(answer)


def worker_url_for(ctx: click.Context, config: Path | None, override: str | None) -> str:
    return worker_url(_settings(ctx, config), override)


def _print(view: dict[str, Any]) -> None:
    console = Console()
    pinned = f", pinned {view['pinned']}" if view.get("pinned") else ""
    console.print(
        f"[bold]{view['session_id']}[/bold] {view['title']}: {view['state']}{pinned} "
        f"(rooms {', '.join(view['channels'])})"
    )
    board = Table("SKU", "tier", "left", "of", "sold", "cap", "alert", "/min", "ETA", "rooms")
    for row in view.get("board", ()):
        left = row.get("remaining", row.get("sellable", "?"))
        pace = row.get("velocity_per_min")
        eta = row.get("eta_s")
        quotas = ", ".join(f"{room} {units}" for room, units in row.get("quotas", {}).items())
        board.add_row(
            row["sku"] + (" (skipped)" if row.get("skipped") else ""),
            row["tier"],
            str(left),
            str(row.get("baseline", "")),
            str(row.get("sold", "")),
            str(row.get("cap") or ""),
            row.get("alert") or "",
            "" if pace is None else f"{pace:.1f}",
            "" if eta is None else f"{eta / 60:.1f} min",
            quotas if row.get("owned_here", True) else "(another worker)",
        )
    console.print(board)
    if view.get("events_sent"):
        console.print(f"sent: {', '.join(view['events_sent'])}")
