"""The README's examples are copied by users: they must load as they are."""

from __future__ import annotations

import re
from pathlib import Path

from sync_worker.config import load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _settings_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Settings") :]
    match = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert match, "the Settings section has no TOML example"
    return match.group(1)


def test_the_settings_example_loads_and_means_what_it_says() -> None:
    settings = load_settings(_settings_example(), env={})

    (channel,) = settings.channels
    assert channel.connector == "tiktok_shop"
    assert channel.options["shop_id"] == "7494000000000000001"
    assert channel.secrets["access_token"].get_secret_value() == "…"
    assert settings.metrics.sku_allowlist == ("lipstick-ruby-01",)
    assert settings.metrics.top_skus == 10
