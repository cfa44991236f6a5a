"""The Admin API transport: one GraphQL call or one REST read, every failure mapped onto
the SDK's error tree.

Shopify throttles GraphQL with an HTTP 200 whose ``errors`` say ``THROTTLED`` and whose
``extensions.cost`` tells how long the bucket needs to refill; REST throttles with a 429
and ``Retry-After``. Both become ``RateLimited`` carrying the platform's own wait. The
access token travels in a header only, so no URL, message or repr here can leak it.
"""

from __future__ import annotations

import logging
from typing import Any, Final, NamedTuple

import aiohttp
import orjson
from yarl import URL

from connectors.base import ConnectorError, RateLimited, Rejected, TransientError
from connectors.http_support import DEFAULT_RETRY_AFTER_S, SessionClient, parse_retry_after
from connectors.shopify import api
from connectors.shopify.signing import request_headers
from connectors.shopify.wire import GraphQLAnswer, InvalidAnswer, decode_answer

_MAX_DETAIL_CHARS: Final = 200
_RETRYABLE_CODES: Final = frozenset({api.INTERNAL_SERVER_ERROR})

log = logging.getLogger(__name__)


class _Answer(NamedTuple):
    status: int
    body: bytes
    retry_after: str | None


class AdminClient(SessionClient):
    """Calls one shop's Admin API at ``base_url`` (``https://<shop>.myshopify.com``)."""

    def __init__(
        self, base_url: str, access_token: str, *, api_version: str, timeout_s: float
    ) -> None:
        super().__init__(timeout_s=timeout_s, name="shopify")
        self._base_url = URL(base_url)
        self._headers = request_headers(access_token)
        self._api_version = api_version

    def __repr__(self) -> str:
        return f"AdminClient({str(self._base_url)!r}, api_version={self._api_version!r})"

    async def graphql(self, body: bytes) -> dict[str, Any]:
        """POST a query; its ``data`` when it ran, else the mapped ``ConnectorError``."""
        answer = await self._send("POST", api.graphql_path(self._api_version), body)
        _raise_for_status(answer)
        try:
            decoded = decode_answer(answer.body)
        except InvalidAnswer as exc:
            raise TransientError(f"shopify answered an unreadable body: {exc}") from exc
        error = error_for_graphql(decoded)
        if error is not None:
            raise error
        if decoded.data is None:  # unreachable: decode_answer demands data or errors
            raise TransientError("shopify answered no data")
        return decoded.data

    async def get_order(self, order_id: str) -> dict[str, Any]:
        """The REST order resource (the webhooks' shape) of ``order_id``."""
        answer = await self._send("GET", api.order_path(self._api_version, order_id))
        _raise_for_status(answer)
        try:
            document = orjson.loads(answer.body)
        except orjson.JSONDecodeError as exc:
            raise TransientError(f"shopify answered an unreadable order: {exc}") from exc
        order = document.get("order") if isinstance(document, dict) else None
        if not isinstance(order, dict):
            raise TransientError("shopify answered an order document without 'order'")
        return order

    async def _send(self, method: str, path: str, body: bytes | None = None) -> _Answer:
        session = self.session()
        url = self._base_url.joinpath(path.lstrip("/"), encoded=True)
        try:
            async with session.request(method, url, data=body, headers=self._headers) as response:
                return _Answer(
                    response.status, await response.read(), response.headers.get("Retry-After")
                )
        except aiohttp.InvalidURL as exc:
            raise Rejected(f"invalid shopify URL {url.with_query(None)}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(
                f"{method} {url.with_query(None)} failed: {type(exc).__name__}"
            ) from exc


def error_for_graphql(answer: GraphQLAnswer) -> ConnectorError | None:
    """The error of a GraphQL answer that ran into top-level ``errors``; None when clean."""
    if not answer.errors:
        return None
    codes = {error.code for error in answer.errors}
    detail = "; ".join(error.message for error in answer.errors)[:_MAX_DETAIL_CHARS]
    if api.THROTTLED in codes:
        wait = answer.cost.wait_s() if answer.cost is not None else DEFAULT_RETRY_AFTER_S
        return RateLimited(f"shopify throttled the call: {detail}", retry_after=wait)
    if codes & _RETRYABLE_CODES:
        return TransientError(f"shopify failed the call: {detail}")
    return Rejected(f"shopify refused the call ({', '.join(sorted(map(str, codes)))}): {detail}")


def _raise_for_status(answer: _Answer) -> None:
    error = error_for_status(answer.status, _detail(answer.body), answer.retry_after)
    if error is not None:
        raise error


def error_for_status(status: int, detail: str, retry_after: str | None) -> ConnectorError | None:
    """Map an HTTP status onto the error tree; None for success."""
    if 200 <= status < 300:
        return None
    message = f"shopify answered {status}: {detail}"
    if status == 429:
        return RateLimited(message, retry_after=parse_retry_after(retry_after))
    if status >= 500:
        return TransientError(message)
    return Rejected(message)


def _detail(body: bytes) -> str:
    """The error text of an answer, short: Shopify's ``errors`` when it is JSON."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace")[:_MAX_DETAIL_CHARS]
    errors = document.get("errors") if isinstance(document, dict) else None
    text = str(errors) if errors is not None else body.decode(errors="replace")
    return text[:_MAX_DETAIL_CHARS]
