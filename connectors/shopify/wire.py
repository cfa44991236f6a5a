"""The connector's GraphQL documents and the reading of their answers, pure.

Arguments travel as variables, never spliced into the document, so a SKU or key can not
change what the query means. Answers are read defensively: a shape this module does not
recognise raises ``InvalidAnswer`` and the connector treats it as a passing glitch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final

import orjson

from connectors.shopify import api

LEVELS_QUERY: Final = """
query StockcastAvailable($ids: [ID!]!, $locationId: ID!) {
  nodes(ids: $ids) {
    ... on InventoryItem {
      id
      inventoryLevel(locationId: $locationId) {
        quantities(names: ["available"]) { name quantity }
      }
    }
  }
}
"""

SET_MUTATION: Final = """
mutation StockcastSetAvailable($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id changes { name delta quantityAfterChange } }
    userErrors { code field message }
  }
}
"""

_KEY_NAMESPACE: Final = uuid.UUID("5f0c8a52-2b7e-4f43-9a55-7c1f6f7d3e21")


class InvalidAnswer(ValueError):
    """The platform answered something that is not the documented shape."""


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    """``extensions.cost`` of an answer: what the call cost and what is left."""

    requested_cost: float
    maximum_available: float
    currently_available: float
    restore_rate: float

    def wait_s(self) -> float:
        """How long until the bucket holds the requested cost again."""
        if self.restore_rate <= 0:
            return 1.0
        return max(0.0, (self.requested_cost - self.currently_available) / self.restore_rate)


@dataclass(frozen=True, slots=True)
class GraphQLError:
    message: str
    code: str | None


@dataclass(frozen=True, slots=True)
class GraphQLAnswer:
    data: dict[str, Any] | None
    errors: tuple[GraphQLError, ...]
    cost: ThrottleStatus | None


@dataclass(frozen=True, slots=True)
class UserError:
    code: str | None
    message: str


@dataclass(frozen=True, slots=True)
class SetAnswer:
    """What ``inventorySetQuantities`` did: the count after (None when it changed nothing
    or did not say) and its user errors."""

    quantity_after: int | None
    user_errors: tuple[UserError, ...]


def idempotency_key(update_key: str, item_gid: str, change_from: int, target: int) -> str:
    """The ``@idempotent`` key of one set: the same logical write from the same read gives
    the same key, so a resend is replayed; a new read (or target) is a new request and
    needs a new key, as a reused key with another payload is refused."""
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{update_key}|{item_gid}|{change_from}|{target}"))


def encode_levels_query(item_gids: list[str], location_gid: str) -> bytes:
    variables = {"ids": item_gids, "locationId": location_gid}
    return orjson.dumps({"query": LEVELS_QUERY, "variables": variables})


def encode_set(
    *, item_gid: str, location_gid: str, target: int, change_from: int, key: str, reference: str
) -> bytes:
    quantity = {
        "inventoryItemId": item_gid,
        "locationId": location_gid,
        "quantity": target,
        "changeFromQuantity": change_from,
    }
    payload = {
        "name": api.AVAILABLE,
        "reason": "correction",
        "referenceDocumentUri": reference,
        "quantities": [quantity],
    }
    return orjson.dumps({"query": SET_MUTATION, "variables": {"input": payload, "key": key}})


def decode_answer(body: bytes) -> GraphQLAnswer:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidAnswer(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidAnswer("the answer is not a JSON object")
    data = document.get("data")
    if data is not None and not isinstance(data, dict):
        raise InvalidAnswer("'data' is not an object")
    raw_errors = document.get("errors", [])
    if not isinstance(raw_errors, list):
        raise InvalidAnswer("'errors' is not a list")
    errors = tuple(_error(entry) for entry in raw_errors)
    extensions = document.get("extensions")
    cost = _cost(extensions.get("cost")) if isinstance(extensions, dict) else None
    if data is None and not errors:
        raise InvalidAnswer("neither 'data' nor 'errors'")
    return GraphQLAnswer(data, errors, cost)


def decode_levels(data: dict[str, Any]) -> dict[str, int | None]:
    """``nodes`` -> available count by inventory item gid; None when the item is not
    stocked at the location. Unknown ids (null nodes) are left out."""
    nodes = data.get("nodes")
    if not isinstance(nodes, list):
        raise InvalidAnswer("'nodes' is not a list")
    levels: dict[str, int | None] = {}
    for node in nodes:
        if node is None:
            continue
        if not isinstance(node, dict) or not isinstance(node.get("id"), str):
            raise InvalidAnswer("a node without an id")
        level = node.get("inventoryLevel")
        levels[node["id"]] = None if level is None else _available(level)
    return levels


def decode_set(data: dict[str, Any]) -> SetAnswer:
    payload = data.get("inventorySetQuantities")
    if not isinstance(payload, dict):
        raise InvalidAnswer("'inventorySetQuantities' is not an object")
    raw_errors = payload.get("userErrors")
    if not isinstance(raw_errors, list):
        raise InvalidAnswer("'userErrors' is not a list")
    user_errors = tuple(_user_error(entry) for entry in raw_errors)
    group = payload.get("inventoryAdjustmentGroup")
    after = None
    if isinstance(group, dict):
        changes = group.get("changes")
        if not isinstance(changes, list):
            raise InvalidAnswer("'changes' is not a list")
        for change in changes:
            if isinstance(change, dict) and change.get("name") == api.AVAILABLE:
                after = _int(change.get("quantityAfterChange"), "quantityAfterChange")
    elif group is not None:
        raise InvalidAnswer("'inventoryAdjustmentGroup' is not an object")
    return SetAnswer(after, user_errors)


def _available(level: object) -> int:
    if not isinstance(level, dict) or not isinstance(level.get("quantities"), list):
        raise InvalidAnswer("'inventoryLevel' without quantities")
    for quantity in level["quantities"]:
        if isinstance(quantity, dict) and quantity.get("name") == api.AVAILABLE:
            return _int(quantity.get("quantity"), "quantity")
    raise InvalidAnswer("no 'available' quantity")


def _error(entry: object) -> GraphQLError:
    if not isinstance(entry, dict):
        raise InvalidAnswer("an error that is not an object")
    extensions = entry.get("extensions")
    code = extensions.get("code") if isinstance(extensions, dict) else None
    return GraphQLError(str(entry.get("message", "")), code if isinstance(code, str) else None)


def _user_error(entry: object) -> UserError:
    if not isinstance(entry, dict):
        raise InvalidAnswer("a user error that is not an object")
    code = entry.get("code")
    return UserError(code if isinstance(code, str) else None, str(entry.get("message", "")))


def _cost(cost: object) -> ThrottleStatus | None:
    if not isinstance(cost, dict):
        return None
    status = cost.get("throttleStatus")
    if not isinstance(status, dict):
        return None
    try:
        return ThrottleStatus(
            requested_cost=float(cost["requestedQueryCost"]),
            maximum_available=float(status["maximumAvailable"]),
            currently_available=float(status["currentlyAvailable"]),
            restore_rate=float(status["restoreRate"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAnswer(f"{name!r} is not an integer")
    return value
