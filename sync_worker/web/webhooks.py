"""``POST /webhooks/{platform}``: platforms' order notifications in, verified, stored, acked.

Only a delivery that one of the platform's connectors verified over the raw bytes is
decoded, and a notification is routed only to a channel whose own connector verified
the delivery and names its shop: nothing unverified reaches ``accept``. The platform
hears "received" only once ``accept`` has stored the notifications durably; anything
short of that is a 503, and the platform redelivers later (delivery is at least once;
the ledger's deterministic event ids make a redelivery harmless).

A notification for a shop no channel serves is acknowledged all the same, counted as
``unknown_shop`` and logged: redelivering it cannot help until the configuration
changes, and a platform that sees failures keeps retrying and may drop the whole
subscription (Shopify does after 8 failed deliveries), cutting off the shops we do serve.

Each delivery counts once in ``metrics.webhooks`` under its outcome; a delivery with both
served and unknown shops counts as ``accepted`` and logs the unknown ones. Log lines name
the platform, shop and notification ids only: never headers, query strings or bodies,
which carry signatures and, on some platforms, access tokens.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

import orjson
from aiohttp import web

from connectors.base import (
    InboundConnector,
    InboundRequest,
    InboundResponse,
    MalformedPayload,
    Notification,
    ReplayRejected,
    VerificationFailed,
)
from sync_worker.metrics import Metrics

log = logging.getLogger(__name__)

Accept = Callable[[list[tuple[str, str, Notification]]], Awaitable[None]]
"""Stores ``(channel, platform, notification)`` triples durably; returns once they are."""

WEBHOOK_ROUTE: Final = "/webhooks/{platform}"
MAX_BODY_BYTES: Final = 1024 * 1024
ACCEPT_TIMEOUT_S: Final = 2.5
"""Well under the shortest platform deadline (Kuaishou 3 s, Shopify 5 s), so a slow
store is answered 503 before the platform gives up on its own and counts a failure."""


class _Verifications:
    """One delivery's verification by each connector, each run at most once."""

    def __init__(self, request: InboundRequest, now_s: float) -> None:
        self._request = request
        self._now_s = now_s
        self._failures: dict[int, VerificationFailed | None] = {}

    def failure(self, connector: InboundConnector) -> VerificationFailed | None:
        """None when ``connector`` verifies the delivery, else why it does not."""
        key = id(connector)
        if key not in self._failures:
            try:
                connector.verify(self._request, self._now_s)
                self._failures[key] = None
            except VerificationFailed as error:
                self._failures[key] = error
        return self._failures[key]


def webhook_routes(
    inbound: Mapping[str, Sequence[tuple[str, InboundConnector]]],
    accept: Accept,
    metrics: Metrics,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    accept_timeout_s: float = ACCEPT_TIMEOUT_S,
    clock: Callable[[], float] = time.time,
) -> list[web.RouteDef]:
    """The ingress route. ``inbound[platform]`` lists ``(channel, connector)`` of each
    channel on that platform, in preference order when two serve one shop. ``clock`` is
    wall-clock seconds: connectors hold platform timestamps against it."""

    async def receive(request: web.Request) -> web.StreamResponse:
        platform = request.match_info["platform"]
        channels = inbound.get(platform)
        if not channels:  # not counted: the label would be whatever a caller typed
            return _refusal(404, "unknown_platform")

        def outcome(name: str) -> None:
            metrics.webhooks.labels(platform=platform, outcome=name).inc()

        body = await _read_body(request, max_body_bytes)
        if body is None:
            outcome("too_large")
            response = _refusal(413, "too_large")
            response.force_close()  # do not keep reading the rest on this connection
            return response
        delivery = InboundRequest(
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
            query=dict(request.query),
            received_at_s=clock(),
        )
        verifications = _Verifications(delivery, delivery.received_at_s)
        verified, failures = _first_verifying(channels, verifications)
        if verified is None:
            name = "replayed" if any(isinstance(f, ReplayRejected) for f in failures) else "forged"
            log.warning("webhook for %s from %s refused: %s", platform, request.remote, name)
            outcome(name)
            return _refusal(401, name)
        try:
            notifications = verified.decode(delivery)
        except MalformedPayload as error:
            log.warning("webhook from %s is malformed: %s", platform, error)
            outcome("malformed")
            return _refusal(400, "malformed")

        routed = _route(platform, notifications, channels, verifications)
        if notifications and not routed:
            outcome("unknown_shop")
            return _response(verified.acknowledge(True))
        if routed:
            try:
                async with asyncio.timeout(accept_timeout_s):
                    await accept(routed)
            except Exception as error:  # TimeoutError included: the platform retries
                log.warning(
                    "could not store %d notification(s) from %s (%s); asking for redelivery",
                    len(routed),
                    platform,
                    type(error).__name__,
                )
                outcome("unavailable")
                return _response(verified.acknowledge(False), status=503)
        outcome("accepted")
        return _response(verified.acknowledge(True))

    return [web.post(WEBHOOK_ROUTE, receive)]


def _first_verifying(
    channels: Sequence[tuple[str, InboundConnector]], verifications: _Verifications
) -> tuple[InboundConnector | None, list[VerificationFailed]]:
    """The first connector that verifies the delivery, and why those before it did not."""
    failures: list[VerificationFailed] = []
    for _, connector in channels:
        failure = verifications.failure(connector)
        if failure is None:
            return connector, failures
        failures.append(failure)
    return None, failures


def _route(
    platform: str,
    notifications: list[Notification],
    channels: Sequence[tuple[str, InboundConnector]],
    verifications: _Verifications,
) -> list[tuple[str, str, Notification]]:
    """``(channel, platform, notification)`` of every notification a channel serves; the
    others are logged (ids only) and left out."""
    routed: list[tuple[str, str, Notification]] = []
    for notification in notifications:
        channel = _channel_of(notification, channels, verifications)
        if channel is None:
            log.warning(
                "webhook from %s for shop %r, which no channel serves; notification %r "
                "acknowledged and dropped",
                platform,
                notification.shop_id,
                notification.notification_id,
            )
        else:
            routed.append((channel, platform, notification))
    return routed


def _channel_of(
    notification: Notification,
    channels: Sequence[tuple[str, InboundConnector]],
    verifications: _Verifications,
) -> str | None:
    """The first channel serving the notification's shop whose connector verified the
    delivery: a secret of one shop's app must not vouch for another shop."""
    for channel, connector in channels:
        if connector.shop_id == notification.shop_id and verifications.failure(connector) is None:
            return channel
    return None


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it proves longer than ``limit``: never buffers more
    than ``limit`` + 1 bytes, whatever Content-Length claims or chunking hides."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    while chunk := await request.content.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _refusal(status: int, reason: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps({"error": reason}), content_type="application/json"
    )


def _response(answer: InboundResponse, *, status: int | None = None) -> web.Response:
    # Set as a header: aiohttp refuses a charset inside ``content_type=``.
    return web.Response(
        status=answer.status if status is None else status,
        body=answer.body,
        headers={"Content-Type": answer.content_type},
    )
