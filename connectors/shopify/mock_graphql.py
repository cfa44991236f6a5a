"""The mock shop's GraphQL endpoint: the two operations a stock connector uses, executed
against ``ShopBooks`` with the platform's validation, user errors and idempotency.

This is no GraphQL engine. It reads the operation type, the root field and the
``@idempotent`` key from the document, takes arguments from ``variables`` (as every
client sends them), and answers in the documented shape whatever the selection set
asks. Documents it does not understand are refused as GraphQL does, with top-level
``errors``. Costs follow the documented rule of thumb (an object 1 point, a mutation 10);
the real calculator is not published to the point.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from connectors.shopify import api
from connectors.shopify.mock_state import ShopBooks

MUTATION_COST: Final = 10
MAX_QUANTITY: Final = 1_000_000_000
REASONS: Final = frozenset(
    {"correction", "cycle_count_available", "damaged", "movement_created", "received",
     "restock", "safety_stock", "shrinkage", "other"}
)  # fmt: skip

_COMMENT = re.compile(r"#[^\n]*")
_OPERATION = re.compile(r"^\s*(?:(query|mutation)\b)?[^{]*\{\s*(?:\w+\s*:\s*)?(\w+)", re.S)
_IDEMPOTENT = re.compile(r'@idempotent\s*\(\s*key\s*:\s*(?:\$(\w+)|"((?:[^"\\]|\\.)*)")\s*\)')
_ARGUMENT = r"{field}\s*\(\s*{name}\s*:\s*\$(\w+)\s*\)"


class GraphQLRefusal(Exception):
    """A document refused before it ran: becomes a top-level ``errors`` entry."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Operation:
    kind: str
    root: str
    document: str
    variables: dict[str, Any]

    def variable(self, field_name: str, argument: str) -> Any:
        pattern = _ARGUMENT.format(field=field_name, name=argument)
        match = re.search(pattern, self.document)
        if match is None:
            raise GraphQLRefusal(
                f"Argument '{argument}' on Field '{field_name}' must be passed as a variable "
                "to this mock",
                "argumentLiteralsIncompatible",
            )
        if match.group(1) not in self.variables:
            raise GraphQLRefusal(
                f"Variable ${match.group(1)} of type was provided invalid value",
                "INVALID_VARIABLE",
            )
        return self.variables[match.group(1)]

    def idempotency_key(self) -> str | None:
        match = _IDEMPOTENT.search(self.document)
        if match is None:
            return None
        if match.group(1) is None:
            return match.group(2)
        key = self.variables.get(match.group(1))
        return key if isinstance(key, str) and key else None

    def cost(self) -> int:
        if self.kind == "mutation":
            return MUTATION_COST
        if self.root == "nodes":
            ids = self.variable("nodes", "ids")
            return 1 + 2 * len(ids) if isinstance(ids, list) else 1
        return 2


def parse_operation(body: bytes) -> Operation:
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise GraphQLRefusal("Invalid JSON in request body", "BAD_REQUEST") from None
    if not isinstance(request, dict) or not isinstance(request.get("query"), str):
        raise GraphQLRefusal("Parameter 'query' is missing", "BAD_REQUEST")
    variables = request.get("variables") or {}
    if not isinstance(variables, dict):
        raise GraphQLRefusal("Parameter 'variables' must be an object", "BAD_REQUEST")
    document = _COMMENT.sub("", request["query"])
    match = _OPERATION.match(document)
    if match is None:
        raise GraphQLRefusal("syntax error, unexpected end of file", "parseError")
    return Operation(match.group(1) or "query", match.group(2), document, variables)


@dataclass(slots=True)
class _Remembered:
    fingerprint: bytes
    data: dict[str, Any]


@dataclass(slots=True)
class GraphQLExecutor:
    """Runs operations against ``books``; remembers every ``@idempotent`` key it saw."""

    books: ShopBooks
    replays: int = 0
    _keys: dict[str, _Remembered] = field(default_factory=dict)
    _groups: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def execute(self, operation: Operation) -> tuple[dict[str, Any], int]:
        """(``data``, actual cost)."""
        if operation.kind == "query" and operation.root == "nodes":
            return self._nodes(operation)
        if operation.kind == "mutation" and operation.root == "inventorySetQuantities":
            return self._set_quantities(operation), MUTATION_COST
        parent = "Mutation" if operation.kind == "mutation" else "QueryRoot"
        raise GraphQLRefusal(
            f"Field '{operation.root}' doesn't exist on type '{parent}'", "undefinedField"
        )

    def forget_keys(self) -> None:
        self._keys.clear()

    def _nodes(self, operation: Operation) -> tuple[dict[str, Any], int]:
        ids = operation.variable("nodes", "ids")
        if not isinstance(ids, list) or not all(isinstance(gid, str) for gid in ids):
            raise GraphQLRefusal(
                "Variable $ids of type [ID!]! was provided invalid value", "INVALID_VARIABLE"
            )
        if len(ids) > api.MAX_INPUT_ITEMS:
            raise GraphQLRefusal(
                f"The input array size of {len(ids)} is greater than the maximum allowed of "
                f"{api.MAX_INPUT_ITEMS}.",
                "MAX_INPUT_SIZE_EXCEEDED",
            )
        location = _number(operation.variable("inventoryLevel", "locationId"), api.LOCATION_GID)
        nodes: list[dict[str, Any] | None] = []
        for gid in ids:
            item = _number(gid, api.INVENTORY_ITEM_GID)
            if item is None or not self.books.knows_item(item):
                nodes.append(None)
                continue
            count = None if location is None else self.books.available(item, location)
            quantities = [{"name": api.AVAILABLE, "quantity": count}]
            level = None if count is None else {"quantities": quantities}
            nodes.append({"id": gid, "inventoryLevel": level})
        return {"nodes": nodes}, 1 + 2 * sum(node is not None for node in nodes)

    def _set_quantities(self, operation: Operation) -> dict[str, Any]:
        key = operation.idempotency_key()
        if key is None:
            raise GraphQLRefusal(
                "The @idempotent directive is required for this mutation.", "BAD_REQUEST"
            )
        payload = operation.variable("inventorySetQuantities", "input")
        fingerprint = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
        remembered = self._keys.get(key)
        if remembered is not None:
            if remembered.fingerprint != fingerprint:
                return _failed(
                    api.IDEMPOTENCY_KEY_PARAMETER_MISMATCH,
                    ["idempotencyKey"],
                    "The same idempotency key was used with different parameters.",
                )
            self.replays += 1
            return remembered.data
        data = self._apply(payload)
        self._keys[key] = _Remembered(fingerprint, data)
        return data

    def _apply(self, payload: object) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise GraphQLRefusal("Variable $input was provided invalid value", "INVALID_VARIABLE")
        if payload.get("name") not in (api.AVAILABLE, "on_hand"):
            return _failed(api.INVALID_NAME, ["input", "name"], "The quantity name is invalid.")
        if payload.get("reason") not in REASONS:
            return _failed("INVALID_REASON", ["input", "reason"], "The reason is invalid.")
        uri = payload.get("referenceDocumentUri")
        if uri is not None and (not isinstance(uri, str) or ":" not in uri):
            return _failed(
                "INVALID_REFERENCE_DOCUMENT", ["input", "referenceDocumentUri"], "Not a URI."
            )
        quantities = payload.get("quantities")
        if not isinstance(quantities, list) or not 0 < len(quantities) <= api.MAX_INPUT_ITEMS:
            raise GraphQLRefusal("Variable $input was provided invalid value", "INVALID_VARIABLE")
        changes: list[tuple[int, int, int, int]] = []
        for index, entry in enumerate(quantities):
            checked = self._check(index, entry)
            if isinstance(checked, dict):
                return checked
            changes.append(checked)
        for item, location, _, target in changes:  # all or nothing: every check passed
            self.books.set_available(item, location, target)
        group = {
            "id": f"gid://shopify/InventoryAdjustmentGroup/{next(self._groups)}",
            "changes": [
                {"name": api.AVAILABLE, "delta": target - before, "quantityAfterChange": target}
                for _, _, before, target in changes
            ],
        }
        return _payload(group, [])

    def _check(self, index: int, entry: object) -> tuple[int, int, int, int] | dict[str, Any]:
        """(item, location, count before, target), or the failed payload."""
        path = ["input", "quantities", str(index)]
        if not isinstance(entry, dict):
            raise GraphQLRefusal("Variable $input was provided invalid value", "INVALID_VARIABLE")
        if "changeFromQuantity" not in entry:
            raise GraphQLRefusal(
                "Argument 'changeFromQuantity' on InputObject 'InventoryQuantityInput' is "
                "required. Pass null to opt out of the compare check.",
                "missingRequiredInputObjectAttribute",
            )
        item = _number(entry.get("inventoryItemId"), api.INVENTORY_ITEM_GID)
        if item is None or not self.books.knows_item(item):
            return _failed(
                api.INVALID_INVENTORY_ITEM,
                [*path, "inventoryItemId"],
                "The specified inventory item could not be found.",
            )
        location = _number(entry.get("locationId"), api.LOCATION_GID)
        if location != self.books.location_id:
            return _failed(
                api.INVALID_LOCATION,
                [*path, "locationId"],
                "The specified location could not be found.",
            )
        before = self.books.available(item, location)
        if before is None:
            return _failed(
                "ITEM_NOT_STOCKED_AT_LOCATION",
                [*path, "locationId"],
                "The item is not stocked at the location.",
            )
        target = entry.get("quantity")
        if isinstance(target, bool) or not isinstance(target, int):
            raise GraphQLRefusal("Variable $input was provided invalid value", "INVALID_VARIABLE")
        if target < 0:
            return _failed(
                api.INVALID_QUANTITY_NEGATIVE,
                [*path, "quantity"],
                "The quantity can't be negative.",
            )
        if target > MAX_QUANTITY:
            return _failed(
                "INVALID_QUANTITY_TOO_HIGH",
                [*path, "quantity"],
                "The quantity can't be higher than 1,000,000,000.",
            )
        change_from = entry["changeFromQuantity"]
        if change_from is not None and change_from != before:
            return _failed(
                api.CHANGE_FROM_QUANTITY_STALE,
                [*path, "changeFromQuantity"],
                "The specified compare quantity does not match the current quantity.",
            )
        return item, location, before, target


def _number(gid: object, prefix: str) -> int | None:
    if not isinstance(gid, str):
        return None
    number = api.gid_number(gid, prefix)
    return None if number is None else int(number)


def _failed(code: str, path: list[str], message: str) -> dict[str, Any]:
    return _payload(None, [{"code": code, "field": path, "message": message}])


def _payload(group: dict[str, Any] | None, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"inventorySetQuantities": {"inventoryAdjustmentGroup": group, "userErrors": errors}}
