"""Connection options for the plain aiokafka clients beside faust.

Every client the worker or the CLI opens (admin, producers, consumers) reaches the same
brokers with the same credentials as faust does, so a secured cluster works everywhere.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer

from sync_worker.config import KafkaSettings


def kafka_client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """The same brokers and credentials as faust's, for a plain aiokafka client."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol.endswith("SSL"):
        options["ssl_context"] = ssl.create_default_context()
    if kafka.security_protocol.startswith("SASL"):
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        options.update(
            sasl_mechanism=kafka.sasl_mechanism,
            sasl_plain_username=kafka.sasl_username or "",
            sasl_plain_password=password,
        )
    return options


def group_consumer(group_id: str, options: Mapping[str, Any], *topics: str) -> AIOKafkaConsumer:
    """A consumer in a group of our own (faust never hears of it): offsets are committed
    by hand once the work is done, and a new group starts at the earliest record."""
    return AIOKafkaConsumer(
        *topics,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **options,
    )
