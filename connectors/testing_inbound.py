"""The inbound half of the contract suite: webhook deliveries verified, decoded, hydrated.

It applies to a connector that is an ``InboundConnector`` and a harness that can make its
platform deliver (a ``PlatformHarness``).
"""

from __future__ import annotations

import json
import time
from functools import partial
from typing import TYPE_CHECKING

from connectors.base import (
    ConnectorError,
    InboundConnector,
    InboundRequest,
    MalformedPayload,
    Notification,
    OrderStatus,
    PlatformOrder,
    ReplayRejected,
    SignatureInvalid,
)
from connectors.testing_support import (
    NotApplicable,
    Transcript,
    raised,
    raised_now,
    secrets_of,
)

if TYPE_CHECKING:
    from connectors.testing import PlatformHarness


_BUYER = "contract-buyer-1"
_REGION = "GB"


async def _inbound(harness: PlatformHarness) -> InboundConnector:
    connector = await harness.connector()
    if not isinstance(connector, InboundConnector):
        raise NotApplicable(f"the {harness.platform} connector takes no webhooks")
    return connector


async def _delivered(
    harness: PlatformHarness, connector: InboundConnector, order_id: str
) -> PlatformOrder:
    """The order as stockcast learns it from the platform's delivery of its latest change."""
    now_s = time.time()
    request = harness.webhook(order_id, now_s=now_s)
    connector.verify(request, now_s)
    notifications = [note for note in connector.decode(request) if note.order_id == order_id]
    assert notifications, f"the delivery for order {order_id} decodes to nothing about it"
    for note in notifications:
        assert note.shop_id == connector.shop_id, f"{note} is routed to another shop"
        assert note.notification_id, f"{note} has no id to dedupe on"
    latest = max(notifications, key=lambda note: note.occurred_at_ms)
    order = latest.order if latest.order is not None else await connector.hydrate(latest)
    assert order.order_id == order_id, f"asked about {order_id}, got {order.order_id}"
    return order


def _is_the_order(order: PlatformOrder, status: OrderStatus, sku: str, *, region: bool) -> None:
    """``region``: whether the platform must show the region yet (some hide the address
    until the order is paid)."""
    assert order.status is status, f"{order.platform_status!r} maps to {order.status}"
    bought = sum(line.quantity for line in order.lines if line.sku == sku)
    assert bought == 2, f"order {order.order_id} has {bought} of {sku}, expected 2: {order.lines}"
    assert order.buyer_id, f"order {order.order_id} names no buyer"  # see buyers_told_apart
    allowed = (_REGION,) if region else (_REGION, None)
    assert order.region in allowed, f"region {order.region!r}, expected {_REGION!r}"


async def _bought(harness: PlatformHarness) -> tuple[str, str]:
    sku = harness.listed_skus[0]
    harness.set_displayed(sku, 5)
    order_id = harness.buy(sku, 2, buyer=_BUYER, region=_REGION)
    assert order_id is not None, "the platform refused 2 of 5 units"
    return sku, order_id


async def check_bought_order_awaits_payment(harness: PlatformHarness) -> None:
    connector = await _inbound(harness)
    sku, order_id = await _bought(harness)
    order = await _delivered(harness, connector, order_id)
    _is_the_order(order, OrderStatus.AWAITING_PAYMENT, sku, region=False)


async def check_paid_order_is_paid(harness: PlatformHarness) -> None:
    connector = await _inbound(harness)
    sku, order_id = await _bought(harness)
    harness.pay(order_id)
    order = await _delivered(harness, connector, order_id)
    _is_the_order(order, OrderStatus.PAID, sku, region=True)


async def check_cancelled_order_is_cancelled(harness: PlatformHarness) -> None:
    connector = await _inbound(harness)
    sku, order_id = await _bought(harness)
    harness.cancel(order_id)
    assert harness.displayed(sku) == 5, "the cancelled units are not back on display"
    order = await _delivered(harness, connector, order_id)
    _is_the_order(order, OrderStatus.CANCELLED, sku, region=False)


async def check_buyers_are_told_apart(harness: PlatformHarness) -> None:
    """Per-buyer limits need one stable id per buyer; the platform assigns it (Shopify's
    customer id), so only its sameness is checked, not its text."""
    connector = await _inbound(harness)
    sku = harness.listed_skus[1]
    harness.set_displayed(sku, 5)
    buyers = (_BUYER, _BUYER, "contract-buyer-2")
    ids = []
    for buyer in buyers:
        order_id = harness.buy(sku, 1, buyer=buyer, region=_REGION)
        assert order_id is not None, f"the platform refused 1 unit to {buyer}"
        ids.append((await _delivered(harness, connector, order_id)).buyer_id)
    assert ids[0] == ids[1], f"one buyer's two orders name {ids[0]!r} and {ids[1]!r}"
    assert ids[0] != ids[2], f"two buyers are both {ids[0]!r}"


async def check_forged_delivery_is_refused(harness: PlatformHarness) -> None:
    connector = await _inbound(harness)
    _, order_id = await _bought(harness)
    now_s = time.time()
    request = harness.webhook(order_id, now_s=now_s)
    connector.verify(request, now_s)  # the genuine one passes, so the refusal below is earned
    forged = harness.forged(request)
    assert forged.body != request.body, "the harness forged nothing"
    raised_now(SignatureInvalid, lambda: connector.verify(forged, now_s), "a forged body")


async def check_stale_delivery_is_refused(harness: PlatformHarness) -> None:
    connector = await _inbound(harness)
    _, order_id = await _bought(harness)
    now_s = time.time()
    request = harness.webhook(order_id, now_s=now_s)
    stale_s = harness.stale_time_s(now_s)
    raised_now(ReplayRejected, lambda: connector.verify(request, stale_s), "a stale delivery")


async def check_malformed_delivery_is_refused(harness: PlatformHarness) -> None:
    """Verified bytes that are not the documented shape are refused, never half-read."""
    connector = await _inbound(harness)
    _, order_id = await _bought(harness)
    genuine = harness.webhook(order_id, now_s=time.time())
    for body in (b"\x00 not json", b"{}"):
        garbled = InboundRequest(genuine.headers, body, genuine.query, genuine.received_at_s)
        raised_now(MalformedPayload, partial(connector.decode, garbled), f"decoding {body!r}")


async def check_acknowledgement(harness: PlatformHarness) -> None:
    connector = await _inbound(harness)
    accepted = connector.acknowledge(True)
    assert 200 <= accepted.status < 300, f"a received delivery is answered {accepted.status}"
    expected = harness.ack_accepted()
    if isinstance(expected, bytes):
        assert accepted.body == expected, f"acknowledged with {accepted.body!r}"
    else:
        assert json.loads(accepted.body) == expected, f"acknowledged with {accepted.body!r}"
    assert connector.acknowledge(False) != accepted, "a refusal reads as an acceptance"


async def check_hydrating_an_unknown_order_fails_cleanly(harness: PlatformHarness) -> None:
    connector = await _inbound(harness)
    ghost = Notification("contract-ghost", connector.shop_id, "9990000000000000404", 0)
    await raised(ConnectorError, connector.hydrate(ghost), "hydrating an unknown order")


async def check_inbound_errors_keep_secrets(harness: PlatformHarness) -> None:
    secrets = secrets_of(harness)
    with Transcript() as transcript:
        connector = await _inbound(harness)
        transcript.said(connector)
        _, order_id = await _bought(harness)
        now_s = time.time()
        request = harness.webhook(order_id, now_s=now_s)
        forged, stale_s = harness.forged(request), harness.stale_time_s(now_s)
        for attempt in (
            lambda: connector.verify(forged, now_s),
            lambda: connector.verify(request, stale_s),
            lambda: connector.decode(InboundRequest(request.headers, b"\x00")),
        ):
            transcript.said(raised_now(ConnectorError, attempt, "a refused delivery"))
        ghost = Notification("contract-ghost", connector.shop_id, "9990000000000000404", 0)
        transcript.said(await raised(ConnectorError, connector.hydrate(ghost), "a ghost"))
        # A full notification (Shopify) needs no call to hydrate, so nothing to fault.
        for note in (note for note in connector.decode(request) if note.order is None):
            for fault in (harness.throttle_next, harness.fail_next):
                fault(1)
                transcript.said(await raised(ConnectorError, connector.hydrate(note), "faulted"))
            transcript.said(await connector.hydrate(note))
    transcript.assert_keeps(secrets)
