"""``GET /skus/{sku}``: every quantity state of one SKU, as the worker holds it now."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import orjson
from aiohttp import web

from sync_worker.domain.position import SkuPosition

PositionLookup = Callable[[str], SkuPosition | None]


def position_view(position: SkuPosition) -> dict[str, Any]:
    """The position as people read it: totals, per warehouse, incoming batches, reserve."""
    return {
        "sku": position.sku,
        **position.quantities(),
        "version": position.version,
        "reserve": asdict(position.reserve),
        "warehouses": {name: asdict(stock) for name, stock in position.warehouses},
        "incoming_batches": [asdict(batch) for batch in position.incoming],
    }


def stock_routes(lookup: PositionLookup) -> list[web.RouteDef]:
    async def show(request: web.Request) -> web.Response:
        sku = request.match_info["sku"]
        position = lookup(sku)
        if position is None or not position.known:
            body = {"error": f"unknown SKU {sku!r} (no stock event yet, or another worker owns it)"}
            return web.Response(
                status=404, body=orjson.dumps(body), content_type="application/json"
            )
        return web.Response(
            body=orjson.dumps(position_view(position)), content_type="application/json"
        )

    return [web.get("/skus/{sku}", show)]
