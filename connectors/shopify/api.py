"""What Shopify's Admin API (GraphQL, version 2026-04) and its webhooks publish, as
constants the connector and the mock platform share.

Only names, codes and paths live here; each side builds and reads payloads on its own
(``wire`` and ``mapping`` for the connector, the ``mock_*`` modules for the platform), so
a misread shape shows up as a failing test rather than as a shared mistake. Tags follow
the research notes: [D] documented, [U] inferred and kept out of the connector's logic.
"""

from __future__ import annotations

from typing import Final

API_VERSION: Final = "2026-04"
GRAPHQL_ROUTE: Final = "/admin/api/{version}/graphql.json"
ORDER_ROUTE: Final = "/admin/api/{version}/orders/{order_id}.json"
"""REST (legacy since 2024-10 [D]); used only to fetch an order a webhook did not carry."""

ACCESS_TOKEN_HEADER: Final = "X-Shopify-Access-Token"
REST_CALL_LIMIT_HEADER: Final = "X-Shopify-Shop-Api-Call-Limit"

# Webhook headers [D], lower-case as our ingress hands them over.
HMAC_HEADER: Final = "x-shopify-hmac-sha256"
TOPIC_HEADER: Final = "x-shopify-topic"
SHOP_DOMAIN_HEADER: Final = "x-shopify-shop-domain"
WEBHOOK_ID_HEADER: Final = "x-shopify-webhook-id"
TRIGGERED_AT_HEADER: Final = "x-shopify-triggered-at"

# Order webhook topics [D]; refunds/create carries the refund, not the order.
ORDERS_CREATE: Final = "orders/create"
ORDERS_PAID: Final = "orders/paid"
ORDERS_CANCELLED: Final = "orders/cancelled"
ORDERS_UPDATED: Final = "orders/updated"
REFUNDS_CREATE: Final = "refunds/create"
ORDER_TOPICS: Final = frozenset({ORDERS_CREATE, ORDERS_PAID, ORDERS_CANCELLED, ORDERS_UPDATED})

# inventorySetQuantities user error codes [D].
CHANGE_FROM_QUANTITY_STALE: Final = "CHANGE_FROM_QUANTITY_STALE"
INVALID_INVENTORY_ITEM: Final = "INVALID_INVENTORY_ITEM"
INVALID_LOCATION: Final = "INVALID_LOCATION"
INVALID_NAME: Final = "INVALID_NAME"
INVALID_QUANTITY_NEGATIVE: Final = "INVALID_QUANTITY_NEGATIVE"
IDEMPOTENCY_CONCURRENT_REQUEST: Final = "IDEMPOTENCY_CONCURRENT_REQUEST"
IDEMPOTENCY_KEY_PARAMETER_MISMATCH: Final = "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"
IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED: Final = "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED"

# Top-level GraphQL error codes (errors[].extensions.code) [D].
THROTTLED: Final = "THROTTLED"
MAX_COST_EXCEEDED: Final = "MAX_COST_EXCEEDED"
INTERNAL_SERVER_ERROR: Final = "INTERNAL_SERVER_ERROR"

AVAILABLE: Final = "available"
"""The inventory quantity name a live room sells from."""
MAX_INPUT_ITEMS: Final = 250
"""Input arrays (and ``nodes(ids:)``) are capped at 250 items [D]."""
MAX_QUERY_COST: Final = 1000
"""A single query may cost at most 1000 points [D]."""

# Standard plan cost bucket [D]: restores 100 points a second; the bucket size the mock
# uses by default follows the current docs' Standard plan.
STANDARD_RESTORE_RATE: Final = 100.0
STANDARD_MAXIMUM_AVAILABLE: Final = 2000.0

INVENTORY_ITEM_GID: Final = "gid://shopify/InventoryItem/"
LOCATION_GID: Final = "gid://shopify/Location/"
ORDER_GID: Final = "gid://shopify/Order/"


def inventory_item_gid(item_id: str) -> str:
    return INVENTORY_ITEM_GID + item_id


def location_gid(location_id: str) -> str:
    return LOCATION_GID + location_id


def gid_number(gid: str, prefix: str) -> str | None:
    """The numeric id of ``gid`` when it is one of ``prefix``'s kind, else None."""
    if not gid.startswith(prefix):
        return None
    number = gid[len(prefix) :]
    return number if number.isascii() and number.isdigit() else None


def graphql_path(version: str) -> str:
    return GRAPHQL_ROUTE.format(version=version)


def order_path(version: str, order_id: str) -> str:
    return ORDER_ROUTE.format(version=version, order_id=order_id)
