"""``stockcast session …`` through click's runner, against a real local HTTP server serving
the session API over the in-memory store of test_session_api. The server runs on a loop
of its own in a thread: the CLI runs ``asyncio.run`` itself."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from sync_worker.cli import main
from sync_worker.domain.events import (
    ChannelPinned,
    ListingChanged,
    QuotaMoved,
    StockIncomingAnnounced,
    StockReceived,
    StockTransferredOut,
    Tier,
)
from sync_worker.domain.live_session import SessionState
from tests.unit.test_session_api import MemoryStore, make_app

PLAN = """
session_id = "evening"
title = "Evening show"
starts_at = 2025-06-15T20:00:00+08:00
ends_at = 2025-06-15T22:00:00+08:00
channels = ["douyin-room", "tiktok-room"]

[[lineup]]
sku = "flash-01"
tier = "traffic"
cap = 100
name = "Flash sale"

[[lineup]]
sku = "lipstick"
name = "Ruby lipstick"
replenish_quantity = 60
replenish_at = 2025-06-15T21:00:00Z
"""


@dataclass
class Worker:
    url: str
    store: MemoryStore


@pytest.fixture
def worker() -> Iterator[Worker]:
    """The session API on 127.0.0.1, served from a thread with its own event loop."""
    store = MemoryStore()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(make_app(store))
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    _, port = runner.addresses[0]
    thread = threading.Thread(target=loop.run_forever, name="session-api", daemon=True)
    thread.start()
    try:
        yield Worker(f"http://127.0.0.1:{port}", store)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


Invoke = Callable[..., Result]


@pytest.fixture
def stockcast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Invoke:
    """Run ``stockcast`` in an empty directory as user ``anna``, with a wide terminal so
    tables are not folded, and no ``STOCKCAST_*`` variables."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("STOCKCAST_"):
            monkeypatch.delenv(name)

    def run(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
        environment = {"USER": "anna", "COLUMNS": "200"} | dict(env or {})
        return CliRunner().invoke(main, list(args), env=environment)

    return run


@pytest.fixture
def session_cli(stockcast: Invoke, worker: Worker) -> Invoke:
    """``stockcast session ARGS --worker URL``."""

    def run(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
        return stockcast("session", *args, "--worker", worker.url, env=env)

    return run


@pytest.fixture
def live(session_cli: Invoke, tmp_path: Path) -> None:
    """The evening show, created from PLAN and started."""
    (tmp_path / "plan.toml").write_text(PLAN)
    for args in (("create", "plan.toml"), ("start", "evening")):
        result = session_cli(*args)
        assert result.exit_code == 0, result.output


def now_ms() -> int:
    return int(time.time() * 1000)


# --- create -----------------------------------------------------------------------------


def test_create_sends_a_toml_plan_with_its_datetimes(
    session_cli: Invoke, worker: Worker, tmp_path: Path
) -> None:
    (tmp_path / "plan.toml").write_text(PLAN)

    result = session_cli("create", "plan.toml")

    assert result.exit_code == 0, result.output
    assert "evening Evening show: planned (rooms douyin-room, tiktok-room)" in result.output
    session = worker.store.sessions["evening"]
    assert session.starts_at_ms == int(datetime(2025, 6, 15, 12, tzinfo=UTC).timestamp() * 1000)
    assert session.ends_at_ms - session.starts_at_ms == 2 * 3_600_000
    flash, lipstick = session.lineup
    assert (flash.sku, flash.tier, flash.cap, flash.name) == (
        "flash-01",
        Tier.TRAFFIC,
        100,
        "Flash sale",
    )
    assert (lipstick.tier, lipstick.replenish_quantity) == (Tier.BEST_SELLER, 60)
    assert lipstick.replenish_eta_ms == int(
        datetime(2025, 6, 15, 21, tzinfo=UTC).timestamp() * 1000
    )
    assert session.moves[0].actor == "cli:anna"


def test_create_reads_a_json_plan(session_cli: Invoke, worker: Worker, tmp_path: Path) -> None:
    plan = {
        "session_id": "morning",
        "title": "Morning show",
        "starts_at": "2025-06-16T08:00:00+08:00",
        "ends_at": "2025-06-16T09:00:00+08:00",
        "channels": ["tiktok-room"],
        "lineup": [{"sku": "serum", "tier": "long_tail"}],
    }
    (tmp_path / "plan.json").write_bytes(orjson.dumps(plan))

    result = session_cli("create", "plan.json", "--actor", "planner-li")

    assert result.exit_code == 0, result.output
    session = worker.store.sessions["morning"]
    assert session.lineup[0].tier is Tier.LONG_TAIL
    assert session.moves[0].actor == "planner-li"


def test_a_plan_that_is_not_toml_fails_before_calling_the_worker(
    session_cli: Invoke, worker: Worker, tmp_path: Path
) -> None:
    (tmp_path / "plan.toml").write_text("session_id = \n")

    result = session_cli("create", "plan.toml")

    assert result.exit_code == 1
    assert "Error: plan.toml: " in result.output
    assert worker.store.sessions == {}


def test_a_json_plan_that_is_not_an_object_fails_clearly(
    session_cli: Invoke, worker: Worker, tmp_path: Path
) -> None:
    (tmp_path / "plan.json").write_text("[1, 2]")

    result = session_cli("create", "plan.json")

    assert result.exit_code == 1
    assert "plan.json: a plan is a table (JSON object) of fields" in result.output


def test_a_plan_the_worker_refuses_shows_every_problem(
    session_cli: Invoke, worker: Worker, tmp_path: Path
) -> None:
    without_offset = PLAN.replace(
        "starts_at = 2025-06-15T20:00:00+08:00", "starts_at = 2025-06-15T20:00:00"
    )
    (tmp_path / "plan.toml").write_text(without_offset.replace("cap = 100\n", ""))

    result = session_cli("create", "plan.toml")

    assert result.exit_code == 1
    assert "Error: invalid request\n  - starts_at: Input should have timezone info" in result.output

    (tmp_path / "plan.toml").write_text(
        PLAN.replace("cap = 100\n", "").replace('"tiktok-room"]', '"kuaishou"]')
    )
    result = session_cli("create", "plan.toml")

    assert result.exit_code == 1
    assert "Error: invalid plan\n" in result.output
    assert "  - not configured channels: kuaishou\n" in result.output
    assert "  - flash-01: a traffic item needs its exact count as cap\n" in result.output
    assert worker.store.sessions == {}


# --- commands ---------------------------------------------------------------------------


@pytest.mark.usefixtures("live")
def test_start_opens_the_lineup_and_is_audited_as_the_user(
    worker: Worker, session_cli: Invoke
) -> None:
    session = worker.store.sessions["evening"]

    assert session.state is SessionState.LIVE
    assert [(m.action, m.actor) for m in session.moves] == [
        ("create", "cli:anna"),
        ("start", "cli:anna"),
    ]
    result = session_cli("start", "evening")  # once more: the same events again
    assert result.exit_code == 0, result.output
    assert "sent: session.sku_opened, session.sku_opened" in result.output


@pytest.mark.usefixtures("live")
def test_the_actor_is_cli_operator_without_a_user(worker: Worker, session_cli: Invoke) -> None:
    result = session_cli("pin", "evening", "lipstick", env={"USER": None})

    assert result.exit_code == 0, result.output
    assert worker.store.sessions["evening"].moves[-1].actor == "cli:operator"


@pytest.mark.usefixtures("live")
def test_pin_asks_for_the_burst_it_is_given(worker: Worker, session_cli: Invoke) -> None:
    result = session_cli(
        "pin", "evening", "lipstick", "--minutes", "2.5", "--rate", "300", "--actor", "host-mei"
    )

    assert result.exit_code == 0, result.output
    assert "evening Evening show: live, pinned lipstick" in result.output
    pins = [e for e in worker.store.sent if isinstance(e, ChannelPinned)]
    assert [(p.channel, p.duration_ms, p.expected_units_per_s, p.actor) for p in pins] == [
        ("douyin-room", 150_000, 300, "host-mei"),
        ("tiktok-room", 150_000, 300, "host-mei"),
    ]

    result = session_cli("unpin", "evening")

    assert result.exit_code == 0, result.output
    assert worker.store.sessions["evening"].pinned is None


@pytest.mark.usefixtures("live")
def test_a_restock_with_an_eta_is_announced_for_then(worker: Worker, session_cli: Invoke) -> None:
    before = now_ms()
    result = session_cli("move", "evening", "restock", "lipstick", "-q", "40", "--eta-min", "30")
    after = now_ms()

    assert result.exit_code == 0, result.output
    assert "sent: stock.incoming_announced" in result.output
    (announced,) = [e for e in worker.store.sent if isinstance(e, StockIncomingAnnounced)]
    assert announced.quantity == 40
    # The ETA is the CLI's now plus 30 minutes: bracketed by the clock read around the call.
    assert before + 30 * 60_000 - 1 <= announced.eta_ms <= after + 30 * 60_000
    assert worker.store.sessions["evening"].moves[-1].actor == "cli:anna"


@pytest.mark.usefixtures("live")
def test_a_restock_without_an_eta_is_received_now(worker: Worker, session_cli: Invoke) -> None:
    result = session_cli(
        "move", "evening", "restock", "lipstick", "-q", "12", "--batch", "po-7", "-w", "east"
    )

    assert result.exit_code == 0, result.output
    (received,) = [e for e in worker.store.sent if isinstance(e, StockReceived)]
    assert (received.quantity, received.batch_id, received.warehouse) == (12, "po-7", "east")


@pytest.mark.usefixtures("live")
def test_a_transfer_between_rooms_moves_quota(worker: Worker, session_cli: Invoke) -> None:
    result = session_cli(
        "move",
        "evening",
        "transfer",
        "lipstick",
        "-q",
        "10",
        "--from-room",
        "douyin-room",
        "--to-room",
        "tiktok-room",
    )

    assert result.exit_code == 0, result.output
    (moved,) = [e for e in worker.store.sent if isinstance(e, QuotaMoved)]
    assert (moved.from_channel, moved.to_channel, moved.units) == ("douyin-room", "tiktok-room", 10)


@pytest.mark.usefixtures("live")
def test_a_transfer_from_a_warehouse_is_announced_with_its_eta(
    worker: Worker, session_cli: Invoke
) -> None:
    result = session_cli(
        "move",
        "evening",
        "transfer",
        "lipstick",
        "-q",
        "5",
        "--from-warehouse",
        "west",
        "--eta-min",
        "15",
    )

    assert result.exit_code == 0, result.output
    assert "sent: stock.transferred_out, stock.incoming_announced" in result.output
    (out,) = [e for e in worker.store.sent if isinstance(e, StockTransferredOut)]
    assert (out.warehouse, out.destination, out.quantity) == ("west", "main", 5)


@pytest.mark.usefixtures("live")
def test_delist_in_one_room_and_skip(worker: Worker, session_cli: Invoke) -> None:
    delisted = session_cli(
        "move",
        "evening",
        "delist",
        "flash-01",
        "--room",
        "tiktok-room",
        "--reason",
        "quality_issue",
    )
    skipped = session_cli("move", "evening", "skip", "flash-01")

    assert (delisted.exit_code, skipped.exit_code) == (0, 0), delisted.output + skipped.output
    (change,) = [e for e in worker.store.sent if isinstance(e, ListingChanged)]
    assert (change.channel, change.listed, change.reason) == ("tiktok-room", False, "quality_issue")
    assert worker.store.sessions["evening"].skipped == ("flash-01",)
    assert "flash-01 (skipped)" in skipped.output


@pytest.mark.usefixtures("live")
def test_show_prints_the_board_with_each_sku(session_cli: Invoke) -> None:
    result = session_cli("show", "evening")

    assert result.exit_code == 0, result.output
    assert "evening Evening show: live (rooms douyin-room, tiktok-room)" in result.output
    rows = {line.split()[1]: line for line in result.output.splitlines() if "│ " in line}
    assert "traffic" in rows["flash-01"]
    assert "best_seller" in rows["lipstick"]
    assert " 41 " in rows["lipstick"]  # the board's remaining stock (test_session_api.board)


@pytest.mark.usefixtures("live")
def test_show_json_prints_the_workers_answer(worker: Worker, session_cli: Invoke) -> None:
    result = session_cli("show", "evening", "--json")

    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.output)
    assert shown["session_id"] == "evening"
    assert shown["version"] == worker.store.sessions["evening"].version
    assert [row["sku"] for row in shown["board"]] == ["flash-01", "lipstick"]


@pytest.mark.usefixtures("live")
def test_show_without_a_session_lists_every_session(session_cli: Invoke) -> None:
    result = session_cli("show")

    assert result.exit_code == 0, result.output
    assert "evening" in result.output
    assert "douyin-room, tiktok-room" in result.output


@pytest.mark.usefixtures("live")
def test_end_ends_the_session(worker: Worker, session_cli: Invoke) -> None:
    result = session_cli("end", "evening", "--actor", "ops-ben")

    assert result.exit_code == 0, result.output
    assert "evening Evening show: ended" in result.output
    assert "sent: session.sku_closed, session.sku_closed" in result.output
    assert worker.store.sessions["evening"].moves[-1].actor == "ops-ben"


# --- failures ---------------------------------------------------------------------------


@pytest.mark.usefixtures("live")
def test_a_refused_command_shows_the_workers_message(session_cli: Invoke) -> None:
    result = session_cli("pin", "evening", "perfume")

    assert result.exit_code == 1
    assert "Error: SKU 'perfume' is not in the lineup of session 'evening'" in result.output


@pytest.mark.usefixtures("live")
def test_an_incomplete_move_shows_the_workers_problems(worker: Worker, session_cli: Invoke) -> None:
    before = worker.store.sessions["evening"]

    result = session_cli(
        "move", "evening", "transfer", "lipstick", "-q", "3", "--from-room", "douyin-room"
    )

    assert result.exit_code == 1
    assert (
        "Error: invalid request\n"
        "  - body: Value error, a transfer between rooms needs from_channel and to_channel"
    ) in result.output
    assert worker.store.sessions["evening"] == before


def test_an_unknown_session_is_an_error(session_cli: Invoke) -> None:
    result = session_cli("show", "nope")

    assert result.exit_code == 1
    assert "Error: no session 'nope'" in result.output


def test_an_unreachable_worker_is_a_clear_error(stockcast: Invoke) -> None:
    with socket.socket() as probe:  # a port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        _, port = probe.getsockname()

    result = stockcast("session", "start", "evening", "--worker", f"http://127.0.0.1:{port}")

    assert result.exit_code == 1
    assert (
        f"Error: no worker answers at http://127.0.0.1:{port}/sessions/evening/start: "
        in result.output
    )
    assert "Traceback" not in result.output


def test_an_answer_that_is_not_the_session_api_is_a_clear_error(
    stockcast: Invoke, worker: Worker
) -> None:
    result = stockcast("session", "start", "evening", "--worker", f"{worker.url}/elsewhere")

    assert result.exit_code == 1
    assert (
        f"Error: {worker.url}/elsewhere/sessions/evening/start answered 404: 404: Not Found"
        in result.output
    )


def test_the_worker_url_comes_from_the_settings_by_default(
    stockcast: Invoke, worker: Worker, tmp_path: Path
) -> None:
    port = worker.url.rsplit(":", 1)[1]
    (tmp_path / "stockcast.toml").write_text(f"[worker]\nweb_port = {port}\n")

    result = stockcast("session", "show")

    assert result.exit_code == 0, result.output
