"""Helpers for integration tests: the worker subprocess, HTTP, canonical events."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

# faust settings that, were faust reading the environment, would break the worker.
HOSTILE_ENV = {
    "BROKER_URL": "kafka://10.255.255.1:1",
    "F_BROKER_URL": "kafka://10.255.255.1:1",
    "APP_DATADIR": "/nonexistent/datadir",
    "F_DATADIR": "/nonexistent/datadir",
    "FAUST_DATADIR": "/nonexistent/datadir",
    "STORE": "memory://",
    "TOPIC_PARTITIONS": "1",
    "PROCESSING_GUARANTEE": "exactly_once",
    "WEB_PORT": "1",
    "APP_AUTODISCOVER": "true",
}

READY_TIMEOUT_S = 120.0


def http_get(url: str) -> tuple[int, bytes]:
    """Status and body; status 0 when nothing answers yet."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class WorkerProcess:
    config: Path
    data_dir: Path
    web_port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKCAST_")}
        env.update(HOSTILE_ENV)
        env.update(self.extra_env)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sync_worker", "run", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.wait_ready()

    def wait_ready(self) -> None:
        """Ready as Prometheus sees it first (``stockcast_worker_up`` must not depend on
        someone polling /healthz), then as orchestrators do."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        for path, ready in (
            ("/metrics", lambda body: b"\nstockcast_worker_up 1.0\n" in body),
            ("/healthz", lambda _: True),
        ):
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    code = self.process.returncode
                    pytest.fail(f"worker exited with {code}:\n{self.log_tail()}")
                status, body = http_get(f"{self.url}{path}")
                if status == 200 and ready(body):
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"worker not ready in time ({path}):\n{self.log_tail()}")
                time.sleep(0.2)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A canonical event with defaults for the fields a test does not care about."""
    base: dict[str, Any] = {
        "type": kind,
        "schema_version": 1,
        "event_time_ms": int(time.time() * 1000),
    }
    if kind.startswith("order_line."):
        base.update(
            platform="tiktok", channel="room-1", order_id=fields.get("order_id", "o1"), line_id="1"
        )
    if kind == "order_line.placed":
        base.update(buyer_id="b1", region=None)
    if kind.startswith("stock."):
        base.update(actor="test")
    base.update(fields)
    return base


def encoded(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload)


# A bound on waiting for messages that must arrive, not a speed requirement.
ARRIVAL_TIMEOUT_S = 60.0


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` messages of ``topic`` in partition order, decoded."""
    return await consume_until(bootstrap, topic, lambda received: len(received) >= count)


async def consume_until(
    bootstrap: str, topic: str, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """The messages of ``topic`` from its start in partition order, decoded, up to the
    first for which ``done`` holds of all received."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    received: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(ARRIVAL_TIMEOUT_S):
            async for message in consumer:
                received.append(orjson.loads(message.value))
                if done(received):
                    break
    finally:
        await consumer.stop()
    return received


async def evict_group_members(bootstrap: str, group_id: str) -> list[str]:
    """Remove every member of ``group_id`` from the group, as an operator does after a
    host is confirmed dead, and return their member ids.

    A SIGKILLed worker never sends LeaveGroup: its ghost member keeps the group waiting
    in the rebalance until faust's session timeout (60 s) expires. Only call this when
    no live worker is in the group: a live member would simply rejoin.
    """
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.client import AIOKafkaClient
    from aiokafka.protocol.group import LeaveGroupRequest

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        coordinator = await admin.find_coordinator(group_id)
        described = await admin.describe_consumer_groups([group_id], coordinator)
    finally:
        await admin.close()
    member_ids = [
        member["member_id"]
        for response in described
        for group in response.to_object()["groups"]
        for member in group["members"]
    ]
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        for member_id in member_ids:
            response = await client.send(coordinator, LeaveGroupRequest(group_id, member_id))
            # 25 UNKNOWN_MEMBER_ID: the session expired or the member left meanwhile.
            assert response.error_code in (0, 25), f"LeaveGroup failed: {response}"
    finally:
        await client.close()
    return member_ids


# --------------------------------------------------------------------------
# Prometheus: the rules' convention, the dashboards' queries, a server process
# --------------------------------------------------------------------------

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
GRAFANA_DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"

_COMPARISON = re.compile(
    r"^(?P<signal>.+?)\s*(?P<op>==|!=|>=|<=|>|<)\s*(?P<threshold>-?\d+(?:\.\d+)?(?:e-?\d+)?)$",
    re.DOTALL,
)
_ABSENT = re.compile(r"^absent\s*\((?P<selector>.+)\)$", re.DOTALL)
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_NOT_METRICS = _GROUPING | {
    *("and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"),
    *("sum", "min", "max", "avg", "count", "stddev", "stdvar", "group"),
    *("topk", "bottomk", "quantile", "count_values"),
}


@dataclass(frozen=True)
class AlertClause:
    """One `<signal> <op> <number>` of an alert (rules file, convention 1)."""

    signal: str
    op: str
    threshold: str

    @property
    def as_bool(self) -> str:
        """The clause as 0/1 per series of the signal: no data means a broken signal."""
        return f"({self.signal}) {self.op} bool {self.threshold}"


@dataclass(frozen=True)
class AlertForm:
    """An alert's expr read by the convention: clauses, or the selector of absent()."""

    clauses: tuple[AlertClause, ...] = ()
    absent_of: str | None = None


def _skip_string(expr: str, start: int) -> int:
    """Index just past the string literal opening at ``start``."""
    quote, i = expr[start], start + 1
    while i < len(expr) and expr[i] != quote:
        i += 2 if expr[i] == "\\" and quote != "`" else 1
    return i + 1


def _skip_group(expr: str, start: int) -> int:
    """Index just past the bracket group opening at ``start``, strings respected."""
    closing = {"(": ")", "{": "}", "[": "]"}
    stack, i = [closing[expr[start]]], start + 1
    while stack:
        if i >= len(expr):
            raise ValueError(f"unbalanced brackets in {expr!r}")
        char = expr[i]
        if char in "\"'`":
            i = _skip_string(expr, i)
            continue
        if char in closing:
            stack.append(closing[char])
        elif char == stack[-1]:
            stack.pop()
        i += 1
    return i


def split_top_level_and(expr: str) -> list[str]:
    """``expr`` cut at every ``and`` outside brackets and strings."""
    parts, start, i = [], 0, 0
    while i < len(expr):
        char = expr[i]
        if char in "\"'`":
            i = _skip_string(expr, i)
        elif char in "({[":
            i = _skip_group(expr, i)
        elif re.match(r"\band\b", expr[i:]) and (i == 0 or not expr[i - 1].isalnum()):
            parts.append(expr[start:i])
            i += 3
            start = i
        else:
            i += 1
    parts.append(expr[start:])
    return [" ".join(part.split()) for part in parts]


def alert_form(expr: str) -> AlertForm:
    """Read an alert's expr by the rules file's convention; ValueError when it breaks it."""
    text = " ".join(expr.split())
    if absent := _ABSENT.match(text):
        return AlertForm(absent_of=absent["selector"].strip())
    clauses = []
    for part in split_top_level_and(text):
        match = _COMPARISON.match(part)
        if match is None or re.search(r"\bbool\b", part):
            raise ValueError(f"{part!r} is not `<signal> <op> <number>`")
        clauses.append(AlertClause(match["signal"].strip(), match["op"], match["threshold"]))
    return AlertForm(clauses=tuple(clauses))


def vector_selectors(expr: str) -> list[str]:
    """Every instant or range vector selector of a PromQL expression, as an instant
    selector (``metric{matchers}``), in order; functions, aggregations, label lists of
    by/on/..., ranges, offsets and numbers are left out."""
    found: list[str] = []
    i = 0
    while i < len(expr):
        char = expr[i]
        if char in "\"'`":
            i = _skip_string(expr, i)
        elif char == "[":
            i = _skip_group(expr, i)
        elif char == "{":  # a selector by matchers only: {__name__=~"..."}
            end = _skip_group(expr, i)
            found.append(expr[i:end])
            i = end
        elif char.isdigit() or (char == "." and expr[i + 1 : i + 2].isdigit()):
            while i < len(expr) and (expr[i].isalnum() or expr[i] in "._"):
                i += 1  # numbers, durations (10m), exponents (1e3)
        elif char.isalpha() or char in "_:":
            end = i
            while end < len(expr) and (expr[end].isalnum() or expr[end] in "_:"):
                end += 1
            word, after = expr[i:end], end
            while after < len(expr) and expr[after].isspace():
                after += 1
            next_char = expr[after : after + 1]
            if word.lower() in _GROUPING and next_char == "(":
                i = _skip_group(expr, after)  # a label list, not selectors
            elif next_char == "(" or word.lower() in _NOT_METRICS:
                i = end  # a function, an aggregation or a keyword
            elif next_char == "{":
                i = _skip_group(expr, after)
                found.append(word + expr[after:i])
            else:
                found.append(word)
                i = end
        else:
            i += 1
    return found


_CUSTOM_VARIABLE = re.compile(r'=~"\$(session|sku|channel|connector|instance|job)"')
_BUILT_INS = {"__rate_interval": "1m", "__interval": "5s", "__range": "2m"}


def grafana_to_promql(expr: str) -> str:
    """A dashboard query as Prometheus would receive it: custom variables (only ever as
    ``=~"$name"``) match any non-empty value, Grafana's built-ins become fixed ranges;
    any other ``$`` is an error, so a new variable cannot slip through untested."""
    text = _CUSTOM_VARIABLE.sub('=~".+"', expr)
    for name, value in _BUILT_INS.items():
        text = text.replace(f"${{{name}}}", value)
        text = re.sub(rf"\${name}\b", value, text)
    if "$" in text:
        raise ValueError(f"unknown Grafana variable in {expr!r}")
    return text


@dataclass(frozen=True)
class DashboardQuery:
    where: str
    """dashboard file, panel title or variable name"""
    expr: str
    """PromQL, variables substituted"""
    label: str | None = None
    """For label_values(): the label every series returned must carry."""


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a row's panels


def dashboard_queries(directory: Path = GRAFANA_DASHBOARDS) -> list[DashboardQuery]:
    """Every target expr of every panel (rows included) and every query variable of
    every dashboard in ``directory``, ready to send to Prometheus."""
    queries = []
    for path in sorted(directory.glob("*.json")):
        dashboard = orjson.loads(path.read_bytes())
        for panel in _panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if "expr" in target:
                    where = f"{path.name}: {panel.get('title', '?')} ({target.get('refId')})"
                    queries.append(DashboardQuery(where, grafana_to_promql(target["expr"])))
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                query = variable.get("query")
                text = query.get("query", "") if isinstance(query, dict) else str(query)
                where = f"{path.name}: variable {variable.get('name')}"
                queries.append(_variable_query(where, grafana_to_promql(text)))
    return queries


def _variable_query(where: str, text: str) -> DashboardQuery:
    if match := re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*", text):
        selector, label = match.groups()
        return DashboardQuery(where, f"count by ({label}) ({selector})", label=label)
    if match := re.fullmatch(r"\s*label_values\(\s*(\w+)\s*\)\s*", text):
        label = match[1]
        return DashboardQuery(where, f'count by ({label}) ({{{label}!=""}})', label=label)
    if match := re.fullmatch(r"\s*query_result\((.+)\)\s*", text, re.DOTALL):
        return DashboardQuery(where, match[1])
    raise ValueError(f"{where}: variable query {text!r} is not label_values or query_result")


@dataclass
class PrometheusProcess:
    """A real Prometheus server on loopback, its samples in ``data_dir``."""

    command: list[str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"prometheus exited with {self.process.returncode}:\n{self.log_tail()}")
            if http_get(f"{self.url}/-/ready")[0] == 200:
                return
            time.sleep(0.2)
        pytest.fail(f"prometheus not ready in time:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
