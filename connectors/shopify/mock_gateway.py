"""The mock shop's Admin API front door: token check, scripted faults, rate limits, and
the two endpoints behind them (GraphQL and the REST order read).

Shopify signs no API call, so the access token is the whole proof; a bad one gets the
documented 401 before anything else is looked at. Scripted faults (503s, throttles, lost
answers, a sale racing a write) sit here too, so tests can place them between any two
calls.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from aiohttp import web

from connectors.mock_support import DeliveryCounts
from connectors.shopify import api
from connectors.shopify.mock_bucket import Admission, CostBucket, RestBucket
from connectors.shopify.mock_graphql import (
    GraphQLExecutor,
    GraphQLRefusal,
    Operation,
    parse_operation,
)
from connectors.shopify.mock_payloads import order_payload
from connectors.shopify.mock_state import ShopBooks

INVALID_TOKEN: Final = (
    "[API] Invalid API key or access token (unrecognized login or wrong password)"
)
REST_RETRY_AFTER: Final = "2.0"
REST_THROTTLED: Final = (
    "Exceeded 2 calls per second for api client. Reduce request rates to resume "
    "uninterrupted service."
)


@dataclass(slots=True)
class MockStats:
    api_calls: int = 0
    writes_applied: int = 0
    writes_stale: int = 0
    writes_replayed: int = 0
    writes_rejected: int = 0
    """Sets refused with a user error other than a stale ``changeFromQuantity``."""
    rejected_auth: int = 0
    """Calls refused for a missing or wrong access token."""
    throttled: int = 0
    failed: int = 0
    lost_answers: int = 0
    orders_fetched: int = 0
    deliveries: DeliveryCounts = field(default_factory=DeliveryCounts)

    @property
    def writes_rejected_signature(self) -> int:
        """Shopify signs no API call; its only proof is the token, so this counts those."""
        return self.rejected_auth


class AdminGateway:
    """Serves ``books`` to one app holding ``access_token``, at API ``api_version``."""

    def __init__(
        self,
        books: ShopBooks,
        stats: MockStats,
        *,
        access_token: str,
        api_version: str,
        bucket: CostBucket,
        rest_bucket: RestBucket,
    ) -> None:
        self.graphql = GraphQLExecutor(books)
        self._books = books
        self._stats = stats
        self._access_token = access_token
        self._api_version = api_version
        self._bucket = bucket
        self._rest_bucket = rest_bucket
        self.throttles = 0
        self.failures = 0
        self.lost_answers = 0
        self.before_write: deque[Callable[[], object]] = deque()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(api.GRAPHQL_ROUTE, self._graphql_call)
        app.router.add_get(api.ORDER_ROUTE, self._order_call)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    def _admit(self, request: web.Request) -> web.Response | None:
        """The gateway's answer when a call does not get through, else None."""
        self._stats.api_calls += 1
        if request.match_info["version"] != self._api_version:
            return _json({"errors": "Not Found"}, 404)
        if request.headers.get(api.ACCESS_TOKEN_HEADER) != self._access_token:
            self._stats.rejected_auth += 1
            return _json({"errors": INVALID_TOKEN}, 401)
        if self.failures:
            self.failures -= 1
            self._stats.failed += 1
            return _json({"errors": "Service Unavailable"}, 503)
        return None

    async def _graphql_call(self, request: web.Request) -> web.Response:
        refused = self._admit(request)
        if refused is not None:
            return refused
        try:
            operation = parse_operation(await request.read())
            cost = operation.cost()
        except GraphQLRefusal as refusal:
            return _json({"errors": [_error(str(refusal), refusal.code)]})
        if cost > api.MAX_QUERY_COST:
            message = f"Query cost is {cost}, which exceeds the single query max cost limit."
            return _json({"errors": [_error(message, api.MAX_COST_EXCEEDED)]})
        if self.throttles:
            self.throttles -= 1
            return self._throttled(self._bucket.refused(cost))
        admission = self._bucket.admit(cost)
        if not admission.admitted:
            return self._throttled(admission.cost)
        return self._run(operation, admission)

    def _run(self, operation: Operation, admission: Admission) -> web.Response:
        is_write = operation.kind == "mutation"
        if is_write:
            actions, self.before_write = self.before_write, deque()
            for action in actions:  # an action may queue one for the write after this
                action()
        replays = self.graphql.replays
        try:
            data, actual = self.graphql.execute(operation)
        except GraphQLRefusal as refusal:
            cost = self._bucket.refund(admission, 1)
            errors = [_error(str(refusal), refusal.code)]
            return _json({"errors": errors, "extensions": {"cost": cost}})
        cost = self._bucket.refund(admission, actual)
        if is_write:
            self._count_write(data, replayed=self.graphql.replays > replays)
            if self.lost_answers:
                self.lost_answers -= 1
                self._stats.lost_answers += 1
                return _json({"errors": "Gateway Timeout"}, 504)
        return _json({"data": data, "extensions": {"cost": cost}})

    def _count_write(self, data: dict[str, Any], *, replayed: bool) -> None:
        codes = {error["code"] for error in data["inventorySetQuantities"]["userErrors"]}
        if replayed:
            self._stats.writes_replayed += 1
        elif not codes:
            self._stats.writes_applied += 1
        elif codes == {api.CHANGE_FROM_QUANTITY_STALE}:
            self._stats.writes_stale += 1
        else:
            self._stats.writes_rejected += 1

    def _throttled(self, cost: dict[str, Any]) -> web.Response:
        self._stats.throttled += 1
        error = _error("Throttled", api.THROTTLED)
        error["extensions"]["documentation"] = "https://shopify.dev/api/usage/rate-limits"
        return _json({"errors": [error], "extensions": {"cost": cost}})

    async def _order_call(self, request: web.Request) -> web.Response:
        refused = self._admit(request)
        if refused is not None:
            return refused
        if self.throttles:
            self.throttles -= 1
            return self._rest_throttled(f"{self._rest_bucket.size}/{self._rest_bucket.size}")
        admitted, call_limit, _ = self._rest_bucket.admit()
        if not admitted:
            return self._rest_throttled(call_limit)
        headers = {api.REST_CALL_LIMIT_HEADER: call_limit}
        order_id = request.match_info["order_id"]
        order = self._books.find_order(int(order_id)) if order_id.isdigit() else None
        if order is None:
            return _json({"errors": "Not Found"}, 404, headers)
        self._stats.orders_fetched += 1
        return _json({"order": order_payload(order)}, 200, headers)

    def _rest_throttled(self, call_limit: str) -> web.Response:
        self._stats.throttled += 1
        headers = {"Retry-After": REST_RETRY_AFTER, api.REST_CALL_LIMIT_HEADER: call_limit}
        return _json({"errors": REST_THROTTLED}, 429, headers)

    async def _not_found(self, request: web.Request) -> web.Response:
        return _json({"errors": "Not Found"}, 404)


def _error(message: str, code: str) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code}}


def _json(
    document: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(document),
        status=status,
        headers=headers,
        content_type="application/json",
    )
