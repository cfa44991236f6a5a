"""How the CLI talks to a running worker's HTTP API (sessions, checklists, stock views)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import click

from sync_worker.config import Settings

worker_option = click.option(
    "--worker",
    "worker_url",
    default=None,
    help="Worker base URL (default: http://127.0.0.1:<worker.web_port>).",
)


def worker_url(settings: Settings, override: str | None) -> str:
    return (override or f"http://127.0.0.1:{settings.worker.web_port}").rstrip("/")


def call_worker(method: str, url: str, body: Any = None) -> Any:
    """The worker's JSON answer; any error status or an unreachable worker is a clear
    ``ClickException`` (exit status 1) carrying the worker's own message."""

    async def send() -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url, json=body) as response,
        ):
            return response.status, await response.json(content_type=None)

    try:
        status, answer = asyncio.run(send())
    except aiohttp.ClientError as error:
        raise click.ClickException(f"no worker answers at {url}: {error}") from None
    if status >= 400:
        message = answer.get("error", f"worker answered {status}")
        problems = "".join(f"\n  - {problem}" for problem in answer.get("problems", ()))
        raise click.ClickException(f"{message}{problems}")
    return answer
