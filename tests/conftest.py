"""Shared fixtures. The broker is real: `make test` starts it and passes its address in
``TEST_KAFKA_BOOTSTRAP``; a bare `pytest` starts its own on the test ports."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync_worker import devkafka

TEST_PORT = 19092
TEST_CONTROLLER_PORT = 19192

# Layer by directory, so `-m unit` never needs a broker and no test forgets its marker.
_LAYER_MARKERS = {
    "unit": "unit",
    "property": "unit",
    "contract": "unit",  # connectors against their mock platforms on loopback, no broker
    "integration": "integration",
    "e2e": "e2e",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        layer = Path(item.path).relative_to(Path(__file__).parent).parts[0]
        item.add_marker(_LAYER_MARKERS[layer])


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of the real test broker."""
    given = os.environ.get("TEST_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    config = devkafka.DevKafkaConfig(
        data_dir=devkafka.PROJECT_ROOT / "var" / "test-kafka",
        base_port=TEST_PORT,
        controller_base_port=TEST_CONTROLLER_PORT,
    )
    try:
        yield devkafka.up(config)
    finally:
        devkafka.down(config)


@pytest.fixture
def run_id() -> str:
    """A fresh topic prefix and app id per test, so tests share the broker, not state."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def project_root() -> Path:
    return devkafka.PROJECT_ROOT
