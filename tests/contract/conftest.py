"""The ``harness`` fixture: a freshly started mock platform per test, closed after it.

Parametrize it indirectly with platform names (``harnesses.HARNESSES`` keys).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.testing import OutboundHarness
from tests.contract.harnesses import harness_type


@pytest.fixture
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[OutboundHarness]:
    platform: str = request.param
    started = harness_type(platform)()
    await started.start()
    try:
        yield started
    finally:
        await started.close()
