"""The faust app the worker runs: faust's own, with a producer and a consumer of ours.

The producer (``delivering_producer``) holds an offset commit until the table writes are
delivered. The consumer fixes where the agents resume reading after a rebalance:

- faust seeks every partition to its committed offset, but leaves a partition that has
  no commit yet wherever its fetching stopped. Records fetched and dropped during the
  rebalance (faust drops a fetch's rest when the flow stops) were then never read: a
  worker killed before its group's first commit lost its input that way (CRASH_SEED=
  3315832781 of tests/integration/test_crash.py). Such a partition now starts again
  from its beginning, as the ``earliest`` reset policy promises.
- The ledger writes, after each batch, the last input offset of each partition it
  applied into its table (``state.applied_key``, on the same changelog partition as the
  batch's positions, after them). A partition whose table holds fewer events than the
  group committed (a commit that reached the broker before the table writes did, which
  faust's commit bookkeeping allows) is sought back to the first event the table lacks;
  the ledger's replay guard answers the events the table already holds as duplicates.
  The table and its input position cannot part.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Set
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, ConsumerT, Message, ProducerT, TopicT

from sync_worker.streaming.delivering_producer import DeliveringProducer

log = logging.getLogger(__name__)

ResumePoints = Callable[[Set[TP]], Mapping[TP, int]]
"""For assigned partitions, the next offset each one's table expects, where it knows."""


class ResumingConsumer(aiokafka_driver.Consumer):
    """The aiokafka driver's consumer, sought to where each agent's input resumes.

    A seek races with the fetch loop: a batch fetched before it can still be handed to
    the streams after it, and faust then counts the sought partition as read up to that
    batch and drops the records the seek asked for. So after one of our seeks, the
    partition's records from any fetch begun before it are dropped, and the partition
    is sought to the same place again (a fetch begun after that returns what the seek
    asked for).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seek_count = 0
        self._sought: dict[TP, tuple[int, int]] = {}
        """Per partition: the count of our seeks when it was last sought, and where to."""

    async def perform_seek(self) -> None:
        await super().perform_seek()
        app = cast(WorkerApp, self.app)
        agent_topics = {
            name for agent in app.agents.values() for name in cast(TopicT, agent.channel).topics
        }
        assigned = {tp for tp in self.assignment() if tp.topic in agent_topics}
        tables_say = app.resume_points(assigned)
        for tp in assigned:
            committed = self._committed_offset.get(tp)
            offset = tables_say.get(tp, None if committed is not None else 0)
            if offset is None or (committed is not None and offset >= committed):
                continue
            if committed is not None:
                log.warning(
                    "%s: the table holds events up to offset %d, the group committed %d: "
                    "reading again from %d",
                    tp,
                    offset - 1,
                    committed,
                    offset,
                )
            # faust drops acks below its committed offset, so the group's commit does
            # not move back; it moves on once the agent has caught up.
            await self._resume(tp, offset)

    async def _resume(self, tp: TP, offset: int) -> None:
        self._seek_count += 1
        self._sought[tp] = (self._seek_count, offset)
        # In the consumer's own thread: faust's ``seek`` changes aiokafka's fetch state
        # from this one, which broke a fetch in progress (KeyError in fetched_records).
        await self._thread.seek_wait({tp: offset})

    async def getmany(
        self,
        timeout: float,  # noqa: ASYNC109 (faust's signature)
    ) -> AsyncIterator[tuple[TP, Message]]:
        began = self._seek_count
        stale: set[TP] = set()
        async for tp, message in super().getmany(timeout):
            sought = self._sought.get(tp)
            if sought is None or sought[0] <= began:
                yield tp, message
            elif tp not in stale and tp in self.assignment():
                stale.add(tp)
                await self._resume(tp, sought[1])


class WorkerApp(faust.App):
    """A faust app with a :class:`DeliveringProducer` and a :class:`ResumingConsumer`
    (Kafka brokers only). ``resume_points`` is set once the ledger table exists."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resume_points: ResumePoints = lambda assigned: {}

    def _new_producer(self) -> ProducerT:
        return DeliveringProducer(self.transport, loop=self.loop, beacon=self.beacon)

    def _new_consumer(self) -> ConsumerT:
        return ResumingConsumer(
            self.transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=self.transport.loop,
        )
