"""Every plain aiokafka client reaches a secured cluster with faust's credentials."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from sync_worker.config import load_settings
from sync_worker.streaming import commands, topics
from sync_worker.streaming.kafka_clients import kafka_client_options
from sync_worker.streaming.names import TopicNames

SECURED = """
[kafka]
bootstrap_servers = "broker-1:9093,broker-2:9093"
security_protocol = "SASL_SSL"
sasl_mechanism = "SCRAM-SHA-512"
sasl_username = "stockcast"
sasl_password = "s3cret"
"""


def test_sasl_ssl_settings_give_credentials_and_tls() -> None:
    options = kafka_client_options(load_settings(SECURED, env={}).kafka)

    assert options["bootstrap_servers"] == "broker-1:9093,broker-2:9093"
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "stockcast"
    assert options["sasl_plain_password"] == "s3cret"
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_plaintext_settings_carry_no_credentials() -> None:
    options = kafka_client_options(load_settings("", env={}).kafka)

    assert options["security_protocol"] == "PLAINTEXT"
    assert not {"ssl_context", "sasl_mechanism", "sasl_plain_password"} & options.keys()


class _Refused(Exception):
    pass


@pytest.mark.parametrize(
    "call",
    [
        lambda kafka: topics.ensure_topics(kafka, TopicNames.for_prefix("t")),
        lambda kafka: commands.read_audit(kafka, TopicNames.for_prefix("t"), "sku"),
    ],
    ids=["ensure_topics", "read_audit"],
)
async def test_admin_clients_are_built_with_the_credentials(
    monkeypatch: pytest.MonkeyPatch, call: Any
) -> None:
    """Topic creation and the CLI's reads once ignored them and failed on a secured cluster."""
    seen: list[dict[str, Any]] = []

    class Recorder:
        def __init__(self, **options: Any) -> None:
            seen.append(options)

        async def start(self) -> None:
            raise _Refused

    monkeypatch.setattr(topics, "AIOKafkaAdminClient", Recorder)
    monkeypatch.setattr(commands, "AIOKafkaAdminClient", Recorder)

    with pytest.raises(_Refused):
        await call(load_settings(SECURED, env={}).kafka)

    (options,) = seen
    assert options["sasl_plain_password"] == "s3cret"
    assert options["security_protocol"] == "SASL_SSL"
