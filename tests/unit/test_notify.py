# ruff: noqa: RUF001  (the Chinese wording uses full-width punctuation)
"""Alert notifications against a real local HTTP receiver: each target format's body, the
DingTalk signature checked the way DingTalk checks it, audience filtering, retries that
honour Retry-After and robot errcodes, giving up, and no secret in any log or error."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from pydantic import SecretStr

from connectors.base import RateLimited, Rejected, TransientError
from connectors.mock_support import serve_app
from sync_worker import notify
from sync_worker.config import AlertFormat, AlertSettings, AlertTargetSettings, Audience
from sync_worker.domain.events import AlertLevel, AlertRaised
from sync_worker.metrics import Metrics
from sync_worker.notify import Notifier, Undelivered, check_answer, message_body
from sync_worker.streaming import codecs
from sync_worker.streaming.alert_service import AlertDecoder, RecentIds

WECOM_KEY = "693a91f6-7aoc-4bc4-97a0-0ec2sifa5aaa"
DING_TOKEN = "e9a8118c8a3dc0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8"
DING_SECRET = "SEC10d6e79b42bd94be0d0d603843651aa2ccd7186db6edbc"
SLACK_PATH = "/services/T0001/B0002/XXXXXXXXXXXXXXXXXXXXXXXX"
SECRETS = (WECOM_KEY, DING_TOKEN, DING_SECRET, "XXXXXXXXXXXXXXXXXXXXXXXX")


def alert(level: AlertLevel = AlertLevel.CRITICAL, **fields: Any) -> AlertRaised:
    audience = ("ops",) if level is AlertLevel.LOW else ("host", "ops")
    threshold = {AlertLevel.LOW: 20, AlertLevel.CRITICAL: 10, AlertLevel.SOLD_OUT: 0}[level]
    defaults: dict[str, Any] = {
        "alert_id": f"alert-{level.value}",
        "sku": "lipstick-07",
        "session_id": "double-11-night",
        "level": level,
        "audience": audience,
        "remaining": 8,
        "baseline": 100,
        "percent_left": 8,
        "threshold_percent": threshold,
        "channels": ("douyin-main", "tiktok-us"),
        "suggestion": "End this product early or switch to the next one.",
        "cause_event_id": "ev-42",
        "event_time_ms": 1_700_000_000_000,
    }
    return AlertRaised(**{**defaults, **fields})


@dataclass
class Received:
    path: str
    query: dict[str, str]
    body: bytes
    content_type: str
    at: float

    def json(self) -> Any:
        return orjson.loads(self.body)


Answer = Callable[[], Awaitable[web.Response]]
"""Makes a fresh response per request: aiohttp sends a response object only once."""


def always(make: Callable[[], web.Response]) -> Answer:
    async def answer() -> web.Response:
        return make()

    return answer


@dataclass
class Receiver:
    """A webhook target: answers with ``script`` in turn, then with ``default``."""

    url: str = ""
    script: list[web.Response] = field(default_factory=list)
    default: Answer = field(default_factory=lambda: always(lambda: web.Response(text="ok")))
    received: list[Received] = field(default_factory=list)

    def app(self) -> web.Application:
        async def take(request: web.Request) -> web.Response:
            self.received.append(
                Received(
                    request.path,
                    dict(request.query),
                    await request.read(),
                    request.headers.get("Content-Type", ""),
                    time.monotonic(),
                )
            )
            return self.script.pop(0) if self.script else await self.default()

        app = web.Application()
        app.router.add_post("/{tail:.*}", take)
        return app

    def paths(self) -> list[str]:
        return [request.path for request in self.received]


def robot_ok() -> web.Response:
    return web.json_response({"errcode": 0, "errmsg": "ok"})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    target = Receiver()
    runner, target.url = await serve_app(target.app())
    yield target
    await runner.cleanup()


def target(
    name: str,
    url: str,
    target_format: AlertFormat = "json",
    *,
    audience: tuple[Audience, ...] = ("ops", "host"),
    secret: str | None = None,
) -> AlertTargetSettings:
    return AlertTargetSettings(
        name=name,
        format=target_format,
        url=SecretStr(url),
        secret=SecretStr(secret) if secret is not None else None,
        audience=audience,
    )


@pytest.fixture
async def notifiers() -> AsyncIterator[Callable[..., Awaitable[Notifier]]]:
    """Started notifiers over the given targets (fast attempts), closed afterwards."""
    made: list[Notifier] = []

    async def make(
        *targets: AlertTargetSettings,
        attempts: int = 3,
        timeout_s: float = 2.0,
        metrics: Metrics | None = None,
    ) -> Notifier:
        settings = AlertSettings(targets=targets, attempts=attempts, timeout_s=timeout_s)
        notifier = Notifier(settings, metrics or Metrics.create())
        await notifier.start()
        made.append(notifier)
        return notifier

    yield make
    for notifier in made:
        await notifier.close()


Make = Callable[..., Awaitable[Notifier]]


def outcomes(metrics: Metrics, name: str) -> dict[str, float]:
    return {
        outcome: metrics.registry.get_sample_value(
            "stockcast_alert_notifications_total", {"target": name, "outcome": outcome}
        )
        or 0.0
        for outcome in ("delivered", "retried", "failed")
    }


# --- formats ------------------------------------------------------------------------------


async def test_json_targets_get_the_alert_exactly_as_on_the_topic(
    receiver: Receiver, notifiers: Make
) -> None:
    notifier = await notifiers(target("hook", f"{receiver.url}/alerts"))

    assert await notifier.deliver(alert()) == []

    [request] = receiver.received
    assert request.path == "/alerts"
    assert request.content_type.startswith("application/json")
    assert request.body == codecs.encode(alert())


async def test_wecom_gets_a_bilingual_markdown_message(receiver: Receiver, notifiers: Make) -> None:
    receiver.default = always(robot_ok)
    url = f"{receiver.url}/cgi-bin/webhook/send?key={WECOM_KEY}"
    notifier = await notifiers(target("wecom-ops", url, "wecom"))

    assert await notifier.deliver(alert()) == []

    [request] = receiver.received
    assert request.query == {"key": WECOM_KEY}
    body = request.json()
    assert body["msgtype"] == "markdown"
    assert set(body["markdown"]) == {"content"}
    content = body["markdown"]["content"]
    assert content.startswith("## 🟠 库存告急 · Critical stock\n")
    for expected in (
        "主播、运营请立即处理 · Host and ops: act now",
        "> 商品 SKU: **lipstick-07**",
        "> 场次 Session: **double-11-night**",
        "> 剩余 Left: **8 / 100 (8%), 阈值 threshold 10%**",
        "> 直播间 Rooms: **douyin-main, tiktok-us**",
        "建议：提前结束本品或切换下一个商品",
        "Suggestion: End this product early or switch to the next one.",
        "stockcast · alert-critical",
    ):
        assert expected in content
    assert len(content.encode()) <= 4096


async def test_an_ops_alert_does_not_call_for_the_host(receiver: Receiver, notifiers: Make) -> None:
    receiver.default = always(robot_ok)
    notifier = await notifiers(target("wecom-ops", f"{receiver.url}/w", "wecom"))

    await notifier.deliver(alert(AlertLevel.LOW, remaining=20, percent_left=20))

    content = receiver.received[0].json()["markdown"]["content"]
    assert content.startswith("## 🟡 库存预警 · Low stock")
    assert "运营跟进 · For ops" in content
    assert "主播" not in content


async def test_wecom_lists_at_most_ten_rooms(receiver: Receiver, notifiers: Make) -> None:
    receiver.default = always(robot_ok)
    notifier = await notifiers(target("wecom-ops", f"{receiver.url}/w", "wecom"))
    rooms = tuple(f"room-{n:02}-{'x' * 180}" for n in range(100))

    await notifier.deliver(alert(channels=rooms))

    content = receiver.received[0].json()["markdown"]["content"]
    assert "room-09" in content
    assert "room-10" not in content
    assert "… (+90)" in content
    assert len(content.encode()) <= 4096


def dingtalk_sign(secret: str, timestamp: str) -> str:
    """How DingTalk checks 加签, written from its documentation."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


async def test_dingtalk_gets_a_markdown_message_on_a_signed_url(
    receiver: Receiver, notifiers: Make
) -> None:
    receiver.default = always(robot_ok)
    url = f"{receiver.url}/robot/send?access_token={DING_TOKEN}"
    notifier = await notifiers(target("ding", url, "dingtalk", secret=DING_SECRET))

    before_ms = int(time.time() * 1000)
    assert await notifier.deliver(alert(AlertLevel.SOLD_OUT, remaining=0, percent_left=0)) == []

    [request] = receiver.received
    assert request.path == "/robot/send"
    assert set(request.query) == {"access_token", "timestamp", "sign"}
    assert request.query["access_token"] == DING_TOKEN
    assert before_ms <= int(request.query["timestamp"]) <= int(time.time() * 1000)
    assert request.query["sign"] == dingtalk_sign(DING_SECRET, request.query["timestamp"])
    body = request.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "🔴 已售罄 · Sold out lipstick-07"
    text = body["markdown"]["text"]
    assert text.startswith("#### 🔴 已售罄 · Sold out\n\n**主播、运营请立即处理")
    assert "- 商品 SKU: **lipstick-07**\n- 场次 Session: **double-11-night**\n" in text
    assert "- 剩余 Left: **0 / 100 (0%)**" in text  # no threshold for sold out
    assert "已售罄，所有直播间已停售" in text
    assert "stockcast" in text  # the keyword a keyword-secured robot can require


async def test_dingtalk_without_a_secret_is_sent_unsigned(
    receiver: Receiver, notifiers: Make
) -> None:
    receiver.default = always(robot_ok)
    url = f"{receiver.url}/robot/send?access_token={DING_TOKEN}"
    notifier = await notifiers(target("ding", url, "dingtalk"))

    assert await notifier.deliver(alert()) == []

    assert receiver.received[0].query == {"access_token": DING_TOKEN}


async def test_slack_gets_text_and_blocks(receiver: Receiver, notifiers: Make) -> None:
    notifier = await notifiers(target("slack", f"{receiver.url}{SLACK_PATH}", "slack"))

    assert await notifier.deliver(alert(sku="<b>&lipstick")) == []

    body = receiver.received[0].json()
    assert body["text"] == "🟠 库存告急 · Critical stock: &lt;b&gt;&amp;lipstick, 8 / 100 left"
    header, audience, facts, advice, footer = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "🟠 库存告急 · Critical stock"},
    }
    assert audience["text"] == {
        "type": "mrkdwn",
        "text": "*主播、运营请立即处理 · Host and ops: act now*",
    }
    assert [f["text"] for f in facts["fields"]] == [
        "*商品 SKU*\n&lt;b&gt;&amp;lipstick",
        "*场次 Session*\ndouble-11-night",
        "*剩余 Left*\n8 / 100 (8%), 阈值 threshold 10%",
        "*直播间 Rooms*\ndouyin-main, tiktok-us",
    ]
    assert advice["text"]["text"].endswith("\nEnd this product early or switch to the next one.")
    assert footer["type"] == "context"


# --- the alerts topic, read back -----------------------------------------------------------


def test_the_json_body_reads_back_as_the_very_alert() -> None:
    sent = alert(AlertLevel.SOLD_OUT, remaining=0, percent_left=0)

    assert AlertDecoder().decode(message_body("json", sent)) == sent


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "must be object"),
        (orjson.dumps({**orjson.loads(codecs.encode(alert())), "level": "meh"}), "level"),
        (orjson.dumps({**orjson.loads(codecs.encode(alert())), "extra": 1}), "must not contain"),
        (orjson.dumps({**orjson.loads(codecs.encode(alert())), "schema_version": 2}), "version"),
    ],
)
def test_a_message_that_is_no_alert_is_refused_with_the_reason(value: bytes, said: str) -> None:
    with pytest.raises(codecs.InvalidEvent, match=said) as raised:
        AlertDecoder().decode(value)

    assert raised.value.reason == "invalid_alert"


def test_handled_alert_ids_are_remembered_up_to_a_bound() -> None:
    recent = RecentIds(2)
    for alert_id in ("a1", "a2", "a3"):
        recent.add(alert_id)

    assert "a1" not in recent
    assert "a2" in recent
    assert "a3" in recent


# --- audience -----------------------------------------------------------------------------


async def test_each_alert_goes_to_the_targets_of_its_audience(
    receiver: Receiver, notifiers: Make
) -> None:
    notifier = await notifiers(
        target("ops-room", f"{receiver.url}/ops", audience=("ops",)),
        target("host-phone", f"{receiver.url}/host", audience=("host",)),
        target("everyone", f"{receiver.url}/all"),
    )

    await notifier.deliver(alert(AlertLevel.LOW))
    assert sorted(receiver.paths()) == ["/all", "/ops"]

    receiver.received.clear()
    await notifier.deliver(alert(AlertLevel.CRITICAL))
    assert sorted(receiver.paths()) == ["/all", "/host", "/ops"]


# --- retries ------------------------------------------------------------------------------


async def test_server_errors_are_retried_until_delivered(
    receiver: Receiver, notifiers: Make
) -> None:
    receiver.script = [web.Response(status=503), web.Response(status=500)]
    metrics = Metrics.create()
    notifier = await notifiers(target("hook", f"{receiver.url}/a"), attempts=3, metrics=metrics)

    assert await notifier.deliver(alert()) == []

    assert len(receiver.received) == 3
    assert outcomes(metrics, "hook") == {"delivered": 1, "retried": 2, "failed": 0}


async def test_a_429_is_retried_no_sooner_than_its_retry_after(
    receiver: Receiver, notifiers: Make
) -> None:
    receiver.script = [web.Response(status=429, headers={"Retry-After": "1"}, text="rate_limited")]
    notifier = await notifiers(target("slack", f"{receiver.url}{SLACK_PATH}", "slack"))

    assert await notifier.deliver(alert()) == []

    first, second = receiver.received
    assert second.at - first.at >= 0.95


async def test_every_attempt_failing_gives_up_with_the_reason(
    receiver: Receiver, notifiers: Make
) -> None:
    receiver.default = always(lambda: web.Response(status=502))
    metrics = Metrics.create()
    notifier = await notifiers(target("hook", f"{receiver.url}/a"), attempts=3, metrics=metrics)

    undelivered = await notifier.deliver(alert())

    assert undelivered == [Undelivered("hook", "HTTP 502 (gave up after 3 attempt(s))")]
    assert len(receiver.received) == 3
    assert outcomes(metrics, "hook") == {"delivered": 0, "retried": 2, "failed": 1}


async def test_a_target_that_does_not_answer_in_time_is_retried_then_given_up(
    receiver: Receiver, notifiers: Make
) -> None:
    async def late() -> web.Response:
        await asyncio.sleep(1.0)
        return web.Response(text="ok")

    receiver.default = late
    notifier = await notifiers(target("hook", f"{receiver.url}/a"), attempts=2, timeout_s=0.2)

    [undelivered] = await notifier.deliver(alert())

    assert undelivered.error == "no answer within 0.2 s (gave up after 2 attempt(s))"
    assert len(receiver.received) == 2


async def test_a_refusal_is_not_retried(receiver: Receiver, notifiers: Make) -> None:
    receiver.default = always(lambda: web.Response(status=404, text="channel_not_found"))
    metrics = Metrics.create()
    notifier = await notifiers(
        target("slack", f"{receiver.url}{SLACK_PATH}", "slack"), metrics=metrics
    )

    undelivered = await notifier.deliver(alert())

    assert undelivered == [
        Undelivered("slack", "HTTP 404: channel_not_found (gave up after 1 attempt(s))")
    ]
    assert len(receiver.received) == 1
    assert outcomes(metrics, "slack") == {"delivered": 0, "retried": 0, "failed": 1}


async def test_one_target_failing_does_not_keep_the_alert_from_the_others(
    receiver: Receiver, notifiers: Make
) -> None:
    async def by_path() -> web.Response:
        path = receiver.received[-1].path
        return web.Response(status=410 if path == "/gone" else 200, text="ok")

    receiver.default = by_path
    notifier = await notifiers(target("gone", f"{receiver.url}/gone"), target("ok", receiver.url))

    [undelivered] = await notifier.deliver(alert())

    assert undelivered.target == "gone"
    assert sorted(receiver.paths()) == ["/", "/gone"]


# --- robot errcodes -----------------------------------------------------------------------


@pytest.mark.parametrize("robot", ["wecom", "dingtalk"])
def test_a_robot_answering_errcode_zero_took_the_message(robot: AlertFormat) -> None:
    check_answer(robot, 200, None, b'{"errcode":0,"errmsg":"ok"}')


@pytest.mark.parametrize(("robot", "code"), [("wecom", 45009), ("dingtalk", 130101)])
def test_a_robot_sent_too_much_is_rate_limited_for_one_slot(robot: AlertFormat, code: int) -> None:
    body = orjson.dumps({"errcode": code, "errmsg": "send too fast"})

    with pytest.raises(RateLimited) as raised:
        check_answer(robot, 200, None, body)

    assert raised.value.retry_after == notify.ROBOT_SLOT_S == 3.0
    assert str(raised.value) == f"errcode {code}: send too fast"


@pytest.mark.parametrize("robot", ["wecom", "dingtalk"])
def test_a_busy_robot_is_worth_another_attempt(robot: AlertFormat) -> None:
    with pytest.raises(TransientError, match="errcode -1"):
        check_answer(robot, 200, None, b'{"errcode":-1,"errmsg":"system busy"}')


@pytest.mark.parametrize(
    ("robot", "body", "said"),
    [
        ("dingtalk", b'{"errcode":310000,"errmsg":"keywords not in content"}', "errcode 310000"),
        ("wecom", b'{"errcode":93000,"errmsg":"invalid webhook url"}', "errcode 93000"),
        ("dingtalk", b"<html>proxy</html>", "not a robot's answer: <html>proxy</html>"),
        ("wecom", b'{"errmsg":"ok"}', "not a robot's answer"),
    ],
)
def test_any_other_robot_answer_is_a_refusal(robot: AlertFormat, body: bytes, said: str) -> None:
    with pytest.raises(Rejected, match=said):
        check_answer(robot, 200, None, body)


def test_a_slack_ok_and_a_json_2xx_are_no_robot_answers() -> None:
    check_answer("slack", 200, None, b"ok")
    check_answer("json", 204, None, b"")


async def test_a_rate_limited_robot_is_asked_again(
    receiver: Receiver, notifiers: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "ROBOT_SLOT_S", 0.2)
    receiver.script = [web.json_response({"errcode": 130101, "errmsg": "send too fast"})]
    receiver.default = always(robot_ok)
    metrics = Metrics.create()
    notifier = await notifiers(target("ding", f"{receiver.url}/r", "dingtalk"), metrics=metrics)

    assert await notifier.deliver(alert()) == []

    first, second = receiver.received
    assert second.at - first.at >= 0.19
    assert outcomes(metrics, "ding") == {"delivered": 1, "retried": 1, "failed": 0}


async def test_a_robot_refusal_is_given_up_at_once(receiver: Receiver, notifiers: Make) -> None:
    refusal = {"errcode": 310000, "errmsg": "keywords not in content"}
    receiver.default = always(lambda: web.json_response(refusal))
    notifier = await notifiers(target("ding", f"{receiver.url}/r", "dingtalk"))

    [undelivered] = await notifier.deliver(alert())

    assert undelivered.error == (
        "errcode 310000: keywords not in content (gave up after 1 attempt(s))"
    )
    assert len(receiver.received) == 1


# --- secrets ------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_no_secret_reaches_a_log_an_error_or_a_repr(
    receiver: Receiver, notifiers: Make, caplog: pytest.LogCaptureFixture
) -> None:
    async def echo() -> web.Response:
        # A target that quotes the request back in its refusal, robot key and all.
        request = receiver.received[-1]
        quoted = "&".join(f"{name}={value}" for name, value in request.query.items())
        return web.Response(status=400, text=f"cannot serve {request.path}?{quoted}")

    receiver.script = [web.Response(status=503), web.Response(status=503)]
    receiver.default = echo
    nowhere = f"http://127.0.0.1:{closed_port()}{SLACK_PATH}"
    url = receiver.url
    targets = (
        target("wecom", f"{url}/send?key={WECOM_KEY}", "wecom"),
        target("ding", f"{url}/send?access_token={DING_TOKEN}", "dingtalk", secret=DING_SECRET),
        target("slack-down", nowhere, "slack"),
    )
    notifier = await notifiers(*targets, attempts=2)

    with caplog.at_level(logging.DEBUG):
        undelivered = await notifier.deliver(alert())

    assert [end.target for end in undelivered] == ["wecom", "ding", "slack-down"]
    assert undelivered[0].error == (
        "HTTP 400: cannot serve /send?key=*** (gave up after 2 attempt(s))"
    )
    assert undelivered[1].error.startswith("HTTP 400: cannot serve /send?access_token=***&")
    assert undelivered[2].error == (
        "request failed (ClientConnectorError) (gave up after 2 attempt(s))"
    )
    assert caplog.text.count("retrying") == 3
    assert "not delivered to ding" in caplog.text
    shown = [caplog.text, repr(notifier), repr(targets), *map(repr, undelivered)]
    for text in shown:
        for secret in SECRETS:
            assert secret not in text


async def test_a_target_quoting_its_secrets_in_a_refusal_has_them_masked(
    receiver: Receiver, notifiers: Make, caplog: pytest.LogCaptureFixture
) -> None:
    quoted = f"token {DING_TOKEN} not valid for secret {DING_SECRET}"
    receiver.default = always(lambda: web.json_response({"errcode": 300001, "errmsg": quoted}))
    url = f"{receiver.url}/send?access_token={DING_TOKEN}"
    notifier = await notifiers(target("ding", url, "dingtalk", secret=DING_SECRET))

    with caplog.at_level(logging.DEBUG):
        [undelivered] = await notifier.deliver(alert())

    assert undelivered.error == (
        "errcode 300001: token *** not valid for secret *** (gave up after 1 attempt(s))"
    )
    assert DING_TOKEN not in caplog.text
    assert DING_SECRET not in caplog.text


async def test_a_closed_notifier_sends_nothing(receiver: Receiver, notifiers: Make) -> None:
    notifier = await notifiers(target("hook", receiver.url))
    await notifier.close()

    [undelivered] = await notifier.deliver(alert())

    assert "not started or already closed" in undelivered.error
    assert receiver.received == []
