"""The mock platform's gateway: what every API call passes before any endpoint sees it.

The checks run in a plausible order (the platform documents none): the app key, the
signature, the timestamp window, the access token, the shop cipher, the content type,
then the rate limit, a token bucket per endpoint since the platform limits per app, shop
and endpoint (its numbers are not published [U]). Each refusal carries the documented
code and message keyword (``36009004`` is overloaded, so the message says which check
failed). Only 429 is a documented HTTP status [D]; the others are the obvious ones [U].
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from connectors.mock_support import DeliveryCounts
from connectors.tiktok_shop import api
from connectors.tiktok_shop.signing import request_signature_valid


@dataclass(slots=True)
class MockStats:
    """What the mock saw; tests read these to tell what really reached the platform."""

    requests: int = 0
    writes_applied: int = 0
    """SKU-warehouse quantities an inventory update set."""
    writes_failed: int = 0
    """SKU-warehouse entries an inventory update reported in ``data.errors``."""
    writes_rejected_signature: int = 0
    """Inventory updates refused for a bad or missing signature."""
    rejected_signature: int = 0
    rejected_timestamp: int = 0
    rejected_credentials: int = 0
    throttled: int = 0
    failed: int = 0
    inventory_reads: int = 0
    order_reads: int = 0
    return_reads: int = 0
    deliveries: DeliveryCounts = field(default_factory=DeliveryCounts)


@dataclass(frozen=True, slots=True)
class Refusal:
    http_status: int
    code: int
    message: str
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class AppCredentials:
    """The app and the one shop authorised to it; ``repr`` keeps the secrets out of logs."""

    app_key: str
    app_secret: str
    access_token: str
    shop_cipher: str

    def __repr__(self) -> str:
        return f"AppCredentials(app_key={self.app_key!r}, app_secret=***, access_token=***)"


class TokenBucket:
    """``rate_per_s`` tokens a second, bursts up to one second's worth (at least one)."""

    def __init__(self, rate_per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate_per_s must be positive, got {rate_per_s}")
        self._rate = rate_per_s
        self._capacity = max(1.0, rate_per_s)
        self._tokens = self._capacity
        self._clock = clock
        self._at = clock()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until the next one."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


class Gate:
    """Checks one call; scripted throttling and failures come first, one per call."""

    def __init__(
        self,
        credentials: AppCredentials,
        stats: MockStats,
        *,
        clock: Callable[[], float],
        rate_limit_per_s: float | None = None,
    ) -> None:
        self._credentials = credentials
        self._stats = stats
        self._clock = clock
        self._rate_limit_per_s = rate_limit_per_s
        self._buckets: dict[str, TokenBucket] = {}
        self._throttle: list[tuple[float, str | None]] = []
        self._failures = 0

    def throttle_next(
        self, calls: int, retry_after_s: float = 1.0, *, endpoint: str | None = None
    ) -> None:
        """Throttle the next ``calls`` calls (of ``endpoint`` only, when given)."""
        self._throttle.extend([(retry_after_s, endpoint)] * calls)

    def fail_next(self, calls: int) -> None:
        self._failures += calls

    def check(
        self,
        *,
        method: str,
        endpoint: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        is_write: bool,
    ) -> Refusal | None:
        """``endpoint`` names the route (its path pattern): each has its own rate limit."""
        scripted = self._scripted(endpoint)
        if scripted is not None:
            return scripted
        refusal = self._authenticate(path, query, headers, body, is_write)
        if refusal is not None:
            return refusal
        if method == "POST" and not _is_json(headers.get("content-type", "")):
            return Refusal(
                400,
                api.INVALID_FORMAT,
                "Invalid request format. The request body format must be application/json.",
            )
        if self._rate_limit_per_s is not None:
            bucket = self._buckets.get(endpoint)
            if bucket is None:
                bucket = self._buckets[endpoint] = TokenBucket(self._rate_limit_per_s)
            wait_s = bucket.take()
            if wait_s > 0:
                return self._too_many(wait_s)
        return None

    def _scripted(self, endpoint: str) -> Refusal | None:
        for index, (retry_after_s, only) in enumerate(self._throttle):
            if only is None or only == endpoint:
                del self._throttle[index]
                return self._too_many(retry_after_s)
        if self._failures:
            self._failures -= 1
            self._stats.failed += 1
            return Refusal(500, api.INTERNAL_ERROR, "Internal error. Please try again.")
        return None

    def _too_many(self, wait_s: float) -> Refusal:
        self._stats.throttled += 1
        return Refusal(
            429,
            api.TOO_MANY_REQUESTS,
            "Too many requests. You've made too many requests in a short period of time.",
            retry_after_s=wait_s,
        )

    def _authenticate(
        self,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        is_write: bool,
    ) -> Refusal | None:
        creds = self._credentials
        if query.get("app_key") != creds.app_key:
            self._stats.rejected_credentials += 1
            return Refusal(
                401, api.INVALID_REQUEST, "Invalid credentials. Invalid app_key query parameter."
            )
        sign = query.get("sign")
        if not sign:
            self._signature_refused(is_write)
            return Refusal(
                401,
                api.INVALID_REQUEST,
                "Missing credentials. The request does not include a required signature.",
            )
        refusal = self._timestamp_refusal(query.get("timestamp"))
        if refusal is not None:
            self._stats.rejected_timestamp += 1
            return refusal
        if not request_signature_valid(creds.app_secret, path, query, body, sign):
            self._signature_refused(is_write)
            return Refusal(
                401, api.INVALID_SIGN, "Invalid credentials. The sign query parameter is invalid."
            )
        if headers.get(api.ACCESS_TOKEN_HEADER) != creds.access_token:
            self._stats.rejected_credentials += 1
            return Refusal(
                401,
                api.INVALID_REQUEST,
                "Invalid credentials. The x-tts-access-token header is invalid.",
            )
        cipher = query.get("shop_cipher")
        if not cipher:
            return Refusal(
                400,
                api.MISSING_SHOP_CIPHER,
                "Missing identifier. The shop_cipher query parameter is required.",
            )
        if cipher != creds.shop_cipher:
            return Refusal(
                403,
                api.INVALID_IDENTIFIER,
                "Invalid query or header. The token's shop does not match shop_cipher.",
            )
        return None

    def _signature_refused(self, is_write: bool) -> None:
        self._stats.rejected_signature += 1
        if is_write:
            self._stats.writes_rejected_signature += 1

    def _timestamp_refusal(self, value: str | None) -> Refusal | None:
        try:
            timestamp = int(value or "")
        except ValueError:
            return Refusal(401, api.INVALID_REQUEST, "Invalid timestamp. It must be an integer.")
        now = self._clock()
        if timestamp < 0:
            problem = "must not be lesser than 0"
        elif timestamp < math.floor(now) - api.TIMESTAMP_PAST_WINDOW_S:
            problem = "must not be earlier than 5 minutes before the current time"
        elif timestamp > now + api.TIMESTAMP_FUTURE_WINDOW_S:
            problem = "must not exceed the current time by more than 30 seconds"
        else:
            return None
        return Refusal(
            401,
            api.INVALID_REQUEST,
            f"Invalid timestamp. The value of the timestamp query parameter {problem}.",
        )


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"
