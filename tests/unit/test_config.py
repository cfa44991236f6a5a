"""Settings: a TOML file plus ``STOCKCAST_*`` overrides from an injected mapping."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from sync_worker.config import (
    ChannelSettings,
    KafkaSettings,
    LedgerSettings,
    MetricsSettings,
    Settings,
    SettingsError,
    WorkerSettings,
    load_settings,
    load_settings_file,
)

FULL_TOML = """
[kafka]
bootstrap_servers = "10.0.0.5:9092,10.0.0.6:9092"
topic_prefix = "shop-a"
partitions = 16
replication_factor = 3
security_protocol = "SASL_SSL"
sasl_mechanism = "SCRAM-SHA-512"
sasl_username = "stockcast"
sasl_password = "kafka-pass-123"

[worker]
app_id = "stockcast-shop-a"
data_dir = "/var/lib/stockcast"
web_host = "0.0.0.0"
web_port = 8080
session_timeout_s = 30
log_level = "debug"

[[channels]]
name = "tiktok-room-1"
connector = "simulator"
options = { base_url = "http://127.0.0.1:8000" }
secrets = { api_token = "room-token-456" }

[[channels]]
name = "douyin-room-1"
connector = "simulator"
"""

SECRETS = ("kafka-pass-123", "room-token-456")


def test_no_file_and_no_environment_give_the_defaults() -> None:
    settings = load_settings()

    assert settings == Settings()
    assert settings.kafka == KafkaSettings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka.topic_prefix == "stockcast"
    assert (settings.kafka.partitions, settings.kafka.replication_factor) == (8, 1)
    assert settings.kafka.security_protocol == "PLAINTEXT"
    assert settings.kafka.sasl_password is None
    assert settings.worker == WorkerSettings()
    assert settings.worker.app_id == "stockcast"
    assert settings.worker.data_dir == Path("var/worker")
    assert (settings.worker.web_host, settings.worker.web_port) == ("127.0.0.1", 6066)
    assert settings.worker.processing_guarantee == "at_least_once"
    assert settings.ledger == LedgerSettings()
    assert (settings.ledger.default_reserve_percent, settings.ledger.default_reserve_units) == (
        5,
        0,
    )
    assert settings.ledger.partial_fulfilment_channels == ()
    assert settings.channels == ()


def test_a_toml_file_sets_every_section() -> None:
    settings = load_settings(FULL_TOML, {})

    kafka, worker = settings.kafka, settings.worker
    assert kafka.bootstrap_servers == "10.0.0.5:9092,10.0.0.6:9092"
    assert (kafka.topic_prefix, kafka.partitions, kafka.replication_factor) == ("shop-a", 16, 3)
    assert (kafka.security_protocol, kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert kafka.sasl_username == "stockcast"
    assert kafka.sasl_password is not None
    assert kafka.sasl_password.get_secret_value() == "kafka-pass-123"
    assert worker.app_id == "stockcast-shop-a"
    assert worker.data_dir == Path("/var/lib/stockcast")
    assert (worker.web_host, worker.web_port) == ("0.0.0.0", 8080)
    assert (worker.session_timeout_s, worker.log_level) == (30, "debug")
    first, second = settings.channels
    assert (first.name, first.connector) == ("tiktok-room-1", "simulator")
    assert first.options == {"base_url": "http://127.0.0.1:8000"}
    assert first.secrets["api_token"].get_secret_value() == "room-token-456"
    assert (second.name, second.options, second.secrets) == ("douyin-room-1", {}, {})


def test_environment_variables_override_the_file() -> None:
    env = {
        "STOCKCAST_KAFKA__BOOTSTRAP_SERVERS": "192.168.1.9:9092",
        "STOCKCAST_KAFKA__PARTITIONS": "4",
        "STOCKCAST_WORKER__WEB_PORT": "7070",
        "STOCKCAST_WORKER__PROCESSING_GUARANTEE": "at_least_once",
        "STOCKCAST_WORKER__DATA_DIR": "/srv/stockcast",
    }

    settings = load_settings(FULL_TOML, env)

    assert settings.kafka.bootstrap_servers == "192.168.1.9:9092"
    assert settings.kafka.partitions == 4
    assert settings.worker.web_port == 7070
    assert settings.worker.processing_guarantee == "at_least_once"
    assert settings.worker.data_dir == Path("/srv/stockcast")
    assert settings.kafka.topic_prefix == "shop-a"  # what the environment leaves alone stays


def test_environment_names_are_case_insensitive_after_the_prefix() -> None:
    settings = load_settings("", {"STOCKCAST_kafka__Topic_Prefix": "mixed"})

    assert settings.kafka.topic_prefix == "mixed"


def test_variables_without_the_prefix_are_ignored() -> None:
    env = {"BROKER_URL": "kafka://10.255.255.1:1", "KAFKA__PARTITIONS": "x", "PATH": "/bin"}

    assert load_settings("", env) == Settings()


def test_loading_never_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKCAST_KAFKA__PARTITIONS", "3")
    monkeypatch.setenv("STOCKCAST_NOPE", "would be an error if it were read")

    assert load_settings("", {}) == Settings()
    assert load_settings() == Settings()


def test_one_error_lists_every_problem_at_once() -> None:
    toml = '[worker]\nweb_port = 70000\nprocessing_guarantee = "twice"\n[kafka]\nbogus_key = 1\n'
    env = {"STOCKCAST_NOPE__X": "1", "STOCKCAST_WORKER__COLOR": "red"}

    with pytest.raises(SettingsError) as caught:
        load_settings(toml, env)

    problems = caught.value.problems
    assert len(problems) == 5
    message = str(caught.value)
    assert "5 problem(s)" in message
    for fragment in (
        "worker.web_port",
        "worker.processing_guarantee",
        "kafka.bogus_key",
        "STOCKCAST_NOPE__X",
        "worker.color",
    ):
        assert sum(fragment in problem for problem in problems) == 1, fragment
        assert fragment in message


def test_a_bad_value_from_the_environment_is_reported_like_one_from_the_file() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            "", {"STOCKCAST_KAFKA__PARTITIONS": "many", "STOCKCAST_WORKER__WEB_PORT": "-1"}
        )

    assert sorted(problem.split(":")[0] for problem in caught.value.problems) == [
        "kafka.partitions",
        "worker.web_port",
    ]


@pytest.mark.parametrize(
    "name",
    ["STOCKCAST_KAFKA", "STOCKCAST_NOPE__KEY", "STOCKCAST_CHANNELS__0", "STOCKCAST_"],
)
def test_an_environment_name_that_is_not_a_setting_is_a_problem(name: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings("", {name: "1"})

    assert caught.value.problems == [
        f"{name}: not a setting (use STOCKCAST_<SECTION>__<KEY>)",
    ]


def test_an_override_for_a_section_the_file_spells_as_a_value_is_a_problem() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings("kafka = 5\n", {"STOCKCAST_KAFKA__PARTITIONS": "3"})

    assert any("STOCKCAST_KAFKA__PARTITIONS" in problem for problem in caught.value.problems)


def test_a_toml_syntax_error_is_a_settings_error() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings("[kafka\npartitions = 3\n", {})

    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("stockcast.toml:")


def test_a_channel_needs_a_name_and_a_connector() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings('[[channels]]\nname = ""\n', {})

    assert sorted(problem.split(":")[0] for problem in caught.value.problems) == [
        "channels.0.connector",
        "channels.0.name",
    ]


# --- secrets --------------------------------------------------------------------------


def test_masked_settings_hide_every_secret() -> None:
    settings = load_settings(FULL_TOML, {})

    shown = settings.masked()

    assert shown["kafka"]["sasl_password"] == "**********"
    assert shown["channels"][0]["secrets"] == {"api_token": "**********"}
    assert shown["kafka"]["sasl_username"] == "stockcast"  # not a secret
    assert shown["channels"][0]["options"] == {"base_url": "http://127.0.0.1:8000"}
    text = orjson.dumps(shown).decode()
    for secret in SECRETS:
        assert secret not in text


def test_printing_settings_never_shows_a_secret() -> None:
    settings = load_settings(FULL_TOML, {"STOCKCAST_KAFKA__SASL_PASSWORD": "env-pass-789"})

    for text in (str(settings), repr(settings), str(settings.kafka), repr(settings.channels)):
        for secret in ("env-pass-789", "room-token-456"):
            assert secret not in text


def test_a_settings_error_never_shows_a_secret() -> None:
    env = {"STOCKCAST_KAFKA__SASL_PASSWORD": "env-pass-789", "STOCKCAST_WORKER__WEB_PORT": "-1"}

    with pytest.raises(SettingsError) as caught:
        load_settings('[[channels]]\nname = "a"\nconnector = "x"\nsecrets = { t = 5 }\n', env)

    assert "env-pass-789" not in str(caught.value)
    assert len(caught.value.problems) == 2


def test_secrets_from_the_environment_reach_the_settings() -> None:
    settings = load_settings("", {"STOCKCAST_KAFKA__SASL_PASSWORD": "env-pass-789"})

    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "env-pass-789"
    assert settings.masked()["kafka"]["sasl_password"] == "**********"


# --- immutability ---------------------------------------------------------------------


def test_settings_are_frozen() -> None:
    settings = load_settings(FULL_TOML, {})

    with pytest.raises(ValidationError):
        settings.kafka.partitions = 3  # type: ignore[misc]
    with pytest.raises(ValidationError):
        settings.worker = WorkerSettings()  # type: ignore[misc]
    with pytest.raises(ValidationError):
        settings.channels[0].name = "other"  # type: ignore[misc]
    assert isinstance(settings.channels, tuple)
    assert settings.kafka.partitions == 16


def test_unknown_keys_are_refused_in_every_section() -> None:
    with pytest.raises(ValidationError):
        ChannelSettings(name="a", connector="b", colour="red")  # type: ignore[call-arg]
    with pytest.raises(SettingsError):
        load_settings("unknown_section = 1\n", {})


def test_channel_options_cannot_be_changed_after_loading() -> None:
    settings = load_settings(FULL_TOML, {})

    with pytest.raises(TypeError):
        settings.channels[0].options["base_url"] = "http://evil.example"  # type: ignore[index]


# --- files ----------------------------------------------------------------------------


def test_a_settings_file_is_read_with_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "stockcast.toml"
    path.write_text(FULL_TOML, encoding="utf-8")

    settings = load_settings_file(path, {"STOCKCAST_KAFKA__PARTITIONS": "2"})

    assert settings.kafka.topic_prefix == "shop-a"
    assert settings.kafka.partitions == 2


def test_no_file_means_defaults_plus_environment() -> None:
    settings = load_settings_file(None, {"STOCKCAST_WORKER__WEB_PORT": "9999"})

    assert settings.worker.web_port == 9999
    assert settings.kafka == KafkaSettings()


def test_a_missing_file_is_a_clear_settings_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"

    with pytest.raises(SettingsError) as caught:
        load_settings_file(missing, {})

    assert caught.value.problems == [f"{missing}: No such file or directory"]


def test_a_directory_instead_of_a_file_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings_file(tmp_path, {})

    assert str(tmp_path) in caught.value.problems[0]


def test_a_file_that_is_not_utf8_is_a_settings_error(tmp_path: Path) -> None:
    path = tmp_path / "stockcast.toml"
    path.write_bytes(b'[kafka]\ntopic_prefix = "\xff\xfe"\n')

    with pytest.raises(SettingsError) as caught:
        load_settings_file(path, {})

    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{path}: not UTF-8")


# --- [ledger] -----------------------------------------------------------------------------


def test_the_ledger_section_sets_the_default_reserve_and_partial_channels() -> None:
    settings = load_settings(
        "[ledger]\n"
        "default_reserve_percent = 10\n"
        "default_reserve_units = 3\n"
        'partial_fulfilment_channels = ["shopify-store", "wechat-room-2"]\n',
        {},
    )

    assert settings.ledger == LedgerSettings(
        default_reserve_percent=10,
        default_reserve_units=3,
        partial_fulfilment_channels=("shopify-store", "wechat-room-2"),
    )


def test_the_environment_overrides_the_default_reserve() -> None:
    env = {
        "STOCKCAST_LEDGER__DEFAULT_RESERVE_PERCENT": "8",
        "STOCKCAST_LEDGER__DEFAULT_RESERVE_UNITS": "2",
    }

    settings = load_settings("[ledger]\ndefault_reserve_percent = 10\n", env)

    assert (settings.ledger.default_reserve_percent, settings.ledger.default_reserve_units) == (
        8,
        2,
    )


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("default_reserve_percent = 101", "ledger.default_reserve_percent"),
        ("default_reserve_percent = -1", "ledger.default_reserve_percent"),
        ("default_reserve_units = -1", "ledger.default_reserve_units"),
        ("default_reserve = 5", "ledger.default_reserve"),
    ],
)
def test_a_bad_ledger_setting_is_named(line: str, where: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(f"[ledger]\n{line}\n", {})

    assert any(problem.startswith(where) for problem in caught.value.problems)


def test_exactly_once_is_refused_because_it_lost_orders_in_the_crash_test() -> None:
    with pytest.raises(SettingsError, match=r"worker\.processing_guarantee"):
        load_settings('[worker]\nprocessing_guarantee = "exactly_once"\n', {})


@pytest.mark.parametrize("option", ["app_secret", "access_token", "client_secret", "Password"])
def test_a_credential_among_the_plain_options_is_refused(option: str) -> None:
    toml = f'[[channels]]\nname = "a"\nconnector = "shopify"\noptions = {{ {option} = "s3cret" }}\n'

    with pytest.raises(SettingsError, match=f"{option} must go in `secrets`") as refused:
        load_settings(toml)

    assert "s3cret" not in str(refused.value)


def test_credentials_in_secrets_and_listings_are_read() -> None:
    settings = load_settings(
        '[[channels]]\nname = "a"\nconnector = "shopify"\noptions = { shop_id = "s" }\n'
        'secrets = { client_secret = "x" }\nlistings = { "lipstick" = "4401" }\n'
        "writes_per_s = 2.5\nwrites_in_flight = 2\n"
    )

    (channel,) = settings.channels
    assert channel.secrets["client_secret"].get_secret_value() == "x"
    assert dict(channel.listings) == {"lipstick": "4401"}
    assert (channel.writes_per_s, channel.writes_in_flight) == (2.5, 2)
    assert settings.masked()["channels"][0]["secrets"] == {"client_secret": "**********"}


def test_a_channel_writes_a_few_skus_at_once_by_default_and_at_least_one() -> None:
    (channel,) = load_settings('[[channels]]\nname = "a"\nconnector = "simulator"\n').channels
    assert channel.writes_in_flight == 8

    with pytest.raises(SettingsError, match="writes_in_flight"):
        load_settings('[[channels]]\nname = "a"\nconnector = "simulator"\nwrites_in_flight = 0\n')


# --- [metrics] ----------------------------------------------------------------------------


def test_metrics_watch_the_ten_hottest_skus_and_no_list_by_default() -> None:
    assert load_settings().metrics == MetricsSettings(sku_allowlist=(), top_skus=10)


def test_the_metrics_section_sets_the_allowlist_and_the_top() -> None:
    settings = load_settings('[metrics]\nsku_allowlist = ["hero-1", "hero-2"]\ntop_skus = 0\n')

    assert settings.metrics == MetricsSettings(sku_allowlist=("hero-1", "hero-2"), top_skus=0)


def test_the_environment_overrides_the_metrics_section() -> None:
    env = {
        "STOCKCAST_METRICS__TOP_SKUS": "25",
        "STOCKCAST_METRICS__SKU_ALLOWLIST": "hero-1, hero-2,,",
    }

    settings = load_settings('[metrics]\ntop_skus = 3\nsku_allowlist = ["other"]\n', env)

    assert settings.metrics == MetricsSettings(sku_allowlist=("hero-1", "hero-2"), top_skus=25)


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("top_skus = -1", "metrics.top_skus"),
        ("top_skus = 101", "metrics.top_skus"),
        ('sku_allowlist = ["a", "b", "a"]', "metrics.sku_allowlist"),
        ('sku_allowlist = [""]', "metrics.sku_allowlist"),
        (
            "sku_allowlist = [" + ", ".join(f'"s{n}"' for n in range(1001)) + "]",
            "metrics.sku_allowlist",
        ),
        ("top = 5", "metrics.top"),
    ],
)
def test_a_bad_metrics_setting_is_named(line: str, where: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(f"[metrics]\n{line}\n", {})

    assert any(problem.startswith(where) for problem in caught.value.problems)


def test_metrics_settings_are_frozen() -> None:
    settings = load_settings('[metrics]\nsku_allowlist = ["hero"]\n')

    with pytest.raises(ValidationError):
        settings.metrics.top_skus = 3  # type: ignore[misc]
    assert isinstance(settings.metrics.sku_allowlist, tuple)
