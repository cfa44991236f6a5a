"""Reads the deploy files the way their consumers read them: the `stockcast` command line
through the CLI's own click parser, routes through the worker's own HTTP app."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from aiohttp import web

from sync_worker import cli
from sync_worker.metrics import Metrics
from sync_worker.web.health import create_health_app

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"


def parse_stockcast(argv: Sequence[str]) -> tuple[click.Command, dict[str, Any]]:
    """The subcommand ``argv`` runs and its options, parsed by click as `stockcast` would
    parse them, without running it. An unknown subcommand or option, or a missing value,
    raises ``click.UsageError``."""
    if not argv or Path(argv[0]).name != "stockcast":
        raise click.UsageError(f"not the stockcast command: {list(argv)}")
    command: click.Command = cli.main
    name, args = "stockcast", list(argv[1:])
    while isinstance(command, click.Group):
        if not args:
            raise click.UsageError(f"{name}: no subcommand")
        name, *args = args
        subcommand = command.get_command(click.Context(command), name)
        if subcommand is None:
            raise click.UsageError(f"no such command: {name}")
        command = subcommand
    context = command.make_context(name, args)
    return command, context.params


def health_app() -> web.Application:
    """The worker's HTTP app as the worker builds it, with no routes of its own added."""
    return create_health_app(Metrics.create().registry, lambda: {"ok": True})


def route_paths(app: web.Application) -> set[str]:
    return {resource.canonical for resource in app.router.resources()}


def drain_bound_s() -> float:
    """How long the worker's HTTP server waits for requests in flight when it stops
    (aiohttp's default, which the worker keeps)."""
    defaults = web.BaseRunner.__init__.__kwdefaults__ or {}
    default: float = defaults["shutdown_timeout"]
    return default
