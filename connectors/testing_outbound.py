"""The outbound half of the contract suite: what every connector's writes and reads do.

Every write check runs in each mode the connector declares, safest first: the publisher
picks one with ``choose_write_mode``, but a mode a connector declares must be safe too.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from connectors import registry
from connectors.base import (
    Connector,
    ConnectorError,
    PushResult,
    RateLimited,
    Rejected,
    StockUpdate,
    TransientError,
    WriteMode,
    choose_write_mode,
)
from connectors.testing_support import (
    LosesAnswers,
    NotApplicable,
    Transcript,
    raised,
    secrets_of,
)

if TYPE_CHECKING:
    from connectors.testing import OutboundHarness


class _Writes:
    """Stock updates for one check: versions grow from 1 and no idempotency key repeats."""

    def __init__(self, harness: OutboundHarness, check: str) -> None:
        self._channel = harness.channel
        self._prefix = f"contract-{check}-{uuid.uuid4().hex[:12]}"
        self._version = 0

    def update(self, sku: str, *, shown: int, delta: int) -> StockUpdate:
        """What stockcast computes when it believes the channel shows ``shown``."""
        self._version += 1
        return StockUpdate(
            channel=self._channel,
            sku=sku,
            quantity=max(0, shown + delta),
            delta=delta,
            version=self._version,
            event_time_ms=time.time_ns() // 1_000_000,
            idempotency_key=f"{self._prefix}-{self._version}",
        )


async def _connector(harness: OutboundHarness) -> tuple[Connector, list[WriteMode]]:
    """A started connector and every mode it declares, safest first: each must hold."""
    connector = await harness.connector()
    return connector, [mode for mode in WriteMode if mode in connector.write_modes]


def _landed(
    harness: OutboundHarness, what: str, sku: str, result: PushResult, *, applied: int, shown: int
) -> None:
    assert result.applied == applied, f"{what}: applied {result.applied}, expected {applied}"
    assert harness.displayed(sku) == shown, (
        f"{what}: the platform shows {harness.displayed(sku)}, expected {shown}"
    )
    assert result.displayed in (None, shown), (
        f"{what}: the result says it shows {result.displayed}, the platform shows {shown}"
    )


# --- outbound checks -------------------------------------------------------------------


async def check_write_modes(harness: OutboundHarness) -> None:
    """The connector declares at least one mode and the publisher can pick one of them."""
    connector = await harness.connector()
    modes = connector.write_modes
    assert modes, "the connector declares no write mode"
    assert all(isinstance(mode, WriteMode) for mode in modes), f"not WriteModes: {modes}"
    assert choose_write_mode(modes) in modes


async def check_is_a_registered_connector(harness: OutboundHarness) -> None:
    """It satisfies ``Connector`` and is what the registry loads under its platform name."""
    connector = await harness.connector()
    assert isinstance(connector, Connector), f"{type(connector)} is not a Connector"
    assert connector.platform == harness.platform, (
        f"the connector says {connector.platform!r}, the harness {harness.platform!r}"
    )
    assert harness.platform in registry.available(), (
        f"no {registry.ENTRY_POINT_GROUP!r} entry point is named {harness.platform!r}"
    )
    assert registry.load(harness.platform) is type(connector)


async def check_increase_lands(harness: OutboundHarness) -> None:
    connector, modes = await _connector(harness)
    writes = _Writes(harness, "increase")
    sku = harness.listed_skus[0]
    for mode in modes:
        harness.set_displayed(sku, 3)
        result = await connector.push_stock(writes.update(sku, shown=3, delta=4), mode)
        _landed(harness, f"+4 on 3 in {mode}", sku, result, applied=4, shown=7)


async def check_reduction_lands(harness: OutboundHarness) -> None:
    connector, modes = await _connector(harness)
    writes = _Writes(harness, "reduction")
    sku = harness.listed_skus[1]
    for mode in modes:
        harness.set_displayed(sku, 7)
        result = await connector.push_stock(writes.update(sku, shown=7, delta=-3), mode)
        _landed(harness, f"-3 on 7 in {mode}", sku, result, applied=-3, shown=4)


async def check_retry_applies_once(harness: OutboundHarness) -> None:
    """The publisher resends the very same update when an answer is lost."""
    connector, modes = await _connector(harness)
    writes = _Writes(harness, "retry")
    for mode in modes:
        for sku, shown, delta in ((harness.listed_skus[0], 2, 3), (harness.listed_skus[1], 6, -2)):
            harness.set_displayed(sku, shown)
            update = writes.update(sku, shown=shown, delta=delta)
            first = await connector.push_stock(update, mode)
            await connector.push_stock(update, mode)
            assert first.applied == delta, f"{delta:+} in {mode}: applied {first.applied}"
            assert harness.displayed(sku) == shown + delta, (
                f"{delta:+} on {shown} sent twice in {mode}: the platform shows "
                f"{harness.displayed(sku)}, expected {shown + delta}"
            )


async def check_retry_after_a_lost_answer_applies_once(harness: OutboundHarness) -> None:
    """The write landed but its answer was lost: the connector raises a retryable error,
    and the publisher's retry of the very same update must change nothing more."""
    if not isinstance(harness, LosesAnswers):
        raise NotApplicable("the harness cannot lose a write's answer")
    connector, modes = await _connector(harness)
    writes = _Writes(harness, "lost-answer")
    for mode in modes:
        for sku, shown, delta in ((harness.listed_skus[0], 2, 3), (harness.listed_skus[1], 6, -2)):
            harness.set_displayed(sku, shown)
            update = writes.update(sku, shown=shown, delta=delta)
            harness.lose_next_answer()
            what = f"{delta:+} on {shown} in {mode}, its answer lost"
            await raised(ConnectorError, connector.push_stock(update, mode), what)
            await connector.push_stock(update, mode)
            assert harness.displayed(sku) == shown + delta, (
                f"{what}, then retried: the platform shows {harness.displayed(sku)}, "
                f"expected {shown + delta}"
            )


async def check_reduction_racing_a_sale(harness: OutboundHarness) -> None:
    """A buyer takes units after stockcast computed a reduction: the write must neither
    drive the count below 0 nor put the sold units back, and must say what it removed."""
    connector, modes = await _connector(harness)
    writes = _Writes(harness, "race")
    sku = harness.listed_skus[0]
    for mode in modes:
        harness.set_displayed(sku, 5)
        update = writes.update(sku, shown=5, delta=-4)
        assert harness.buy(sku, 3, buyer="contract-racer", region="GB") is not None
        result = await connector.push_stock(update, mode)
        what = f"-4 on 5 after a sale of 3 in {mode}"
        assert harness.displayed(sku) >= 0, f"{what}: the platform shows a negative count"
        _landed(harness, what, sku, result, applied=-2, shown=0)


async def check_throttled_push_then_retry(harness: OutboundHarness) -> None:
    connector, modes = await _connector(harness)
    writes = _Writes(harness, "throttled")
    sku = harness.listed_skus[1]
    for mode in modes:
        harness.set_displayed(sku, 4)
        update = writes.update(sku, shown=4, delta=2)
        harness.throttle_next(1)
        what = f"a throttled push in {mode}"
        error = await raised(RateLimited, connector.push_stock(update, mode), what)
        assert error.retry_after > 0, f"{what}: retry_after is {error.retry_after}"
        result = await connector.push_stock(update, mode)
        _landed(harness, f"its retry in {mode}", sku, result, applied=2, shown=6)


async def check_transient_failure_then_retry(harness: OutboundHarness) -> None:
    connector, modes = await _connector(harness)
    writes = _Writes(harness, "transient")
    sku = harness.listed_skus[0]
    for mode in modes:
        harness.set_displayed(sku, 4)
        update = writes.update(sku, shown=4, delta=-1)
        harness.fail_next(1)
        await raised(TransientError, connector.push_stock(update, mode), f"a 5xx in {mode}")
        result = await connector.push_stock(update, mode)
        _landed(harness, f"its retry in {mode}", sku, result, applied=-1, shown=3)


async def check_unlisted_sku_is_rejected(harness: OutboundHarness) -> None:
    sku = harness.unlisted_sku
    if sku is None:
        raise NotApplicable(f"{harness.platform} lists every SKU it is sent")
    connector, modes = await _connector(harness)
    writes = _Writes(harness, "unlisted")
    for mode in modes:
        update = writes.update(sku, shown=0, delta=1)
        await raised(Rejected, connector.push_stock(update, mode), f"unlisted SKU in {mode}")


async def check_read_stock(harness: OutboundHarness) -> None:
    """Drift repair reads what listed SKUs show; an unlisted SKU is left out, not 0."""
    connector = await harness.connector()
    first, second = harness.listed_skus[:2]
    harness.set_displayed(first, 4)
    harness.set_displayed(second, 9)
    asked = (
        [first, second] if harness.unlisted_sku is None else [first, second, harness.unlisted_sku]
    )
    assert dict(await connector.read_stock(harness.channel, asked)) == {first: 4, second: 9}


async def check_close_is_idempotent(harness: OutboundHarness) -> None:
    connector = await harness.connector()
    await connector.close()
    await connector.close()


async def check_outbound_errors_keep_secrets(harness: OutboundHarness) -> None:
    secrets = secrets_of(harness)
    with Transcript() as transcript:
        connector, modes = await _connector(harness)
        transcript.said(connector)
        writes = _Writes(harness, "secrets")
        sku = harness.listed_skus[0]
        for mode in modes:
            harness.set_displayed(sku, 2)
            update = writes.update(sku, shown=2, delta=1)
            for fault in (harness.throttle_next, harness.fail_next):
                fault(1)
                transcript.said(
                    await raised(ConnectorError, connector.push_stock(update, mode), mode)
                )
            transcript.said(await connector.push_stock(update, mode))
            if harness.unlisted_sku is not None:
                unlisted = writes.update(harness.unlisted_sku, shown=0, delta=1)
                transcript.said(await raised(Rejected, connector.push_stock(unlisted, mode), mode))
        transcript.said(await connector.read_stock(harness.channel, harness.listed_skus))
    transcript.assert_keeps(secrets)
