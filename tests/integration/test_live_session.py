"""A live session played end to end: the live team's API on a real worker, simulated
rooms selling against their pushed quotas, and alert notifications to a local receiver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer

from connectors.simulator.rooms import LiveRoom
from connectors.simulator.server import create_app, start_server
from sync_worker.streaming.names import TopicNames
from tests.integration.support import ARRIVAL_TIMEOUT_S, WorkerProcess, consume, encoded, event

pytestmark = pytest.mark.integration

ROOMS = {"douyin-room": "douyin", "tiktok-room": "tiktok"}
STOCK = 100


class Receiver:
    """A team's incoming-webhook endpoint: records every alert it is sent."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()

    async def hook(self, request: web.Request) -> web.Response:
        alert = await request.json()
        async with self._arrived:
            self.alerts.append(alert)
            self._arrived.notify_all()
        return web.json_response({"ok": True})

    async def until(self, count: int) -> None:
        async with asyncio.timeout(ARRIVAL_TIMEOUT_S), self._arrived:
            await self._arrived.wait_for(lambda: len(self.alerts) >= count)


def session_body(session_id: str, lineup: list[dict[str, Any]]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "session_id": session_id,
        "title": "Evening show",
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        "channels": list(ROOMS),
        "lineup": lineup,
        "actor": "ops-anna",
    }


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> dict[str, Any]:
    async with http.request(method, url, json=body) as response:
        payload: dict[str, Any] = await response.json()
        assert response.status < 300, payload
        return payload


def worker_config(simulator_url: str, receiver_url: str, sku: str) -> str:
    channels = "".join(
        f'\n[[channels]]\nname = "{room}"\nconnector = "simulator"\n'
        f'options = {{ base_url = "{simulator_url}" }}\n'
        for room in ROOMS
    )
    alerts = f'\n[[alerts.targets]]\nname = "live-team"\nformat = "json"\nurl = "{receiver_url}"\n'
    return f'\n[allocation]\npolicy = "adaptive"\n{channels}{alerts}'


async def test_a_session_sells_out_with_three_alerts_in_order_each_once(
    worker_factory: Callable[..., WorkerProcess],
    kafka_bootstrap: str,
    topics: TopicNames,
    unused_tcp_port: int,
) -> None:
    sku = "lipstick-live-01"
    receiver = Receiver()
    hook_app = web.Application()
    hook_app.router.add_post("/hook", receiver.hook)
    hook_runner = web.AppRunner(hook_app)
    await hook_runner.setup()
    await web.TCPSite(hook_runner, "127.0.0.1", unused_tcp_port).start()
    rooms = {room: LiveRoom(room, platform) for room, platform in ROOMS.items()}
    async with await start_server(create_app(rooms)) as simulator:
        worker = worker_factory(
            worker_config(simulator.url, f"http://127.0.0.1:{unused_tcp_port}/hook", sku)
        )
        await asyncio.to_thread(worker.start)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            counted = event("stock.counted", event_id="count", sku=sku, quantity=STOCK)
            await producer.send_and_wait(
                topics.sku_events, key=sku.encode(), value=encoded(counted)
            )
            async with aiohttp.ClientSession() as http:
                base = f"{worker.url}/sessions"
                lineup = [{"sku": sku, "tier": "best_seller", "name": "Ruby lipstick"}]
                await call(http, "POST", base, session_body("evening", lineup))
                started = await call(http, "POST", f"{base}/evening/start", {"actor": "ops-anna"})
                assert started["state"] == "live"
                assert started["events_sent"] == ["session.sku_opened"]
                await call(http, "POST", f"{base}/evening/pin", {"sku": sku, "actor": "host"})
                sold = await sell_out(rooms, sku, producer, topics.sku_events)
                await receiver.until(3)
                shown = await call(http, "GET", f"{base}/evening")
                ended = await call(http, "POST", f"{base}/evening/end", {"actor": "ops-anna"})
        finally:
            await producer.stop()
        await asyncio.sleep(2)  # any duplicate notification would arrive meanwhile
        worker.stop()
    await hook_runner.cleanup()

    assert sold == STOCK
    assert [alert["level"] for alert in receiver.alerts] == ["low", "critical", "sold_out"]
    assert len({alert["alert_id"] for alert in receiver.alerts}) == 3
    low, critical, sold_out = receiver.alerts
    assert low["audience"] == ["ops"]
    assert low["remaining"] == 20
    assert critical["audience"] == ["host", "ops"]
    assert critical["remaining"] == 10
    assert sold_out["remaining"] == 0
    assert sold_out["percent_left"] == 0
    (row,) = shown["board"]
    assert row["remaining"] == 0
    assert row["sold"] == STOCK
    assert row["alert"] == "sold_out"
    assert set(row["quotas"].values()) == {0}
    assert ended["state"] == "ended"
    assert [move["action"] for move in ended["log"]] == ["create", "start", "pin", "end"]
    assert {move["actor"] for move in ended["log"]} == {"ops-anna", "host"}


async def sell_out(
    rooms: dict[str, LiveRoom], sku: str, producer: AIOKafkaProducer, topic: str
) -> int:
    """Buyers take turns in the rooms, one unit each, until the worker has sold it all:
    each room sells only what stockcast let it show."""
    sold = 0
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    while sold < STOCK and time.monotonic() < deadline:
        for room in rooms.values():
            if not room.try_order(sku, 1):
                continue
            sold += 1
            placed = event(
                "order_line.placed",
                event_id=f"order-{sold}",
                sku=sku,
                platform=room.platform,
                channel=room.channel,
                order_id=f"order-{sold}",
                buyer_id=f"buyer-{sold}",
                quantity=1,
            )
            await producer.send(topic, key=sku.encode(), value=encoded(placed))
        await asyncio.sleep(0.005)
    await producer.flush()
    return sold


async def test_session_rules_hold_on_the_real_worker(
    worker_factory: Callable[..., WorkerProcess],
    kafka_bootstrap: str,
    topics: TopicNames,
    unused_tcp_port: int,
) -> None:
    """A flash-sale item: exactly 3 units, one per buyer, never shipped to region XZ."""
    sku = "flash-mask-01"
    rooms = {room: LiveRoom(room, platform) for room, platform in ROOMS.items()}
    async with await start_server(create_app(rooms)) as simulator:
        hook = f"http://127.0.0.1:{unused_tcp_port}/unused"
        worker = worker_factory(worker_config(simulator.url, hook, sku))
        await asyncio.to_thread(worker.start)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            counted = event("stock.counted", event_id="count", sku=sku, quantity=STOCK)
            await producer.send_and_wait(
                topics.sku_events, key=sku.encode(), value=encoded(counted)
            )
            async with aiohttp.ClientSession() as http:
                lineup = [{"sku": sku, "tier": "traffic", "cap": 3, "regions_deny": ["XZ"]}]
                unknown_room = session_body("flash", lineup) | {"channels": ["room-9"]}
                async with http.post(f"{worker.url}/sessions", json=unknown_room) as refused:
                    assert refused.status == 400
                await call(http, "POST", f"{worker.url}/sessions", session_body("flash", lineup))
                await call(http, "POST", f"{worker.url}/sessions/flash/start", {})
            orders = [  # (buyer, region): the answer expected
                ("ann@shop.cn", "CN-GD"),  # accepted
                ("Ann+live@shop.cn ", "CN-GD"),  # the same buyer: limit 1
                ("bo", "xz"),  # region denied, whatever the case
                ("bo", "CN-SH"),  # accepted
                ("cy", None),  # accepted: the cap's third unit
                ("di", "CN-BJ"),  # the cap is reached
            ]
            for number, (buyer, region) in enumerate(orders):
                placed = event(
                    "order_line.placed",
                    event_id=f"flash-{number}",
                    sku=sku,
                    platform="douyin",
                    channel="douyin-room",
                    order_id=f"flash-{number}",
                    buyer_id=buyer,
                    region=region,
                    quantity=1,
                )
                await producer.send(topics.sku_events, key=sku.encode(), value=encoded(placed))
            await producer.flush()
        finally:
            await producer.stop()
        answers = await consume(kafka_bootstrap, topics.decisions, len(orders))
        worker.stop()

    assert [(a["outcome"], a["reason"]) for a in answers] == [
        ("accepted", None),
        ("rejected", "buyer_limit_reached"),
        ("rejected", "region_blocked"),
        ("accepted", None),
        ("accepted", None),
        ("rejected", "session_cap_reached"),
    ]
