"""The webhook ingress on a real local server, with a fake platform signing a tiny HMAC scheme."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from connectors.base import (
    InboundConnector,
    InboundRequest,
    InboundResponse,
    MalformedPayload,
    Notification,
    PlatformOrder,
    ReplayRejected,
    SignatureInvalid,
)
from sync_worker.metrics import Metrics
from sync_worker.web.webhooks import webhook_routes

NOW_S = 1_700_000_000.0
WINDOW_S = 300.0
PLATFORM = "fakeshop"
SECRET_A = b"secret-of-app-a"
SECRET_B = b"secret-of-app-b"
LIMIT = 1024


class FakeConnector:
    """A platform whose deliveries carry ``X-Fake-Timestamp`` and ``X-Fake-Signature`` =
    hex HMAC-SHA256 of ``"<timestamp>." + body``; the body is ``{"notifications": [...]}``."""

    platform: ClassVar[str] = PLATFORM

    def __init__(self, shop_id: str, secret: bytes) -> None:
        self._shop_id = shop_id
        self._secret = secret
        self.verified: list[InboundRequest] = []
        self.acknowledged: list[bool] = []

    @property
    def shop_id(self) -> str:
        return self._shop_id

    def verify(self, request: InboundRequest, now_s: float) -> None:
        self.verified.append(request)
        timestamp = request.headers.get("x-fake-timestamp", "")
        given = request.headers.get("x-fake-signature", "")
        if not hmac.compare_digest(given, sign(self._secret, timestamp, request.body)):
            raise SignatureInvalid("signature does not match the body")
        if abs(now_s - float(timestamp)) > WINDOW_S:
            raise ReplayRejected("timestamp outside the window")

    def decode(self, request: InboundRequest) -> list[Notification]:
        try:
            return [
                Notification(item["id"], item["shop"], item["order"], item["at"])
                for item in orjson.loads(request.body)["notifications"]
            ]
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            raise MalformedPayload(f"not a notification list ({type(error).__name__})") from None

    def acknowledge(self, accepted: bool) -> InboundResponse:
        self.acknowledged.append(accepted)
        if accepted:
            return InboundResponse(200, b"success", "text/plain; charset=utf-8")
        return InboundResponse(500, b'{"code":1}')

    async def hydrate(self, notification: Notification) -> PlatformOrder:
        raise NotImplementedError  # the ingress never hydrates


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def delivery(
    *shops: str, secret: bytes = SECRET_A, at_s: float = NOW_S, pad_to: int = 0
) -> tuple[bytes, dict[str, str]]:
    """A signed body naming one notification per shop, and its headers (mixed case)."""
    items = [
        {"id": f"n-{i}", "shop": shop, "order": f"o-{i}", "at": 1000 + i}
        for i, shop in enumerate(shops)
    ]
    body = orjson.dumps({"notifications": items})
    body += b" " * max(0, pad_to - len(body))
    timestamp = str(int(at_s))
    return body, {"X-Fake-Timestamp": timestamp, "X-Fake-Signature": sign(secret, timestamp, body)}


class Store:
    """The ``accept`` seam: records what was stored; can be made to fail or hang."""

    def __init__(self) -> None:
        self.stored: list[list[tuple[str, str, Notification]]] = []
        self.failure: Exception | None = None
        self.hang = False

    async def __call__(self, batch: list[tuple[str, str, Notification]]) -> None:
        if self.failure is not None:
            raise self.failure
        if self.hang:
            await asyncio.Event().wait()
        self.stored.append(batch)


class Ingress:
    def __init__(self, client: TestClient[Any, Any], metrics: Metrics, store: Store) -> None:
        self.client = client
        self.metrics = metrics
        self.store = store

    def count(self, outcome: str) -> float:
        labels = {"platform": PLATFORM, "outcome": outcome}
        return self.metrics.registry.get_sample_value("stockcast_webhooks_total", labels) or 0.0

    def counts(self) -> dict[str, float]:
        outcomes = ["accepted", "forged", "replayed", "too_large", "malformed"]
        outcomes += ["unknown_shop", "unavailable"]
        return {name: self.count(name) for name in outcomes if self.count(name)}

    async def post(self, body: Any, headers: Mapping[str, str]) -> tuple[int, bytes, str]:
        async with self.client.post(f"/webhooks/{PLATFORM}", data=body, headers=headers) as r:
            return r.status, await r.read(), r.headers["Content-Type"]


MakeIngress = Callable[..., Awaitable[Ingress]]


@pytest.fixture
async def make_ingress() -> AsyncIterator[MakeIngress]:
    clients: list[TestClient[Any, Any]] = []

    async def make(channels: Sequence[tuple[str, InboundConnector]], **options: Any) -> Ingress:
        metrics, store = Metrics.create(), Store()
        app = web.Application()
        routes = webhook_routes(
            {PLATFORM: channels},
            store,
            metrics,
            max_body_bytes=LIMIT,
            clock=lambda: NOW_S,
            **options,
        )
        app.router.add_routes(routes)
        client = TestClient(TestServer(app, host="127.0.0.1", port=0))
        await client.start_server()
        clients.append(client)
        return Ingress(client, metrics, store)

    yield make
    for client in clients:
        await client.close()


async def test_a_verified_delivery_is_stored_then_acknowledged(make_ingress: MakeIngress) -> None:
    shop = FakeConnector("shop-a", SECRET_A)
    assert isinstance(shop, InboundConnector)
    ingress = await make_ingress([("room-a", shop)])

    status, body, content_type = await ingress.post(*delivery("shop-a"))

    assert (status, body, content_type) == (200, b"success", "text/plain; charset=utf-8")
    assert ingress.store.stored == [
        [("room-a", PLATFORM, Notification("n-0", "shop-a", "o-0", 1000))]
    ]
    assert shop.acknowledged == [True]
    assert ingress.counts() == {"accepted": 1}


async def test_connectors_see_lower_case_headers_and_the_query(make_ingress: MakeIngress) -> None:
    shop = FakeConnector("shop-a", SECRET_A)
    ingress = await make_ingress([("room-a", shop)])
    body, headers = delivery("shop-a")

    async with ingress.client.post(f"/webhooks/{PLATFORM}?app=7", data=body, headers=headers):
        pass

    [seen] = shop.verified
    assert seen.body == body
    assert all(name == name.lower() for name in seen.headers)
    assert seen.headers["x-fake-timestamp"] == headers["X-Fake-Timestamp"]
    assert seen.query == {"app": "7"}
    assert seen.received_at_s == NOW_S


async def test_an_unknown_platform_is_404(make_ingress: MakeIngress) -> None:
    ingress = await make_ingress([("room-a", FakeConnector("shop-a", SECRET_A))])

    async with ingress.client.post("/webhooks/elsewhere", data=b"{}") as response:
        assert response.status == 404

    assert ingress.store.stored == []
    assert ingress.counts() == {}


async def test_a_body_over_the_limit_is_413_by_its_content_length(
    make_ingress: MakeIngress,
) -> None:
    shop = FakeConnector("shop-a", SECRET_A)
    ingress = await make_ingress([("room-a", shop)])

    status, _, _ = await ingress.post(*delivery("shop-a", pad_to=LIMIT + 1))

    assert status == 413
    assert shop.verified == []
    assert ingress.store.stored == []
    assert ingress.counts() == {"too_large": 1}


async def test_a_chunked_body_over_the_limit_is_413(make_ingress: MakeIngress) -> None:
    shop = FakeConnector("shop-a", SECRET_A)
    ingress = await make_ingress([("room-a", shop)])
    body, headers = delivery("shop-a", pad_to=4 * LIMIT)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 256):
            yield body[start : start + 256]

    status, _, _ = await ingress.post(chunks(), headers)

    assert status == 413
    assert shop.verified == []
    assert ingress.counts() == {"too_large": 1}


async def test_a_body_of_exactly_the_limit_is_read(make_ingress: MakeIngress) -> None:
    ingress = await make_ingress([("room-a", FakeConnector("shop-a", SECRET_A))])
    body, headers = delivery("shop-a", pad_to=LIMIT)
    assert len(body) == LIMIT

    status, _, _ = await ingress.post(body, headers)

    assert status == 200
    assert ingress.counts() == {"accepted": 1}


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, headers: (body + b" ", headers),
        lambda body, headers: (body, {**headers, "X-Fake-Signature": "0" * 64}),
        lambda body, headers: (body, {"X-Fake-Timestamp": headers["X-Fake-Timestamp"]}),
        lambda body, headers: delivery("shop-a", secret=b"a guess"),
    ],
    ids=["body changed", "signature changed", "signature missing", "wrong secret"],
)
async def test_a_forged_delivery_is_401_and_never_stored(
    make_ingress: MakeIngress, tamper: Callable[[bytes, dict[str, str]], Any]
) -> None:
    shop = FakeConnector("shop-a", SECRET_A)
    ingress = await make_ingress([("room-a", shop)])

    status, body, _ = await ingress.post(*tamper(*delivery("shop-a")))

    assert (status, orjson.loads(body)) == (401, {"error": "forged"})
    assert ingress.store.stored == []
    assert shop.acknowledged == []
    assert ingress.counts() == {"forged": 1}


async def test_a_replayed_delivery_is_401(make_ingress: MakeIngress) -> None:
    ingress = await make_ingress([("room-a", FakeConnector("shop-a", SECRET_A))])

    status, body, _ = await ingress.post(*delivery("shop-a", at_s=NOW_S - WINDOW_S - 1))

    assert (status, orjson.loads(body)) == (401, {"error": "replayed"})
    assert ingress.store.stored == []
    assert ingress.counts() == {"replayed": 1}


async def test_a_verified_but_malformed_delivery_is_400(make_ingress: MakeIngress) -> None:
    ingress = await make_ingress([("room-a", FakeConnector("shop-a", SECRET_A))])
    timestamp = str(int(NOW_S))
    headers = {"X-Fake-Timestamp": timestamp, "X-Fake-Signature": sign(SECRET_A, timestamp, b"[")}

    status, body, _ = await ingress.post(b"[", headers)

    assert (status, orjson.loads(body)) == (400, {"error": "malformed"})
    assert ingress.store.stored == []
    assert ingress.counts() == {"malformed": 1}


async def test_a_delivery_for_an_unknown_shop_is_acknowledged_not_stored(
    make_ingress: MakeIngress, caplog: pytest.LogCaptureFixture
) -> None:
    shop = FakeConnector("shop-a", SECRET_A)
    ingress = await make_ingress([("room-a", shop)])

    with caplog.at_level(logging.WARNING):
        status, _, _ = await ingress.post(*delivery("shop-z"))

    assert status == 200
    assert shop.acknowledged == [True]
    assert ingress.store.stored == []
    assert ingress.counts() == {"unknown_shop": 1}
    assert "'shop-z'" in caplog.text
    assert SECRET_A.decode() not in caplog.text


async def test_a_delivery_with_no_order_notification_is_acknowledged(
    make_ingress: MakeIngress,
) -> None:
    ingress = await make_ingress([("room-a", FakeConnector("shop-a", SECRET_A))])

    status, _, _ = await ingress.post(*delivery())

    assert status == 200
    assert ingress.store.stored == []
    assert ingress.counts() == {"accepted": 1}


async def test_notifications_go_to_the_channel_of_their_shop(make_ingress: MakeIngress) -> None:
    # Two shops of one app (one secret), and a third shop of another app.
    ingress = await make_ingress(
        [
            ("room-a", FakeConnector("shop-a", SECRET_A)),
            ("room-b", FakeConnector("shop-b", SECRET_A)),
            ("room-c", FakeConnector("shop-c", SECRET_B)),
        ]
    )

    status, _, _ = await ingress.post(*delivery("shop-b", "shop-a", "shop-z"))
    other_app_status, _, _ = await ingress.post(*delivery("shop-c", secret=SECRET_B))

    assert (status, other_app_status) == (200, 200)
    [first, second] = ingress.store.stored
    assert [(channel, n.shop_id) for channel, _, n in first] == [
        ("room-b", "shop-b"),
        ("room-a", "shop-a"),
    ]
    assert [(channel, n.shop_id) for channel, _, n in second] == [("room-c", "shop-c")]
    assert ingress.counts() == {"accepted": 2}


async def test_one_apps_secret_does_not_vouch_for_another_apps_shop(
    make_ingress: MakeIngress,
) -> None:
    ingress = await make_ingress(
        [
            ("room-a", FakeConnector("shop-a", SECRET_A)),
            ("room-c", FakeConnector("shop-c", SECRET_B)),
        ]
    )

    status, _, _ = await ingress.post(*delivery("shop-c", secret=SECRET_A))

    assert status == 200
    assert ingress.store.stored == []
    assert ingress.counts() == {"unknown_shop": 1}


async def test_a_store_failure_is_503_and_nothing_is_acknowledged(
    make_ingress: MakeIngress, caplog: pytest.LogCaptureFixture
) -> None:
    shop = FakeConnector("shop-a", SECRET_A)
    ingress = await make_ingress([("room-a", shop)])
    ingress.store.failure = ConnectionError("broker unreachable")
    body, headers = delivery("shop-a")

    with caplog.at_level(logging.WARNING):
        async with ingress.client.post(
            f"/webhooks/{PLATFORM}?access_token=tok-123", data=body, headers=headers
        ) as response:
            assert response.status == 503
            assert await response.read() == b'{"code":1}'

    assert shop.acknowledged == [False]
    assert ingress.counts() == {"unavailable": 1}
    assert "tok-123" not in caplog.text
    assert headers["X-Fake-Signature"] not in caplog.text


async def test_a_store_slower_than_the_timeout_is_503(make_ingress: MakeIngress) -> None:
    shop = FakeConnector("shop-a", SECRET_A)
    ingress = await make_ingress([("room-a", shop)], accept_timeout_s=0.01)
    ingress.store.hang = True

    status, _, _ = await ingress.post(*delivery("shop-a"))

    assert status == 503
    assert shop.acknowledged == [False]
    assert ingress.counts() == {"unavailable": 1}


async def test_a_redelivery_after_a_failure_is_stored(make_ingress: MakeIngress) -> None:
    shop = FakeConnector("shop-a", SECRET_A)
    ingress = await make_ingress([("room-a", shop)])
    signed = delivery("shop-a")
    ingress.store.failure = TimeoutError()

    first, _, _ = await ingress.post(*signed)
    ingress.store.failure = None
    second, _, _ = await ingress.post(*signed)

    assert (first, second) == (503, 200)
    assert len(ingress.store.stored) == 1
    assert ingress.counts() == {"unavailable": 1, "accepted": 1}
