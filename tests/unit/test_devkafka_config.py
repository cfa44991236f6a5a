"""The pure parts of the dev Kafka: config rendering, ports, ids; no broker, no Maven."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sync_worker import devkafka
from sync_worker.devkafka import DevKafkaConfig, NodeStatus


def parse_properties(text: str) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def test_a_single_node_listens_on_the_base_port() -> None:
    config = DevKafkaConfig()

    assert config.bootstrap_servers == "127.0.0.1:9092"
    assert (config.replication_factor, config.min_insync_replicas) == (1, 1)


def test_three_nodes_use_consecutive_ports_and_tolerate_one_loss() -> None:
    config = DevKafkaConfig(brokers=3, host="localhost", base_port=29092)

    assert config.bootstrap_servers == "localhost:29092,localhost:29093,localhost:29094"
    assert config.quorum_voters == "0@localhost:9192,1@localhost:9193,2@localhost:9194"
    assert (config.replication_factor, config.min_insync_replicas) == (3, 2)


@pytest.mark.parametrize("brokers", [0, 2, 4])
def test_only_one_or_three_brokers_are_supported(brokers: int) -> None:
    with pytest.raises(ValueError, match="brokers"):
        DevKafkaConfig(brokers=brokers)


def test_overlapping_broker_and_controller_ports_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        DevKafkaConfig(brokers=3, base_port=9092, controller_base_port=9094)


def test_default_data_and_cache_dirs_are_inside_the_project() -> None:
    config = DevKafkaConfig()
    root = devkafka.PROJECT_ROOT

    assert config.data_dir == root / "var" / "kafka"
    assert config.libs_dir == root / "deploy" / "kafka" / ".cache" / config.kafka_version / "libs"


def test_rendered_properties_describe_a_combined_kraft_node(tmp_path: Path) -> None:
    config = DevKafkaConfig(
        data_dir=tmp_path, brokers=3, base_port=29092, controller_base_port=29192
    )

    props = parse_properties(devkafka.render_server_properties(config, 1))

    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == (
        "0@127.0.0.1:29192,1@127.0.0.1:29193,2@127.0.0.1:29194"
    )
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29093,CONTROLLER://127.0.0.1:29193"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29093"
    assert props["log.dirs"] == str(tmp_path / "node-1" / "data")
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["num.partitions"] == "8"
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
    ):
        assert props[key] == "3", key
    assert props["min.insync.replicas"] == "2"
    assert props["transaction.state.log.min.isr"] == "2"


def test_a_single_node_keeps_internal_topics_at_replication_factor_one(tmp_path: Path) -> None:
    props = parse_properties(
        devkafka.render_server_properties(DevKafkaConfig(data_dir=tmp_path), 0)
    )

    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["controller.quorum.voters"] == "0@127.0.0.1:9192"


def test_extra_properties_are_appended_so_they_win(tmp_path: Path) -> None:
    config = DevKafkaConfig(data_dir=tmp_path, extra_properties=(("num.partitions", "3"),))

    assert parse_properties(devkafka.render_server_properties(config, 0))["num.partitions"] == "3"


def test_rendering_an_unknown_node_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="node 3"):
        devkafka.render_server_properties(DevKafkaConfig(data_dir=tmp_path, brokers=3), 3)


def test_cluster_ids_look_like_kafka_uuids() -> None:
    for _ in range(200):
        cluster_id = devkafka.new_cluster_id()
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_the_java_command_runs_the_cached_classpath_with_the_quiet_log_config(
    tmp_path: Path,
) -> None:
    config = DevKafkaConfig(data_dir=tmp_path, heap="768m")

    cmd = devkafka.java_command(config, 0, "kafka.Kafka", "server.properties")

    assert cmd[-3:] == [f"{config.libs_dir}/*", "kafka.Kafka", "server.properties"]
    assert "-Xmx768m" in cmd
    log_config = next(a for a in cmd if a.startswith("-Dlog4j2.configurationFile="))
    assert Path(log_config.split("=", 1)[1]).is_file()
    assert f"-Dkafka.logs.dir={tmp_path / 'node-0' / 'logs'}" in cmd


def test_the_pom_pins_the_same_kafka_version_as_the_module() -> None:
    pom = ET.parse(devkafka.DEPLOY_DIR / "pom.xml").getroot()
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}

    assert pom.findtext("m:properties/m:kafka.version", namespaces=ns) == devkafka.KAFKA_VERSION
    plugin_version = pom.findtext("m:build/m:plugins/m:plugin/m:version", namespaces=ns)
    assert plugin_version  # the dependency plugin is pinned, not resolved as "latest"


def test_fetch_is_skipped_when_the_libs_are_already_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = DevKafkaConfig(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    config.libs_dir.mkdir(parents=True)
    (config.libs_dir / f"kafka_2.13-{config.kafka_version}.jar").touch()
    (config.libs_dir / ".fetched").touch()
    monkeypatch.setattr(shutil, "which", lambda _name: None)  # no Maven available

    assert devkafka.fetch(config) == config.libs_dir


def test_a_half_finished_fetch_is_not_taken_for_a_complete_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = DevKafkaConfig(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    config.libs_dir.mkdir(parents=True)
    (config.libs_dir / f"kafka_2.13-{config.kafka_version}.jar").touch()  # but no marker
    monkeypatch.setattr(shutil, "which", lambda _name: None)

    with pytest.raises(devkafka.DevKafkaError, match="mvn"):
        devkafka.fetch(config)


def test_nothing_running_means_every_node_is_down(tmp_path: Path) -> None:
    config = DevKafkaConfig(data_dir=tmp_path, brokers=3, base_port=29092)

    assert devkafka.status(config) == [
        NodeStatus(node_id=i, port=29092 + i, pid=None, alive=False) for i in range(3)
    ]
    devkafka.down(config)  # idempotent: nothing to stop is fine


def test_a_recycled_pid_is_not_mistaken_for_a_broker(tmp_path: Path) -> None:
    config = DevKafkaConfig(data_dir=tmp_path)
    config.node_dir(0).mkdir(parents=True)
    (config.node_dir(0) / "kafka.pid").write_text(f"{os.getpid()}\n")  # this pytest process

    [node] = devkafka.status(config)

    assert node.pid == os.getpid()
    assert not node.alive
    devkafka.down(config)  # must not signal the unrelated process
    assert not (config.node_dir(0) / "kafka.pid").exists()


def test_wipe_refuses_a_directory_devkafka_did_not_create(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")

    with pytest.raises(devkafka.DevKafkaError, match="not wiping"):
        devkafka.wipe(DevKafkaConfig(data_dir=tmp_path))

    assert precious.read_text() == "keep me"


def _held_port() -> socket.socket:
    """A port bound but not listening: connecting fails, binding it again fails too,
    as with a killed node's port whose connections linger in TIME_WAIT."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_waiting_for_a_port_ends_once_it_can_be_bound_again() -> None:
    held = _held_port()
    port = held.getsockname()[1]
    threading.Timer(0.6, held.close).start()
    began = time.monotonic()

    devkafka.wait_bindable("127.0.0.1", port, timeout=10.0)

    assert time.monotonic() - began >= 0.5


def test_a_port_that_stays_unbindable_is_reported() -> None:
    with _held_port() as held:
        port = held.getsockname()[1]
        with pytest.raises(devkafka.DevKafkaError, match="could not be bound"):
            devkafka.wait_bindable("127.0.0.1", port, timeout=1.0)
