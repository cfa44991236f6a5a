"""How the CLI talks to a running worker's HTTP API (sessions, checklists, stock views)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import click
import orjson

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
    """The worker's JSON answer; any error status, an answer that is not JSON or an
    unreachable worker is a clear ``ClickException`` (exit status 1) carrying the
    worker's own message."""

    # orjson, not aiohttp's json.dumps: a plan read from TOML carries datetimes and dates
    # at any depth (a lineup item's replenish_at), which orjson writes as RFC 3339.
    data = None if body is None else orjson.dumps(body)
    headers = {} if body is None else {"Content-Type": "application/json"}

    async def send() -> tuple[int, bytes]:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url, data=data, headers=headers) as response,
        ):
            return response.status, await response.read()

    try:
        status, raw = asyncio.run(send())
    except (aiohttp.ClientError, TimeoutError) as error:
        raise click.ClickException(f"no worker answers at {url}: {error or 'timed out'}") from None
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Not the session API answering (a proxy, another service, an unknown path).
        text = raw.decode(errors="replace").strip()[:200]
        raise click.ClickException(f"{url} answered {status}: {text or '(empty)'}") from None
    if status >= 400:
        known = answer if isinstance(answer, dict) else {}
        message = known.get("error", f"worker answered {status}")
        problems = "".join(f"\n  - {problem}" for problem in known.get("problems", ()))
        raise click.ClickException(f"{message}{problems}")
    return answer
