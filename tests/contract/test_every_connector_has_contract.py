"""A connector registered without a contract harness fails CI (STYLE.md: pluggy's rule).

Built-in connectors register through the ``stockcast.connectors`` entry points like any
plugin, so the registry, not the source tree, says what must be covered.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors import registry
from connectors.testing import has_inbound_side
from tests.contract.harnesses import HARNESSES, harness_type

CONTRACT_DIR = Path(__file__).parent
_INBOUND_METHODS = ("verify", "decode", "acknowledge", "hydrate")


def test_every_registered_connector_has_a_harness() -> None:
    missing = sorted(set(registry.available()) - set(HARNESSES))
    assert missing == [], f"add a harness to tests/contract/harnesses.py for {missing}"


def test_every_harness_plays_a_registered_connector() -> None:
    assert sorted(set(HARNESSES) - set(registry.available())) == []


def test_every_harness_module_is_in_the_suite() -> None:
    modules = {path.stem for path in CONTRACT_DIR.glob("harness_*.py")}
    listed = {HARNESSES[name].partition(":")[0].rpartition(".")[2] for name in HARNESSES}
    assert sorted(modules - listed) == []


@pytest.mark.parametrize("platform", sorted(registry.available()))
def test_the_harness_plays_its_platform(platform: str) -> None:
    assert platform in HARNESSES, f"no contract harness for {platform!r}"
    assert harness_type(platform).platform == platform


@pytest.mark.parametrize("platform", sorted(registry.available()))
def test_a_webhook_connector_gets_the_inbound_checks(platform: str) -> None:
    """Otherwise its inbound side would pass the suite by never being tried."""
    connector = registry.load(platform)
    if all(callable(getattr(connector, name, None)) for name in _INBOUND_METHODS):
        assert platform in HARNESSES, f"no contract harness for {platform!r}"
        assert has_inbound_side(harness_type(platform)), (
            f"{platform} takes webhooks but its harness cannot deliver them"
        )
