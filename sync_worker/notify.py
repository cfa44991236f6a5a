# ruff: noqa: RUF001  (the Chinese wording uses full-width punctuation)
"""Alert notifications: an ``AlertRaised`` in the message each webhook target expects,
and its delivery to every target that serves the alert's audience.

The formatting is pure (``message_body``, ``signed_url``, ``check_answer``); ``Notifier``
adds the one HTTP session and the retries (``retrying.platform_retrying``: back-off with
jitter, never sooner than the target's ``Retry-After``). Messages are bilingual, Chinese
first, so a live-ops team in either language reads them without a translation step.

Secrets: a target's URL carries its robot key (in the query for WeCom and DingTalk, in
the path for Slack) and DingTalk has a signing secret. Both stay ``SecretStr`` until the
request is made, and nothing here shows them in a repr. aiohttp errors, which quote the
URL, are reduced to their class name, and every text that leaves a ``Notifier`` (logs,
``Undelivered``) is scrubbed of both, in case a target quotes them back.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import orjson
from tenacity import RetryCallState

from connectors.base import ConnectorError, RateLimited, Rejected, TransientError
from connectors.http_support import parse_retry_after
from sync_worker.config import AlertFormat, AlertSettings, AlertTargetSettings
from sync_worker.domain.events import AlertLevel, AlertRaised
from sync_worker.metrics import Metrics
from sync_worker.retrying import platform_retrying

log = logging.getLogger(__name__)

ROBOT_SLOT_S: Final = 3.0
"""WeCom and DingTalk robots take 20 messages a minute: a throttled one has a slot again
this long after the last one."""
ROBOT_RATE_LIMITED: Final = {"wecom": 45009, "dingtalk": 130101}
"""The errcode each robot answers (with HTTP 200) when it is sent messages too fast."""
ROBOT_BUSY: Final = -1
"""The errcode of "system busy, try again" on both robots."""
ROOMS_SHOWN: Final = 10
_ANSWER_SHOWN: Final = 200
_SECRET_MIN: Final = 8
_JSON_HEADERS: Final = {"Content-Type": "application/json; charset=utf-8"}

_HEADLINE = {
    AlertLevel.LOW: "🟡 库存预警 · Low stock",
    AlertLevel.CRITICAL: "🟠 库存告急 · Critical stock",
    AlertLevel.SOLD_OUT: "🔴 已售罄 · Sold out",
}
_ADVICE_ZH = {
    AlertLevel.LOW: "库存偏低，请准备补货或调拨。",
    AlertLevel.CRITICAL: "提前结束本品或切换下一个商品；如需继续，请补货。",
    AlertLevel.SOLD_OUT: "已售罄，所有直播间已停售。请补货或切换商品。",
}
"""The Chinese of ``domain.alerts.SUGGESTION``; the event's own suggestion follows it."""
_FOR_HOST = "主播、运营请立即处理 · Host and ops: act now"
_FOR_OPS = "运营跟进 · For ops"


@dataclass(frozen=True, slots=True)
class _Wording:
    """What every format says, in the order it says it."""

    headline: str
    audience: str
    for_host: bool
    facts: tuple[tuple[str, str], ...]
    advice_zh: str
    advice_en: str
    footer: str


def _wording(alert: AlertRaised) -> _Wording:
    rooms = ", ".join(alert.channels[:ROOMS_SHOWN])
    if len(alert.channels) > ROOMS_SHOWN:
        rooms += f" … (+{len(alert.channels) - ROOMS_SHOWN})"
    left = f"{alert.remaining} / {alert.baseline} ({alert.percent_left}%)"
    if alert.threshold_percent:
        left += f", 阈值 threshold {alert.threshold_percent}%"
    for_host = "host" in alert.audience
    return _Wording(
        headline=_HEADLINE[alert.level],
        audience=_FOR_HOST if for_host else _FOR_OPS,
        for_host=for_host,
        facts=(
            ("商品 SKU", alert.sku),
            ("场次 Session", alert.session_id),
            ("剩余 Left", left),
            ("直播间 Rooms", rooms or "-"),
        ),
        advice_zh=_ADVICE_ZH[alert.level],
        advice_en=alert.suggestion,
        # "stockcast" in every message: a DingTalk robot secured by keyword can use it.
        footer=f"stockcast · {alert.alert_id}",
    )


def wecom_message(alert: AlertRaised) -> dict[str, Any]:
    """A WeCom (企业微信) group robot markdown message (content up to 4096 bytes: at most
    ``ROOMS_SHOWN`` rooms are listed)."""
    words = _wording(alert)
    colour = "warning" if words.for_host else "comment"
    lines = [
        f"## {words.headline}",
        f'<font color="{colour}">{words.audience}</font>',
        *(f"> {label}: **{value}**" for label, value in words.facts),
        f"建议：{words.advice_zh}",
        f"Suggestion: {words.advice_en}",
        f'<font color="comment">{words.footer}</font>',
    ]
    return {"msgtype": "markdown", "markdown": {"content": "\n".join(lines)}}


def dingtalk_message(alert: AlertRaised) -> dict[str, Any]:
    """A DingTalk (钉钉) custom robot markdown message; ``title`` is what the chat list
    previews."""
    words = _wording(alert)
    # DingTalk's markdown breaks lines only on blank lines (or within lists).
    blocks = [
        f"#### {words.headline}",
        f"**{words.audience}**",
        "\n".join(f"- {label}: **{value}**" for label, value in words.facts),
        f"建议：{words.advice_zh}",
        f"Suggestion: {words.advice_en}",
        words.footer,
    ]
    return {
        "msgtype": "markdown",
        "markdown": {"title": f"{words.headline} {alert.sku}", "text": "\n\n".join(blocks)},
    }


def slack_message(alert: AlertRaised) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` is the notification's fallback, the
    blocks what the channel shows."""
    words = _wording(alert)
    fields = [
        {"type": "mrkdwn", "text": f"*{label}*\n{_slack_escape(value)}"}
        for label, value in words.facts
    ]
    return {
        "text": _slack_escape(
            f"{words.headline}: {alert.sku}, {alert.remaining} / {alert.baseline} left"
        ),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": words.headline}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{words.audience}*"}},
            {"type": "section", "fields": fields},
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"{words.advice_zh}\n{_slack_escape(words.advice_en)}",
                },
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _slack_escape(words.footer)}],
            },
        ],
    }


def _slack_escape(text: str) -> str:
    """Slack reads ``<...>`` as links and mentions; these three are its only escapes."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MESSAGES: Final[dict[str, Callable[[AlertRaised], dict[str, Any]]]] = {
    "wecom": wecom_message,
    "dingtalk": dingtalk_message,
    "slack": slack_message,
}


def message_body(target_format: AlertFormat, alert: AlertRaised) -> bytes:
    """The request body for a target: ``json`` is the alert exactly as on the topic."""
    if target_format == "json":
        return orjson.dumps(alert)
    return orjson.dumps(_MESSAGES[target_format](alert))


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: HMAC-SHA256 keyed by the secret over ``"{timestamp}\\n{secret}"``,
    base64, appended URL-encoded with the timestamp (DingTalk accepts it for an hour)."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    query = urlencode({"timestamp": timestamp_ms, "sign": base64.b64encode(digest).decode()})
    return f"{url}{'&' if '?' in url else '?'}{query}"


def check_answer(
    target_format: AlertFormat, status: int, retry_after: str | None, body: bytes
) -> None:
    """Returns when the target took the message. Otherwise raises ``RateLimited`` or
    ``TransientError`` (worth another attempt) or ``Rejected`` (never: the same message
    would be refused again)."""
    if status == 429:
        raise RateLimited("HTTP 429", parse_retry_after(retry_after))
    if status == 408 or status >= 500:
        raise TransientError(f"HTTP {status}")
    if not 200 <= status < 300:
        raise Rejected(f"HTTP {status}: {_shown(body)}")
    if target_format in ("wecom", "dingtalk"):
        _check_robot(target_format, body)


def _check_robot(target_format: AlertFormat, body: bytes) -> None:
    """WeCom and DingTalk robots answer HTTP 200 and put the outcome in ``errcode``."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict) or type(answer.get("errcode")) is not int:
        raise Rejected(f"not a robot's answer: {_shown(body)}")
    code = answer["errcode"]
    if code == 0:
        return
    said = f"errcode {code}: {str(answer.get('errmsg', ''))[:_ANSWER_SHOWN]}"
    if code == ROBOT_RATE_LIMITED[target_format]:
        raise RateLimited(said, ROBOT_SLOT_S)
    if code == ROBOT_BUSY:
        raise TransientError(said)
    raise Rejected(said)


def _shown(body: bytes) -> str:
    return body[:_ANSWER_SHOWN].decode("utf-8", "replace").strip() or "(empty)"


@dataclass(frozen=True, slots=True)
class Undelivered:
    """A target that did not take an alert: its name and why, free of its secrets."""

    target: str
    error: str


@dataclass(frozen=True, slots=True)
class _Target:
    settings: AlertTargetSettings
    secrets: tuple[str, ...] = field(repr=False)

    @classmethod
    def of(cls, settings: AlertTargetSettings) -> _Target:
        url = settings.url.get_secret_value()
        parts = urlsplit(url)
        found = [url, parts.path, *(value for _, value in parse_qsl(parts.query))]
        if settings.secret is not None:
            found.append(settings.secret.get_secret_value())
        # Longest first, so a fragment inside another is not left half-masked; short
        # ones are no key, and masking them would garble ordinary words.
        kept = sorted({text for text in found if len(text) >= _SECRET_MIN}, key=len, reverse=True)
        return cls(settings, tuple(kept))

    def scrub(self, text: str) -> str:
        """``text`` with the URL, its path and query values and the secret masked (those
        of ``_SECRET_MIN`` characters or more)."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


class Notifier:
    """Delivers alerts to the targets of ``settings`` over one HTTP session.

    ``start`` opens the session, ``close`` closes it; ``deliver`` runs between them. Each
    target gets ``settings.attempts`` tries of at most ``settings.timeout_s`` each, and
    counts one ``alert_notifications`` outcome per retry and per end (delivered, failed).
    """

    def __init__(self, settings: AlertSettings, metrics: Metrics) -> None:
        self._targets = tuple(_Target.of(target) for target in settings.targets)
        self._attempts = settings.attempts
        self._timeout_s = settings.timeout_s
        self._metrics = metrics
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self._timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def deliver(self, alert: AlertRaised) -> list[Undelivered]:
        """Sends ``alert`` to every target whose audience it shares, all at once; returns
        the targets given up on (every attempt failed, or the target refused it)."""
        audience = set(alert.audience)
        chosen = [t for t in self._targets if audience.intersection(t.settings.audience)]
        ends = await asyncio.gather(*(self._deliver_to(target, alert) for target in chosen))
        return [end for end in ends if end is not None]

    async def _deliver_to(self, target: _Target, alert: AlertRaised) -> Undelivered | None:
        name = target.settings.name
        body = message_body(target.settings.format, alert)

        def retried(state: RetryCallState) -> None:
            self._metrics.alert_notifications.labels(name, "retried").inc()
            error = state.outcome.exception() if state.outcome else None
            log.info(
                "alert %s to %s: retrying in %.1f s: %s",
                alert.alert_id,
                name,
                state.upcoming_sleep,
                target.scrub(str(error)),
            )

        retrying = platform_retrying(attempts=self._attempts, before_sleep=retried)
        try:
            await retrying(self._post, target, body)
        except ConnectorError as error:
            tries = retrying.statistics.get("attempt_number", 1)
            why = target.scrub(f"{error} (gave up after {tries} attempt(s))")
            self._metrics.alert_notifications.labels(name, "failed").inc()
            log.warning("alert %s not delivered to %s: %s", alert.alert_id, name, why)
            return Undelivered(name, why)
        self._metrics.alert_notifications.labels(name, "delivered").inc()
        return None

    async def _post(self, target: _Target, body: bytes) -> None:
        if self._session is None:
            raise Rejected("the notifier is not started or already closed")
        url = target.settings.url.get_secret_value()
        if target.settings.secret is not None:
            secret = target.settings.secret.get_secret_value()
            url = signed_url(url, secret, int(time.time() * 1000))
        try:
            async with self._session.post(
                url, data=body, headers=_JSON_HEADERS, allow_redirects=False
            ) as response:
                answer = await response.read()
                retry_after = response.headers.get("Retry-After")
                status = response.status
        except TimeoutError:
            raise TransientError(f"no answer within {self._timeout_s:g} s") from None
        except aiohttp.ClientError as error:
            # Its text quotes the URL: only its kind is kept.
            raise TransientError(f"request failed ({type(error).__name__})") from None
        check_answer(target.settings.format, status, retry_after, answer)
