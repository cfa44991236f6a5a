"""The demo's summary says why lines were rejected, so a surprising count explains itself."""

from __future__ import annotations

from sync_worker.demo import Tally


def decision(outcome: str, reason: str | None, order_id: str) -> dict[str, object]:
    return {
        "outcome": outcome,
        "reason": reason,
        "platform": "douyin",
        "order_id": order_id,
        "line_id": "1",
        "sku": "lipstick",
        "quantity": 1,
        "channel": "douyin-room-1",
    }


def test_rejections_are_counted_by_reason() -> None:
    tally = Tally(stock={"lipstick": 1})
    tally.decided(decision("accepted", None, "o1"))
    tally.decided(decision("rejected", "insufficient_stock", "o2"))
    tally.decided(decision("rejected", "insufficient_stock", "o3"))
    tally.decided(decision("rejected", "already_cancelled", "o4"))

    lines = tally.summary_lines({})

    assert "rejected: 3" in lines
    assert "rejected by reason: insufficient_stock 2, already_cancelled 1" in lines


def test_no_reason_line_without_rejections() -> None:
    tally = Tally(stock={"lipstick": 1})
    tally.decided(decision("accepted", None, "o1"))

    assert not [line for line in tally.summary_lines({}) if line.startswith("rejected by")]
