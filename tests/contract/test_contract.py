"""Every contract check against every platform's harness (see ``connectors.testing``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

import pytest

from connectors.testing import (
    INBOUND_CHECKS,
    OUTBOUND_CHECKS,
    InboundCheck,
    NotApplicable,
    OutboundCheck,
    OutboundHarness,
    PlatformHarness,
    check_name,
    has_inbound_side,
)
from tests.contract.harnesses import HARNESSES, inbound_platforms

_H = TypeVar("_H", bound=OutboundHarness)


async def run(check: Callable[[_H], Awaitable[None]], harness: _H) -> None:
    try:
        await check(harness)
    except NotApplicable as reason:
        pytest.skip(str(reason))


@pytest.mark.parametrize("check", OUTBOUND_CHECKS, ids=check_name)
@pytest.mark.parametrize("harness", list(HARNESSES), indirect=True)
async def test_outbound_contract(harness: OutboundHarness, check: OutboundCheck) -> None:
    await run(check, harness)


@pytest.mark.parametrize("check", INBOUND_CHECKS, ids=check_name)
@pytest.mark.parametrize("harness", inbound_platforms(), indirect=True)
async def test_inbound_contract(harness: OutboundHarness, check: InboundCheck) -> None:
    assert has_inbound_side(harness), f"{type(harness).__name__} cannot deliver webhooks"
    await run(check, cast(PlatformHarness, harness))
