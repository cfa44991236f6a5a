"""The checklist routes on aiohttp's in-process test server, with lookups over real positions
and a real session."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sync_worker.domain.events import Tier
from sync_worker.domain.live_session import LineupItem, LiveSession
from sync_worker.domain.position import IncomingBatch, SkuPosition
from sync_worker.web.checklist import checklist_routes
from tests.unit.conftest import MakePosition

T0 = 1_764_064_800_000  # 2025-11-25T10:00:00Z

Client = TestClient[Any, Any]
MakeClient = Callable[[dict[str, SkuPosition], dict[str, LiveSession]], Awaitable[Client]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[Client] = []

    async def make(positions: dict[str, SkuPosition], sessions: dict[str, LiveSession]) -> Client:
        app = web.Application()
        app.add_routes(checklist_routes(positions.get, sessions.get))
        client: Client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
def positions(stocked: MakePosition) -> dict[str, SkuPosition]:
    incoming = (IncomingBatch("b-1", "main", 50, T0),)
    return {
        "lipstick": stocked(30, committed=10, incoming=incoming),
        "mascara": stocked(8, sku="mascara"),
    }


def evening_show() -> LiveSession:
    lineup = (
        LineupItem(sku="lipstick", tier=Tier.TRAFFIC, name="Velvet lipstick", cap=20),
        LineupItem(sku="blush", name="Peach blush", replenish_quantity=100),
    )
    return LiveSession(
        session_id="evening-1",
        title="Evening show",
        channels=("tiktok-room-1",),
        lineup=lineup,
        starts_at_ms=T0,
        ends_at_ms=T0 + 7_200_000,
    )


async def test_the_sessions_checklist_lists_its_lineup_with_plan_and_stock(
    make_client: MakeClient, positions: dict[str, SkuPosition]
) -> None:
    client = await make_client(positions, {"evening-1": evening_show()})

    response = await client.get("/sessions/evening-1/checklist")

    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.json()
    assert (body["session_id"], body["title"], body["starts_at_ms"]) == (
        "evening-1",
        "Evening show",
        T0,
    )
    assert body["channels"] == ["tiktok-room-1"]
    lipstick, blush = body["rows"]
    assert (lipstick["name"], lipstick["tier"], lipstick["planned_cap"]) == (
        "Velvet lipstick",
        "traffic",
        20,
    )
    assert (lipstick["on_hand"], lipstick["sellable"], lipstick["in_transit"]) == (30, 20, 50)
    assert lipstick["in_transit_eta_ms"] == T0
    assert (blush["name"], blush["on_hand"], blush["replenish_quantity"]) == (
        "Peach blush",
        None,
        100,
    )


async def test_an_unknown_session_is_a_json_404_even_when_csv_is_asked_for(
    make_client: MakeClient, positions: dict[str, SkuPosition]
) -> None:
    client = await make_client(positions, {})

    response = await client.get("/sessions/nope/checklist?format=csv")

    assert response.status == 404
    assert await response.json() == {"error": "no session 'nope'"}


async def test_csv_is_served_for_format_csv_with_a_file_name(
    make_client: MakeClient, positions: dict[str, SkuPosition]
) -> None:
    client = await make_client(positions, {"evening-1": evening_show()})

    response = await client.get("/sessions/evening-1/checklist", params={"format": "csv"})

    assert response.status == 200
    assert response.content_type == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="checklist-evening-1.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(row["sku"], row["on_hand"], row["in_transit_eta"]) for row in rows] == [
        ("lipstick", "30", "2025-11-25T10:00:00Z"),
        ("blush", "", ""),
    ]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/csv", "text/csv"),
        ("text/csv;q=0.9, application/json", "application/json"),
        ("application/json;q=0.5, text/csv;q=0.8", "text/csv"),
        ("*/*", "application/json"),
        ("", "application/json"),
    ],
)
async def test_the_accept_header_chooses_csv_only_when_it_prefers_it(
    make_client: MakeClient, positions: dict[str, SkuPosition], accept: str, expected: str
) -> None:
    client = await make_client(positions, {})

    response = await client.get("/checklist?skus=mascara", headers={"Accept": accept})

    assert response.status == 200
    assert response.content_type == expected


async def test_the_format_query_wins_over_accept(
    make_client: MakeClient, positions: dict[str, SkuPosition]
) -> None:
    client = await make_client(positions, {})

    response = await client.get(
        "/checklist?skus=mascara&format=json", headers={"Accept": "text/csv"}
    )

    assert response.content_type == "application/json"


async def test_the_checklist_by_sku_lists_each_named_sku_once_in_order(
    make_client: MakeClient, positions: dict[str, SkuPosition]
) -> None:
    client = await make_client(positions, {})

    response = await client.get("/checklist?skus=mascara, lipstick,,mascara&skus=ghost")

    rows = (await response.json())["rows"]
    assert [(row["sku"], row["on_hand"], row["name"]) for row in rows] == [
        ("mascara", 8, ""),
        ("lipstick", 30, ""),
        ("ghost", None, ""),
    ]


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("", "name the SKUs: /checklist?skus=a,b"),
        ("?skus=,", "name the SKUs: /checklist?skus=a,b"),
        ("?skus=mascara&format=xlsx", "format 'xlsx': use csv or json"),
    ],
)
async def test_a_bad_checklist_request_is_a_json_400(
    make_client: MakeClient, positions: dict[str, SkuPosition], query: str, error: str
) -> None:
    client = await make_client(positions, {})

    response = await client.get(f"/checklist{query}")

    assert response.status == 400
    assert await response.json() == {"error": error}
