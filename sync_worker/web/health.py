"""The worker's own HTTP surface: ``/healthz`` for orchestrators, ``/metrics`` for Prometheus."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def create_health_app(
    registry: CollectorRegistry,
    status: Callable[[], dict[str, object]],
    routes: Iterable[web.RouteDef] = (),
) -> web.Application:
    """``status()`` reports readiness; it must include ``ok`` (bool). ``routes`` adds the
    worker's own read-only views."""

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
    app.router.add_routes(list(routes))
    return app
