"""faust is configured from ``Settings`` only: never from the environment, never by naming.

The app is built in a fresh interpreter so that the environment faust sees is exactly the
one the test gives it (faust reads some variables at import time). Building the app needs
no broker: faust connects only when the worker starts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import ssl
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from faust.types.auth import AuthProtocol

from sync_worker.config import Settings, load_settings
from sync_worker.streaming import names
from sync_worker.streaming.app import faust_settings

PROBE = r"""
import dataclasses, json, sys, warnings
warnings.simplefilter("ignore")  # faust warns when deprecated settings are read

from sync_worker.config import load_settings
from sync_worker.streaming.app import create_app

stockcast = create_app(load_settings(sys.stdin.read(), {}), channels=[])
app = stockcast.faust_app
conf = app.conf
every = {
    name: repr(getattr(conf, name))
    for name in type(conf).SETTINGS
    if name != "reply_to"  # a fresh random topic name per app
}
credentials = conf.broker_credentials
print(json.dumps({
    "every": every,
    "id": conf.id,
    "broker": [str(url) for url in conf.broker],
    "broker_consumer": [str(url) for url in conf.broker_consumer],
    "broker_producer": [str(url) for url in conf.broker_producer],
    "datadir": str(conf.datadir),
    "tabledir": str(conf.tabledir),
    "store": str(conf.store),
    "processing_guarantee": conf.processing_guarantee.value,
    "topic_partitions": conf.topic_partitions,
    "topic_replication_factor": conf.topic_replication_factor,
    "autodiscover": conf.autodiscover,
    "web_enabled": conf.web_enabled,
    "web_bind": conf.web_bind,
    "web_port": conf.web_port,
    "key_serializer": conf.key_serializer,
    "value_serializer": conf.value_serializer,
    "consumer_auto_offset_reset": conf.consumer_auto_offset_reset,
    "env": dict(conf.env),
    "credentials": None if credentials is None else {
        "username": credentials.username,
        "password": credentials.password,
        "mechanism": credentials.mechanism.value,
        "protocol": credentials.protocol.value,
    },
    "tables": {name: table.changelog_topic.get_topic_name() for name, table in app.tables.items()},
    "agents": {name: list(agent.channel.topics) for name, agent in app.agents.items()},
    "topics": dataclasses.asdict(stockcast.topics),
}))
"""

HOSTILE = {
    # faust's own names for its settings (what it reads when given os.environ)
    "BROKER_URL": "kafka://10.255.255.1:1",
    "BROKER_CONSUMER_URL": "kafka://10.255.255.2:2",
    "BROKER_PRODUCER_URL": "kafka://10.255.255.3:3",
    "BROKER_CLIENT_ID": "hostile",
    "BROKER_CREDENTIALS": "hostile",
    "BROKER_COMMIT_EVERY": "1",
    "BROKER_COMMIT_INTERVAL": "999",
    "BROKER_SESSION_TIMEOUT": "1",
    "BROKER_HEARTBEAT_INTERVAL": "0.1",
    "BROKER_REQUEST_TIMEOUT": "1",
    "BROKER_MAX_POLL_RECORDS": "1",
    "BROKER_API_VERSION": "0.9",
    "APP_DATADIR": "/nonexistent",
    "APP_TABLEDIR": "/nonexistent/tables",
    "APP_DEBUG": "true",
    "APP_ID_FORMAT": "hostile-{id}",
    "APP_VERSION": "99",
    "APP_STORE": "memory://",
    "STORE": "memory://",
    "CACHE_URL": "redis://10.255.255.1:1",
    "PROCESSING_GUARANTEE": "exactly_once",
    "TOPIC_PARTITIONS": "99",
    "TOPIC_REPLICATION_FACTOR": "7",
    "TOPIC_ALLOW_DECLARE": "false",
    "TOPIC_DISABLE_LEADER": "true",
    "CONSUMER_AUTO_OFFSET_RESET": "latest",
    "CONSUMER_MAX_FETCH_SIZE": "1",
    "APP_KEY_SERIALIZER": "json",
    "APP_VALUE_SERIALIZER": "pickle",
    "PRODUCER_ACKS": "0",
    "PRODUCER_COMPRESSION_TYPE": "gzip",
    "PRODUCER_LINGER": "5",
    "PRODUCER_MAX_BATCH_SIZE": "1",
    "PRODUCER_REQUEST_TIMEOUT": "1",
    "STREAM_BUFFER_MAXSIZE": "1",
    "STREAM_WAIT_EMPTY": "false",
    "STREAM_RECOVERY_DELAY": "99",
    "TABLE_STANDBY_REPLICAS": "5",
    "TABLE_CLEANUP_INTERVAL": "1",
    "TABLE_KEY_INDEX_SIZE": "1",
    "APP_WEB_ENABLED": "true",
    "WEB_PORT": "1",
    "WEB_HOST": "hostile.example",
    "WEB_BIND": "10.255.255.1",
    "NODE_CANONICAL_URL": "http://hostile.example:1",
    "WORKER_REDIRECT_STDOUTS": "false",
    "BLOCKING_TIMEOUT": "0.001",
    "AGENT_SUPERVISOR": "mode.supervisors.CrashingSupervisor",
    # faust's prefix switch, and the same settings behind that prefix
    "APP_ENV_PREFIX": "HOSTILE_",
    "HOSTILE_BROKER_URL": "kafka://10.255.255.4:4",
    "HOSTILE_TOPIC_PARTITIONS": "77",
    "HOSTILE_APP_DATADIR": "/nonexistent/prefixed",
    # what `import faust` reads into its module-level defaults
    "F_DATADIR": "/nonexistent",
    "FAUST_DATADIR": "/nonexistent",
    "F_BLOCKING_TIMEOUT": "0.001",
    "F_DEBUG": "1",
    "F_WEB_PORT": "1",
    "FAUST_WEB_PORT": "1",
    "F_WEB_BIND": "10.255.255.1",
}

RunProbe = Callable[[Mapping[str, str]], dict[str, Any]]


@pytest.fixture
def settings_toml(tmp_path: Path) -> str:
    return f"""
[kafka]
bootstrap_servers = "127.0.0.1:19092, 127.0.0.2:19093"
topic_prefix = "probe"
partitions = 3
replication_factor = 2
security_protocol = "SASL_PLAINTEXT"
sasl_mechanism = "SCRAM-SHA-256"
sasl_username = "stockcast"
sasl_password = "kafka-pass-123"

[worker]
app_id = "stockcast-probe"
data_dir = "{tmp_path / "data"}"
web_host = "127.0.0.3"
web_port = 16066
processing_guarantee = "at_least_once"
"""


@pytest.fixture
def run_probe(tmp_path: Path, settings_toml: str) -> RunProbe:
    """Build the app in a fresh interpreter whose environment is only ``extra`` (plus PATH)."""

    def run(extra: Mapping[str, str]) -> dict[str, Any]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **extra}
        done = subprocess.run(
            [sys.executable, "-c", PROBE],
            input=settings_toml,
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,  # a hang guard, not a speed check
            check=False,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    return run


def test_faust_takes_every_value_from_the_settings_in_a_hostile_environment(
    run_probe: RunProbe, settings_toml: str, tmp_path: Path
) -> None:
    settings = load_settings(settings_toml, {})

    seen = run_probe(HOSTILE)

    assert seen["id"] == settings.worker.app_id
    brokers = ["kafka://127.0.0.1:19092", "kafka://127.0.0.2:19093"]
    assert seen["broker"] == seen["broker_consumer"] == seen["broker_producer"] == brokers
    assert seen["datadir"] == str(settings.worker.data_dir) == str(tmp_path / "data")
    assert seen["tabledir"].startswith(str(tmp_path / "data"))
    assert seen["store"] == "rocksdb:"
    assert seen["processing_guarantee"] == settings.worker.processing_guarantee
    assert seen["topic_partitions"] == settings.kafka.partitions == 3
    assert seen["topic_replication_factor"] == settings.kafka.replication_factor == 2
    assert seen["autodiscover"] is False
    assert seen["web_enabled"] is False
    assert (seen["web_bind"], seen["web_port"]) == ("127.0.0.3", 16066)
    assert (seen["key_serializer"], seen["value_serializer"]) == ("raw", "raw")
    assert seen["consumer_auto_offset_reset"] == "earliest"
    assert seen["env"] == {}
    assert seen["credentials"] == {
        "username": "stockcast",
        "password": "kafka-pass-123",
        "mechanism": "SCRAM-SHA-256",
        "protocol": "SASL_PLAINTEXT",
    }


def test_no_faust_setting_changes_with_the_environment(run_probe: RunProbe) -> None:
    clean = run_probe({})
    hostile = run_probe(HOSTILE)

    changed = {
        name: (clean["every"][name], hostile["every"].get(name))
        for name in clean["every"]
        if clean["every"][name] != hostile["every"].get(name)
    }
    assert changed == {}
    assert clean == hostile


def test_faust_web_transport_does_not_come_from_the_environment(run_probe: RunProbe) -> None:
    clean = run_probe({})
    hostile = run_probe({"F_WEB_TRANSPORT": "unix:///tmp/hostile.sock"})

    assert hostile["every"] == clean["every"]


def test_every_persistent_name_is_an_explicit_constant(run_probe: RunProbe) -> None:
    seen = run_probe({})

    topics = names.TopicNames.for_prefix("probe")
    assert seen["topics"] == {
        "sku_events": topics.sku_events,
        "decisions": topics.decisions,
        "stock_levels": topics.stock_levels,
        "dead_letters": topics.dead_letters,
        "cancellation_requests": topics.cancellation_requests,
        "audit": topics.audit,
        "order_decisions": topics.order_decisions,
        "notifications": topics.notifications,
        "alerts": topics.alerts,
        "sessions": topics.sessions,
        "ledger_state": topics.ledger_state,
    }  # names only: alerts, sessions and the ledger's state use plain aiokafka clients
    assert seen["agents"] == {
        names.ORDERS_AGENT: [topics.order_decisions],
    }  # SKU events, stock levels and notifications are read outside faust
    assert seen["tables"] == {
        names.ORDERS_TABLE: f"stockcast-probe-{names.ORDERS_TABLE}-changelog",
    }


def test_the_persistent_names_never_change() -> None:
    """Renaming one of these renames a topic or table on the broker: data left behind."""
    assert (names.SKU_EVENTS, names.DECISIONS) == ("sku-events.v1", "decisions.v1")
    assert (names.STOCK_LEVELS, names.DEAD_LETTERS) == ("stock-levels.v1", "dead-letters.v1")
    assert (names.CANCELLATION_REQUESTS, names.AUDIT) == ("cancellation-requests.v1", "audit.v1")
    assert (names.ORDER_DECISIONS, names.NOTIFICATIONS) == (
        "order-decisions.v1",
        "notifications.v1",
    )
    assert (names.ALERTS, names.SESSIONS) == ("alerts.v1", "sessions.v1")
    assert (names.LEDGER_STATE, names.ORDERS_TABLE) == ("ledger-state.v1", "orders")
    assert (
        names.ORDERS_AGENT,
        names.PUBLISHER_GROUP,
        names.LEDGER_GROUP,
        names.INBOUND_GROUP,
        names.ALERTS_GROUP,
        names.PAYMENTS_GROUP,
    ) == ("orders", "publisher", "ledger", "inbound", "alerts", "payments")
    assert names.TopicNames.for_prefix("shop-a").sku_events == "shop-a.sku-events.v1"


def test_every_topic_of_a_deployment_is_created_before_subscribing() -> None:
    topics = names.TopicNames.for_prefix("shop-a")

    assert topics.all() == tuple(dataclasses.asdict(topics).values())
    assert len(set(topics.all())) == 11
    assert all(name.startswith("shop-a.") and name.endswith(".v1") for name in topics.all())


# --- broker security ------------------------------------------------------------------


def kafka_settings(**kafka: str) -> Settings:
    return load_settings(
        "", {f"STOCKCAST_KAFKA__{key.upper()}": value for key, value in kafka.items()}
    )


def test_plaintext_brokers_get_no_credentials() -> None:
    assert "broker_credentials" not in faust_settings(kafka_settings())


def test_sasl_plaintext_credentials_carry_the_settings() -> None:
    options = faust_settings(
        kafka_settings(
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="stockcast",
            sasl_password="kafka-pass-123",
        )
    )

    credentials = options["broker_credentials"]
    assert (credentials.username, credentials.password) == ("stockcast", "kafka-pass-123")
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.protocol is AuthProtocol.SASL_PLAINTEXT


def test_sasl_ssl_sends_the_password_over_verified_tls() -> None:
    options = faust_settings(
        kafka_settings(
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-256",
            sasl_username="stockcast",
            sasl_password="kafka-pass-123",
        )
    )

    credentials = options["broker_credentials"]
    assert credentials.protocol is AuthProtocol.SASL_SSL
    assert (credentials.username, credentials.password) == ("stockcast", "kafka-pass-123")
    assert_verifies(credentials.ssl_context)


def test_ssl_connects_over_verified_tls() -> None:
    options = faust_settings(kafka_settings(security_protocol="SSL"))

    credentials = options["broker_credentials"]
    assert credentials.protocol is AuthProtocol.SSL
    assert_verifies(credentials.context)


def assert_verifies(context: ssl.SSLContext | None) -> None:
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True
