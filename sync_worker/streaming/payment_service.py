"""The payment clock at work: accepted decisions in, unpaid-timeout cancellations out.

A plain aiokafka consumer group (``<app_id>-payments``) on the decisions topic, outside
faust for the reason given in ``inbound_service``. Each worker holds the accepted lines
of the decision partitions it was assigned (``domain.payments.PaymentClock``) and sends
a line's ``order_line.cancelled`` (reason ``unpaid_timeout``) to the SKU events the
moment its platform's window lapses; the ledger releases the units unless the line was
paid.

One loop reads, fires and commits, so no commit can slip between a line counting as
fired and its cancellation being acknowledged by Kafka: the offsets committed are the
clock's ``safe_offsets`` after every cancellation sent was delivered. A crash therefore
re-reads every line not fired yet; lines that did fire may fire again, as the same
event, which the ledger ignores. The loop's poll waits no longer than the next deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Final

import mode
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from sync_worker.domain.payments import PaymentClock
from sync_worker.metrics import Metrics
from sync_worker.streaming import codecs
from sync_worker.streaming.dead_letters import DeadLetter
from sync_worker.streaming.inbound_service import DeadLetterSink, Send
from sync_worker.streaming.kafka_clients import group_consumer

log = logging.getLogger(__name__)

_POLL_MS: Final = 500
"""The longest wait for decisions when no held line lapses sooner."""
_MAX_RECORDS: Final = 500


class PaymentService(mode.Service):
    """Consumes ``topic`` (the decisions) in the group ``group_id``. ``payment_timeout_s``
    maps a platform, as order events name it, to its payment window; create the service
    only when it names one. ``send_event(key, value)`` queues a SKU event and returns its
    delivery; ``consumer_options`` carry the brokers and credentials."""

    def __init__(
        self,
        *,
        topic: str,
        group_id: str,
        consumer_options: Mapping[str, Any],
        payment_timeout_s: Mapping[str, float],
        send_event: Send,
        dead_letter: DeadLetterSink,
        metrics: Metrics,
    ) -> None:
        super().__init__()
        self._topic, self._group_id = topic, group_id
        self._consumer_options = dict(consumer_options)
        windows_ms = {platform: round(s * 1000) for platform, s in payment_timeout_s.items()}
        self._clock = PaymentClock(windows_ms)
        self._send_event = send_event
        self._dead_letter = dead_letter
        self._metrics = metrics
        self._committed: dict[int, int] = {}
        self._consumer: AIOKafkaConsumer | None = None

    async def on_start(self) -> None:
        self._consumer = group_consumer(self._group_id, self._consumer_options)
        self._consumer.subscribe([self._topic], listener=_ForgetRevoked(self))
        await self._consumer.start()
        self.add_future(self._run(self._consumer))

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    def forget(self, partitions: list[int]) -> None:
        """Partitions another member now reads: it starts from their committed offsets."""
        self._clock.forget(partitions)
        for partition in partitions:
            self._committed.pop(partition, None)

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        while not self.should_stop:
            batches = await consumer.getmany(timeout_ms=self._wait_ms(), max_records=_MAX_RECORDS)
            # A whole batch is read without awaiting: a rebalance (which makes the clock
            # forget partitions) cannot fall between its records.
            records = [record for batch in batches.values() for record in batch]
            letters = [letter for record in records if (letter := self._read(record))]
            released = self._clock.due(_now_ms())
            sent = [await self._dead_letter(letter) for letter in letters]
            for cancel in released:
                sent.append(await self._send_event(cancel.sku.encode(), codecs.encode(cancel)))
            await asyncio.gather(*sent)
            for cancel in released:
                self._metrics.unpaid_released.labels(cancel.platform).inc()
            await self._commit(consumer)

    def _wait_ms(self) -> int:
        deadline_ms = self._clock.next_deadline_ms()
        if deadline_ms is None:
            return _POLL_MS
        return max(0, min(_POLL_MS, deadline_ms - _now_ms()))

    def _read(self, record: ConsumerRecord[bytes, bytes]) -> DeadLetter | None:
        """Holds the record's line; a record that is not a decision is passed over and
        comes back as its dead letter, sent before any commit passes it."""
        try:
            decision = codecs.decode_decision(record.value)
        except (ValueError, TypeError, KeyError) as invalid:
            self._clock.skip(record.partition, record.offset)
            return DeadLetter.of_record(record, "invalid_decision", repr(invalid))
        self._clock.accept(decision, record.partition, record.offset)
        return None

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        assigned = consumer.assignment()
        moved = {
            partition: offset
            for partition, offset in self._clock.safe_offsets().items()
            if self._committed.get(partition) != offset
            and TopicPartition(self._topic, partition) in assigned
        }
        if not moved:
            return
        try:
            await consumer.commit(
                {TopicPartition(self._topic, p): offset for p, offset in moved.items()}
            )
        except KafkaError as error:
            # A rebalance took the partitions: their next reader starts from the last
            # commit and holds their lines again. Anything else: tried again next round.
            log.warning("payment clock offsets not committed: %s", error)
            return
        self._committed.update(moved)


class _ForgetRevoked(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, service: PaymentService) -> None:
        self._service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._service.forget([tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Nothing to load: the assigned partitions are read from their committed offsets."""


def _now_ms() -> int:
    return int(time.time() * 1000)
