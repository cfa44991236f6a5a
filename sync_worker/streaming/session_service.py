"""Live sessions in Kafka: a compacted topic, read whole by every worker into a table.

Sessions are few and change only by operator command, so each worker keeps all of them
in memory, read in topic order from one partition; every worker therefore sees the
same history. A command is applied to the current state (``domain.live_session``), the
new state is written, and only once this worker has read its own record back as the
accepted next version are the command's SKU events sent: two operators racing on one
session cannot both win, and the loser gets ``SessionConflict`` before any stock moves.
The SKU events carry deterministic ids, so a command repeated after a crash is a
duplicate to the ledger.

Plain aiokafka, outside faust, for the reason given in ``inbound_service``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

import mode
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from sync_worker.domain.events import Tier
from sync_worker.domain.live_session import (
    LineupItem,
    LiveSession,
    Move,
    Outcome,
    SessionConflict,
    SessionState,
    StoreUnavailable,
)
from sync_worker.streaming import codecs

log = logging.getLogger(__name__)

_POLL_MS: Final = 200

Command = Callable[[LiveSession | None], Outcome]
"""Applies an operator's command to the session as stored (None: no such session)."""


def encode_session(session: LiveSession) -> bytes:
    return orjson.dumps(session)


def decode_session(raw: bytes) -> LiveSession:
    fields = orjson.loads(raw)
    return LiveSession(
        session_id=fields["session_id"],
        title=fields["title"],
        channels=tuple(fields["channels"]),
        lineup=tuple(_item(item) for item in fields["lineup"]),
        starts_at_ms=fields["starts_at_ms"],
        ends_at_ms=fields["ends_at_ms"],
        state=SessionState(fields["state"]),
        pinned=fields["pinned"],
        skipped=tuple(fields["skipped"]),
        moves=tuple(Move(**move) for move in fields["moves"]),
        version=fields["version"],
    )


def _item(fields: dict[str, Any]) -> LineupItem:
    return LineupItem(
        **{
            **fields,
            "tier": Tier(fields["tier"]),
            "regions_allow": tuple(fields["regions_allow"]),
            "regions_deny": tuple(fields["regions_deny"]),
        }
    )


class SessionStore(mode.Service):
    """Every session of the deployment, kept current from ``topic``."""

    def __init__(
        self,
        *,
        topic: str,
        sku_events: str,
        client_options: Mapping[str, Any],
        on_change: Callable[[LiveSession], None] = lambda session: None,
    ) -> None:
        super().__init__()
        self._topic, self._sku_events = topic, sku_events
        self._options = dict(client_options)
        self._on_change = on_change
        self._sessions: dict[str, LiveSession] = {}
        self._read_to = 0
        """The next offset to read: every record below it is applied."""
        self._progress = asyncio.Condition()
        self._commands = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    def get(self, session_id: str) -> LiveSession | None:
        return self._sessions.get(session_id)

    def all(self) -> list[LiveSession]:
        return sorted(self._sessions.values(), key=lambda s: (s.starts_at_ms, s.session_id))

    async def on_start(self) -> None:
        self._producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **self._options)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(enable_auto_commit=False, **self._options)
        await self._consumer.start()
        partition = TopicPartition(self._topic, 0)
        self._consumer.assign([partition])
        await self._consumer.seek_to_beginning(partition)
        end = (await self._consumer.end_offsets([partition]))[partition]
        while self._read_to < end:  # ready only once every session is known
            await self._read(self._consumer)
        self.add_future(self._tail(self._consumer))

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def run(self, session_id: str, command: Command) -> Outcome:
        """Apply ``command``; returns once the new state and its SKU events are in Kafka.
        Raises ``SessionError`` (``SessionConflict`` when another command won the race)
        or ``StoreUnavailable``."""
        try:
            return await self._run(session_id, command)
        except KafkaError as error:
            raise StoreUnavailable(str(error)) from error

    async def _run(self, session_id: str, command: Command) -> Outcome:
        producer = self._producer
        if producer is None:
            raise KafkaError("the session store is not running")
        async with self._commands:
            current = self._sessions.get(session_id)
            outcome = command(current)
            if outcome.session != current:
                key = session_id.encode()
                written = await producer.send_and_wait(
                    self._topic, encode_session(outcome.session), key=key
                )
                await self._read_past(written.offset)
                stored = self._sessions.get(session_id)
                if stored != outcome.session:
                    if stored is not None:  # keep the winner as the key's latest record
                        await producer.send_and_wait(self._topic, encode_session(stored), key=key)
                    raise SessionConflict(
                        f"session {session_id!r} was changed by another command; try again"
                    )
            sent = [
                await producer.send(self._sku_events, codecs.encode(event), key=event.sku.encode())
                for event in outcome.events
            ]
            await asyncio.gather(*sent)
            return outcome

    async def _read_past(self, offset: int) -> None:
        async with self._progress:
            await self._progress.wait_for(lambda: self._read_to > offset)

    async def _tail(self, consumer: AIOKafkaConsumer) -> None:
        while not self.should_stop:
            await self._read(consumer)

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        batches = await consumer.getmany(timeout_ms=_POLL_MS)
        for records in batches.values():
            for record in records:
                self._apply(record.key, record.value)
                self._read_to = record.offset + 1
        if batches:
            async with self._progress:
                self._progress.notify_all()

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or value is None:
            return
        try:
            session = decode_session(value)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            log.error("sessions topic: unreadable record for %r skipped: %s", key, error)
            return
        current = self._sessions.get(session.session_id)
        # The first next version in the log wins; after compaction a session's first
        # record may be any version.
        if current is None or session.version == current.version + 1:
            self._sessions[session.session_id] = session
            self._on_change(session)
