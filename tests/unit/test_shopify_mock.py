"""The mock shop speaks Shopify's wire format: raw HTTP against it, no connector.

Shopify signs no Admin API request and puts no timestamp on one: the access token is the
whole proof, so "badly signed" here means a missing or wrong token, which gets the
documented 401. Webhook signatures and trigger-time windows are checked on the receiving
side (``test_shopify_connector``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession

from connectors.shopify.mock import ShopifyMock
from connectors.shopify.signing import webhook_signature_valid
from connectors.shopify.wire import LEVELS_QUERY, SET_MUTATION

TOKEN = "shpat_mock_token"
SECRET = "shpss_mock_secret"
LOCATION = "gid://shopify/Location/65544149100"


class Ticks:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
async def mock(ticks: Ticks) -> AsyncIterator[ShopifyMock]:
    platform = ShopifyMock(access_token=TOKEN, client_secret=SECRET, monotonic=ticks)
    platform.add_listing("lipstick", 10)
    await platform.start()
    yield platform
    await platform.stop()


@pytest.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session


async def call(
    http: ClientSession,
    mock: ShopifyMock,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = TOKEN,
    version: str = "2026-04",
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Shopify-Access-Token"] = token
    body = orjson.dumps({"query": query, "variables": variables or {}})
    url = f"{mock.url}/admin/api/{version}/graphql.json"
    async with http.post(url, data=body, headers=headers) as response:
        return response.status, orjson.loads(await response.read())


def item_gid(mock: ShopifyMock, sku: str = "lipstick") -> str:
    return "gid://shopify/InventoryItem/" + mock.listings()[sku].split("@")[0]


def set_input(mock: ShopifyMock, quantity: int, change_from: int | None) -> dict[str, Any]:
    return {
        "name": "available",
        "reason": "correction",
        "referenceDocumentUri": "gid://stockcast/StockUpdate/1",
        "quantities": [
            {
                "inventoryItemId": item_gid(mock),
                "locationId": LOCATION,
                "quantity": quantity,
                "changeFromQuantity": change_from,
            }
        ],
    }


async def set_quantity(
    http: ClientSession, mock: ShopifyMock, quantity: int, change_from: int | None, key: str
) -> dict[str, Any]:
    status, answer = await call(
        http, mock, SET_MUTATION, {"input": set_input(mock, quantity, change_from), "key": key}
    )
    assert status == 200
    payload: dict[str, Any] = answer["data"]["inventorySetQuantities"]
    return payload


@pytest.mark.parametrize("token", [None, "shpat_wrong"])
async def test_a_missing_or_wrong_token_gets_the_documented_401(
    http: ClientSession, mock: ShopifyMock, token: str | None
) -> None:
    status, answer = await call(http, mock, LEVELS_QUERY, token=token)

    assert status == 401
    assert answer == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }
    assert mock.stats.rejected_auth == mock.stats.writes_rejected_signature == 1


async def test_an_unknown_version_or_path_is_404(http: ClientSession, mock: ShopifyMock) -> None:
    status, _ = await call(http, mock, LEVELS_QUERY, version="2019-01")
    async with http.get(f"{mock.url}/admin/oauth/nothing") as response:
        other = response.status

    assert (status, other) == (404, 404)


async def test_every_answer_carries_its_cost(http: ClientSession, mock: ShopifyMock) -> None:
    variables = {"ids": [item_gid(mock), "gid://shopify/InventoryItem/1"], "locationId": LOCATION}

    status, answer = await call(http, mock, LEVELS_QUERY, variables)

    assert status == 200
    assert answer["data"]["nodes"] == [
        {
            "id": item_gid(mock),
            "inventoryLevel": {"quantities": [{"name": "available", "quantity": 10}]},
        },
        None,
    ]
    assert answer["extensions"]["cost"] == {
        "requestedQueryCost": 5,
        "actualQueryCost": 3,
        "throttleStatus": {
            "maximumAvailable": 2000.0,
            "currentlyAvailable": 1997,
            "restoreRate": 100.0,
        },
    }


async def test_a_set_reports_its_change(http: ClientSession, mock: ShopifyMock) -> None:
    payload = await set_quantity(http, mock, 7, 10, "key-1")

    assert payload["userErrors"] == []
    assert payload["inventoryAdjustmentGroup"]["changes"] == [
        {"name": "available", "delta": -3, "quantityAfterChange": 7}
    ]
    assert mock.displayed("lipstick") == 7


async def test_a_stale_change_from_changes_nothing(http: ClientSession, mock: ShopifyMock) -> None:
    payload = await set_quantity(http, mock, 7, 11, "key-1")

    assert payload["inventoryAdjustmentGroup"] is None
    assert [error["code"] for error in payload["userErrors"]] == ["CHANGE_FROM_QUANTITY_STALE"]
    assert mock.displayed("lipstick") == 10


async def test_a_null_change_from_opts_out_of_the_check(
    http: ClientSession, mock: ShopifyMock
) -> None:
    payload = await set_quantity(http, mock, 4, None, "key-1")

    assert payload["userErrors"] == []
    assert mock.displayed("lipstick") == 4


async def test_a_resent_key_replays_without_applying(
    http: ClientSession, mock: ShopifyMock
) -> None:
    first = await set_quantity(http, mock, 7, 10, "key-1")
    mock.set_displayed("lipstick", 10)

    again = await set_quantity(http, mock, 7, 10, "key-1")

    assert again == first
    assert mock.displayed("lipstick") == 10
    assert mock.stats.writes_replayed == 1


async def test_a_reused_key_with_another_payload_is_refused(
    http: ClientSession, mock: ShopifyMock
) -> None:
    await set_quantity(http, mock, 7, 10, "key-1")

    payload = await set_quantity(http, mock, 5, 7, "key-1")

    assert [e["code"] for e in payload["userErrors"]] == ["IDEMPOTENCY_KEY_PARAMETER_MISMATCH"]
    assert mock.displayed("lipstick") == 7


async def test_the_idempotent_directive_is_mandatory(
    http: ClientSession, mock: ShopifyMock
) -> None:
    mutation = SET_MUTATION.replace(" @idempotent(key: $key)", "")

    status, answer = await call(http, mock, mutation, {"input": set_input(mock, 1, 10)})

    assert status == 200
    assert "data" not in answer
    assert "@idempotent" in answer["errors"][0]["message"]
    assert mock.displayed("lipstick") == 10


async def test_a_literal_key_is_read_too(http: ClientSession, mock: ShopifyMock) -> None:
    mutation = SET_MUTATION.replace("@idempotent(key: $key)", '@idempotent(key: "lit-1")')

    status, answer = await call(http, mock, mutation, {"input": set_input(mock, 1, 10)})

    assert status == 200
    assert answer["data"]["inventorySetQuantities"]["userErrors"] == []
    assert mock.displayed("lipstick") == 1


async def test_change_from_must_be_given(http: ClientSession, mock: ShopifyMock) -> None:
    payload = set_input(mock, 1, 10)
    del payload["quantities"][0]["changeFromQuantity"]

    _, answer = await call(http, mock, SET_MUTATION, {"input": payload, "key": "k"})

    assert "changeFromQuantity" in answer["errors"][0]["message"]
    assert mock.displayed("lipstick") == 10


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("inventoryItemId", "gid://shopify/InventoryItem/1", "INVALID_INVENTORY_ITEM"),
        ("locationId", "gid://shopify/Location/1", "INVALID_LOCATION"),
        ("quantity", -1, "INVALID_QUANTITY_NEGATIVE"),
        ("quantity", 1_000_000_001, "INVALID_QUANTITY_TOO_HIGH"),
    ],
)
async def test_invalid_quantities_are_user_errors(
    http: ClientSession, mock: ShopifyMock, field: str, value: object, code: str
) -> None:
    payload = set_input(mock, 1, 10)
    payload["quantities"][0][field] = value

    _, answer = await call(http, mock, SET_MUTATION, {"input": payload, "key": "k"})

    [error] = answer["data"]["inventorySetQuantities"]["userErrors"]
    assert error["code"] == code
    assert error["field"] == ["input", "quantities", "0", field]
    assert mock.displayed("lipstick") == 10
    assert mock.stats.writes_rejected == 1


async def test_an_unknown_field_is_a_graphql_error(http: ClientSession, mock: ShopifyMock) -> None:
    _, answer = await call(http, mock, "{ shop { name } }")

    assert answer["errors"][0]["extensions"]["code"] == "undefinedField"


async def test_the_bucket_throttles_in_the_documented_shape(
    ticks: Ticks, http: ClientSession
) -> None:
    mock = ShopifyMock(access_token=TOKEN, maximum_available=12, restore_rate=2, monotonic=ticks)
    mock.add_listing("lipstick", 10)
    await mock.start()
    try:
        await set_quantity(http, mock, 9, 10, "k-1")  # 10 of 12 points

        status, answer = await call(
            http, mock, SET_MUTATION, {"input": set_input(mock, 8, 9), "key": "k-2"}
        )

        assert status == 200
        assert answer["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert answer["extensions"]["cost"] == {
            "requestedQueryCost": 10,
            "actualQueryCost": None,
            "throttleStatus": {
                "maximumAvailable": 12,
                "currentlyAvailable": 2,
                "restoreRate": 2,
            },
        }
        assert mock.displayed("lipstick") == 9
        ticks.now_s += 4.0
        assert (await set_quantity(http, mock, 8, 9, "k-2"))["userErrors"] == []
    finally:
        await mock.stop()


async def test_the_rest_order_read_has_its_own_bucket(
    http: ClientSession, mock: ShopifyMock
) -> None:
    order_id = mock.buy("lipstick", 1, buyer="alice", region="US")
    url = f"{mock.url}/admin/api/2026-04/orders/{order_id}.json"
    headers = {"X-Shopify-Access-Token": TOKEN}

    async with http.get(url, headers=headers) as response:
        assert response.status == 200
        assert response.headers["X-Shopify-Shop-Api-Call-Limit"] == "1/40"
        assert (await response.json())["order"]["id"] == int(str(order_id))
    mock.throttle_next(1)
    async with http.get(url, headers=headers) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "2.0"
    async with http.get(url.replace(str(order_id), "1"), headers=headers) as response:
        assert response.status == 404


async def test_webhooks_carry_every_shopify_header(mock: ShopifyMock) -> None:
    order_id = mock.buy("lipstick", 2, buyer="alice", region="US")
    assert order_id is not None

    delivery = mock.webhook(order_id, 1_700_000_000.0)

    assert delivery.headers["x-shopify-topic"] == "orders/create"
    assert delivery.headers["x-shopify-shop-domain"] == mock.shop_id
    assert delivery.headers["x-shopify-api-version"] == "2026-04"
    assert delivery.headers["x-shopify-triggered-at"] == "2023-11-14T22:13:20.000000000Z"
    assert delivery.headers["x-shopify-event-id"]
    assert webhook_signature_valid(SECRET, delivery.body, delivery.headers["x-shopify-hmac-sha256"])
    order = orjson.loads(delivery.body)
    assert order["id"] == int(order_id)
    assert order["line_items"][0]["sku"] == "lipstick"
    assert order["customer"]["id"] == int(mock.customer_id("alice"))


async def test_buyers_move_the_count(mock: ShopifyMock) -> None:
    order_id = mock.buy("lipstick", 4, buyer="alice", region="US")
    assert order_id is not None
    assert mock.buy("lipstick", 7, buyer="bob", region="US") is None
    assert mock.displayed("lipstick") == 6

    mock.pay(order_id)
    mock.cancel(order_id)

    assert mock.displayed("lipstick") == 10
    assert mock.order(order_id)["financial_status"] == "refunded"
    assert mock.order(order_id)["cancelled_at"] is not None
