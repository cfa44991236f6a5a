"""faust's producer, made to hold an offset commit until the table writes are delivered.

faust sends every table write (the changelog record) through its own buffer and, before
committing consumer offsets, flushes that buffer. But that flush returns as soon as the
buffer's queue is empty, while its sender task may still be handing the last record to
aiokafka, and gives up after 0.1 s without a record leaving the buffer (a full aiokafka
batch, a busy event loop); the offsets are committed anyway. A worker killed then has
committed input whose table writes never reached the changelog; rebuilt from the
changelog it is behind the ledger it had, and the missing events are never read again.
This producer's flush also waits for the delivery of every record handed to it before
the flush began, and fails (so the commit does not happen) if one could not be
delivered.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.exceptions import ProducerSendError
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import ProducerT
from faust.types.tuples import FutureMessage


class DeliveringProducer(aiokafka_driver.Producer):
    """The aiokafka driver's producer with a flush that waits for delivery."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._undelivered: set[FutureMessage] = set()
        self._failure: BaseException | None = None

    def send_soon(self, fut: FutureMessage) -> None:
        self._undelivered.add(fut)
        fut.add_done_callback(self._on_done)
        super().send_soon(fut)

    def _on_done(self, fut: asyncio.Future[Any]) -> None:
        self._undelivered.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            self._failure = fut.exception()

    async def flush(self) -> None:
        # Only what was handed over before the flush: under steady load the set is never
        # empty, and the offsets being committed were acknowledged before this call.
        handed_over = tuple(self._undelivered)
        await super().flush()
        if handed_over:
            await asyncio.wait(handed_over)
        if self._failure is not None:
            raise ProducerSendError(f"a table write was not delivered: {self._failure!r}")


class DeliveringApp(faust.App):
    """A faust app whose producer is a :class:`DeliveringProducer` (Kafka brokers only)."""

    def _new_producer(self) -> ProducerT:
        return DeliveringProducer(self.transport, loop=self.loop, beacon=self.beacon)
