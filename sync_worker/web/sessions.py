"""The live team's session API: plan, start, pin, move stock, end, and watch.

Bodies are validated here, at the edge (pydantic); the commands themselves are the pure
functions of ``domain.live_session``, run by the session store. Every command names its
``actor``, which goes into the session's log and onto every stock event it causes.

    POST /sessions                    create (the plan: schedule, rooms, lineup)
    GET  /sessions                    every session
    GET  /sessions/{id}               the session and its board, SKU by SKU
    POST /sessions/{id}/start | /end | /unpin
    POST /sessions/{id}/pin           {"sku", "duration_s"?, "expected_units_per_s"?}
    POST /sessions/{id}/moves         {"action": restock | transfer | delist | relist | skip, ...}

400: an invalid body or plan, every problem listed; 404: no such session; 409: the
command does not fit the session (or lost a race to another); 503: Kafka unreachable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar

import orjson
from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from sync_worker.domain import live_session
from sync_worker.domain.events import MAX_STOCK, Tier
from sync_worker.domain.live_session import (
    LineupItem,
    LiveSession,
    Outcome,
    SessionError,
    StoreUnavailable,
)

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Units = Annotated[int, Field(ge=1, le=MAX_STOCK)]
Actor = Annotated[str, Field(min_length=1, max_length=200)]


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    actor: Actor = "api"


class LineupBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    sku: Name
    tier: Tier = Tier.BEST_SELLER
    name: Annotated[str, Field(max_length=200)] = ""
    spec: Annotated[str, Field(max_length=200)] = ""
    cap: Annotated[int, Field(ge=0, le=MAX_STOCK)] | None = None
    buyer_limit: Annotated[int, Field(ge=1, le=MAX_STOCK)] | None = None
    isolate: bool | None = None
    regions_allow: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] = ()
    regions_deny: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] = ()
    warn_percent: Annotated[int, Field(ge=1, le=99)] | None = None
    critical_percent: Annotated[int, Field(ge=1, le=99)] | None = None
    rearm_points: Annotated[int, Field(ge=0, le=50)] = 5
    margin_percent: Annotated[float, Field(ge=-100, le=100)] | None = None
    replenish_quantity: Units | None = None
    replenish_at: AwareDatetime | None = None

    def item(self) -> LineupItem:
        fields = self.model_dump(exclude={"replenish_at"})
        return LineupItem(**fields, replenish_eta_ms=_ms(self.replenish_at))


class CreateBody(_Body):
    session_id: Id
    title: Name
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    channels: Annotated[tuple[Name, ...], Field(min_length=1, max_length=100)]
    lineup: Annotated[tuple[LineupBody, ...], Field(min_length=1, max_length=500)]


class PinBody(_Body):
    sku: Name
    duration_s: Annotated[int, Field(ge=1, le=86_400)] = live_session.DEFAULT_PIN_MS // 1000
    expected_units_per_s: Units = live_session.DEFAULT_PIN_UNITS_PER_S


class MoveBody(_Body):
    action: Literal["restock", "transfer", "delist", "relist", "skip"]
    sku: Name
    quantity: Units | None = None
    warehouse: Name = "main"
    eta: AwareDatetime | None = None
    """Restock or warehouse transfer: when the units arrive (what the host announces)."""
    batch_id: Name | None = None
    """Restock: the announced batch (or transfer) these units close."""
    from_warehouse: Name | None = None
    from_channel: Name | None = None
    to_channel: Name | None = None
    channels: tuple[Name, ...] = ()
    reason: Name = "operator"

    @model_validator(mode="after")
    def _complete(self) -> MoveBody:
        needs_quantity = self.action in ("restock", "transfer")
        if needs_quantity and self.quantity is None:
            raise ValueError(f"{self.action} needs a quantity")
        if self.action == "transfer":
            by_room = self.from_channel is not None or self.to_channel is not None
            if by_room and (self.from_channel is None or self.to_channel is None):
                raise ValueError("a transfer between rooms needs from_channel and to_channel")
            if not by_room and (self.from_warehouse is None or self.eta is None):
                raise ValueError("a transfer from a warehouse needs from_warehouse and eta")
        return self


class Store(Protocol):
    def get(self, session_id: str) -> LiveSession | None: ...
    def all(self) -> list[LiveSession]: ...
    async def run(
        self, session_id: str, command: Callable[[LiveSession | None], Outcome]
    ) -> Outcome: ...


Board = Callable[[LiveSession], list[dict[str, Any]]]
"""Each lineup SKU as the live team watches it: stock left, rate, ETA, alerts, quotas."""
Clock = Callable[[], int]


def session_routes(
    store: Store, board: Board, clock: Clock, *, channels: Collection[str]
) -> list[web.RouteDef]:
    """``channels`` are the configured rooms: a session may stream only on those."""

    async def create(request: web.Request) -> web.Response:
        body = await _body(request, CreateBody)
        planned = LiveSession(
            session_id=body.session_id,
            title=body.title,
            channels=body.channels,
            lineup=tuple(item.item() for item in body.lineup),
            starts_at_ms=_ms(body.starts_at) or 0,
            ends_at_ms=_ms(body.ends_at) or 0,
        )
        # A plan that cannot be a session is a bad request (every problem listed), not a
        # conflict with the stored state.
        unknown = sorted(set(body.channels) - set(channels))
        problems = [f"not configured channels: {', '.join(unknown)}"] if unknown else []
        problems += live_session.plan_problems(planned)
        if problems:
            return _json({"error": "invalid plan", "problems": problems}, status=400)

        def command(current: LiveSession | None) -> Outcome:
            if current is not None:
                raise SessionError(f"session {body.session_id!r} exists already")
            return live_session.create(planned, clock(), body.actor)

        return await _run(store, body.session_id, command, board, status=201)

    async def list_all(_: web.Request) -> web.Response:
        return _json([_summary(session) for session in store.all()])

    async def show(request: web.Request) -> web.Response:
        session = store.get(request.match_info["session_id"])
        if session is None:
            return _error(404, f"no session {request.match_info['session_id']!r}")
        return _json(_view(session, board))

    def simple(
        step: Callable[[LiveSession, int, str], Outcome],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            body = await _body(request, _Body)
            return await _run_existing(
                store, request, lambda s: step(s, clock(), body.actor), board
            )

        return handler

    async def pin(request: web.Request) -> web.Response:
        body = await _body(request, PinBody)

        def command(session: LiveSession) -> Outcome:
            return live_session.pin(
                session,
                body.sku,
                clock(),
                body.actor,
                duration_ms=body.duration_s * 1000,
                units_per_s=body.expected_units_per_s,
            )

        return await _run_existing(store, request, command, board)

    async def move(request: web.Request) -> web.Response:
        body = await _body(request, MoveBody)
        return await _run_existing(store, request, lambda s: _move(s, body, clock()), board)

    return [
        web.post("/sessions", create),
        web.get("/sessions", list_all),
        web.get("/sessions/{session_id}", show),
        web.post("/sessions/{session_id}/start", simple(live_session.start)),
        web.post("/sessions/{session_id}/end", simple(live_session.end)),
        web.post("/sessions/{session_id}/unpin", simple(live_session.unpin)),
        web.post("/sessions/{session_id}/pin", pin),
        web.post("/sessions/{session_id}/moves", move),
    ]


def _move(session: LiveSession, body: MoveBody, now_ms: int) -> Outcome:
    quantity = body.quantity or 0
    match body.action:
        case "restock":
            return live_session.restock(
                session,
                body.sku,
                quantity,
                now_ms,
                body.actor,
                warehouse=body.warehouse,
                eta_ms=_ms(body.eta),
                batch_id=body.batch_id,
            )
        case "transfer" if body.from_channel is not None and body.to_channel is not None:
            return live_session.transfer_between_rooms(
                session, body.sku, quantity, body.from_channel, body.to_channel, now_ms, body.actor
            )
        case "transfer":
            return live_session.transfer_from_warehouse(
                session,
                body.sku,
                quantity,
                body.from_warehouse or "",
                now_ms,
                body.actor,
                eta_ms=_ms(body.eta) or now_ms,
                warehouse=body.warehouse,
            )
        case "delist" | "relist":
            return live_session.set_listing(
                session,
                body.sku,
                body.action == "relist",
                now_ms,
                body.actor,
                channels=body.channels,
                reason=body.reason,
            )
    return live_session.skip(session, body.sku, now_ms, body.actor)


class _UnknownSession(Exception):
    """No session has the id the request names. Its own type, so that a ``KeyError`` from
    a bug inside a command is never mistaken for a 404."""


async def _run_existing(
    store: Store,
    request: web.Request,
    command: Callable[[LiveSession], Outcome],
    board: Board,
) -> web.Response:
    session_id = request.match_info["session_id"]

    def on_stored(current: LiveSession | None) -> Outcome:
        if current is None:
            raise _UnknownSession(session_id)
        return command(current)

    return await _run(store, session_id, on_stored, board)


async def _run(
    store: Store,
    session_id: str,
    command: Callable[[LiveSession | None], Outcome],
    board: Board,
    *,
    status: int = 200,
) -> web.Response:
    try:
        outcome = await store.run(session_id, command)
    except _UnknownSession:
        return _error(404, f"no session {session_id!r}")
    except SessionError as refused:  # including a race lost to another command
        return _error(409, str(refused))
    except StoreUnavailable as error:
        return _error(503, f"Kafka is not reachable, nothing was applied: {error}")
    view = _view(outcome.session, board)
    view["events_sent"] = [event.type for event in outcome.events]
    return _json(view, status=status)


_B = TypeVar("_B", bound=BaseModel)


async def _body(request: web.Request, model: type[_B]) -> _B:
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()
        ]
        raise web.HTTPBadRequest(  # text=, not body=: aiohttp deprecates body on exceptions
            text=orjson.dumps({"error": "invalid request", "problems": problems}).decode(),
            content_type="application/json",
        ) from None


def _summary(session: LiveSession) -> dict[str, Any]:
    return {
        "session_id": session.session_id,
        "title": session.title,
        "state": session.state.value,
        "starts_at": _iso(session.starts_at_ms),
        "ends_at": _iso(session.ends_at_ms),
        "channels": list(session.channels),
        "pinned": session.pinned,
        "version": session.version,
    }


def _view(session: LiveSession, board: Board) -> dict[str, Any]:
    return {
        **_summary(session),
        "lineup": [dataclasses.asdict(item) for item in session.lineup],
        "skipped": list(session.skipped),
        "board": board(session),
        "log": [dataclasses.asdict(move) | {"at": _iso(move.at_ms)} for move in session.moves],
    }


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="seconds")


def _json(body: Any, *, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status=status)
