"""The inbound side of the worker: verified webhook notifications in, order-line events out.

The ingress stores what it verified (``accept``); the agent completes thin notifications
from the platform's order API and hands the order's lines to the ledger as events. A
platform that cannot answer now is asked again later, not given up on: an order left
unheard would keep its units on sale elsewhere. Only an order the platform refuses for
good, or one it could not describe for ``GIVE_UP_AFTER_S``, goes to the dead letters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import faust

from connectors.base import (
    ConnectorError,
    InboundConnector,
    MalformedPayload,
    Notification,
    PlatformOrder,
    Rejected,
)
from sync_worker import inbound
from sync_worker.retrying import platform_retrying
from sync_worker.streaming import codecs
from sync_worker.web.webhooks import Accept

log = logging.getLogger(__name__)

HYDRATION_ATTEMPTS: Final = 8
"""Tries per pass (about 15 s with back-off, longer when the platform asks to wait)."""
GIVE_UP_AFTER_S: Final = 3600.0
"""A notification whose order could not be fetched for this long is dead-lettered."""

DeadLetterOf = Callable[[faust.EventT[bytes], str, str], Awaitable[None]]
Agent = Callable[[faust.StreamT[bytes]], Awaitable[None]]


def accept_into(notifications: Any) -> Accept:
    """Stores verified notifications, keyed by order, and returns once Kafka has them all:
    the ingress acknowledges only then, and a refusal makes the platform redeliver."""

    async def accept(verified: list[tuple[str, str, Notification]]) -> None:
        sent = [
            await notifications.send(
                key=f"{platform}:{notification.order_id}".encode(),
                value=inbound.encode_notification(channel, platform, notification),
            )
            for channel, platform, notification in verified
        ]
        await asyncio.gather(*sent)

    return accept


def inbound_agent(
    receivers: Mapping[str, InboundConnector],
    notifications: Any,
    sku_events: Any,
    dead_letter_of: DeadLetterOf,
) -> Agent:
    """The agent over ``notifications``; ``receivers`` maps a channel to its connector."""

    async def hydrated(receiver: InboundConnector, notification: Notification) -> PlatformOrder:
        if notification.order is not None:
            return notification.order
        # A thin notification: the platform's order API has the lines, buyer and region.
        retrying = platform_retrying(attempts=HYDRATION_ATTEMPTS)
        order: PlatformOrder = await retrying(receiver.hydrate, notification)
        return order

    async def agent(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                channel, platform, notification = inbound.decode_notification(event.value)
                receiver = receivers[channel]
            except inbound.InvalidNotification as invalid:
                await dead_letter_of(event, "invalid_notification", str(invalid))
                continue
            except KeyError:
                await dead_letter_of(event, "unknown_channel", "no inbound connector serves it")
                continue
            try:
                order = await hydrated(receiver, notification)
            except (Rejected, MalformedPayload) as refused:
                await dead_letter_of(event, "hydration_failed", str(refused))
                continue
            except ConnectorError as error:
                stored_s = event.message.timestamp
                if time.time() - stored_s < GIVE_UP_AFTER_S:
                    order_id = notification.order_id
                    log.warning("%s: order %s, asking again later: %s", channel, order_id, error)
                    # Behind what arrived since, with the time it was first stored.
                    await notifications.send(key=event.key, value=event.value, timestamp=stored_s)
                else:
                    await dead_letter_of(event, "hydration_failed", str(error))
                continue
            translated = inbound.order_events(platform, channel, order)
            for sku_event in translated.events:
                await sku_events.send(key=sku_event.sku.encode(), value=codecs.encode(sku_event))
            for line in translated.unknown_lines:
                await dead_letter_of(event, "unknown_sku", f"line {line.line_id}: no listing")
            for rejected in translated.rejected:
                await dead_letter_of(event, "invalid_line", rejected.reason)

    return agent
