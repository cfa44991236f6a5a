"""The worker's HTTP surface, served by aiohttp's in-process test server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from sync_worker.metrics import Metrics
from sync_worker.web.health import create_health_app

Status = dict[str, object]
MakeClient = Callable[[Metrics, Callable[[], Status]], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[TestClient[Any, Any]] = []

    async def make(metrics: Metrics, status: Callable[[], Status]) -> TestClient[Any, Any]:
        client = TestClient(TestServer(create_health_app(metrics.registry, status)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_healthz_is_200_while_the_worker_is_ok(make_client: MakeClient) -> None:
    client = await make_client(Metrics.create(), lambda: {"ok": True, "app_id": "stockcast"})

    response = await client.get("/healthz")

    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {"ok": True, "app_id": "stockcast"}


async def test_healthz_is_503_while_the_worker_is_not_ok(make_client: MakeClient) -> None:
    report = {"ok": False, "rebalancing": True, "recovered": False}
    client = await make_client(Metrics.create(), lambda: report)

    response = await client.get("/healthz")

    assert response.status == 503
    assert await response.json() == report


async def test_healthz_asks_for_the_status_on_every_request(make_client: MakeClient) -> None:
    reports = iter([{"ok": False}, {"ok": True}, {"ok": False}])
    client = await make_client(Metrics.create(), lambda: next(reports))

    statuses = [(await client.get("/healthz")).status for _ in range(3)]

    assert statuses == [503, 200, 503]


async def test_metrics_serves_the_stockcast_metrics_as_prometheus_text(
    make_client: MakeClient,
) -> None:
    metrics = Metrics.create()
    metrics.dead_letters.labels("malformed_json").inc(2)
    metrics.pushes.labels("simulator", "ok").inc()
    metrics.worker_up.set(1)
    client = await make_client(metrics, lambda: {"ok": True})

    response = await client.get("/metrics")
    text = await response.text()

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert {
        "stockcast_sku_events",
        "stockcast_order_lines_decided",
        "stockcast_decision_latency_seconds",
        "stockcast_dead_letters",
        "stockcast_oversold_units",
        "stockcast_pushes",
        "stockcast_push_latency_seconds",
        "stockcast_worker_up",
    } <= set(families)
    assert all(name.startswith("stockcast_") for name in families)
    assert 'stockcast_dead_letters_total{reason="malformed_json"} 2.0' in text
    assert 'stockcast_pushes_total{connector="simulator",result="ok"} 1.0' in text
    assert "stockcast_worker_up 1.0" in text
    assert "stockcast_oversold_units_total 0.0" in text


async def test_two_workers_never_share_metrics(make_client: MakeClient) -> None:
    first, second = Metrics.create(), Metrics.create()
    first.oversold_units.inc(3)
    client = await make_client(second, lambda: {"ok": True})

    text = await (await client.get("/metrics")).text()

    assert "stockcast_oversold_units_total 0.0" in text


async def test_other_paths_are_not_found(make_client: MakeClient) -> None:
    client = await make_client(Metrics.create(), lambda: {"ok": True})

    assert (await client.get("/")).status == 404
    assert (await client.post("/healthz")).status == 405
