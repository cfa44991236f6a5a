"""``[allocation]`` and the per-channel rules in stockcast.toml, down to the domain's policies."""

from __future__ import annotations

import pytest

from sync_worker.config import SettingsError, load_settings
from sync_worker.domain.allocation import AllocationPolicy, ChannelRule, PolicyKind
from sync_worker.streaming.app import decision_policies

SETTINGS = """
[ledger]
default_reserve_percent = 10

[allocation]
policy = "session_aware"
sku_policies = { "flash-lipstick" = "fixed_ratio" }
refresh_s = 60
lease_units = 6
min_buffer = 2
cover = 4.0
rate_half_life_ms = 500
dry_claw_ratio = 20

[[channels]]
name = "tiktok-room-1"
connector = "simulator"
ratio = 0.5
plus = 2
floor = 3
ceiling = 400
latency_ms = 80

[[channels]]
name = "douyin-room-1"
connector = "simulator"
"""


def test_the_settings_become_the_policies_of_every_sku() -> None:
    policies = decision_policies(load_settings(SETTINGS, {}))

    rules = (
        ChannelRule("tiktok-room-1", ratio=0.5, plus=2, floor=3, ceiling=400, latency_ms=80),
        ChannelRule("douyin-room-1"),
    )
    expected = AllocationPolicy(
        kind=PolicyKind.SESSION_AWARE,
        channels=rules,
        refresh_ms=60_000,
        lease_units=6,
        min_buffer=2,
        cover=4.0,
        rate_half_life_ms=500,
        dry_claw_ratio=20.0,
    )
    assert policies.allocation_for("serum") == expected
    assert policies.allocation_for("flash-lipstick").kind is PolicyKind.FIXED_RATIO
    assert policies.allocation_for("flash-lipstick").channels == rules
    assert policies.ledger.default_reserve.percent == 10


def test_without_settings_every_sku_is_allocated_adaptively() -> None:
    policies = decision_policies(load_settings("", {}))

    assert policies.allocation_for("any") == AllocationPolicy(kind=PolicyKind.ADAPTIVE)


def test_the_environment_picks_the_policy() -> None:
    settings = load_settings("", {"STOCKCAST_ALLOCATION__POLICY": "shared_pool"})

    assert settings.allocation.policy == "shared_pool"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[allocation]\npolicy = "greedy"\n', "allocation.policy"),
        ('[allocation]\nsku_policies = { a = "nope" }\n', "allocation.sku_policies.a"),
        ("[allocation]\nlease_units = 0\n", "allocation.lease_units"),
        ("[allocation]\ncover = 0.5\n", "allocation.cover"),
        ("[allocation]\ndry_claw_ratio = 1\n", "allocation.dry_claw_ratio"),
        ('[[channels]]\nname = "a"\nconnector = "x"\nratio = 1.5\n', "channels.0.ratio"),
        ('[[channels]]\nname = "a"\nconnector = "x"\nlatency_ms = 0\n', "channels.0.latency_ms"),
    ],
)
def test_a_bad_allocation_setting_is_named(text: str, where: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(text, {})

    assert any(problem.startswith(where) for problem in caught.value.problems)
