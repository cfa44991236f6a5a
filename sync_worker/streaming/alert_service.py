"""The alert notifier at work: ``alert.raised`` in, webhook notifications out.

A plain aiokafka consumer group (``<app_id>-alerts``) on the alerts topic, outside faust
for the reason given in ``inbound_service``. Alerts are handled one at a time in
partition order, each sent to all its targets at once (``notify.Notifier``); an alert's
offset is committed once every target took it or was given up on, so a crash sends
again at most the alert in flight. A target given up on becomes a dead letter with
reason ``alert_undelivered`` naming the target, never its URL; a message that is not an
alert, one with reason ``invalid_alert``.

The same alert can arrive twice (a rebalance re-reads what was not committed yet; the
ledger re-sends after a replayed step), always with the same ``alert_id``: the ids of the
last ``REMEMBERED_ALERTS`` alerts handled are kept, so a run sends each one once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import fastjsonschema
import mode
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from sync_worker.domain.events import SCHEMA_VERSION, AlertLevel, AlertRaised, type_name
from sync_worker.notify import Notifier
from sync_worker.streaming import codecs
from sync_worker.streaming.dead_letters import DeadLetter
from sync_worker.streaming.inbound_service import DeadLetterSink
from sync_worker.streaming.kafka_clients import group_consumer

log = logging.getLogger(__name__)

ALERT_UNDELIVERED: Final = "alert_undelivered"
INVALID_ALERT: Final = "invalid_alert"
REMEMBERED_ALERTS: Final = 10_000
"""Alert ids kept for de-duplication (about a megabyte): far more than a live day fires."""
_POLL_MS: Final = 500
_MAX_RECORDS: Final = 100


class AlertDecoder:
    """Validates messages of the alerts topic against ``alert.raised.v1``; built once
    (compiling the schema is not free)."""

    def __init__(self) -> None:
        name = f"{type_name(AlertRaised)}.v{SCHEMA_VERSION}"
        self._validate: Callable[[Any], Any] = fastjsonschema.compile(codecs.load_schema(name))

    def decode(self, value: bytes | None) -> AlertRaised:
        """The alert; raises ``codecs.InvalidEvent`` on anything else."""
        try:
            payload = orjson.loads(value or b"")
        except orjson.JSONDecodeError as error:
            raise codecs.InvalidEvent(INVALID_ALERT, f"not JSON: {error}") from None
        try:
            self._validate(payload)
        except fastjsonschema.JsonSchemaValueException as error:
            raise codecs.InvalidEvent(INVALID_ALERT, error.message) from None
        return AlertRaised(
            **{
                **payload,
                "level": AlertLevel(payload["level"]),
                "audience": tuple(payload["audience"]),
                "channels": tuple(payload["channels"]),
            }
        )


class RecentIds:
    """The last ``capacity`` ids added, the oldest forgotten first: memory stays bounded
    however long the worker runs."""

    def __init__(self, capacity: int) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._ids

    def add(self, alert_id: str) -> None:
        self._ids[alert_id] = None
        self._ids.move_to_end(alert_id)
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)


class AlertService(mode.Service):
    """Consumes ``topic`` (the alerts) in the group ``group_id`` and sends each alert
    through ``notifier``, whose session it opens on start and closes on stop.
    ``consumer_options`` carry the brokers and credentials; ``dead_letter(letter)``
    queues a dead letter and returns its delivery, awaited before the offset moves on."""

    def __init__(
        self,
        *,
        topic: str,
        group_id: str,
        consumer_options: Mapping[str, Any],
        notifier: Notifier,
        dead_letter: DeadLetterSink,
    ) -> None:
        super().__init__()
        self._topic, self._group_id = topic, group_id
        self._consumer_options = dict(consumer_options)
        self._notifier = notifier
        self._dead_letter = dead_letter
        self._decoder = AlertDecoder()
        self._handled = RecentIds(REMEMBERED_ALERTS)
        self._consumer: AIOKafkaConsumer | None = None
        self._consuming: asyncio.Future[None] | None = None

    async def on_start(self) -> None:
        await self._notifier.start()
        self._consumer = group_consumer(self._group_id, self._consumer_options, self._topic)
        await self._consumer.start()
        self._consuming = self.add_future(self._consume(self._consumer))

    async def on_stop(self) -> None:
        # mode cancels futures only after on_stop: an alert in flight must end (and stay
        # uncommitted, to be sent on the next start) before the session closes under it.
        if self._consuming is not None:
            self._consuming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consuming
        if self._consumer is not None:
            await self._consumer.stop()
        await self._notifier.close()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while not self.should_stop:
            batches = await consumer.getmany(timeout_ms=_POLL_MS, max_records=_MAX_RECORDS)
            for partition, records in batches.items():
                for record in records:
                    if partition not in consumer.assignment():
                        break  # a rebalance gave it to another member, which reads it on
                    await self._handle(record)
                    await self._commit(consumer, partition, record.offset + 1)

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            alert = self._decoder.decode(record.value)
        except codecs.InvalidEvent as invalid:
            await (await self._letter(record, INVALID_ALERT, invalid.detail))
            return
        if alert.alert_id in self._handled:
            return
        undelivered = await self._notifier.deliver(alert)
        letters = [
            await self._letter(record, ALERT_UNDELIVERED, f"target {end.target}: {end.error}")
            for end in undelivered
        ]
        await asyncio.gather(*letters)
        self._handled.add(alert.alert_id)

    async def _commit(
        self, consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int
    ) -> None:
        try:
            await consumer.commit({partition: offset})
        except KafkaError as error:
            # A rebalance took the partition: its next reader sends the alert again.
            log.warning("alert offset not committed, it will be redelivered: %s", error)

    async def _letter(
        self, record: ConsumerRecord[bytes, bytes], reason: str, detail: str
    ) -> Awaitable[Any]:
        letter = DeadLetter.of_record(record, reason, detail)
        return await self._dead_letter(letter)
