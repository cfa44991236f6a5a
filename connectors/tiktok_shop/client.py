"""Signed calls to the Partner API, and what their answers mean in the SDK's error tree.

Every call is signed afresh just before it is sent (the platform's window is five
minutes back, thirty seconds ahead). Errors leave as ``ConnectorError`` subclasses with
messages that name the path and the platform's code, never a URL with its query nor a
credential.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson
from yarl import URL

from connectors.base import ConnectorError, RateLimited, Rejected, TransientError
from connectors.http_support import SessionClient, parse_retry_after
from connectors.tiktok_shop import api
from connectors.tiktok_shop.mapping import Envelope, InvalidAnswer, decode_envelope
from connectors.tiktok_shop.signing import signed_query

_MAX_DETAIL_CHARS: Final = 200


@dataclass(frozen=True, slots=True)
class Credentials:
    """An app's key and secret and one shop's token and cipher; ``repr`` shows no secret."""

    app_key: str
    app_secret: str
    access_token: str
    shop_cipher: str

    def __repr__(self) -> str:
        return f"Credentials(app_key={self.app_key!r}, app_secret=***, access_token=***)"


class PartnerApi(SessionClient):
    """One shop's signed access to the Partner API at ``base_url``."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        timeout_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(timeout_s=timeout_s, name="TikTok Shop")
        self._base_url = URL(base_url)
        self._credentials = credentials
        self._clock = clock

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        """The answer's ``data`` when its code is 0; raises the mapped error otherwise."""
        session = self.session()
        raw = b"" if body is None else orjson.dumps(body)
        creds = self._credentials
        query = signed_query(
            app_key=creds.app_key,
            app_secret=creds.app_secret,
            path=path,
            timestamp=int(self._clock()),
            body=raw,
            shop_cipher=creds.shop_cipher,
            params=params,
        )
        url = self._base_url.joinpath(path.lstrip("/")).with_query(query)
        headers = {"content-type": "application/json", api.ACCESS_TOKEN_HEADER: creds.access_token}
        try:
            async with session.request(method, url, data=raw, headers=headers) as answer:
                status, content = answer.status, await answer.read()
                retry_after = answer.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The exception's text may quote the URL with its query: name its type only.
            raise TransientError(f"{method} {path} failed: {type(exc).__name__}") from None
        return _data(path, status, content, retry_after, self._clock())


def _data(
    path: str, status: int, content: bytes, retry_after: str | None, now_s: float
) -> Mapping[str, Any]:
    try:
        envelope = decode_envelope(content)
    except InvalidAnswer as exc:
        if status == 429:
            hint = parse_retry_after(retry_after, now_s=now_s)
            raise RateLimited(f"{path}: HTTP 429", hint) from None
        raise TransientError(f"{path}: HTTP {status} with an unreadable answer: {exc}") from None
    error = error_for(path, status, envelope, retry_after, now_s)
    if error is not None:
        raise error
    return envelope.data


def error_for(
    path: str, status: int, envelope: Envelope, retry_after: str | None, now_s: float
) -> ConnectorError | None:
    """The SDK error an answer means; None for success."""
    if envelope.code == api.SUCCESS and 200 <= status < 300:
        return None
    detail = envelope.message[:_MAX_DETAIL_CHARS]
    message = f"{path}: code {envelope.code} (HTTP {status}): {detail}"
    if envelope.request_id:
        message += f" [request_id {envelope.request_id}]"
    if envelope.code == api.TOO_MANY_REQUESTS or status == 429:
        return RateLimited(message, parse_retry_after(retry_after, now_s=now_s))
    if envelope.code in api.RETRYABLE_CODES or status >= 500:
        return TransientError(message)
    if envelope.code == api.EXPIRED_TOKEN:
        return Rejected(f"{message}; the access token expired, refresh it in the channel options")
    return Rejected(message)
