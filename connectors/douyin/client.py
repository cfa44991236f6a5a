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
from connectors.http_support import SessionClient, parse_retry_after

log = logging.getLogger(__name__)

_HEADERS: Final = {"Content-Type": "application/json", "Accept": "application/json"}
_MAX_RETRY_AFTER_S: Final = 3600.0
"""A longer ``Retry-After`` is taken for a glitch: the configured wait is used instead."""


class ApiClient(SessionClient):
    """Signs and sends calls; answers the decoded envelope, whatever its code.

    Raises only for what never reaches an envelope: ``TransientError`` for timeouts,
    dropped connections, 5xx and unreadable bodies; ``RateLimited`` for HTTP 429;
    ``Rejected`` for other non-200 statuses and for calls before ``start``/after ``close``.
    """

    def __init__(self, options: DouyinOptions, clock: Callable[[], float] = time.time) -> None:
        super().__init__(timeout_s=options.timeout_s, name="douyin")
        self._base_url = URL(options.base_url)
        self._options = options
        self._clock = clock

    def __repr__(self) -> str:
        return f"ApiClient({str(self._base_url)!r})"

    async def call(self, method: str, params: Mapping[str, Any]) -> Answer:
        session = self.session()
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
            async with session.post(url, data=param_json.encode(), headers=_HEADERS) as response:
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
        default = self._options.throttle_wait_s
        seconds = parse_retry_after(retry_after, default=default)
        return seconds if seconds < _MAX_RETRY_AFTER_S else default
