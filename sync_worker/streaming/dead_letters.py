"""Dead letters: an input we cannot handle is kept, with its reason, never swallowed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from aiokafka import ConsumerRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """Wire form of the ``dead_letter.v1`` schema."""

    type: Literal["dead_letter"] = "dead_letter"
    schema_version: Literal[1] = 1
    source_topic: str
    partition: int
    offset: int
    key: str | None
    value: str
    reason: str
    detail: str
    dead_at_ms: int

    @classmethod
    def of(
        cls,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        reason: str,
        detail: str,
    ) -> DeadLetter:
        return cls(
            source_topic=topic,
            partition=partition,
            offset=offset,
            key=None if key is None else key.decode("utf-8", "replace"),
            value=(value or b"").decode("utf-8", "replace"),
            reason=reason,
            detail=detail,
            dead_at_ms=int(time.time() * 1000),
        )

    @classmethod
    def of_record(
        cls, record: ConsumerRecord[bytes, bytes], reason: str, detail: str
    ) -> DeadLetter:
        """A message a plain aiokafka consumer could not handle."""
        return cls.of(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            reason=reason,
            detail=detail,
        )
