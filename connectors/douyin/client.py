"""The one I/O seam of the Douyin connector: a signed POST to the open platform.

Secrets travel only in the query (access token) and into the signature (app secret); the
query is never put into an exception message, a log line or a repr, and HTTP-library
exceptions (whose text can carry the full URL) are named by class only and not chained.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import aiohttp
from yarl import URL

from connectors.base import RateLimited, Rejected, TransientError
from connectors.douyin.answers import Answer, UnreadableAnswer, decode_answer
from connectors.douyin.api import path_of
from connectors.douyin.options import DouyinOptions
from connectors.douyin.signing import canonical_param_json, signed_query

log = logging.getLogger(__name__)

_HEADERS: Final = {"Content-Type": "application/json", "Accept": "application/json"}


class ApiClient:
    """Signs and sends calls; answers the decoded envelope, whatever its code.

    Raises only for what never reaches an envelope: ``TransientError`` for timeouts,
    dropped connections, 5xx and unreadable bodies; ``RateLimited`` for HTTP 429;
    ``Rejected`` for other non-200 statuses and for calls before ``start``/after ``close``.
    """

    def __init__(self, options: DouyinOptions, clock: Callable[[], float] = time.time) -> None:
        self._base_url = URL(options.base_url)
        self._options = options
        self._timeout = aiohttp.ClientTimeout(total=options.timeout_s)
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"ApiClient({str(self._base_url)!r})"

    async def start(self) -> None:
        if self._session is None and not self._closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def close(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def call(self, method: str, params: Mapping[str, Any]) -> Answer:
        if self._session is None:
            # A contract breach by the caller, still a ConnectorError so error handling
            # upstream stays total.
            raise Rejected("douyin connector is not started or already closed")
        param_json = canonical_param_json(params)
        query = signed_query(
            app_key=self._options.app_key,
            app_secret=self._options.app_secret,
            access_token=self._options.access_token,
            method=method,
            param_json=param_json,
            timestamp=str(int(self._clock())),
            sign_method=self._options.sign_method,
        )
        url = self._base_url.joinpath(path_of(method).lstrip("/")).with_query(query)
        try:
            async with self._session.post(
                url, data=param_json.encode(), headers=_HEADERS
            ) as response:
                status, body = response.status, await response.read()
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"douyin {method} failed: {type(exc).__name__}") from None
        if status == 429:
            raise RateLimited(
                f"douyin {method} answered HTTP 429", retry_after=self._wait(retry_after)
            )
        if status >= 500:
            raise TransientError(f"douyin {method} answered HTTP {status}")
        if status != 200:
            raise Rejected(f"douyin {method} answered HTTP {status}")
        try:
            answer = decode_answer(body)
        except UnreadableAnswer as exc:
            raise TransientError(f"douyin {method} answered an unreadable body: {exc}") from None
        log.debug("douyin %s answered %d %s", method, answer.code, answer.sub_code)
        return answer

    def _wait(self, retry_after: str | None) -> float:
        """Seconds from a ``Retry-After`` of delta-seconds, else the configured default."""
        try:
            seconds = float(retry_after) if retry_after is not None else None
        except ValueError:
            seconds = None
        if seconds is None or not 0 <= seconds < 3600:
            return self._options.throttle_wait_s
        return seconds
