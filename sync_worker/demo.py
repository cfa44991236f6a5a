"""``stockcast demo``: one live session, end to end, on this machine.

Starts the local broker, the worker daemon (a real subprocess, as in production), a
mock of each platform (TikTok Shop, Douyin 抖店, Shopify) with a live room on it, and
buyers; the platforms tell the worker of every order by signed webhook and get its
quotas back as signed writes. Shows stock per SKU and per channel while it runs; then
checks the outcome independently of the worker: the units held by accepted,
uncancelled lines never exceed the stock counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from connectors.simulator.buyers import initial_stock_messages, run_buyers
from connectors.simulator.scenario import Burst, RoomSpec, Scenario
from sync_worker import devkafka
from sync_worker.config import ENV_PREFIX
from sync_worker.demo_platforms import MOCKS, PlatformRoom, channels_toml
from sync_worker.simulation.recording import ArrivalRecorder, replay_trace
from sync_worker.streaming.names import TopicNames

_DRAIN_TIMEOUT_S = 60.0
HOT_SKU = "lipstick-ruby-01"
"""The SKU the host pins halfway through; its buyers are the ones recorded."""
_WORKER_READY_TIMEOUT_S = 90.0
HEAR_AND_PUSH_MS = 300
"""A sale's webhook, its hydration and the push back, on this one busy machine: what
the adaptive policy sizes each room's quota by."""


@dataclass(frozen=True)
class DemoOptions:
    duration_s: float = 60.0
    seed: int = 7
    keep_broker: bool = False
    record_arrivals: Path | None = None
    """Write the hot SKU's buyers (served or refused) here, and a trace replaying them
    beside it (same name, ``.toml``), for ``stockcast simulate``."""


@dataclass
class Tally:
    """The demo's own account of the session, built from what it sent and what came back."""

    stock: dict[str, int]
    decisions: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    """Rejected lines by reason."""
    decided_orders: set[tuple[str, str]] = field(default_factory=set)
    """(platform, order id) of every order with an answer (accepted or rejected)."""
    accepted_lines: dict[str, tuple[str, int]] = field(default_factory=dict)
    accepted_twice: int = 0
    sold_by_channel: Counter[tuple[str, str]] = field(default_factory=Counter)
    levels: dict[str, dict[str, int]] = field(default_factory=dict)

    def decided(self, decision: Mapping[str, Any]) -> None:
        outcome = str(decision["outcome"])
        self.decisions[outcome] += 1
        if outcome != "duplicate":
            self.decided_orders.add((str(decision["platform"]), str(decision["order_id"])))
        if outcome == "rejected":
            self.rejections[str(decision.get("reason"))] += 1
        if outcome == "accepted":
            line = _line(decision)
            if line in self.accepted_lines:
                self.accepted_twice += 1
            sku, quantity = str(decision["sku"]), int(decision["quantity"])
            self.accepted_lines[line] = (sku, quantity)
            self.sold_by_channel[(sku, str(decision["channel"]))] += quantity

    def oversold_units(self, rooms: Mapping[str, PlatformRoom]) -> int:
        cancelled = {(room.platform, order) for room in rooms.values() for order in room.cancelled}
        held: Counter[str] = Counter()
        for line, (sku, quantity) in self.accepted_lines.items():
            platform, order_id, _ = line.split("/", 2)
            if (platform, order_id) not in cancelled:
                held[sku] += quantity
        return sum(max(0, held[sku] - self.stock.get(sku, 0)) for sku in held)

    def summary_lines(self, rooms: Mapping[str, PlatformRoom]) -> list[str]:
        counters = [room.counters for room in rooms.values()]
        return [
            f"orders: {sum(c.orders_placed for c in counters)}",
            f"accepted: {self.decisions['accepted']}",
            f"rejected: {self.decisions['rejected']}",
            *(
                [f"rejected by reason: {', '.join(f'{r} {n}' for r, n in self.rejections.items())}"]
                if self.rejections
                else []
            ),
            f"refused by rooms (sold out): {sum(c.orders_refused_sold_out for c in counters)}",
            f"duplicates ignored: {self.decisions['duplicate']}",
            f"cancelled: {sum(c.orders_cancelled for c in counters)}",
            f"double-accepted: {self.accepted_twice}",
            f"oversold: {self.oversold_units(rooms)}",
        ]


def _line(event: Mapping[str, object]) -> str:
    return f"{event['platform']}/{event['order_id']}/{event['line_id']}"


def run_demo(options: DemoOptions, environ: Mapping[str, str]) -> int:
    """Run the demo; returns the process exit code (1 when anything was oversold)."""
    console = Console()
    try:
        return asyncio.run(_demo(options, environ, console))
    except KeyboardInterrupt:
        console.print("stopped.")
        return 130


async def _demo(options: DemoOptions, environ: Mapping[str, str], console: Console) -> int:
    kafka = devkafka.DevKafkaConfig()
    broker_was_running = all(node.alive for node in devkafka.status(kafka))
    console.print("starting the local Kafka broker…")
    bootstrap = await asyncio.to_thread(devkafka.up, kafka)
    run_id = f"demo-{int(time.time())}"
    work_dir = Path("var/demo") / run_id
    work_dir.mkdir(parents=True, exist_ok=True)
    scenario = _scenario(options, run_id)
    topics = TopicNames.for_prefix(run_id)
    worker: subprocess.Popen[bytes] | None = None
    recording = contextlib.ExitStack()
    recorder = None
    if options.record_arrivals is not None:
        out = recording.enter_context(options.record_arrivals.open("w", encoding="utf-8"))
        recorder = ArrivalRecorder(out, HOT_SKU, time.monotonic)
    # Each room starts empty and shows what stockcast grants it.
    rooms = {
        spec.channel: PlatformRoom(
            spec.channel, spec.platform, MOCKS[spec.platform](), options.seed, recorder
        )
        for spec in scenario.rooms
    }
    try:
        for room in rooms.values():
            for sku in scenario.skus:
                room.mock.add_listing(sku.sku, 0)
            await room.mock.start()
        web_port = _free_port()
        mocks = {room.channel: (room.platform, room.mock) for room in rooms.values()}
        config = _write_config(
            work_dir, run_id, bootstrap, web_port, channels_toml(mocks, HEAR_AND_PUSH_MS)
        )
        worker = _start_worker(config, work_dir, environ)
        console.print(f"worker started (pid {worker.pid}, log {work_dir / 'worker.log'})")
        await _wait_healthy(worker, web_port)
        for room in rooms.values():
            room.mock.deliver_to(f"http://127.0.0.1:{web_port}/webhooks/{room.platform}")
        tally = Tally(stock=scenario.initial_stock())
        if recorder is not None:
            recorder.start()
        await _play(scenario, rooms, topics, bootstrap, tally, options, console)
        _stop_worker(worker)
        worker = None
    finally:
        recording.close()
        for room in rooms.values():
            await room.mock.stop()
        if worker is not None:
            _stop_worker(worker)
        if not (broker_was_running or options.keep_broker):
            await asyncio.to_thread(devkafka.down, kafka)
    console.print()  # the live view's last frame may leave the cursor mid-line
    console.print("summary", style="bold")
    console.print("\n".join(tally.summary_lines(rooms)), highlight=False)
    if options.record_arrivals is not None:
        trace = _write_replay_trace(options.record_arrivals, scenario)
        console.print(f"buyers recorded in {options.record_arrivals}")
        console.print(f"replay them: stockcast simulate --trace {trace}")
    return 0 if tally.oversold_units(rooms) == 0 and tally.accepted_twice == 0 else 1


def _scenario(options: DemoOptions, run_id: str) -> Scenario:
    """The burst lands in the middle third of the session, however long it is."""
    third = options.duration_s / 3
    return Scenario(
        rooms=tuple(RoomSpec(f"{name.split('_')[0]}-room-1", name) for name in MOCKS),
        burst=Burst(HOT_SKU, start_s=third, duration_s=third, rate_multiplier=50.0),
        seed=options.seed,
        run_id=run_id,
    )


async def _play(
    scenario: Scenario,
    rooms: Mapping[str, PlatformRoom],
    topics: TopicNames,
    bootstrap: str,
    tally: Tally,
    options: DemoOptions,
    console: Console,
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=2, enable_idempotence=True
    )
    consumer = AIOKafkaConsumer(
        topics.decisions,
        topics.stock_levels,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await producer.start()
    await consumer.start()
    try:
        follow = asyncio.create_task(_follow(consumer, topics, tally))

        async def by_webhook(key: bytes, value: bytes) -> None:
            """The platforms tell stockcast themselves, by signed webhook."""

        for key, value in initial_stock_messages(scenario, int(time.time() * 1000)):
            await producer.send_and_wait(topics.sku_events, key=key, value=value)
        with Live(_view(scenario, rooms, tally), console=console, refresh_per_second=4) as live:
            playing = run_buyers(scenario, rooms, by_webhook, options.duration_s)
            buyers = asyncio.create_task(playing)
            while not buyers.done():
                live.update(_view(scenario, rooms, tally))
                await asyncio.sleep(0.25)
            await buyers
            await producer.flush()
            deadline = time.monotonic() + _DRAIN_TIMEOUT_S
            # A cancelled order may never be decided: a platform that reports it only
            # once it is cancelled sends no placement to decide.
            placed = {(room.platform, order) for room in rooms.values() for order in room.orders}
            cancelled = {
                (room.platform, order) for room in rooms.values() for order in room.cancelled
            }
            while placed - tally.decided_orders - cancelled:
                if time.monotonic() > deadline:
                    raise RuntimeError("the worker did not decide every order in time")
                live.update(_view(scenario, rooms, tally))
                await asyncio.sleep(0.25)
            live.update(_view(scenario, rooms, tally))
        follow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follow
    finally:
        await consumer.stop()
        await producer.stop()


async def _follow(consumer: AIOKafkaConsumer, topics: TopicNames, tally: Tally) -> None:
    async for message in consumer:
        payload = orjson.loads(message.value)
        if message.topic == topics.decisions:
            tally.decided(payload)
        elif payload.get("type") == "stock.level_changed":  # not the quota changes beside
            tally.levels[payload["sku"]] = payload


def _view(scenario: Scenario, rooms: Mapping[str, PlatformRoom], tally: Tally) -> Group:
    table = Table(title="stock per SKU (stockcast) and per channel (shown / sold)")
    table.add_column("SKU")
    for column in ("on hand", "committed", "sellable"):
        table.add_column(column, justify="right")
    for room in rooms.values():
        table.add_column(room.channel, justify="right")
    for spec in scenario.skus:
        level = tally.levels.get(spec.sku, {})
        table.add_row(
            spec.sku,
            *(str(level.get(name, "-")) for name in ("on_hand", "committed", "sellable")),
            *(
                f"{room.displayed(spec.sku)} / {tally.sold_by_channel[(spec.sku, room.channel)]}"
                for room in rooms.values()
            ),
        )
    status = "  ".join(tally.summary_lines(rooms))
    return Group(table, status)


def _write_replay_trace(arrivals: Path, scenario: Scenario) -> Path:
    trace = arrivals.with_suffix(".toml")
    text = replay_trace(
        arrivals.name,
        HOT_SKU,
        scenario.initial_stock()[HOT_SKU],
        [room.channel for room in scenario.rooms],
        name=f"stockcast demo {scenario.run_id}",
    )
    trace.write_text(text, encoding="utf-8")
    return trace


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _write_config(
    work_dir: Path, run_id: str, bootstrap: str, web_port: int, channels: str
) -> Path:
    config = work_dir / "stockcast.toml"
    config.write_text(
        f'[kafka]\nbootstrap_servers = "{bootstrap}"\ntopic_prefix = "{run_id}"\n\n'
        f'[worker]\napp_id = "stockcast-{run_id}"\ndata_dir = "{work_dir / "worker"}"\n'
        f"web_port = {web_port}\n{channels}",
        encoding="utf-8",
    )
    return config


def _start_worker(
    config: Path, work_dir: Path, environ: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    # The demo's settings file is the whole truth: drop the caller's STOCKCAST_ overrides.
    env = {name: value for name, value in environ.items() if not name.startswith(ENV_PREFIX)}
    log = (work_dir / "worker.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "sync_worker", "run", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # Ctrl-C reaches the demo only; the demo stops the worker
    )


async def _wait_healthy(worker: subprocess.Popen[bytes], web_port: int) -> None:
    deadline = time.monotonic() + _WORKER_READY_TIMEOUT_S
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited early with code {worker.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{web_port}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError("the worker did not become healthy in time")


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
