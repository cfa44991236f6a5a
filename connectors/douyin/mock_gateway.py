"""The mock platform's gateway: every check a call passes before its handler runs.

In order, as the platform documents them: scripted faults; the common query parameters
(``app_key``, ``method``, ``access_token``, ``timestamp``, ``v=2``, ``sign_method``,
``sign``); the timestamp within ±600 s; ``param_json`` canonical (keys sorted at every
level, compact) and signed; the access token; then the rate limit. Every refusal is an
in-band answer on HTTP 200 with the documented code, except injected server failures.
"""

from __future__ import annotations

import hmac
import itertools
import json
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Final, Literal

from connectors.douyin import api
from connectors.douyin.api import ApiError
from connectors.douyin.signing import canonical_param_json, request_signature_valid
from connectors.mock_support import DeliveryCounts

CHINA_STANDARD_TIME: Final = timezone(timedelta(hours=8))
Fault = Literal["throttle", "fail", "fail_in_band"]


@dataclass
class MockStats:
    """What the mock saw; tests read these counters."""

    calls: Counter[str] = field(default_factory=Counter)
    writes_applied: int = 0
    writes_duplicate: int = 0
    writes_refused_short: int = 0
    rejected_signature: int = 0
    writes_rejected_signature: int = 0
    rejected_timestamp: int = 0
    rejected_credentials: int = 0
    rejected_parameters: int = 0
    throttled: int = 0
    failed: int = 0
    deliveries: DeliveryCounts = field(default_factory=DeliveryCounts)


@dataclass(frozen=True)
class Identity:
    app_key: str
    app_secret: str
    access_token: str


class TokenBucket:
    """``rate`` calls a second, bursts of up to ``max(1, rate)``."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self._rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._clock = clock
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class Gateway:
    """Checks one call; answers the refusal, or the parsed ``param_json`` to handle."""

    def __init__(
        self,
        identity: Identity,
        stats: MockStats,
        *,
        throttle_error: ApiError,
        rate_limit_per_s: float | None,
        clock: Callable[[], float],
    ) -> None:
        self._identity = identity
        self._stats = stats
        self._throttle_error = throttle_error
        self._bucket = None if rate_limit_per_s is None else TokenBucket(rate_limit_per_s)
        self._clock = clock
        self._faults: deque[Fault] = deque()
        self._log_ids = itertools.count(1)

    def inject(self, fault: Fault, times: int) -> None:
        self._faults.extend([fault] * times)

    def log_id(self) -> str:
        stamp = datetime.fromtimestamp(self._clock(), CHINA_STANDARD_TIME)
        return f"{stamp:%Y%m%d%H%M%S}{next(self._log_ids):012d}"

    def take_fault(self) -> Fault | None:
        return self._faults.popleft() if self._faults else None

    def throttle(self) -> ApiError:
        self._stats.throttled += 1
        return self._throttle_error

    def check(
        self, method: str, query: Mapping[str, str], body: bytes
    ) -> ApiError | dict[str, Any]:
        error = self._check_query(method, query)
        if error is not None:
            return error
        try:
            text = body.decode()
            params = json.loads(text) if text else None
        except (UnicodeDecodeError, ValueError):
            params = None
        if not isinstance(params, dict):
            self._stats.rejected_parameters += 1
            return ApiError(
                40003, "非法的参数", "isv.parameter-format-invalid", "业务参数json解析失败"
            )
        # The platform signs its own canonical form of the parameters: a body in any other
        # form (unsorted keys, spaces, escaped HTML) was signed over text it never sees.
        signed = request_signature_valid(
            self._identity.app_key,
            self._identity.app_secret,
            method,
            text,
            query["timestamp"],
            query.get("sign_method", api.SIGN_METHOD_MD5),
            query["sign"],
        )
        if not signed or text != canonical_param_json(params):
            return self._bad_signature(method, api.SIGNATURE_INVALID)
        if not hmac.compare_digest(
            query["access_token"].encode(), self._identity.access_token.encode()
        ):
            self._stats.rejected_credentials += 1
            return api.ACCESS_TOKEN_UNKNOWN
        if self._bucket is not None and not self._bucket.take():
            return self.throttle()
        return params

    def _bad_signature(self, method: str, error: ApiError) -> ApiError:
        self._stats.rejected_signature += 1
        if method == api.SYNC_STOCK:
            self._stats.writes_rejected_signature += 1
        return error

    def _check_query(self, method: str, query: Mapping[str, str]) -> ApiError | None:
        if not query.get("sign"):
            return self._bad_signature(method, api.SIGNATURE_MISSING)
        if not query.get("app_key"):
            self._stats.rejected_credentials += 1
            return api.APP_KEY_MISSING
        if not query.get("access_token"):
            self._stats.rejected_credentials += 1
            return api.ACCESS_TOKEN_MISSING
        if not all(query.get(name) for name in ("method", "timestamp", "v")):
            self._stats.rejected_parameters += 1
            return api.PARAMETER_MISSING
        if query["app_key"] != self._identity.app_key:
            self._stats.rejected_credentials += 1
            return api.APP_KEY_MISSING  # the platform says the app_key does not exist
        if (
            query["method"] != method
            or query["v"] != api.API_VERSION
            or query.get("sign_method", api.SIGN_METHOD_MD5) not in api.SIGN_METHODS
        ):
            self._stats.rejected_parameters += 1
            return api.PARAMETER_INVALID
        sent_at = parse_timestamp(query["timestamp"])
        if sent_at is None:
            self._stats.rejected_timestamp += 1
            return api.TIMESTAMP_FORMAT_ERROR
        if abs(sent_at - self._clock()) > api.REQUEST_WINDOW_S:
            self._stats.rejected_timestamp += 1
            return api.TIMESTAMP_INVALID
        return None


def parse_timestamp(text: str) -> float | None:
    """Unix seconds (what the official SDK sends) or ``yyyy-MM-dd HH:mm:ss`` in GMT+8
    (what the guide shows) [D]/[S]."""
    if text.isdigit():
        return float(text)
    try:
        when = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return when.replace(tzinfo=CHINA_STANDARD_TIME).timestamp()
