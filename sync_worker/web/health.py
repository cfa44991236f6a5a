"""The worker's own HTTP surface: ``/healthz`` for orchestrators, ``/metrics`` for Prometheus."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def create_health_app(
    registry: CollectorRegistry, status: Callable[[], dict[str, object]]
) -> web.Application:
    """``status()`` reports liveness; it must include ``ok`` (bool)."""

    async def healthz(_: web.Request) -> web.Response:
        report = status()
        return web.Response(
            body=orjson.dumps(report),
            status=200 if report["ok"] else 503,
            content_type="application/json",
        )

    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app
