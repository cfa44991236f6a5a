"""The inbound side of the worker: verified webhook notifications in, order-line events out.

The ingress stores what it verified (``accept_into``); ``InboundService`` completes thin
notifications from the platform's order API and hands the order's lines to the ledger
as events. It is stateless, so it runs as a plain consumer in a group of its own, apart
from faust's: an extra faust agent, on a topic that is often idle, once let faust commit
the ledger's input ahead of its changelog under SIGKILL (see the issue 4 and 5 notes), and
the ledger's crash safety must not depend on webhook traffic. Offsets are committed only
after a batch's events were acknowledged by Kafka; a redelivered notification yields the
very same events, which the ledger answers as duplicates.

A platform that cannot answer now is asked again later, not given up on: an order left
unheard would keep its units on sale elsewhere. Only an order the platform refuses for
good, or one it could not describe for ``GIVE_UP_AFTER_S``, goes to the dead letters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import mode
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import CommitFailedError, KafkaError

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
from sync_worker.streaming.dead_letters import DeadLetter
from sync_worker.streaming.kafka_clients import group_consumer
from sync_worker.web.webhooks import Accept

log = logging.getLogger(__name__)

HYDRATION_ATTEMPTS: Final = 8
"""Tries per pass (about 15 s with back-off, longer when the platform asks to wait)."""
GIVE_UP_AFTER_S: Final = 3600.0
"""A notification whose order could not be fetched for this long is dead-lettered."""
_POLL_MS: Final = 500

Send = Callable[[bytes, bytes], Awaitable[Awaitable[Any]]]
"""``send(key, value)``: queues a message and returns its delivery, awaited before commit."""
DeadLetterSink = Callable[[DeadLetter], Awaitable[Awaitable[Any]]]


def accept_into(service: InboundService) -> Accept:
    """Stores verified notifications, keyed by order, and returns once Kafka has them all:
    the ingress acknowledges only then, and a refusal makes the platform redeliver."""

    async def accept(verified: list[tuple[str, str, Notification]]) -> None:
        sent = [
            await service.store(
                f"{platform}:{notification.order_id}".encode(),
                inbound.encode_notification(channel, platform, notification),
            )
            for channel, platform, notification in verified
        ]
        await asyncio.gather(*sent)

    return accept


class InboundService(mode.Service):
    """Consumes ``<prefix>.notifications.v1`` in the group ``group_id``; ``receivers`` maps
    a channel to its connector. ``consumer_options`` carry the brokers and credentials."""

    def __init__(
        self,
        *,
        topic: str,
        group_id: str,
        consumer_options: Mapping[str, Any],
        receivers: Mapping[str, InboundConnector],
        send_event: Send,
        dead_letter: DeadLetterSink,
        concurrency: int,
    ) -> None:
        super().__init__()
        self._topic, self._group_id = topic, group_id
        self._consumer_options = dict(consumer_options)
        self._receivers = receivers
        self._send_event = send_event
        self._dead_letter = dead_letter
        self._slots = asyncio.Semaphore(concurrency)
        self._max_records = concurrency * 4
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    async def store(self, key: bytes, value: bytes, timestamp_ms: int | None = None) -> Any:
        """Writes a notification (its own producer: faust never hears of the topic);
        returns its delivery. Raises while the service is not running."""
        if self._producer is None:
            raise KafkaError("the inbound service is not running")
        return await self._producer.send(self._topic, value, key=key, timestamp_ms=timestamp_ms)

    async def on_start(self) -> None:
        self._producer = AIOKafkaProducer(
            acks="all", enable_idempotence=True, **self._consumer_options
        )
        await self._producer.start()
        self._consumer = group_consumer(self._group_id, self._consumer_options, self._topic)
        await self._consumer.start()
        self.add_future(self._consume(self._consumer))

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while not self.should_stop:
            batches = await consumer.getmany(timeout_ms=_POLL_MS, max_records=self._max_records)
            records = [record for batch in batches.values() for record in batch]
            if not records:
                continue
            deliveries = await asyncio.gather(*(self._bounded(record) for record in records))
            await asyncio.gather(*(delivery for sent in deliveries for delivery in sent))
            try:
                await consumer.commit()
            except (CommitFailedError, KafkaError) as error:
                # A rebalance took the partitions: their notifications come again, harmlessly.
                log.warning("inbound offsets not committed, they will be redelivered: %s", error)

    async def _bounded(self, record: ConsumerRecord[bytes, bytes]) -> list[Awaitable[Any]]:
        async with self._slots:
            return await self._handle(record)

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> list[Awaitable[Any]]:
        """Every message the record leads to; the caller awaits their delivery."""
        key, value = record.key or b"", record.value or b""
        try:
            channel, platform, notification = inbound.decode_notification(value)
            receiver = self._receivers[channel]
        except inbound.InvalidNotification as invalid:
            return [await self._letter(record, "invalid_notification", str(invalid))]
        except KeyError:
            return [await self._letter(record, "unknown_channel", "no inbound connector serves it")]
        try:
            order = await _hydrated(receiver, notification)
        except (Rejected, MalformedPayload) as refused:
            return [await self._letter(record, "hydration_failed", str(refused))]
        except ConnectorError as error:
            stored_s = record.timestamp / 1000
            if time.time() - stored_s >= GIVE_UP_AFTER_S:
                return [await self._letter(record, "hydration_failed", str(error))]
            log.warning(
                "%s: order %s, asking again later: %s", channel, notification.order_id, error
            )
            # Behind what arrived since, with the time it was first stored.
            return [await self.store(key, value, record.timestamp)]
        translated = inbound.order_events(platform, channel, order)
        sent = [
            await self._send_event(event.sku.encode(), codecs.encode(event))
            for event in translated.events
        ]
        for line in translated.unknown_lines:
            sent.append(
                await self._letter(record, "unknown_sku", f"line {line.line_id}: no listing")
            )
        for rejected in translated.rejected:
            sent.append(await self._letter(record, "invalid_line", rejected.reason))
        return sent

    async def _letter(
        self, record: ConsumerRecord[bytes, bytes], reason: str, detail: str
    ) -> Awaitable[Any]:
        letter = DeadLetter.of_record(record, reason, detail)
        return await self._dead_letter(letter)


async def _hydrated(receiver: InboundConnector, notification: Notification) -> PlatformOrder:
    if notification.order is not None:
        return notification.order
    # A thin notification: the platform's order API has the lines, buyer and region.
    order: PlatformOrder = await platform_retrying(attempts=HYDRATION_ATTEMPTS)(
        receiver.hydrate, notification
    )
    return order
