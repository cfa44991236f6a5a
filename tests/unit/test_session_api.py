"""The live team's session API on aiohttp's in-process test server, over an in-memory
store that runs the real session commands (the Kafka store is covered by
tests/integration/test_live_session.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sync_worker.domain.events import (
    ChannelPinned,
    QuotaMoved,
    SessionSkuOpened,
    SkuEvent,
    StockIncomingAnnounced,
    StockReceived,
    StockTransferredOut,
)
from sync_worker.domain.live_session import (
    LiveSession,
    Outcome,
    SessionConflict,
    StoreUnavailable,
)
from sync_worker.web.sessions import session_routes

ROOMS = ("douyin-room", "tiktok-room")
CONFIGURED = (*ROOMS, "shopify-shop")
NOW_MS = 1_750_000_000_000
NOW = datetime.fromtimestamp(NOW_MS / 1000, UTC)
SHANGHAI = timezone(timedelta(hours=8))


@dataclass
class MemoryStore:
    """The session store's contract in memory: a command sees the stored session (None
    when there is none); a changed session is stored and the command's events recorded
    as sent. ``unavailable`` plays a broker that cannot be reached, ``lose_races`` a
    command that another worker's command beat to the log."""

    sessions: dict[str, LiveSession] = field(default_factory=dict)
    sent: list[SkuEvent] = field(default_factory=list)
    unavailable: bool = False
    lose_races: bool = False

    def get(self, session_id: str) -> LiveSession | None:
        return self.sessions.get(session_id)

    def all(self) -> list[LiveSession]:
        return sorted(self.sessions.values(), key=lambda s: (s.starts_at_ms, s.session_id))

    async def run(
        self, session_id: str, command: Callable[[LiveSession | None], Outcome]
    ) -> Outcome:
        if self.unavailable:
            raise StoreUnavailable("no broker answers at 127.0.0.1:9")
        current = self.sessions.get(session_id)
        outcome = command(current)
        if outcome.session != current:
            if self.lose_races:
                raise SessionConflict(f"session {session_id!r} was changed by another command")
            self.sessions[session_id] = outcome.session
        self.sent.extend(outcome.events)
        return outcome


def board(session: LiveSession) -> list[dict[str, Any]]:
    """A board as the worker's ledger would fill it: each lineup SKU with its stock."""
    return [
        {"sku": item.sku, "tier": item.tier.value, "remaining": 40 + index, "sold": index}
        | ({"skipped": True} if item.sku in session.skipped else {})
        for index, item in enumerate(session.lineup)
    ]


def plan_body(**overrides: Any) -> dict[str, Any]:
    """An evening show in both rooms: a capped traffic item and a best-seller."""
    starts = datetime(2025, 6, 15, 20, 0, tzinfo=SHANGHAI)
    return {
        "session_id": "evening",
        "title": "Evening show",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "channels": list(ROOMS),
        "lineup": [
            {"sku": "flash-01", "tier": "traffic", "cap": 100, "name": "Flash sale"},
            {"sku": "lipstick", "name": "Ruby lipstick", "spec": "3.5 g"},
        ],
        "actor": "planner",
    } | overrides


def make_app(
    store: MemoryStore, board: Callable[[LiveSession], list[dict[str, Any]]] = board
) -> web.Application:
    app = web.Application()
    app.router.add_routes(session_routes(store, board, lambda: NOW_MS, channels=CONFIGURED))
    return app


@dataclass
class Api:
    client: TestClient[Any, Any]
    store: MemoryStore

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.client.request(method, path, json=body) as response:
            return response.status, await response.json()

    async def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        return await self.call("POST", path, body)

    async def get(self, path: str) -> tuple[int, Any]:
        return await self.call("GET", path)

    async def ok(self, path: str, body: Any = None) -> dict[str, Any]:
        """POST that must succeed; the session's view."""
        status, view = await self.post(path, body)
        assert status == 200, view
        assert isinstance(view, dict)
        return view

    async def live(self) -> None:
        """The evening show created and started."""
        assert (await self.post("/sessions", plan_body()))[0] == 201
        await self.ok("/sessions/evening/start")


MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api() -> AsyncIterator[MakeApi]:
    clients: list[TestClient[Any, Any]] = []

    async def make(
        store: MemoryStore | None = None,
        board: Callable[[LiveSession], list[dict[str, Any]]] = board,
    ) -> Api:
        store = store if store is not None else MemoryStore()
        client = TestClient(TestServer(make_app(store, board), host="127.0.0.1", port=0))
        await client.start_server()
        clients.append(client)
        return Api(client, store)

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    return await make_api()


# --- create -----------------------------------------------------------------------------


async def test_create_answers_201_with_the_planned_session(api: Api) -> None:
    status, view = await api.post("/sessions", plan_body())

    assert status == 201
    assert view["session_id"] == "evening"
    assert view["title"] == "Evening show"
    assert view["state"] == "planned"
    assert view["version"] == 1
    assert view["channels"] == list(ROOMS)
    assert view["pinned"] is None
    assert view["skipped"] == []
    assert datetime.fromisoformat(view["starts_at"]) == datetime(2025, 6, 15, 12, tzinfo=UTC)
    assert datetime.fromisoformat(view["ends_at"]) == datetime(2025, 6, 15, 14, tzinfo=UTC)
    flash, lipstick = view["lineup"]
    assert (flash["sku"], flash["tier"], flash["cap"], flash["name"]) == (
        "flash-01",
        "traffic",
        100,
        "Flash sale",
    )
    assert (lipstick["tier"], lipstick["spec"], lipstick["isolate"]) == (
        "best_seller",
        "3.5 g",
        None,
    )
    assert view["log"] == [
        {
            "at_ms": NOW_MS,
            "at": datetime.fromtimestamp(NOW_MS / 1000).astimezone().isoformat(),
            "actor": "planner",
            "action": "create",
            "sku": None,
            "detail": "",
        }
    ]
    assert view["board"] == board(api.store.sessions["evening"])
    assert view["events_sent"] == []
    assert api.store.sent == []


async def test_the_replenishment_plan_of_an_item_is_kept_in_epoch_milliseconds(api: Api) -> None:
    arrives = NOW + timedelta(minutes=45)
    lineup = [{"sku": "serum", "replenish_quantity": 60, "replenish_at": arrives.isoformat()}]

    status, view = await api.post("/sessions", plan_body(lineup=lineup))

    assert status == 201
    (serum,) = view["lineup"]
    assert (serum["replenish_quantity"], serum["replenish_eta_ms"]) == (60, NOW_MS + 45 * 60_000)


async def test_a_command_without_an_actor_is_audited_as_the_api(api: Api) -> None:
    body = plan_body()
    del body["actor"]

    await api.post("/sessions", body)

    assert api.store.sessions["evening"].moves[0].actor == "api"


async def test_a_session_on_a_channel_that_is_not_configured_is_400(api: Api) -> None:
    status, answer = await api.post("/sessions", plan_body(channels=["douyin-room", "kuaishou"]))

    assert status == 400
    assert answer == {"error": "invalid plan", "problems": ["not configured channels: kuaishou"]}
    assert api.store.sessions == {}


async def test_a_plan_that_cannot_be_a_session_is_400_with_every_problem(api: Api) -> None:
    lineup = [{"sku": "flash", "tier": "traffic"}, {"sku": "flash"}, {"sku": "x", "isolate": True}]
    body = plan_body(channels=["kuaishou"], lineup=lineup, ends_at=plan_body()["starts_at"])

    status, answer = await api.post("/sessions", body)

    assert status == 400
    assert answer["error"] == "invalid plan"
    assert answer["problems"] == [
        "not configured channels: kuaishou",
        "SKUs listed twice in the lineup: flash",
        "the session must end after it starts",
        "flash: a traffic item needs its exact count as cap",
        "x: an isolated (flash-sale) item needs a cap",
    ]
    assert api.store.sessions == {}


async def test_an_invalid_body_is_400_and_lists_every_problem(api: Api) -> None:
    body = plan_body(
        session_id="evening show!",
        starts_at="2025-06-15T20:00:00",  # no offset: which evening?
        lineup=[{"sku": "lipstick", "cap": -1, "tier": "gold"}],
        colour="red",
    )
    del body["title"]

    status, answer = await api.post("/sessions", body)

    assert status == 400
    assert answer["error"] == "invalid request"
    fields = {problem.split(":")[0] for problem in answer["problems"]}
    assert fields >= {"colour", "lineup.0.cap", "lineup.0.tier", "session_id", "starts_at", "title"}
    assert api.store.sessions == {}


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"{not json", "body: Invalid JSON"),
        (b"[1, 2]", "body: Input should be an object"),
        (b"", "session_id: Field required"),
    ],
    ids=["not JSON", "not an object", "empty"],
)
async def test_a_body_that_is_no_plan_at_all_is_400(api: Api, raw: bytes, problem: str) -> None:
    async with api.client.post("/sessions", data=raw) as response:
        status, answer = response.status, await response.json()

    assert status == 400
    assert any(p.startswith(problem) for p in answer["problems"]), answer


async def test_creating_a_session_that_exists_is_409_and_keeps_it(api: Api) -> None:
    await api.live()
    stored = api.store.sessions["evening"]

    status, answer = await api.post("/sessions", plan_body(title="Another show"))

    assert status == 409
    assert answer == {"error": "session 'evening' exists already"}
    assert api.store.sessions["evening"] == stored


# --- unknown sessions and refused commands ----------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/sessions/nope", None),
        ("POST", "/sessions/nope/start", {}),
        ("POST", "/sessions/nope/end", {}),
        ("POST", "/sessions/nope/unpin", {}),
        ("POST", "/sessions/nope/pin", {"sku": "lipstick"}),
        ("POST", "/sessions/nope/moves", {"action": "skip", "sku": "lipstick"}),
    ],
    ids=["show", "start", "end", "unpin", "pin", "moves"],
)
async def test_an_unknown_session_is_404(api: Api, method: str, path: str, body: Any) -> None:
    await api.post("/sessions", plan_body())

    status, answer = await api.call(method, path, body)

    assert status == 404
    assert answer == {"error": "no session 'nope'"}
    assert api.store.sent == []


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/sessions/evening/pin", {"sku": "lipstick"}, "is planned, not live"),
        ("/sessions/evening/end", {}, "has not started"),
        ("/sessions/evening/unpin", {}, "is planned, not live"),
        ("/sessions/evening/moves", {"action": "delist", "sku": "lipstick"}, "not live"),
    ],
    ids=["pin", "end", "unpin", "delist"],
)
async def test_a_command_that_does_not_fit_the_session_is_409(
    api: Api, path: str, body: dict[str, Any], message: str
) -> None:
    await api.post("/sessions", plan_body())

    status, answer = await api.post(path, body)

    assert status == 409
    assert message in answer["error"]
    assert api.store.sessions["evening"].version == 1


async def test_pinning_a_sku_outside_the_lineup_is_409(api: Api) -> None:
    await api.live()

    status, answer = await api.post("/sessions/evening/pin", {"sku": "perfume"})

    assert status == 409
    assert answer == {"error": "SKU 'perfume' is not in the lineup of session 'evening'"}


async def test_a_command_that_lost_the_race_to_another_is_409(make_api: MakeApi) -> None:
    api = await make_api(MemoryStore(lose_races=True))

    status, answer = await api.post("/sessions", plan_body())

    assert status == 409
    assert "changed by another command" in answer["error"]
    assert api.store.sent == []


@pytest.mark.parametrize(
    ("path", "body"),
    [("/sessions", plan_body()), ("/sessions/evening/start", {})],
    ids=["create", "start"],
)
async def test_an_unreachable_store_is_503_and_nothing_is_applied(
    api: Api, path: str, body: dict[str, Any]
) -> None:
    api.store.unavailable = True

    status, answer = await api.post(path, body)

    assert status == 503
    assert answer["error"].startswith("Kafka is not reachable, nothing was applied: ")
    assert "no broker answers at 127.0.0.1:9" in answer["error"]
    assert (api.store.sessions, api.store.sent) == ({}, [])


class _BrokenStore(MemoryStore):
    async def run(
        self, session_id: str, command: Callable[[LiveSession | None], Outcome]
    ) -> Outcome:
        raise KeyError("a bug, not a missing session")


async def test_a_lookup_error_from_a_bug_is_a_server_error_not_an_unknown_session(
    make_api: MakeApi,
) -> None:
    api = await make_api(_BrokenStore())

    async with api.client.post("/sessions/evening/start", json={}) as response:
        assert response.status == 500


# --- the lifecycle ----------------------------------------------------------------------


async def test_a_session_lives_through_start_pin_every_move_unpin_and_end(api: Api) -> None:
    status, _ = await api.post("/sessions", plan_body())
    assert status == 201

    started = await api.ok("/sessions/evening/start", {"actor": "ops-anna"})
    assert started["state"] == "live"
    assert started["events_sent"] == ["session.sku_opened"] * 2

    pinned = await api.ok(
        "/sessions/evening/pin",
        {"sku": "lipstick", "duration_s": 120, "expected_units_per_s": 300, "actor": "host"},
    )
    assert pinned["pinned"] == "lipstick"
    assert pinned["events_sent"] == ["allocation.pinned"] * 2

    eta = NOW + timedelta(minutes=20)
    moves: list[tuple[dict[str, Any], list[str]]] = [
        ({"action": "restock", "sku": "lipstick", "quantity": 50}, ["stock.received"]),
        (
            {"action": "restock", "sku": "lipstick", "quantity": 80, "eta": eta.isoformat()},
            ["stock.incoming_announced"],
        ),
        (
            {
                "action": "transfer",
                "sku": "lipstick",
                "quantity": 30,
                "from_warehouse": "west",
                "eta": eta.isoformat(),
            },
            ["stock.transferred_out", "stock.incoming_announced"],
        ),
        (
            {
                "action": "transfer",
                "sku": "lipstick",
                "quantity": 10,
                "from_channel": "douyin-room",
                "to_channel": "tiktok-room",
            },
            ["allocation.quota_moved"],
        ),
        (
            {"action": "delist", "sku": "flash-01", "channels": ["tiktok-room"]},
            ["allocation.listing_changed"],
        ),
        ({"action": "relist", "sku": "flash-01"}, ["allocation.listing_changed"] * 2),
        ({"action": "skip", "sku": "flash-01", "actor": "host"}, ["session.sku_closed"]),
    ]
    for body, sent in moves:
        view = await api.ok("/sessions/evening/moves", {"actor": "ops-ben"} | body)
        assert view["events_sent"] == sent, body

    unpinned = await api.ok("/sessions/evening/unpin", {"actor": "host"})
    assert unpinned["pinned"] is None
    assert unpinned["events_sent"] == ["allocation.unpinned"] * 2

    ended = await api.ok("/sessions/evening/end", {"actor": "ops-anna"})
    assert ended["state"] == "ended"
    assert ended["skipped"] == ["flash-01"]
    assert ended["events_sent"] == ["session.sku_closed"]  # the skipped SKU is closed already
    assert [(m["action"], m["actor"]) for m in ended["log"]] == [
        ("create", "planner"),
        ("start", "ops-anna"),
        ("pin", "host"),
        ("restock", "ops-ben"),
        ("restock", "ops-ben"),
        ("transfer", "ops-ben"),
        ("transfer", "ops-ben"),
        ("delist", "ops-ben"),
        ("relist", "ops-ben"),
        ("skip", "host"),
        ("unpin", "host"),
        ("end", "ops-anna"),
    ]
    assert ended["version"] == 12
    assert {m["at_ms"] for m in ended["log"]} == {NOW_MS}


async def test_the_events_carry_what_the_bodies_said(api: Api) -> None:
    await api.live()
    eta = datetime(2025, 6, 15, 21, 30, tzinfo=SHANGHAI)
    await api.ok("/sessions/evening/pin", {"sku": "lipstick", "duration_s": 90})
    for body in (
        {"action": "restock", "sku": "lipstick", "quantity": 5, "batch_id": "po-7"},
        {"action": "restock", "sku": "lipstick", "quantity": 8, "eta": eta.isoformat()},
        {
            "action": "transfer",
            "sku": "lipstick",
            "quantity": 3,
            "from_warehouse": "west",
            "warehouse": "east",
            "eta": eta.isoformat(),
        },
        {
            "action": "transfer",
            "sku": "flash-01",
            "quantity": 4,
            "from_channel": "tiktok-room",
            "to_channel": "douyin-room",
        },
    ):
        await api.ok("/sessions/evening/moves", body)

    sent = {type(event): event for event in api.store.sent}
    opened = sent[SessionSkuOpened]
    assert isinstance(opened, SessionSkuOpened)
    pin = sent[ChannelPinned]
    assert isinstance(pin, ChannelPinned)
    assert (pin.duration_ms, pin.expected_units_per_s) == (90_000, 50)
    received = sent[StockReceived]
    assert isinstance(received, StockReceived)
    assert (received.quantity, received.batch_id, received.warehouse) == (5, "po-7", "main")
    announced = [e for e in api.store.sent if isinstance(e, StockIncomingAnnounced)]
    eta_ms = int(eta.timestamp() * 1000)
    assert [(a.quantity, a.warehouse, a.eta_ms) for a in announced] == [
        (8, "main", eta_ms),
        (3, "east", eta_ms),
    ]
    out = sent[StockTransferredOut]
    assert isinstance(out, StockTransferredOut)
    assert (out.warehouse, out.destination) == ("west", "east")
    moved = sent[QuotaMoved]
    assert isinstance(moved, QuotaMoved)
    assert (moved.sku, moved.from_channel, moved.to_channel, moved.units) == (
        "flash-01",
        "tiktok-room",
        "douyin-room",
        4,
    )
    assert {event.event_time_ms for event in api.store.sent} == {NOW_MS}


async def test_starting_again_resends_the_events_and_keeps_the_version(api: Api) -> None:
    await api.live()
    first = list(api.store.sent)

    again = await api.ok("/sessions/evening/start")

    assert again["version"] == 2
    assert again["events_sent"] == ["session.sku_opened"] * 2
    assert api.store.sent == first + first


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"action": "restock", "sku": "lipstick"}, "body: Value error, restock needs a quantity"),
        (
            {"action": "transfer", "sku": "lipstick", "quantity": 5},
            "body: Value error, a transfer from a warehouse needs from_warehouse and eta",
        ),
        (
            {"action": "transfer", "sku": "lipstick", "quantity": 5, "from_warehouse": "west"},
            "body: Value error, a transfer from a warehouse needs from_warehouse and eta",
        ),
        (
            {"action": "transfer", "sku": "lipstick", "quantity": 5, "to_channel": "tiktok-room"},
            "body: Value error, a transfer between rooms needs from_channel and to_channel",
        ),
        (
            {"action": "restock", "sku": "lipstick", "quantity": 0},
            "quantity: Input should be greater than or equal to 1",
        ),
        (
            {"action": "restock", "sku": "lipstick", "quantity": 5, "eta": "in an hour"},
            "eta: Input should be a valid datetime",
        ),
        ({"action": "steal", "sku": "lipstick"}, "action: Input should be 'restock'"),
        ({"action": "skip"}, "sku: Field required"),
    ],
    ids=[
        "restock without quantity",
        "transfer without source or eta",
        "transfer without eta",
        "transfer with one room",
        "no units",
        "eta not a time",
        "unknown action",
        "no sku",
    ],
)
async def test_an_incomplete_move_is_400_and_changes_nothing(
    api: Api, body: dict[str, Any], problem: str
) -> None:
    await api.live()
    before = api.store.sessions["evening"]

    status, answer = await api.post("/sessions/evening/moves", body)

    assert status == 400
    assert any(p.startswith(problem) for p in answer["problems"]), answer["problems"]
    assert api.store.sessions["evening"] == before


@pytest.mark.parametrize(
    "body",
    [{"sku": "lipstick", "duration_s": 0}, {"sku": "lipstick", "expected_units_per_s": 0}],
    ids=["no duration", "no rate"],
)
async def test_a_pin_without_a_duration_or_rate_is_400(api: Api, body: dict[str, Any]) -> None:
    await api.live()

    status, _ = await api.post("/sessions/evening/pin", body)

    assert status == 400
    assert api.store.sessions["evening"].pinned is None


# --- watching ---------------------------------------------------------------------------


async def test_show_answers_the_session_with_the_boards_rows(make_api: MakeApi) -> None:
    def live_board(session: LiveSession) -> list[dict[str, Any]]:
        return [
            {"sku": item.sku, "alert": "low", "quotas": {"douyin-room": 7}}
            for item in session.lineup
        ]

    api = await make_api(board=live_board)
    await api.live()

    status, view = await api.get("/sessions/evening")

    assert status == 200
    assert view["board"] == [
        {"sku": "flash-01", "alert": "low", "quotas": {"douyin-room": 7}},
        {"sku": "lipstick", "alert": "low", "quotas": {"douyin-room": 7}},
    ]
    assert view["state"] == "live"
    assert "events_sent" not in view


async def test_every_session_is_listed_by_its_start(api: Api) -> None:
    later = datetime(2025, 6, 16, 20, tzinfo=SHANGHAI)
    await api.post("/sessions", plan_body())
    await api.post(
        "/sessions",
        plan_body(
            session_id="morning",
            starts_at=later.isoformat(),
            ends_at=(later + timedelta(hours=1)).isoformat(),
        ),
    )
    await api.ok("/sessions/evening/start")

    status, listed = await api.get("/sessions")

    assert status == 200
    assert [(s["session_id"], s["state"], s["version"]) for s in listed] == [
        ("evening", "live", 2),
        ("morning", "planned", 1),
    ]
    assert set(listed[0]) == {
        "session_id",
        "title",
        "state",
        "starts_at",
        "ends_at",
        "channels",
        "pinned",
        "version",
    }
