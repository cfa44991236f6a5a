"""A plain Kafka producer for topics faust must never hear of (alerts).

A topic declared to faust but consumed by none of its agents once let faust commit the
ledger's input ahead of its changelog under SIGKILL (issue 4 and 5 notes), so output
that only other consumer groups read goes through this producer instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mode
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError


class SideProducer(mode.Service):
    def __init__(self, client_options: Mapping[str, Any]) -> None:
        super().__init__()
        self._options = dict(client_options)
        self._producer: AIOKafkaProducer | None = None

    async def on_start(self) -> None:
        self._producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **self._options)
        await self._producer.start()

    async def on_stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def send_and_wait(self, topic: str, key: bytes, value: bytes) -> None:
        """Returns once the broker has the message; raises while not running."""
        if self._producer is None:
            raise KafkaError("the side producer is not running")
        await self._producer.send_and_wait(topic, value, key=key)
