"""The ``stockcast`` command, through click's runner (no subprocess, no broker)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from sync_worker.cli import main

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Invoke:
    """Run ``stockcast`` in an empty directory with no ``STOCKCAST_*`` variables but ``env``.

    The CLI reads the real process environment; `make test` itself exports
    TEST_KAFKA_BOOTSTRAP, which the settings loader would (rightly) refuse.
    """
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("STOCKCAST_"):
            monkeypatch.delenv(name)

    def run(*args: str, env: Mapping[str, str] | None = None) -> Result:
        return CliRunner().invoke(main, list(args), env=dict(env or {}), catch_exceptions=False)

    return run


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["run", "--help"],
        ["dev", "--help"],
        ["demo", "--help"],
        ["settings", "--help"],
        ["settings", "show", "--help"],
        ["connectors", "--help"],
    ],
    ids=" ".join,
)
def test_help_is_available_for_every_command(invoke: Invoke, args: list[str]) -> None:
    result = invoke(*args)

    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")


def test_the_top_level_help_lists_every_command(invoke: Invoke) -> None:
    output = invoke("--help").output

    for command in ("run", "settings", "connectors", "dev", "demo"):
        assert f"  {command} " in output


def test_the_version_is_the_package_version(invoke: Invoke) -> None:
    result = invoke("--version")

    assert result.exit_code == 0
    assert "0.1.0" in result.output


def test_settings_show_prints_the_defaults_as_json(invoke: Invoke) -> None:
    result = invoke("settings", "show")

    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.output)
    assert shown["kafka"]["bootstrap_servers"] == "127.0.0.1:9092"
    assert shown["worker"]["web_port"] == 6066
    assert shown["channels"] == []


def test_settings_show_masks_a_password_from_the_environment(invoke: Invoke) -> None:
    env = {
        "STOCKCAST_KAFKA__SASL_PASSWORD": "kafka-pass-123",
        "STOCKCAST_KAFKA__SASL_USERNAME": "stockcast",
        "STOCKCAST_KAFKA__BOOTSTRAP_SERVERS": "10.0.0.5:9092",
    }

    result = invoke("settings", "show", env=env)

    assert result.exit_code == 0, result.output
    assert "kafka-pass-123" not in result.output
    shown = orjson.loads(result.output)
    assert shown["kafka"]["sasl_password"] == "**********"
    assert shown["kafka"]["sasl_username"] == "stockcast"
    assert shown["kafka"]["bootstrap_servers"] == "10.0.0.5:9092"


def test_settings_show_reads_the_file_given_and_masks_channel_secrets(
    invoke: Invoke, tmp_path: Path
) -> None:
    config = tmp_path / "shop.toml"
    config.write_text(
        '[kafka]\ntopic_prefix = "shop-a"\n'
        '[[channels]]\nname = "room-1"\nconnector = "simulator"\n'
        'secrets = { token = "room-token-456" }\n',
        encoding="utf-8",
    )

    result = invoke("settings", "show", "--config", str(config))

    assert result.exit_code == 0, result.output
    assert "room-token-456" not in result.output
    shown = orjson.loads(result.output)
    assert shown["kafka"]["topic_prefix"] == "shop-a"
    assert shown["channels"][0]["secrets"] == {"token": "**********"}


def test_settings_show_picks_up_stockcast_toml_in_the_working_directory(
    invoke: Invoke, tmp_path: Path
) -> None:
    (tmp_path / "stockcast.toml").write_text('[kafka]\ntopic_prefix = "here"\n', encoding="utf-8")

    result = invoke("settings", "show")

    assert orjson.loads(result.output)["kafka"]["topic_prefix"] == "here"


def test_an_invalid_config_fails_and_lists_every_problem(invoke: Invoke, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        '[worker]\nweb_port = 70000\nprocessing_guarantee = "twice"\n[kafka]\nbogus_key = 1\n',
        encoding="utf-8",
    )

    result = invoke("settings", "show", "-c", str(config), env={"STOCKCAST_NOPE__X": "1"})

    assert result.exit_code != 0
    assert "4 problem(s)" in result.output
    for fragment in (
        "worker.web_port",
        "worker.processing_guarantee",
        "kafka.bogus_key",
        "STOCKCAST_NOPE__X",
    ):
        assert fragment in result.output
    assert "Traceback" not in result.output


def test_a_missing_config_file_fails_clearly(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("settings", "show", "--config", str(tmp_path / "nope.toml"))

    assert result.exit_code != 0
    assert "nope.toml: No such file or directory" in result.output


def test_connectors_list_shows_the_simulator(invoke: Invoke) -> None:
    result = invoke("connectors", "list")

    assert result.exit_code == 0, result.output
    rows = dict(line.split("\t") for line in result.output.splitlines())
    assert rows["simulator"] == "connectors.simulator.connector:SimulatorConnector"


def test_the_config_file_can_come_from_stockcast_config(invoke: Invoke, tmp_path: Path) -> None:
    config = tmp_path / "shop.toml"
    config.write_text('[kafka]\ntopic_prefix = "shop-a"\n', encoding="utf-8")

    result = invoke("settings", "show", env={"STOCKCAST_CONFIG": str(config)})

    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["kafka"]["topic_prefix"] == "shop-a"
