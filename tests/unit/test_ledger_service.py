"""Which fetched records the ledger takes, over a stand-in consumer: only those that
continue a partition exactly where its state ends (the broker-backed behaviour is in
tests/integration/test_ledger_service.py and test_crash.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from sync_worker.streaming.ledger_service import LedgerService, WriteThrough
from sync_worker.streaming.ledger_store import PartitionStores

TOPIC = "sku-events"
TP = TopicPartition(TOPIC, 1)


@dataclass
class StandInConsumer:
    log_start: int = 0
    sought: list[tuple[TopicPartition, int]] = field(default_factory=list)

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, self.log_start)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought.append((tp, offset))


async def no_step(table: WriteThrough, records: Sequence[Any]) -> list[Awaitable[Any]]:
    return []


def ledger(tmp_path: Path, next_offset: int | None) -> LedgerService:
    service = LedgerService(
        topic=TOPIC,
        changelog="ledger-state",
        group_id="g",
        client_options={},
        stores=PartitionStores(tmp_path),
        step=no_step,
        batch_max=100,
        batch_wait_ms=1,
        session_timeout_s=10,
    )
    if next_offset is not None:
        service._next[TP.partition] = next_offset  # as a rebuild from the marker leaves it
    return service


def records(*offsets: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(TOPIC, TP.partition, o, 0, 0, b"k", b"v", None, 1, 1, []) for o in offsets
    ]


async def taken(service: LedgerService, consumer: StandInConsumer, *offsets: int) -> list[int]:
    chosen = await service._continuing(cast(Any, consumer), TP, records(*offsets))
    return [record.offset for record in chosen]


async def test_records_continuing_from_the_next_offset_are_taken(tmp_path: Path) -> None:
    consumer = StandInConsumer()

    assert await taken(ledger(tmp_path, 5), consumer, 5, 6, 7) == [5, 6, 7]
    assert consumer.sought == []


async def test_records_already_applied_are_dropped(tmp_path: Path) -> None:
    """A fetch begun before the partition was sought to its marker."""
    assert await taken(ledger(tmp_path, 5), StandInConsumer(), 2, 3, 4, 5, 6) == [5, 6]
    assert await taken(ledger(tmp_path, 9), StandInConsumer(), 2, 3, 4) == []


async def test_a_fetch_past_the_next_offset_is_dropped_and_the_partition_sought_back(
    tmp_path: Path,
) -> None:
    consumer = StandInConsumer()

    assert await taken(ledger(tmp_path, 5), consumer, 8, 9) == []
    assert consumer.sought == [(TP, 5)]


async def test_offsets_deleted_by_retention_are_skipped_with_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service, consumer = ledger(tmp_path, 5), StandInConsumer(log_start=8)

    assert await taken(service, consumer, 8, 9) == [8, 9]
    assert consumer.sought == []
    assert "offsets 5-7 were deleted by retention" in caplog.text


async def test_a_partition_not_owned_gives_nothing(tmp_path: Path) -> None:
    assert await taken(ledger(tmp_path, None), StandInConsumer(), 0, 1) == []
