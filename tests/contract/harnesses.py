"""Which harness plays each registered connector's platform in the contract suite.

Keyed by entry-point name (``stockcast.connectors``); a value names the harness class as
``module:Class``, imported only when a test asks for it, so one platform's broken or
missing harness fails that platform's tests and not everyone's collection.
"""

from __future__ import annotations

import importlib
from typing import Final

from connectors.testing import OutboundHarness, has_inbound_side

HARNESSES: Final[dict[str, str]] = {
    "simulator": "tests.contract.harness_simulator:SimulatorHarness",
    "tiktok_shop": "tests.contract.harness_tiktok_shop:TikTokShopHarness",
    "douyin": "tests.contract.harness_douyin:DouyinHarness",
    "shopify": "tests.contract.harness_shopify:ShopifyHarness",
}


def harness_type(platform: str) -> type[OutboundHarness]:
    module_name, _, class_name = HARNESSES[platform].partition(":")
    harness: type[OutboundHarness] = getattr(importlib.import_module(module_name), class_name)
    return harness


def inbound_platforms() -> list[str]:
    """Platforms whose harness can deliver webhooks; one that does not import is kept, so
    its inbound tests fail on the import instead of silently not existing."""
    platforms = []
    for platform in HARNESSES:
        try:
            harness = harness_type(platform)
        except ImportError:
            platforms.append(platform)
            continue
        if has_inbound_side(harness):
            platforms.append(platform)
    return platforms
