"""The pre-live checklist over HTTP, as JSON or CSV (``?format=csv`` or ``Accept: text/csv``).

    GET /checklist?skus=a,b               the named SKUs' stock (no plan)
    GET /sessions/{id}/checklist          the session's lineup: plan beside stock

JSON is ``{"rows": [...]}`` (the session's adds ``session_id``, ``title``,
``starts_at_ms`` and ``channels``); CSV is the rows alone, in the columns of
``domain.checklist``. Errors are always JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Literal

import orjson
from aiohttp import web

from sync_worker.domain.checklist import ChecklistRow, row_to_json, write_csv
from sync_worker.domain.live_session import LiveSession
from sync_worker.domain.position import SkuPosition

PositionLookup = Callable[[str], SkuPosition | None]
SessionLookup = Callable[[str], LiveSession | None]
Format = Literal["json", "csv"]


def checklist_routes(positions: PositionLookup, sessions: SessionLookup) -> list[web.RouteDef]:
    async def by_sku(request: web.Request) -> web.Response:
        chosen = _format(request)
        skus = list(
            dict.fromkeys(
                sku.strip()
                for value in request.query.getall("skus", [])
                for sku in value.split(",")
                if sku.strip()
            )
        )
        if not skus:
            return _error(400, "name the SKUs: /checklist?skus=a,b")
        rows = [ChecklistRow.of(sku, None, positions(sku)) for sku in skus]
        return _answer(chosen, rows, {}, "checklist")

    async def for_session(request: web.Request) -> web.Response:
        chosen = _format(request)
        session_id = request.match_info["session_id"]
        session = sessions(session_id)
        if session is None:
            return _error(404, f"no session {session_id!r}")
        rows = [ChecklistRow.of(item.sku, item, positions(item.sku)) for item in session.lineup]
        head = {
            "session_id": session.session_id,
            "title": session.title,
            "starts_at_ms": session.starts_at_ms,
            "channels": list(session.channels),
        }
        return _answer(chosen, rows, head, f"checklist-{session_id}")

    return [
        web.get("/checklist", by_sku),
        web.get("/sessions/{session_id}/checklist", for_session),
    ]


def _format(request: web.Request) -> Format:
    """``?format=`` wins; otherwise CSV only when Accept prefers it to JSON."""
    chosen = request.query.get("format")
    if chosen == "csv":
        return "csv"
    if chosen == "json":
        return "json"
    if chosen is not None:
        raise web.HTTPBadRequest(
            text=orjson.dumps({"error": f"format {chosen!r}: use csv or json"}).decode(),
            content_type="application/json",
        )
    weights = _accept_weights(request.headers.get("Accept", ""))
    return "csv" if weights.get("text/csv", 0.0) > weights.get("application/json", 0.0) else "json"


def _accept_weights(accept: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for entry in accept.split(","):
        media, *parameters = (part.strip() for part in entry.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[media.lower()] = weight
    return weights


def _answer(
    chosen: Format, rows: Iterable[ChecklistRow], head: dict[str, Any], filename: str
) -> web.Response:
    if chosen == "json":
        body = {**head, "rows": [row_to_json(row) for row in rows]}
        return web.Response(body=orjson.dumps(body), content_type="application/json")
    safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return web.Response(
        text=write_csv(rows),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{safe_name}.csv"'},
    )


def _error(status: int, message: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps({"error": message}), content_type="application/json"
    )
