"""The platform's answer envelope, pure: decoding it and what each answer means.

Every call answers HTTP 200 with ``{"code", "msg", "sub_code", "sub_msg", "log_id",
"data"}``; success is ``code == 10000`` [S]. Throttling is in-band too: the flow-control
code is not in any public copy [U], so an answer counts as throttling when it is the
documented "系统繁忙" (50002 / ``isv.business-failed:2010401``), the gateway's
``isv.traffic-limited`` (60000), or any text saying 限流 / 频繁 / QPS. None carries a wait
hint, so the connector waits a small configured default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from connectors.base import ConnectorError, RateLimited, Rejected, TransientError
from connectors.douyin.api import (
    DUPLICATE_IDEMPOTENT_ID_SUB_CODE,
    RETRYABLE_SUB_CODES,
    STOCK_SHORT_MARKER,
    SUCCESS,
    SYSTEM_BUSY,
    TRAFFIC_LIMITED,
)

THROTTLE_WORDS: Final = ("限流", "频繁", "QPS", "qps")
_MAX_DETAIL_CHARS: Final = 160


class UnreadableAnswer(ValueError):
    """The body is not the platform's envelope."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One decoded answer; ``data`` is whatever the call returns (object, list, or None)."""

    code: int
    msg: str
    sub_code: str
    sub_msg: str
    data: Any

    @property
    def ok(self) -> bool:
        return self.code == SUCCESS

    @property
    def duplicate(self) -> bool:
        """The duplicate-id answer ("操作已执行"): a write under this id already landed."""
        return self.sub_code == DUPLICATE_IDEMPOTENT_ID_SUB_CODE

    @property
    def stock_short(self) -> bool:
        """An incremental reduction refused because it would take the count below 0."""
        return STOCK_SHORT_MARKER in self.msg or STOCK_SHORT_MARKER in self.sub_msg

    @property
    def throttled(self) -> bool:
        if self.code == TRAFFIC_LIMITED.code or self.sub_code.startswith(TRAFFIC_LIMITED.sub_code):
            return True
        if self.sub_code == SYSTEM_BUSY.sub_code:
            return True
        text = self.msg + self.sub_msg
        return any(word in text for word in THROTTLE_WORDS)

    @property
    def retryable(self) -> bool:
        """Service trouble that a later try of the same call may get past."""
        return (
            self.code in (20000, 90000)
            or self.sub_code.startswith(("isp.", "dop.service-error", "dop.unknown-error"))
            or self.sub_code in RETRYABLE_SUB_CODES
        )

    def describe(self, method: str) -> str:
        detail = (self.sub_msg or self.msg)[:_MAX_DETAIL_CHARS]
        return f"douyin {method} answered {self.code} {self.sub_code or '-'}: {detail}"


def decode_answer(body: bytes) -> Answer:
    """The envelope of ``body``; ``UnreadableAnswer`` when it is not one."""
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise UnreadableAnswer("body is not JSON") from None
    if not isinstance(envelope, dict):
        raise UnreadableAnswer(f"body is a JSON {type(envelope).__name__}, not an object")
    code = envelope.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        raise UnreadableAnswer(f"code must be an integer, got {code!r}"[:_MAX_DETAIL_CHARS])
    return Answer(
        code=code,
        msg=_text(envelope.get("msg")),
        sub_code=_text(envelope.get("sub_code")),
        sub_msg=_text(envelope.get("sub_msg")),
        data=envelope.get("data"),
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def error_for(answer: Answer, method: str, throttle_wait_s: float) -> ConnectorError | None:
    """The SDK error an answer means; None for success.

    Throttling first (a throttle is also "busy"), then service trouble, and everything
    else is permanent: a bad parameter, an unknown SKU or order, bad credentials or an
    expired token do not get better by retrying.
    """
    if answer.ok:
        return None
    message = answer.describe(method)
    if answer.throttled:
        return RateLimited(message, retry_after=throttle_wait_s)
    if answer.retryable:
        return TransientError(message)
    return Rejected(message)
