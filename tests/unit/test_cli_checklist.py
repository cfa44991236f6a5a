"""``stockcast checklist`` through click's runner: export from a real local server running the
checklist routes, and import up to ``--dry-run`` (sending to Kafka is the integration
tests' part). A bad file must stop the command before anything is sent, so those cases
run without ``--dry-run``."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from connectors.mock_support import serve_app
from sync_worker.cli_checklist import checklist
from sync_worker.domain.checklist import CSV_COLUMNS
from sync_worker.domain.events import Tier
from sync_worker.domain.live_session import LineupItem, LiveSession
from sync_worker.domain.position import SkuPosition
from sync_worker.web.checklist import checklist_routes
from tests.unit.conftest import MakePosition

T0 = 1_764_064_800_000

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Invoke:
    """Run ``stockcast checklist`` in an empty directory with no ``STOCKCAST_*`` variables;
    wide enough that rich does not wrap the tables."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("STOCKCAST_"):
            monkeypatch.delenv(name)

    def run(*args: str) -> Result:
        return CliRunner().invoke(
            checklist, list(args), obj={"USER": "ana"}, env={"COLUMNS": "200"}
        )

    return run


@pytest.fixture
def worker(stocked: MakePosition) -> Iterator[str]:
    """A local server with the checklist routes over two positions and one session, on its
    own event loop thread (the CLI runs its own loop); its base URL."""
    positions: dict[str, SkuPosition] = {
        "lipstick": stocked(30),
        "mascara": stocked(8, sku="mascara", warehouse="east"),
    }
    lineup = (
        LineupItem(sku="lipstick", tier=Tier.TRAFFIC, name="Velvet lipstick", cap=20),
        LineupItem(sku="blush", name="Peach blush"),
    )
    session = LiveSession(
        session_id="evening-1",
        title="Evening show",
        channels=("tiktok-room-1",),
        lineup=lineup,
        starts_at_ms=T0,
        ends_at_ms=T0 + 7_200_000,
    )
    app = web.Application()
    app.add_routes(checklist_routes(positions.get, {"evening-1": session}.get))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner, url = asyncio.run_coroutine_threadsafe(serve_app(app), loop).result(timeout=10)
    try:
        yield url
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def table_rows(output: str) -> list[list[str]]:
    """The cells of every row of the rich tables in ``output``, header rows included."""
    return [
        [cell.strip() for cell in re.split("[│┃]", line)[1:-1]]
        for line in output.splitlines()
        if re.search("[│┃]", line)
    ]


# --- export -------------------------------------------------------------------------------


def test_export_writes_the_sessions_checklist_as_csv(
    invoke: Invoke, worker: str, tmp_path: Path
) -> None:
    target = tmp_path / "evening.csv"

    result = invoke("export", "--session", "evening-1", "--worker", worker, "-o", str(target))

    assert result.exit_code == 0, result.output
    assert f"wrote the checklist of 2 SKUs to {target}" in result.output
    with target.open(newline="", encoding="utf-8") as sheet:
        rows = list(csv.DictReader(sheet))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(row["sku"], row["name"], row["on_hand"], row["planned_cap"]) for row in rows] == [
        ("lipstick", "Velvet lipstick", "30", "20"),
        ("blush", "Peach blush", "", ""),
    ]


def test_export_prints_the_named_skus_as_json(invoke: Invoke, worker: str) -> None:
    result = invoke(
        "export", "--sku", "mascara", "--sku", "lipstick", "--format", "json", "--worker", worker
    )

    assert result.exit_code == 0, result.output
    rows = orjson.loads(result.output)["rows"]
    assert [(row["sku"], row["on_hand"], row["warehouse"]) for row in rows] == [
        ("mascara", 8, "east"),
        ("lipstick", 30, "main"),
    ]


@pytest.mark.parametrize(
    "args", [[], ["--session", "evening-1", "--sku", "lipstick"]], ids=["none", "both"]
)
def test_export_needs_a_session_or_skus_but_not_both(invoke: Invoke, args: list[str]) -> None:
    result = invoke("export", *args, "--worker", "http://127.0.0.1:9")

    assert result.exit_code == 2
    assert "name either --session or one or more --sku" in result.output


def test_export_of_an_unknown_session_says_so(invoke: Invoke, worker: str) -> None:
    result = invoke("export", "--session", "nope", "--worker", worker)

    assert result.exit_code == 1
    assert "no session 'nope'" in result.output


def test_an_exported_sheet_filled_in_imports_back(
    invoke: Invoke, worker: str, tmp_path: Path
) -> None:
    sheet = tmp_path / "evening.csv"
    invoke("export", "--session", "evening-1", "--worker", worker, "-o", str(sheet))
    with sheet.open(newline="", encoding="utf-8") as exported:
        rows = list(csv.DictReader(exported))
    rows[1]["on_hand"] = "40"  # the warehouse counted the blush nobody had counted yet
    with sheet.open("w", newline="", encoding="utf-8") as filled:
        writer = csv.DictWriter(filled, CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)

    result = invoke("import", str(sheet), "--dry-run")

    assert result.exit_code == 0, result.output
    counts = [row[:3] for row in table_rows(result.output)[1:]]
    assert counts == [["lipstick", "main", "30"], ["blush", "main", "40"]]


# --- import -------------------------------------------------------------------------------


def test_import_dry_run_shows_the_counts_and_sends_nothing(invoke: Invoke, tmp_path: Path) -> None:
    count = tmp_path / "count.csv"
    count.write_text("sku,warehouse,on_hand\nlipstick,main,12\nmascara,east,0\n")

    result = invoke("import", str(count), "--dry-run")

    assert result.exit_code == 0, result.output
    header, *counts = table_rows(result.output)
    assert header == ["sku", "warehouse", "on hand", "event id"]
    assert [row[:3] for row in counts] == [["lipstick", "main", "12"], ["mascara", "east", "0"]]
    assert all(row[3].startswith("count:") for row in counts)
    assert result.output.endswith("dry run: 2 counts checked, nothing sent\n")


def test_import_lists_every_bad_row_and_sends_nothing(invoke: Invoke, tmp_path: Path) -> None:
    count = tmp_path / "count.csv"
    count.write_text("sku,on_hand\nlipstick,12\n,3\nmascara,-1\nlipstick,4\n")

    result = invoke("import", str(count))  # no --dry-run: the check alone must stop it

    assert result.exit_code == 1
    assert table_rows(result.output) == [
        ["line", "sku", "problem"],
        ["3", "", "missing sku"],
        ["4", "mascara", "on_hand -1 is negative"],
        ["5", "lipstick", "counted twice for warehouse 'main' (also line 2)"],
    ]
    assert f"Error: 3 problem(s) in {count}; nothing was sent" in result.output
    assert "sent" not in result.output.replace("nothing was sent", "")


def test_import_of_a_file_that_is_not_a_count_says_why(invoke: Invoke, tmp_path: Path) -> None:
    count = tmp_path / "count.csv"
    count.write_text("")

    result = invoke("import", str(count))

    assert result.exit_code == 1
    assert table_rows(result.output)[1] == ["file", "", "empty file: no header, no rows"]


def test_import_for_a_session_refuses_skus_outside_its_lineup(
    invoke: Invoke, worker: str, tmp_path: Path
) -> None:
    count = tmp_path / "count.csv"
    count.write_text("sku,on_hand\nlipstick,12\nmascara,3\n")

    refused = invoke(
        "import", str(count), "--session", "evening-1", "--worker", worker, "--dry-run"
    )
    unchecked = invoke("import", str(count), "--dry-run")

    assert refused.exit_code == 1
    assert "unknown SKU 'mascara'" in refused.output
    assert unchecked.exit_code == 0, unchecked.output
