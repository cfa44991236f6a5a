"""A real Prometheus scraping a real worker under a small load: every query of the Grafana
dashboards and of the rules evaluates and returns data, every rule evaluates without
error, the worker's target is up, and a dead letter really fires its alert.

The load touches every metric those queries read: order lines accepted and rejected, in
simulator rooms and on a Shopify mock whose orders arrive as signed webhooks; a live
session whose lineup SKU sells through low, critical and sold out, its stock alerts sent
to a team's webhook and to a broken one; writes the platform throttles and fails once,
then retried; a live-room stream subscriber; and a malformed record, dead-lettered.

How "no data" is read (see the top of deploy/prometheus/rules/stockcast.rules.yml): an
alert's expr is `<signal> <op> <number>` clauses, each signal answers for any running
worker, so the test evaluates the signal and `(<signal>) <op> bool <number>` and calls an
empty answer a broken query. Every vector selector of every query must also match a
series, so a misspelt metric or label value cannot hide behind a zero default.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiokafka import AIOKafkaProducer

from connectors.shopify.mock import ShopifyMock
from connectors.simulator.rooms import LiveRoom
from connectors.simulator.server import Faults, create_app, start_server
from sync_worker import devprometheus
from sync_worker.demo_platforms import channels_toml
from sync_worker.streaming.names import TopicNames
from tests.integration.support import (
    ARRIVAL_TIMEOUT_S,
    GRAFANA_DASHBOARDS,
    PROMETHEUS_DIR,
    PrometheusProcess,
    WorkerProcess,
    alert_form,
    dashboard_queries,
    encoded,
    event,
    free_port,
    grafana_to_promql,
    vector_selectors,
)

pytestmark = pytest.mark.integration

SKU = "lipstick-prom-01"
STOCK = 30
ROOMS = {"douyin-room": "douyin", "tiktok-room": "tiktok"}
SHOP = "shopify-room"
SETTLE_TIMEOUT_S = 90.0
"""A bound on waiting for every query to answer, not a speed requirement."""
CONSTANT_FALLBACK = re.compile(r"\bor\b\s*(on\s*\(\s*\)\s*)?vector\s*\(")
FIRING = {
    ("StockcastDeadLetters", "malformed_json", "firing"),
    ("StockcastAlertNotificationsFailing", "broken-robot", "firing"),
}
"""Alerts the load really sets off: the malformed record, and the broken team webhook."""


# --------------------------------------------------------------------------
# The checks: what to ask Prometheus, and what counts as an answer
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    where: str
    expr: str
    needs_data: bool = True
    label: str | None = None
    """Every series answered must carry this label (a Grafana label_values variable)."""


def rule_checks() -> list[Check]:
    """Every recording rule (by name and by expr), every alert (its expr evaluates; its
    signals and their bool forms answer), and every vector selector of them all."""
    checks: list[Check] = []
    for path in sorted((PROMETHEUS_DIR / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                expr = rule["expr"]
                if "record" in rule:
                    name = rule["record"]
                    checks += [Check(f"record {name}", name), Check(f"record {name}", expr)]
                else:
                    name = rule["alert"]
                    form = alert_form(expr)
                    checks.append(Check(f"alert {name}", expr, needs_data=False))
                    for clause in form.clauses:
                        checks.append(Check(f"alert {name}: signal", clause.signal))
                        checks.append(Check(f"alert {name}: signal as bool", clause.as_bool))
                    if form.absent_of is not None:
                        checks.append(Check(f"alert {name}: absent()", form.absent_of))
                checks += [Check(f"{name}: selector", s) for s in vector_selectors(expr)]
    return checks


def dashboard_checks() -> list[Check]:
    checks = []
    for query in dashboard_queries():
        checks.append(Check(query.where, query.expr, label=query.label))
        checks += [Check(f"{query.where}: selector", s) for s in vector_selectors(query.expr)]
    return checks


def distinct(checks: list[Check]) -> list[Check]:
    seen: dict[tuple[str, bool, str | None], Check] = {}
    for check in checks:
        seen.setdefault((" ".join(check.expr.split()), check.needs_data, check.label), check)
    return list(seen.values())


class PrometheusApi:
    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self._http, self._url = http, url

    async def get(self, path: str, **params: str) -> Any:
        async with self._http.get(f"{self._url}{path}", params=params) as response:
            body = await response.json()
        if body.get("status") != "success":
            raise LookupError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    async def query(self, expr: str) -> list[Any]:
        data = await self.get("/api/v1/query", query=expr)
        result = data["result"]
        return result if data["resultType"] in ("vector", "matrix") else [result]

    async def problem(self, check: Check) -> str | None:
        """What is wrong with the answer to ``check``, or None."""
        try:
            result = await self.query(check.expr)
        except LookupError as error:
            return f"{check.where}: {check.expr}\n    error: {error}"
        if check.needs_data and not result:
            return f"{check.where}: {check.expr}\n    no data"
        if check.label and not all(series["metric"].get(check.label) for series in result):
            return f"{check.where}: {check.expr}\n    a series without {check.label}"
        return None

    async def problems(self, checks: list[Check]) -> list[str]:
        found = [await self.problem(check) for check in checks]
        targets = await self.get("/api/v1/targets")
        ours = [t for t in targets["activeTargets"] if t["labels"].get("job") == "stockcast"]
        if not ours or any(target["health"] != "up" for target in ours):
            found.append(f"target of job stockcast not up: {ours}")
        for group in (await self.get("/api/v1/rules"))["groups"]:
            for rule in group["rules"]:
                if rule["health"] != "ok":
                    found.append(f"rule {rule['name']}: {rule['health']} {rule.get('lastError')}")
        alerts = (await self.get("/api/v1/alerts"))["alerts"]
        firing = {
            (alert["labels"]["alertname"], alert["labels"].get(label), alert["state"])
            for alert in alerts
            for label in ("reason", "target")
        }
        for expected in FIRING:
            if expected not in firing:
                found.append(f"{expected} is not among the alerts: {sorted(firing, key=str)}")
        return [problem for problem in found if problem is not None]

    async def until_scraped(self, deadline: float) -> None:
        """Wait for the first scrape of the worker, so the load lands in the samples."""
        while not await self.query('up{job="stockcast"} == 1'):
            assert time.monotonic() < deadline, "prometheus never scraped the worker"
            await asyncio.sleep(0.2)


# --------------------------------------------------------------------------
# Static checks of the dashboards' queries (no worker needed)
# --------------------------------------------------------------------------


def test_the_dashboards_queries_can_be_tested() -> None:
    assert list(GRAFANA_DASHBOARDS.glob("*.json")), f"no dashboards in {GRAFANA_DASHBOARDS}"

    queries = dashboard_queries()  # fails on an unknown $variable

    assert queries
    for query in queries:
        assert not CONSTANT_FALLBACK.search(query.expr), f"{query.where} hides a gap: {query}"


def test_grafana_variables_become_promql_and_unknown_ones_fail() -> None:
    expr = 'sum(rate(x{sku=~"$sku", job=~"$job"}[$__rate_interval])) / $__range'

    assert grafana_to_promql(expr) == 'sum(rate(x{sku=~".+", job=~".+"}[1m])) / 2m'
    with pytest.raises(ValueError, match="unknown Grafana variable"):
        grafana_to_promql('x{room="$room"}')


def test_the_convention_reader_finds_signals_and_selectors() -> None:
    form = alert_form('a:b:c > 1000\n and deriv(x{k!="v"}[5m]) > 0')

    assert [(c.signal, c.op, c.threshold) for c in form.clauses] == [
        ("a:b:c", ">", "1000"),
        ('deriv(x{k!="v"}[5m])', ">", "0"),
    ]
    assert alert_form('absent(up{job="s"})').absent_of == 'up{job="s"}'
    with pytest.raises(ValueError, match="not `<signal> <op> <number>`"):
        alert_form("x > bool 0")
    assert vector_selectors(
        'sum by (le) (rate(h_bucket{a="1"}[5m])) and on (k) y offset 10m or z * 0'
    ) == ['h_bucket{a="1"}', "y", "z"]


# --------------------------------------------------------------------------
# The real thing
# --------------------------------------------------------------------------


class Team:
    """A team's webhook for stock alerts, and a broken one that always answers 500."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    async def hook(self, request: web.Request) -> web.Response:
        self.alerts.append(await request.json())
        return web.json_response({"ok": True})

    async def broken(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": False}, status=500)


def worker_config(simulator_url: str, shop: ShopifyMock, hooks: str) -> str:
    rooms = "".join(
        f'\n[[channels]]\nname = "{room}"\nconnector = "simulator"\n'
        f'options = {{ base_url = "{simulator_url}" }}\n'
        for room in ROOMS
    )
    return (
        f'\n[allocation]\npolicy = "adaptive"\n'
        f'\n[metrics]\nsku_allowlist = ["{SKU}"]\n'
        f"\n[alerts]\nattempts = 1\n"
        f'\n[[alerts.targets]]\nname = "live-team"\nurl = "{hooks}/hook"\n'
        f'\n[[alerts.targets]]\nname = "broken-robot"\nurl = "{hooks}/broken"\n'
        f"{rooms}{channels_toml({SHOP: ('shopify', shop)})}"
    )


def prometheus_config(worker_port: int) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml, scraping the test's worker every second."""
    config: dict[str, Any] = yaml.safe_load(
        (PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8")
    )
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / "rules" / "*.yml")]
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "stockcast"]
    job.update(
        scrape_interval="1s",
        scrape_timeout="1s",
        static_configs=[{"targets": [f"127.0.0.1:{worker_port}"]}],
    )
    return config


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[[int], PrometheusProcess]]:
    """Starts a real Prometheus scraping the worker on the given port."""
    tools = devprometheus.fetch(devprometheus.DevPrometheusConfig())
    servers: list[PrometheusProcess] = []

    def start(worker_port: int) -> PrometheusProcess:
        config = tmp_path / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config(worker_port)), encoding="utf-8")
        port = free_port()
        command = devprometheus.server_command(
            tools,
            config_file=config,
            storage_dir=tmp_path / "prometheus-data",
            listen_address=f"127.0.0.1:{port}",
        )
        server = PrometheusProcess(command, port, tmp_path / "prometheus.log")
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


def session_body(lineup: list[dict[str, Any]]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "session_id": "evening",
        "title": "Evening show",
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        "channels": [*ROOMS, SHOP],
        "lineup": lineup,
        "actor": "ops-anna",
    }


async def call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with http.request(method, url, json=body) as response:
        payload = await response.json()
        assert response.status < 300, payload
        return payload


async def watch_live_room(url: str) -> None:
    """A live-room screen: stays subscribed until cancelled."""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.get(url, headers={"Accept": "text/event-stream"}) as response,
    ):
        assert response.status == 200
        async for _ in response.content:
            pass


async def sell_out(
    rooms: dict[str, LiveRoom], shop: ShopifyMock, producer: AIOKafkaProducer, topic: str
) -> int:
    """Buyers take turns in every room, one unit each, until the worker sold it all."""
    sold = 0
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    while sold < STOCK and time.monotonic() < deadline:
        for room in rooms.values():
            if room.try_order(SKU, 1):
                sold += 1
                placed = event(
                    "order_line.placed",
                    event_id=f"order-{sold}",
                    sku=SKU,
                    platform=room.platform,
                    channel=room.channel,
                    order_id=f"order-{sold}",
                    buyer_id=f"buyer-{sold}",
                    quantity=1,
                )
                await producer.send(topic, key=SKU.encode(), value=encoded(placed))
        order_id = shop.buy(SKU, 1, buyer=f"shopper-{sold}", region="US-CA")
        if order_id is not None:  # its webhook goes to the worker
            sold += 1
            shop.pay(order_id)
        await asyncio.sleep(0.1)  # a few seconds of selling, across several scrapes
    await producer.flush()
    return sold


async def test_every_dashboard_and_rule_query_answers_on_a_real_prometheus(
    worker_factory: Callable[..., WorkerProcess],
    prometheus_factory: Callable[[int], PrometheusProcess],
    kafka_bootstrap: str,
    topics: TopicNames,
    unused_tcp_port: int,
) -> None:
    checks = distinct(dashboard_checks() + rule_checks())
    team = Team()
    hooks = web.Application()
    hooks.router.add_post("/hook", team.hook)
    hooks.router.add_post("/broken", team.broken)
    hooks_runner = web.AppRunner(hooks)
    await hooks_runner.setup()
    await web.TCPSite(hooks_runner, "127.0.0.1", unused_tcp_port).start()
    rooms = {room: LiveRoom(room, platform) for room, platform in ROOMS.items()}
    faults = Faults()
    faults.inject(429, retry_after="0")  # the first writes are throttled, then fail once
    faults.inject(503)
    shop = ShopifyMock()
    shop.add_listing(SKU, 0)
    await shop.start()
    screen: asyncio.Task[None] | None = None
    try:
        async with await start_server(create_app(rooms, faults=faults)) as simulator:
            worker = worker_factory(
                worker_config(simulator.url, shop, f"http://127.0.0.1:{unused_tcp_port}")
            )
            await asyncio.to_thread(worker.start)
            prometheus = await asyncio.to_thread(prometheus_factory, worker.web_port)
            async with aiohttp.ClientSession() as http:
                api = PrometheusApi(http, prometheus.url)
                await api.until_scraped(time.monotonic() + SETTLE_TIMEOUT_S)
            shop.deliver_to(f"{worker.url}/webhooks/shopify")
            screen = asyncio.create_task(watch_live_room(f"{worker.url}/live/douyin-room"))
            producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
            await producer.start()
            try:
                counted = event("stock.counted", event_id="count", sku=SKU, quantity=STOCK)
                await producer.send_and_wait(
                    topics.sku_events, key=SKU.encode(), value=encoded(counted)
                )
                async with aiohttp.ClientSession() as http:
                    lineup = [{"sku": SKU, "tier": "best_seller", "name": "Ruby lipstick"}]
                    await call(http, "POST", f"{worker.url}/sessions", session_body(lineup))
                    await call(http, "POST", f"{worker.url}/sessions/evening/start", {})
                    sold = await sell_out(rooms, shop, producer, topics.sku_events)
                    late = event(
                        "order_line.placed",
                        event_id="too-late",
                        sku=SKU,
                        platform="douyin",
                        channel="douyin-room",
                        order_id="too-late",
                        buyer_id="late-buyer",
                        quantity=1,
                    )
                    await producer.send(topics.sku_events, key=SKU.encode(), value=encoded(late))
                    await producer.send(topics.sku_events, key=SKU.encode(), value=b"{not json")
                    await producer.flush()
                    problems = await settle(PrometheusApi(http, prometheus.url), checks)
            finally:
                await producer.stop()
    finally:
        if screen is not None:
            screen.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await screen
        await shop.stop()
        await hooks_runner.cleanup()

    assert sold == STOCK
    assert not problems, (
        f"{len(problems)} of {len(checks)} checks failed:\n"
        + "\n".join(problems)
        + f"\n--- prometheus ---\n{prometheus.log_tail()}\n--- worker ---\n{worker.log_tail()}"
    )
    assert [alert["level"] for alert in team.alerts] == ["low", "critical", "sold_out"]


async def settle(api: PrometheusApi, checks: list[Check]) -> list[str]:
    """Ask every check until all pass or the time is up; the last problems found."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        problems = await api.problems(checks)
        if not problems or time.monotonic() > deadline:
            return problems
        await asyncio.sleep(2)
